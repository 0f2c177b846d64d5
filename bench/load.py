"""Load tests in the manner of Ziggurat (runziggurat/zcash): peerkeeper beside Bitcoin Core.

Two rows per node, each node measured the same way in the same run:

* **P001 ping/pong**: N synthetic peers (100, 500, 800) in one client process complete the
  v1 handshake, then each sends a ``ping`` as soon as the previous ``pong`` came back, for
  ``--seconds`` (30). Reported: pongs per second over all peers, p50/p99 round trip in
  ms, and the node's own CPU time per ping/pong in microseconds (from /proc, so a run
  bound by the client still compares the nodes).
* **P002 connection load**: against ``-maxconnections=50`` (39 inbound slots), 8 honest
  peers connect first and ping every 10 ms; then ``--dialers`` (20,000) connections, at
  most ``--storm-concurrency`` (500) at a time, each send ``version``, answer ``verack``
  and hold the connection until the node closes it. Reported: dialers per second,
  handshakes completed, connections held at the end (must equal the inbound slots),
  dialers closed before and after their handshake (refused, evicted), connect errors,
  timeouts (no handshake and no close within 30 s), the node's CPU per dialer, and the
  honest peers' p99 ping during the storm and how many of them were evicted.

``--bitcoind PATH`` runs every row against a Bitcoin Core binary too (``-v2transport=1``, as
peerkeeper's default, so both detect v1 on each inbound connection). uvloop is used by
both the node and the client when installed. Loopback only; every process started is
stopped, every row is bounded in time.

One Python client process drives every row; its ``client CPU %`` column says when it is
the bound (near 100). In P002 a node that completes a newcomer's handshake before the
next accept evicts it costs the client that handshake too: Core, whose message thread
sees a newcomer's version only after its socket thread has accepted the next one, gets
most dialers refused before their handshake, so the client gets through them faster.
The node's own CPU per dialer compares the nodes whatever bounds the client.

Run: ``python3 bench/load.py [--peers 100,500,800] [--seconds 30] [--dialers 20000]
[--storm-concurrency 500] [--only p001|p002] [--bitcoind PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scale import (  # bench/ is on sys.path when run as a script
    CLK_TCK,
    free_port,
    raise_nofile,
    start_bitcoind,
    start_peerkeeper,
    stop_process,
    wait_port,
)

REGTEST = bytes.fromhex("fabfb5da")
MAX_CONNECTIONS_P002 = 50
INBOUND_SLOTS_P002 = MAX_CONNECTIONS_P002 - 11  # Core: 8 full-relay + 2 block-relay + 1 feeler
HONEST = 8
HONEST_INTERVAL = 0.010  # seconds between an honest peer's pong and its next ping
STORM_TIMEOUT = 30.0  # seconds a dialer may wait for a handshake or a close


# -- the client's wire: a minimal v1 framer (the client is not the code under test) --------


def cpu_split(pid: int) -> tuple[float, float]:
    """A process's (user, system) CPU seconds so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def own_cpu() -> float:
    """This process's CPU seconds (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def frame(command: bytes, payload: bytes) -> bytes:
    """One v1 frame: magic, command padded to 12 bytes, length, sha256d checksum."""
    check = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    return REGTEST + command.ljust(12, b"\0") + struct.pack("<I", len(payload)) + check + payload


def version_payload(nonce: int) -> bytes:
    """A version message of protocol 70016, no services, no tx relay (BIP37 relay=0)."""
    addr = struct.pack("<Q", 0) + bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1]) + b"\0\0"
    ua = b"/load:0.1/"
    return (
        struct.pack("<iQq", 70016, 0, int(time.time()))
        + addr
        + addr
        + struct.pack("<Q", nonce)
        + bytes([len(ua)])
        + ua
        + struct.pack("<i", 0)
        + b"\0"
    )


VERACK = frame(b"verack", b"")


class Peer(asyncio.Protocol):
    """One synthetic peer: handshakes, answers pings, times its own pings' pongs.

    ``on_state(peer, event)`` is told "handshake" (verack received) and "closed".
    """

    def __init__(self, index: int, on_state: Callable[[Peer, str], None]) -> None:
        self.index = index
        self.on_state = on_state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.handshaked = False
        self.closed = False
        self.nonce = struct.pack("<Q", index + 1)
        self.ping = frame(b"ping", self.nonce)
        self.sent_at = 0
        self.pinging = False
        self.interval = 0.0
        self.rtts: list[int] = []  # nanoseconds

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(frame(b"version", version_payload(self.index + 1)))  # type: ignore[attr-defined]

    def start_pinging(self, interval: float = 0.0) -> None:
        self.pinging = True
        self.interval = interval
        self.send_ping()

    def send_ping(self) -> None:
        if self.pinging and not self.closed and self.transport is not None:
            self.sent_at = time.perf_counter_ns()
            self.transport.write(self.ping)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 24:
            length = int.from_bytes(buf[16:20], "little")
            end = 24 + length
            if len(buf) < end:
                break
            command = bytes(buf[4:16]).rstrip(b"\0")
            payload = bytes(buf[24:end])
            del buf[:end]
            self.on_message(command, payload)

    def on_message(self, command: bytes, payload: bytes) -> None:
        assert self.transport is not None
        if command == b"pong":
            if payload == self.nonce and self.sent_at:
                self.rtts.append(time.perf_counter_ns() - self.sent_at)
                self.sent_at = 0
                if self.interval:
                    asyncio.get_running_loop().call_later(self.interval, self.send_ping)
                else:
                    self.send_ping()
        elif command == b"ping":
            self.transport.write(frame(b"pong", payload))
        elif command == b"verack" and not self.handshaked:
            self.handshaked = True
            self.transport.write(VERACK)
            self.on_state(self, "handshake")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.on_state(self, "closed")

    def close(self) -> None:
        self.pinging = False
        if self.transport is not None:
            self.transport.close()


def percentile(sorted_ns: list[int], q: float) -> float:
    """The q-quantile (0..1) of sorted nanoseconds, in milliseconds (nearest rank)."""
    if not sorted_ns:
        return float("nan")
    i = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[i] / 1e6


async def connect_peers(
    loop: asyncio.AbstractEventLoop, port: int, count: int, first_index: int = 0
) -> list[Peer]:
    """Open ``count`` peers (100 at a time) and wait for every handshake (60 s bound)."""
    done: asyncio.Future[None] = loop.create_future()
    waiting = count

    def on_state(peer: Peer, event: str) -> None:
        nonlocal waiting
        if event == "handshake" or (event == "closed" and not peer.handshaked):
            waiting -= 1
            if waiting == 0 and not done.done():
                done.set_result(None)

    peers: list[Peer] = []
    sem = asyncio.Semaphore(100)

    async def one(i: int) -> None:
        async with sem:
            peer = Peer(first_index + i, on_state)
            await loop.create_connection(lambda: peer, "127.0.0.1", port)
            peers.append(peer)

    await asyncio.gather(*(one(i) for i in range(count)))
    async with asyncio.timeout(60):
        await done
    return peers


# -- P001 client -----------------------------------------------------------------------------


async def p001_client(port: int, count: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    peers = await connect_peers(loop, port, count)
    ready = sum(p.handshaked and not p.closed for p in peers)
    print(json.dumps({"ready": ready}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the node's CPU clock is read
    cpu0 = own_cpu()
    for p in peers:
        p.start_pinging()
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    for p in peers:
        p.pinging = False
    elapsed = time.perf_counter() - start
    client_cpu = own_cpu() - cpu0
    rtts = sorted(r for p in peers for r in p.rtts)
    print(
        json.dumps(
            {
                "pongs": len(rtts),
                "elapsed": elapsed,
                "p50_ms": percentile(rtts, 0.50),
                "p99_ms": percentile(rtts, 0.99),
                "closed": sum(p.closed for p in peers),
                "client_cpu_pct": 100 * client_cpu / elapsed,
            }
        ),
        flush=True,
    )
    await asyncio.sleep(0.2)  # pongs in flight
    for p in peers:
        p.close()
    await asyncio.sleep(0.2)


# -- P002 client -----------------------------------------------------------------------------


async def p002_client(port: int, dialers: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    honest = await connect_peers(loop, port, HONEST)
    for p in honest:
        p.start_pinging(HONEST_INTERVAL)
    await asyncio.sleep(1.0)
    for p in honest:
        p.rtts.clear()
    print(json.dumps({"ready": sum(p.handshaked and not p.closed for p in honest)}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)

    counts = {"handshakes": 0, "refused": 0, "evicted": 0, "errors": 0, "timeouts": 0}
    held: set[Peer] = set()
    settled = 0  # dialers closed, failed, timed out, or holding after their handshake
    all_settled: asyncio.Future[None] = loop.create_future()
    sem = asyncio.Semaphore(concurrency)

    def check() -> None:
        if settled + len(held) == dialers and not all_settled.done():
            all_settled.set_result(None)

    async def one(i: int) -> None:
        nonlocal settled
        await sem.acquire()
        released = False
        finished: asyncio.Future[str] = loop.create_future()

        def on_state(peer: Peer, event: str) -> None:
            if event == "handshake":
                counts["handshakes"] += 1
                held.add(peer)
                check()
            elif not finished.done():
                finished.set_result("evicted" if peer.handshaked else "refused")

        peer = Peer(HONEST + i, on_state)
        try:
            async with asyncio.timeout(STORM_TIMEOUT):
                await loop.create_connection(lambda: peer, "127.0.0.1", port)
        except (OSError, TimeoutError):
            counts["errors"] += 1
            settled += 1
            sem.release()
            check()
            return
        try:
            try:
                async with asyncio.timeout(STORM_TIMEOUT):
                    while not finished.done() and not peer.handshaked:
                        await asyncio.wait([finished], timeout=1.0)
            except TimeoutError:
                counts["timeouts"] += 1
                peer.close()
                settled += 1
                check()
                return
            if peer.handshaked and not finished.done():
                # Established: its slot is free for the next dialer; it holds until closed.
                sem.release()
                released = True
            outcome = await finished
            counts[outcome] += 1
            held.discard(peer)
            settled += 1
            check()
        finally:
            if not released:
                sem.release()

    cpu0 = own_cpu()
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(dialers)]
    try:
        async with asyncio.timeout(dialers / 50 + 120):
            await all_settled
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - start
    client_cpu = own_cpu() - cpu0
    await asyncio.sleep(1.0)  # late closes (an eviction decided after the last dialer)
    honest_rtts = sorted(r for p in honest for r in p.rtts)
    print(
        json.dumps(
            {
                **counts,
                "elapsed": elapsed,
                "dialers": dialers,
                "held": len(held) + sum(not p.closed for p in honest),
                "honest_evicted": sum(p.closed for p in honest),
                "honest_pings": len(honest_rtts),
                "honest_p99_ms": percentile(honest_rtts, 0.99),
                "client_cpu_pct": 100 * client_cpu / elapsed,
            }
        ),
        flush=True,
    )
    for t in tasks:
        t.cancel()
    for p in [*held, *honest]:
        p.close()
    await asyncio.sleep(0.3)


def client_main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    raise_nofile(20000)
    coro: Any
    if kind == "p001":
        coro = p001_client(port, int(argv[2]), float(argv[3]))
    else:
        coro = p002_client(port, int(argv[2]), int(argv[3]))
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# -- the orchestrator -------------------------------------------------------------------------


def run_row(kind: str, binary: str | None, maxconn: int, client_args: list[str]) -> dict[str, Any]:
    """Start a node, run one client, and return its JSON result with the node's CPU seconds."""
    port, rpcport = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        datadir = Path(tmp)
        if kind == "peerkeeper":
            node = start_peerkeeper(port, rpcport, maxconn, datadir)
        else:
            assert binary is not None
            node = start_bitcoind(binary, port, rpcport, maxconn, datadir)
        client: subprocess.Popen[bytes] | None = None
        try:
            wait_port(port)
            time.sleep(1.0)
            client = subprocess.Popen(
                [sys.executable, __file__, "--client", client_args[0], str(port), *client_args[1:]],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert client.stdout is not None and client.stdin is not None
            ready = json.loads(client.stdout.readline())
            user0, sys0 = cpu_split(node.pid)
            client.stdin.write(b"\n")
            client.stdin.flush()
            line = client.stdout.readline()
            user1, sys1 = cpu_split(node.pid)
            if not line:
                raise RuntimeError(f"the {client_args[0]} client against {kind} ended early")
            result: dict[str, Any] = json.loads(line)
            result["ready"] = ready["ready"]
            result["node_user"] = user1 - user0
            result["node_sys"] = sys1 - sys0
            result["node_cpu"] = result["node_user"] + result["node_sys"]
            client.wait(timeout=60)
            return result
        finally:
            if client is not None and client.poll() is None:
                client.kill()
                client.wait()
            stop_process(node)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--peers", default="100,500,800")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--dialers", type=int, default=20000)
    p.add_argument("--storm-concurrency", type=int, default=500)
    p.add_argument("--only", choices=["p001", "p002"], default=None)
    p.add_argument("--bitcoind", default=None, help="a bitcoind binary to measure beside us")
    args = p.parse_args()
    print(f"open-files limit: {raise_nofile(20000)}")
    kinds: list[tuple[str, str | None]] = [("peerkeeper", None)]
    if args.bitcoind:
        if shutil.which(args.bitcoind) is None and not Path(args.bitcoind).exists():
            sys.exit(f"no bitcoind at {args.bitcoind}")
        kinds.append(("bitcoind", args.bitcoind))

    if args.only in (None, "p001"):
        print(f"\nP001 ping/pong, {args.seconds:g} s per row")
        print(
            "| node | peers | handshaked | pongs/s | p50 ms | p99 ms | node CPU µs/ping "
            "| of which user µs | system µs | client CPU % |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for count in [int(c) for c in args.peers.split(",")]:
            cpu: dict[str, float] = {}
            for kind, binary in kinds:
                r = run_row(kind, binary, count + 21, ["p001", str(count), str(args.seconds)])
                pongs = max(r["pongs"], 1)
                cpu[kind] = 1e6 * r["node_cpu"] / pongs
                print(
                    f"| {kind} | {count:,} | {r['ready']:,} | {r['pongs'] / r['elapsed']:,.0f} | "
                    f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {cpu[kind]:.1f} | "
                    f"{1e6 * r['node_user'] / pongs:.1f} | {1e6 * r['node_sys'] / pongs:.1f} | "
                    f"{r['client_cpu_pct']:.0f} |",
                    flush=True,
                )
            if len(cpu) == 2:
                ratio = cpu["peerkeeper"] / cpu["bitcoind"]
                print(f"| CPU/ping, peerkeeper ÷ Core | | | | | | {ratio:.2f}x | | | |", flush=True)

    if args.only in (None, "p002"):
        print(
            f"\nP002 connection load: {args.dialers:,} dialers, {args.storm_concurrency} at a "
            f"time, -maxconnections={MAX_CONNECTIONS_P002} ({INBOUND_SLOTS_P002} inbound slots), "
            f"{HONEST} honest peers pinging every {HONEST_INTERVAL * 1000:g} ms"
        )
        print(
            "| node | dialers/s | handshakes | held | refused | evicted | errors | timeouts "
            "| node CPU µs/dialer | honest p99 ms | honest evicted | client CPU % |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rate: dict[str, float] = {}
        per_dialer: dict[str, float] = {}
        for kind, binary in kinds:
            r = run_row(
                kind,
                binary,
                MAX_CONNECTIONS_P002,
                ["p002", str(args.dialers), str(args.storm_concurrency)],
            )
            rate[kind] = r["dialers"] / r["elapsed"]
            per_dialer[kind] = 1e6 * r["node_cpu"] / r["dialers"]
            print(
                f"| {kind} | {rate[kind]:,.0f} | {r['handshakes']:,} | {r['held']} | "
                f"{r['refused']:,} | {r['evicted']:,} | {r['errors']} | {r['timeouts']} | "
                f"{per_dialer[kind]:.0f} | {r['honest_p99_ms']:.1f} | "
                f"{r['honest_evicted']} | {r['client_cpu_pct']:.0f} |",
                flush=True,
            )
        if len(rate) == 2:
            print(
                f"peerkeeper ÷ Core: dialers/s {rate['peerkeeper'] / rate['bitcoind']:.2f}x, "
                f"node CPU per dialer {per_dialer['peerkeeper'] / per_dialer['bitcoind']:.2f}x"
            )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
    else:
        main()
