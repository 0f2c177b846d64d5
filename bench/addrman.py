"""AddrMan throughput and memory, in Bitcoin Core's bench shapes and at 50,000 addresses.

Part 1 repeats Core's src/bench/addrman.cpp shapes (64 sources x 256 random IPv6
addresses with random ports, NODE_NETWORK): AddrManAdd (build + add all 16,384),
AddrManSelect, AddrManSelectFromAlmostEmpty, AddrManSelectByNetwork (one I2P among
16k), AddrManGetAddr (2500, 23%), AddrManAddThenGood (Good on all 16,384). With
``--core-bench PATH`` Core's own ``bench_bitcoin -filter=AddrMan.*`` runs in the
same invocation and its ns/op is printed beside ours (the baseline).

Part 2 is the node's scale: 50,000 addresses from 1,000 sources, select x10,000,
good x10,000, get_addr x1,000 of 2,500, and a dump + load of the whole table
through SQLite (the store) and through peers.dat (Core's format). Peak memory is
measured with tracemalloc in a separate pass, so it does not slow the timings.

Run: ``python3 bench/addrman.py [--core-bench PATH]`` (about a minute).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.io.addrdb import read_peers_dat, write_peers_dat
from peerkeeper.io.store import (
    Store,
    addrman_from_snapshot,
    load_addrbook,
    save_addrbook,
    snapshot_addrman,
)
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry

NOW = 1_800_000_000.0
REGTEST = bytes.fromhex("fabfb5da")


def core_shapes(
    rng: random.Random, sources: int, per_source: int
) -> list[tuple[Service, list[AddrEntry]]]:
    """Core's CreateAddresses: random IPv6 addresses and ports (port 0 -> 1), NODE_NETWORK, time now."""

    def rand_service() -> Service:
        ip = NetAddr.from_bip155(2, rng.randbytes(16)) or NetAddr.parse("2001:db9::1")
        return Service(ip, rng.randrange(65536) or 1)

    out = []
    for _ in range(sources):
        src = rand_service()
        out.append((src, [AddrEntry(int(NOW), 1, rand_service()) for _ in range(per_source)]))
    return out


def fill(data: list[tuple[Service, list[AddrEntry]]], seed: int = 1) -> AddrMan:
    am = AddrMan(random.Random(seed))
    for src, entries in data:
        am.add(entries, src, 0, now=NOW)
    return am


def per_call(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call, best of three batches of ``calls``."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def core_bench(path: str) -> dict[str, float]:
    """ns/op of Core's own AddrMan benches (bench_bitcoin, same machine, same run)."""
    out = subprocess.run(
        [path, "-filter=AddrMan.*", "-min-time=500"], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\|\s*([\d,.]+)\s*\|.*`(AddrMan\w+)`", line)
        if m:
            result[m.group(2)] = float(m.group(1).replace(",", ""))
    return result


def part1(core: dict[str, float]) -> None:
    data = core_shapes(random.Random(123), 64, 256)
    rows: list[tuple[str, float]] = []
    rows.append(("AddrManAdd", per_call(lambda: fill(data), 1)))
    am = fill(data)
    rows.append(("AddrManSelect", per_call(lambda: am.select(now=NOW), 20_000)))
    almost = AddrMan(random.Random(2))
    one = Service.parse("250.3.1.1:8333", 0)
    almost.add([AddrEntry(int(NOW), 0, one)], one, 0, now=NOW)
    rows.append(("AddrManSelectFromAlmostEmpty", per_call(lambda: almost.select(now=NOW), 20_000)))
    by_net = AddrMan(random.Random(3))
    i2p = Service.parse("udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p:0", 0)
    by_net.add([AddrEntry(int(NOW), 0, i2p)], Service.parse("252.2.2.2:0", 0), 0, now=NOW)
    for src, entries in data:
        by_net.add(entries, src, 0, now=NOW)
    rows.append(
        (
            "AddrManSelectByNetwork",
            per_call(lambda: by_net.select(networks={Network.I2P}, now=NOW), 20_000),
        )
    )
    rows.append(("AddrManGetAddr", per_call(lambda: am.get_addr(2500, 23, now=NOW), 50)))

    def add_then_good() -> None:
        fresh = fill(data)
        start = time.perf_counter()
        for _, entries in data:
            for e in entries:
                fresh.good(e.service, now=NOW)
        timings.append(time.perf_counter() - start)

    timings: list[float] = []
    for _ in range(3):
        add_then_good()
    rows.append(("AddrManAddThenGood", min(timings)))
    print("Part 1: Core's bench shapes (64 sources x 256 IPv6 addresses)\n")
    print("| bench | peerkeeper ns/op | Core ns/op (bench_bitcoin) | peerkeeper / Core |")
    print("|---|---:|---:|---:|")
    for name, seconds in rows:
        ns = seconds * 1e9
        c = core.get(name)
        core_s = f"{c:,.0f}" if c else "n/a"
        ratio = f"{ns / c:,.2f}" if c else "n/a"
        print(f"| {name} | {ns:,.0f} | {core_s} | {ratio} |")


def node_shapes(rng: random.Random) -> list[tuple[Service, list[AddrEntry]]]:
    """50,000 routable IPv4 addresses from 1,000 sources (50 each)."""
    out = []
    for _ in range(1000):
        src = Service(
            NetAddr.from_bip155(1, bytes([rng.randrange(1, 100)]) + rng.randbytes(3))
            or NetAddr.parse("1.1.1.1"),
            8333,
        )
        entries = [
            AddrEntry(
                int(NOW) - rng.randrange(86400),
                1033,
                Service(
                    NetAddr.from_bip155(1, bytes([rng.randrange(1, 100)]) + rng.randbytes(3))
                    or src.addr,
                    8333,
                ),
            )
            for _ in range(50)
        ]
        out.append((src, entries))
    return out


def part2() -> None:
    data = node_shapes(random.Random(9))
    ops: list[tuple[str, int, float]] = []
    start = time.perf_counter()
    am = fill(data, seed=5)
    ops.append(("add 50,000 from 1,000 sources", 50_000, time.perf_counter() - start))
    start = time.perf_counter()
    for _ in range(10_000):
        am.select(now=NOW)
    ops.append(("select", 10_000, time.perf_counter() - start))
    services = [e.service for _, entries in data for e in entries]
    rng = random.Random(4)
    picks = [rng.choice(services) for _ in range(10_000)]
    start = time.perf_counter()
    for s in picks:
        am.good(s, now=NOW)
    ops.append(("good", 10_000, time.perf_counter() - start))
    start = time.perf_counter()
    for _ in range(1000):
        am.get_addr(2500, 0, now=NOW)
    ops.append(("get_addr (2,500 each)", 1000, time.perf_counter() - start))

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp))
        store.open()
        start = time.perf_counter()
        snap = snapshot_addrman(am)
        store.call_sync(lambda c: save_addrbook(c, snap, None))
        ops.append(("SQLite full dump (snapshot + write)", len(am), time.perf_counter() - start))
        am.good(picks[0], now=NOW + 1)
        start = time.perf_counter()
        snap2 = snapshot_addrman(am)
        store.call_sync(lambda c: save_addrbook(c, snap2, snap))
        ops.append(("SQLite incremental dump, 1 change", len(am), time.perf_counter() - start))
        start = time.perf_counter()
        loaded = store.call_sync(load_addrbook)
        assert loaded is not None
        back = addrman_from_snapshot(loaded, random.Random(1))
        ops.append(("SQLite load (read + Core loader)", len(back), time.perf_counter() - start))
        store.close()
        path = Path(tmp) / "peers.dat"
        start = time.perf_counter()
        write_peers_dat(path, am, REGTEST)
        ops.append(("peers.dat write", len(am), time.perf_counter() - start))
        start = time.perf_counter()
        again = read_peers_dat(path, REGTEST, random.Random(1))
        ops.append(("peers.dat read", len(again), time.perf_counter() - start))
        size = path.stat().st_size

    tracemalloc.start()
    fill(data, seed=5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        f"\nPart 2: the node's scale ({len(am):,} of 50,000 addresses kept; peers.dat {size:,} bytes)\n"
    )
    print("| operation | count | seconds | ops/s |")
    print("|---|---:|---:|---:|")
    for name, n, seconds in ops:
        print(f"| {name} | {n:,} | {seconds:.3f} | {n / seconds:,.0f} |")
    print(
        f"\npeak Python memory building the 50,000-address table: {peak / 1e6:.1f} MB ({peak / len(am):,.0f} B per entry)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--core-bench", help="path to Core's bench_bitcoin (optional baseline)")
    args = p.parse_args()
    core = core_bench(args.core_bench) if args.core_bench else {}
    part1(core)
    part2()


if __name__ == "__main__":
    main()
