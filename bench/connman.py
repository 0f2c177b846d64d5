"""ConnMan under an inbound storm, and Core's eviction selection at scale.

Two measurements, each beside a baseline run in the same process:

* **eviction selection** (Core ``SelectNodeToEvict``, src/node/eviction.cpp, here
  :func:`peerkeeper.bitcoin.eviction.select_node_to_evict`) over 200, 1,000 and 10,000 random
  inbound candidates: microseconds per decision, against one ``sorted()`` of the same
  list by one key (Core's selection sorts about six times);
* **inbound storm**: a ConnMan with ``-maxconnections=200`` (189 inbound slots) on
  127.0.0.1, and a client in a separate process opening 2,000 connections in bursts
  of 100, each sending a v1 ``version`` and then reading until the node closes it.
  Once the slots are full every newcomer triggers Core's eviction. Reported: accepted,
  evicted and refused connections, accepted/s and evicted/s over the storm, and the
  CPU time of each admission decision (``on_accepted``: mean and p99). The baseline is
  a plain ``asyncio.start_server`` that keeps at most 189 connections and closes the
  oldest for each newcomer, measured with the same client.

All peers come from 127.0.0.1, so they share one netgroup: eviction then falls to
uptime and the newest member of the largest group. uvloop is used when installed.
Loopback only; the client process is always stopped.

* **outbound pick**: one pass of the outbound policy (feeler due: census, type choice,
  collision resolution, filtered draws) on a table of 50,000 offered addresses, against
  one bare ``AddrMan.select`` on the same table.

Run: ``python3 bench/connman.py [--connections 2000] [--burst 100] [--candidates 200,1000,10000]
[--addresses 50000] [--max-connections 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import time
from collections import deque
from typing import Any

from scale import raise_nofile  # bench/ is on sys.path when run as a script

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.eviction import EvictionCandidate, select_node_to_evict
from peerkeeper.bitcoin.outbound import OutboundLimits, OutboundPolicy
from peerkeeper.net.chains import get_chain
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.shell.connman import ConnMan, ConnManOptions
from peerkeeper.wire.messages import AddrEntry, Version
from peerkeeper.wire.v1 import frame_v1

REGTEST = get_chain("regtest")
MAX_CONNECTIONS = 200

CLIENT = r"""
import asyncio, json, sys
port, total, burst, version_hex = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
version = bytes.fromhex(version_hex)

async def one(stats, writers):
    # Connect, send a version, and wait for the node's answer (admitted) or EOF (refused or
    # evicted at once): the burst is over when the node has decided on every connection.
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        stats["connect_errors"] += 1
        return
    stats["connected"] += 1
    writer.write(version)
    writers.append(writer)
    try:
        first = await asyncio.wait_for(reader.read(65536), 60)
    except (OSError, asyncio.TimeoutError):
        first = b""
    stats["answered" if first else "closed_at_once"] += 1

async def main():
    stats = {"connected": 0, "connect_errors": 0, "answered": 0, "closed_at_once": 0}
    writers = []
    for start in range(0, total, burst):
        await asyncio.gather(*(one(stats, writers) for _ in range(min(burst, total - start))))
    for w in writers:
        w.close()
    print(json.dumps(stats))

asyncio.run(main())
"""


# -- eviction selection ------------------------------------------------------------------------


def candidates(n: int, rng: random.Random) -> list[EvictionCandidate]:
    now = 1_800_000_000.0
    nets = [Network.IPV4] * 8 + [Network.IPV6, Network.TORV3, Network.I2P]
    out = []
    for i in range(n):
        net = rng.choice(nets)
        out.append(
            EvictionCandidate(
                id=i,
                connected=now - rng.uniform(0, 86400),
                min_ping_time=rng.uniform(0.001, 2.0),
                last_block_time=now - rng.uniform(0, 3600) if rng.random() < 0.3 else 0.0,
                last_tx_time=now - rng.uniform(0, 600) if rng.random() < 0.5 else 0.0,
                relevant_services=rng.random() < 0.8,
                relay_txs=rng.random() < 0.7,
                bloom_filter=rng.random() < 0.05,
                keyed_netgroup=rng.randrange(300),
                prefer_evict=rng.random() < 0.02,
                is_local=rng.random() < 0.01,
                network=net,
                conn_type=ConnectionType.INBOUND,
            )
        )
    return out


def best_of(fn: Any, repeats: int, inner: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def bench_eviction(sizes: list[int]) -> list[tuple[str, str, str, str]]:
    rows = []
    rng = random.Random(1)
    for n in sizes:
        cands = candidates(n, rng)
        inner = max(1, 20_000 // n)
        ours = best_of(lambda c=cands: select_node_to_evict(c), 5, inner)
        base = best_of(lambda c=cands: sorted(c, key=lambda x: x.connected), 5, inner)
        rows.append(
            (
                f"eviction selection, {n:,} candidates",
                f"{ours * 1e6:,.0f} µs",
                f"{base * 1e6:,.0f} µs (one sort)",
                f"{ours / base:.1f}x",
            )
        )
    return rows


# -- outbound pick -----------------------------------------------------------------------------


def bench_outbound_pick(n_addresses: int) -> list[tuple[str, str, str, str]]:
    """One ``OutboundPolicy.next_connection`` (Core's ThreadOpenConnections pass: census,
    type choice, collision resolution, up to 100 filtered draws) against one bare
    ``AddrMan.select`` on the same table."""
    now = time.time()
    rng = random.Random(4)
    am = AddrMan(random.Random(5))
    for _ in range(n_addresses):
        ip = f"{rng.randrange(1, 220)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        src = NetAddr.parse(f"{rng.randrange(1, 220)}.{rng.randrange(256)}.1.1")
        am.add([AddrEntry(int(now - 3600), 9, Service.parse(ip, 8333))], src, now=now)
    policy = OutboundPolicy(OutboundLimits(), am, random.Random(6), now, reachable={Network.IPV4})
    peers: list[tuple[ConnectionType, Service]] = []
    while len(peers) < 10:
        pick = policy.next_connection(peers, now)
        if pick is not None:
            peers.append((pick.decision.conn_type, pick.entry.service))

    def feeler() -> None:
        policy.timers.next_feeler = 0.0
        policy.next_connection(peers, now)

    ours = best_of(feeler, 5, 400)
    idle = best_of(lambda: policy.next_connection(peers, now), 5, 400)
    base = best_of(lambda: am.select(True, [Network.IPV4], now=now), 5, 400)
    return [
        (
            f"outbound pick (feeler due), {len(am):,} addresses, 10 peers",
            f"{ours * 1e6:,.0f} µs",
            f"{base * 1e6:,.0f} µs (one AddrMan.select)",
            f"{ours / base:.1f}x",
        ),
        (
            "outbound pass with nothing due (census only)",
            f"{idle * 1e6:,.0f} µs",
            f"{base * 1e6:,.0f} µs (one AddrMan.select)",
            f"{idle / base:.1f}x",
        ),
    ]


# -- inbound storm -----------------------------------------------------------------------------


def version_bytes() -> bytes:
    msg = Version(
        version=70016, services=9, timestamp=int(time.time()), nonce=1, user_agent="/storm/",
        relay=False,
    )  # fmt: skip
    return frame_v1(REGTEST.magic, msg.command, msg.encode())


async def run_client(port: int, total: int, burst: int) -> dict[str, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(total), str(burst), version_bytes().hex(),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        return dict(json.loads(out))
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def storm_connman(total: int, burst: int, max_connections: int) -> dict[str, float]:
    options = ConnManOptions(
        chain=REGTEST,
        bind=[("127.0.0.1", 0)],
        listen=True,
        max_connections=max_connections,
        automatic_outbound=False,
        v2transport=False,
    )
    cm = ConnMan(options, AddrMan(random.Random(1)), banman=BanMan(1))
    counts = {"accepted": 0, "refused": 0, "evicted": 0, "max_inbound_seen": 0}
    decision_cpu: list[float] = []
    first = last = 0.0
    orig_accept = cm.on_accepted
    orig_drop = cm.core._drop

    def on_accepted(conn_id: int, me: Any, them: Any) -> bool:
        nonlocal first, last
        t0 = time.process_time()
        ok = orig_accept(conn_id, me, them)
        decision_cpu.append(time.process_time() - t0)
        counts["accepted" if ok else "refused"] += 1
        counts["max_inbound_seen"] = max(counts["max_inbound_seen"], cm.inbound_count)
        last = time.perf_counter()
        first = first or last
        return ok

    def drop(peer: Any, reason: str, **kw: Any) -> None:
        if reason == "evicted for an inbound slot" and not peer.closed:
            counts["evicted"] += 1
        orig_drop(peer, reason, **kw)

    cm.on_accepted = on_accepted  # type: ignore[method-assign]
    cm.core._drop = drop  # type: ignore[method-assign]
    await cm.start()
    try:
        client = await run_client(cm.listening[0][1], total, burst)
        wall = max(last - first, 1e-9)
        cpu = sorted(decision_cpu)
        return {
            **counts,
            "client_connected": client["connected"],
            "client_answered": client["answered"],
            "wall": wall,
            "accepted_per_s": counts["accepted"] / wall,
            "evicted_per_s": counts["evicted"] / wall,
            "cpu_mean_us": statistics.fmean(cpu) * 1e6,
            "cpu_p99_us": cpu[int(0.99 * (len(cpu) - 1))] * 1e6,
        }
    finally:
        await cm.stop()


async def storm_baseline(total: int, burst: int, keep: int) -> dict[str, float]:
    live: deque[asyncio.StreamWriter] = deque()
    accepted = 0
    first = last = 0.0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted, first, last
        accepted += 1
        last = time.perf_counter()
        first = first or last
        live.append(writer)
        writer.write(b"\x00")  # an answer, as the node answers a version
        if len(live) > keep:
            live.popleft().close()
        try:
            while await reader.read(65536):
                pass
        except OSError:
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        await run_client(port, total, burst)
        wall = max(last - first, 1e-9)
        return {"accepted": accepted, "wall": wall, "accepted_per_s": accepted / wall}
    finally:
        for w in live:
            w.close()
        server.close()
        await server.wait_closed()


async def bench_storm(
    total: int, burst: int, max_connections: int
) -> tuple[dict[str, float], dict[str, float]]:
    base = await storm_baseline(total, burst, OutboundLimits(max_connections).max_inbound)
    ours = await storm_connman(total, burst, max_connections)
    return ours, base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--candidates", default="200,1000,10000")
    ap.add_argument("--addresses", type=int, default=50_000)
    ap.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="the storm's -maxconnections (11 of them outbound slots)",
    )
    args = ap.parse_args()
    raise_nofile(args.connections * 2 + 1000)
    sizes = [int(x) for x in args.candidates.split(",") if x]
    try:
        import uvloop

        runner: Any = uvloop.run
        loop_name = "uvloop"
    except ImportError:
        runner = asyncio.run
        loop_name = "asyncio"
    ours, base = runner(bench_storm(args.connections, args.burst, args.max_connections))
    rows = bench_eviction(sizes) + bench_outbound_pick(args.addresses)
    inbound = OutboundLimits(args.max_connections).max_inbound
    print(
        f"# bench/connman.py ({loop_name}; all peers on 127.0.0.1: one netgroup; storm at "
        f"-maxconnections={args.max_connections}, {inbound} inbound slots)\n"
    )
    print("| measure | peerkeeper | baseline | ratio |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    print(
        f"| storm: connections accepted | {ours['accepted']:,.0f} | {base['accepted']:,.0f} "
        f"(accept, close oldest) | |"
    )
    print(f"| storm: evicted (Core's rules) | {ours['evicted']:,.0f} | n/a | |")
    print(f"| storm: refused | {ours['refused']:,.0f} | n/a | |")
    print(f"| storm: most inbound peers at once | {ours['max_inbound_seen']:,.0f} | n/a | |")
    print(
        f"| storm: connections answered (client) | {ours['client_answered']:,.0f} "
        f"of {ours['client_connected']:,.0f} | | |"
    )
    print(
        f"| storm: accepted/s | {ours['accepted_per_s']:,.0f} | {base['accepted_per_s']:,.0f} | "
        f"{ours['accepted_per_s'] / base['accepted_per_s']:.2f}x |"
    )
    print(f"| storm: evicted/s | {ours['evicted_per_s']:,.0f} | n/a | |")
    print(
        f"| storm: CPU per admission decision, mean / p99 | "
        f"{ours['cpu_mean_us']:,.0f} / {ours['cpu_p99_us']:,.0f} µs | n/a | |"
    )


if __name__ == "__main__":
    main()
