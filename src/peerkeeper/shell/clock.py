"""The node's one clock: real time, or Core's mock time once ``setmocktime`` set it.

Bitcoin Core's ``GetTime``/``NodeClock`` with ``SetMockTime`` (src/util/time.cpp): a
non-zero mock time replaces the system time for every rule that reads the node's time
(timeouts, pings, address times, bans); 0 turns it off again. The pure cores never read
a clock; the shell hands this one's value to them with every event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["MockableClock"]


class MockableClock:
    """``clock()`` -> unix seconds (float): ``real()`` unless a mock time is set.

    ``MockableClock(real=time.time)``; :meth:`set_mocktime` (seconds, 0 = off) raises
    ``ValueError`` for a negative time (Core ``setmocktime``).
    """

    __slots__ = ("_real", "mocktime")

    def __init__(self, real: Callable[[], float] = time.time) -> None:
        self._real = real
        #: The mock time in unix seconds; 0 when the real clock is used.
        self.mocktime = 0.0

    def __call__(self) -> float:
        return self.mocktime if self.mocktime else self._real()

    def set_mocktime(self, t: float) -> None:
        """Freeze the clock at ``t`` unix seconds; 0 returns to real time."""
        if t < 0:
            raise ValueError(f"Mocktime must be in the range [0, {2**63 - 1}], not {t}.")
        self.mocktime = float(t)
