"""Child process for the kill-at-any-moment test: dumps a growing address book forever.

``python crashdump_child.py DATADIR`` adds 300 addresses per round to a
deterministic AddrMan, dumps it incrementally to the SQLite store, and prints the
round number after each commit. Its first line, ``open``, says the store is open: the
parent kills only after it, so a kill never lands before anything could be committed. The parent SIGKILLs it at a random moment and
recomputes the expected snapshots with :func:`book_after`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.io.store import AddrBookSnapshot, Store, save_addrbook, snapshot_addrman
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.messages import AddrEntry

NOW = 1_800_000_000
PER_ROUND = 300


def apply_round(am: AddrMan, n: int) -> None:
    """Round ``n``'s changes: new addresses, some moved to tried, some attempts."""
    rng = random.Random(n)
    entries = [
        AddrEntry(
            NOW - rng.randrange(86400),
            1033,
            Service(NetAddr.from_bip155(1, rng.randbytes(4)) or NetAddr.parse("1.1.1.1"), 8333),
        )
        for _ in range(PER_ROUND)
    ]
    source = Service(NetAddr.from_bip155(1, rng.randbytes(4)) or NetAddr.parse("1.1.1.1"), 8333)
    am.add(entries, source, 0, now=NOW + n)
    for e in entries[:20]:
        am.good(e.service, now=NOW + n)
    for e in entries[20:40]:
        am.attempt(e.service, True, now=NOW + n)


def fresh() -> AddrMan:
    return AddrMan(random.Random(7), key=bytes(range(32)))


def book_after(rounds: int) -> AddrBookSnapshot:
    """The snapshot the child dumps after ``rounds`` rounds (0 = before the first)."""
    am = fresh()
    for n in range(1, rounds + 1):
        apply_round(am, n)
    return snapshot_addrman(am)


def main() -> None:
    store = Store(Path(sys.argv[1]))
    store.open()
    print("open", flush=True)
    am = fresh()
    last = None
    n = 0
    while True:
        n += 1
        apply_round(am, n)
        snap = snapshot_addrman(am)
        store.call_sync(lambda c, s=snap, o=last: save_addrbook(c, s, o))
        last = snap
        print(n, flush=True)


if __name__ == "__main__":
    main()
