"""Child process for the kill-at-any-moment test: dumps a growing address book forever.

``python crashdump_child.py DATADIR`` adds 300 addresses per round to a
deterministic AddrMan, dumps it incrementally to the SQLite store, and prints the
round number after each commit. Its first line, ``open PID``, says the store is open: the
parent kills only after it, so a kill never lands before anything could be committed. The parent SIGKILLs it at a random moment and
recomputes the expected snapshots with :func:`book_after`.

``python crashdump_child.py --fork-server`` imports once and then, for each data
directory read from stdin, forks a writer as above (its lines go to the same stdout;
the PID in ``open PID`` is the one to kill) and prints ``reaped`` once that writer has
died: one interpreter start for all of a test's trials instead of one per trial.
"""

from __future__ import annotations

import os
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


def say(line: str) -> None:
    """One line to stdout in one write(2): a line is never cut by the kill (print() makes
    two writes, the text and its newline, when Python runs unbuffered: PYTHONUNBUFFERED
    or -u; a kill between them ran "5" and the server's "reaped" together)."""
    os.write(sys.stdout.fileno(), f"{line}\n".encode())


def main(datadir: Path) -> None:
    store = Store(datadir)
    store.open()
    say(f"open {os.getpid()}")
    parent = os.getppid()
    am = fresh()
    last = None
    n = 0
    while True:
        if os.getppid() != parent:  # the server died: never write forever
            os._exit(1)
        n += 1
        apply_round(am, n)
        snap = snapshot_addrman(am)
        store.call_sync(lambda c, s=snap, o=last: save_addrbook(c, s, o))
        last = snap
        say(str(n))


def serve() -> None:
    """The fork server: one writer per data directory read from stdin, one at a time."""
    for line in sys.stdin:
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            try:
                main(Path(line.strip()))
            finally:
                os._exit(1)
        os.waitpid(pid, 0)
        say("reaped")


if __name__ == "__main__":
    if sys.argv[1] == "--fork-server":
        serve()
    else:
        main(Path(sys.argv[1]))
