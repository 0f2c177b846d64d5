"""Per-target retry back-off for dials (sans-IO): 1 s, then x1.2 per failure, capped at 60 s.

Octez's point back-off (``P2p_point_state``'s reconnection delay) as peerkeeper applies it
to ``-addnode``/``-connect`` targets and to automatic outbound failures; Bitcoin Core
instead relies on AddrMan's ``nLastTry`` (src/addrman.cpp ``IsTerrible``/``GetChance``).
"""

from __future__ import annotations

__all__ = ["Backoff", "BACKOFF_RESET_AFTER"]

#: A manual connection that lasted this long (seconds) resets its back-off (Octez's 60 s).
BACKOFF_RESET_AFTER = 60.0


class Backoff:
    """Per-target retry back-off: 1 s, then x1.2 per failure, capped (Octez's point back-off).

    Used for ``-addnode``/``-connect`` targets and for every automatic outbound
    failure (an address in back-off is not drawn again until its wait is over).

    ``Backoff(initial=1.0, factor=1.2, cap=60.0)``; :meth:`failed` returns the next
    allowed attempt time; :meth:`reset` after a good connection.
    """

    def __init__(self, initial: float = 1.0, factor: float = 1.2, cap: float = 60.0) -> None:
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self._delay: dict[str, float] = {}
        self._next: dict[str, float] = {}

    def ready(self, key: str, now: float) -> bool:
        """True if ``key`` may be tried at ``now``."""
        return now >= self._next.get(key, 0.0)

    def next_ready(self, now: float) -> float:
        """The earliest wait still running at ``now`` ends (seconds; ``inf`` when none)."""
        return min((t for t in self._next.values() if t > now), default=float("inf"))

    def failed(self, key: str, now: float) -> float:
        """Record a failure of ``key``; returns the time of the next allowed attempt."""
        delay = self._delay.get(key)
        delay = self.initial if delay is None else min(delay * self.factor, self.cap)
        self._delay[key] = delay
        self._next[key] = now + delay
        return now + delay

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures."""
        self._delay.pop(key, None)
        self._next.pop(key, None)

    def forget(self, key: str) -> None:
        """Alias of :meth:`reset` for removed targets."""
        self.reset(key)

    def prune(self, now: float) -> int:
        """Forget targets whose wait ended more than ``cap`` seconds ago (their next
        failure starts over at ``initial``); returns how many were forgotten. Keeps the
        table bounded by the targets failing recently."""
        stale = [k for k, t in self._next.items() if t + self.cap < now]
        for k in stale:
            self.reset(k)
        return len(stale)
