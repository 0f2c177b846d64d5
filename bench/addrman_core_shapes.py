"""AddrMan at the shapes of Core's src/bench/addrman.cpp, scaled up.

50,000 random addresses from 1,000 sources (Core's bench: 64 x 256), then 10,000
``select()``, 10,000 ``good()`` and 1,000 ``get_addr(2500, 23)``; plus Core's
worst cases (select from an almost empty table, select by network with one I2P
entry among 50,000).  The baseline is the simple ``AddressTable`` the node used
before (it has ``add`` and ``get_addr`` only), measured in the same run.

Run: ``python3 bench/addrman_core_shapes.py`` (about 20 s).  Prints a Markdown table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from peerkeeper.addrman import AddrMan
from peerkeeper.addrtable import AddressTable
from peerkeeper.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import AddrEntry

NOW = 1_700_000_000
NUM_SOURCES = 1000
PER_SOURCE = 50
NODE_NETWORK = 1


def rand_addr(rng: random.Random) -> AddrEntry:
    """Core's ``randAddr``: 16 random bytes as an in6_addr, a random non-zero port."""
    raw = rng.randbytes(16)
    addr = NetAddr.from_v1_bytes(raw)
    port = rng.getrandbits(16) or 1
    return AddrEntry(NOW, NODE_NETWORK, Service(addr, port))


def make() -> tuple[list[Service], list[list[AddrEntry]]]:
    rng = random.Random(123)
    sources = [rand_addr(rng).service for _ in range(NUM_SOURCES)]
    batches = [[rand_addr(rng) for _ in range(PER_SOURCE)] for _ in range(NUM_SOURCES)]
    return sources, batches


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    sources, batches = make()
    n_addrs = NUM_SOURCES * PER_SOURCE
    rows: list[tuple[str, int, float, float | None]] = []

    am = AddrMan(random.Random(1), clock=lambda: NOW)
    t_add = timed(lambda: [am.add(b, s, now=NOW) for s, b in zip(sources, batches, strict=True)])
    table = AddressTable(random.Random(1))
    t_add_base = timed(lambda: [table.add(b, s) for s, b in zip(sources, batches, strict=True)])
    rows.append(("add (50 per call)", n_addrs, t_add, t_add_base))

    t_sel = timed(lambda: [am.select(now=NOW) for _ in range(10_000)])
    rows.append(("select", 10_000, t_sel, None))

    flat = [e.service for b in batches for e in b]
    pick = random.Random(2).sample(flat, 10_000)
    t_good = timed(lambda: [am.good(s, now=NOW) for s in pick])
    rows.append(("good", 10_000, t_good, None))

    t_ga = timed(lambda: [am.get_addr(2500, 23, NOW) for _ in range(1000)])
    t_ga_base = timed(lambda: [table.get_addr(2500, 23, NOW) for _ in range(1000)])
    rows.append(("get_addr(2500, 23)", 1000, t_ga, t_ga_base))

    t_ser = timed(lambda: am.serialize())
    data = am.serialize()
    t_deser = timed(lambda: AddrMan.deserialize(data, random.Random(3)))
    rows.append(("serialize", 1, t_ser, None))
    rows.append(("deserialize (+check)", 1, t_deser, None))

    tiny = AddrMan(random.Random(4), clock=lambda: NOW)
    a = Service(NetAddr.parse("250.3.1.1"), 8333)
    tiny.add([AddrEntry(NOW, 0, a)], a, now=NOW)
    rows.append(
        (
            "select, 1 entry",
            10_000,
            timed(lambda: [tiny.select(now=NOW) for _ in range(10_000)]),
            None,
        )
    )

    i2p = Service(NetAddr.parse("udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p"), 0)
    am.add([AddrEntry(NOW, 0, i2p)], None, now=NOW)
    assert am.size(Network.I2P) == 1
    t_net = timed(lambda: [am.select(False, {Network.I2P}, now=NOW) for _ in range(100)])
    rows.append(("select I2P among 50k", 100, t_net, None))

    print(f"AddrMan: {len(am)} entries ({am.size(None, True)} new, {am.size(None, False)} tried)\n")
    print("| operation | calls | total s | us/call | AddressTable us/call | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, calls, t, base in rows:
        per = t / calls * 1e6
        if base is None:
            print(f"| {name} | {calls} | {t:.3f} | {per:.1f} | - | - |")
        else:
            bper = base / calls * 1e6
            print(f"| {name} | {calls} | {t:.3f} | {per:.1f} | {bper:.1f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
