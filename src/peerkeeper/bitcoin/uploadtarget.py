"""``-maxuploadtarget``: the 24-hour outbound byte budget (pure, simulated-time friendly).

Port of Bitcoin Core's rules:

* src/net.cpp -- ``MAX_UPLOAD_TIMEFRAME``, ``CConnman::RecordBytesSent``,
  ``GetMaxOutboundTarget``, ``GetMaxOutboundTimeframe``,
  ``GetMaxOutboundTimeLeftInCycle_``, ``OutboundTargetReached``,
  ``GetOutboundTargetBytesLeft``;
* src/rpc/net.cpp -- the ``uploadtarget`` object of ``getnettotals``;
* src/init.cpp + src/util/strencodings.cpp -- ``-maxuploadtarget`` parsed by
  ``ParseByteUnits(value, ByteUnit::M)`` (default ``"0M"``, src/net.h);
* src/net_processing.cpp -- ``HISTORICAL_BLOCK_AGE`` (how old a block must be for the
  historical-serving limit to apply; the caller compares block times).

The object never reads a clock: every time-dependent call takes ``now`` (UNIX seconds;
fractions are truncated like Core's ``GetTime<std::chrono::seconds>``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_MAX_UPLOAD_TARGET",
    "HISTORICAL_BLOCK_AGE",
    "MAX_BLOCK_SERIALIZED_SIZE",
    "MAX_UPLOAD_TIMEFRAME",
    "UploadTarget",
    "parse_byte_units",
    "parse_upload_target",
]

MAX_UPLOAD_TIMEFRAME = 60 * 60 * 24
"""Length of an upload-target cycle in seconds (src/net.cpp ``MAX_UPLOAD_TIMEFRAME``)."""

HISTORICAL_BLOCK_AGE = 7 * 24 * 60 * 60
"""Seconds by which a block must be older than the best header to count as historical
(src/net_processing.cpp ``HISTORICAL_BLOCK_AGE``)."""

MAX_BLOCK_SERIALIZED_SIZE = 4_000_000
"""Bytes (src/consensus/consensus.h); one per 10 minutes left is kept as a buffer."""

DEFAULT_MAX_UPLOAD_TARGET = "0M"
"""Default ``-maxuploadtarget`` (src/net.h): no limit."""

_UINT64_MAX = (1 << 64) - 1

# src/util/strencodings.h ByteUnit: lowercase powers of 1000, uppercase powers of 1024.
_BYTE_UNITS: dict[str, int] = {
    "k": 1000,
    "K": 1 << 10,
    "m": 1_000_000,
    "M": 1 << 20,
    "g": 1_000_000_000,
    "G": 1 << 30,
    "t": 1_000_000_000_000,
    "T": 1 << 40,
}


def parse_byte_units(s: str, default_multiplier: int = 1) -> int | None:
    """Core ``ParseByteUnits`` (src/util/strencodings.cpp): ``"<digits>[unit]"`` in bytes.

    ``unit`` is one of k/K/m/M/g/G/t/T (lowercase 1000-based, uppercase 1024-based);
    without one, ``default_multiplier`` applies.  The number is ASCII digits only (leading
    zeros fine; no sign, space, fraction).  Returns None if unparsable or if the result
    exceeds 2**64-1 (Core's ``uint64_t`` overflow check).
    """
    if not s:
        return None
    multiplier = _BYTE_UNITS.get(s[-1])
    digits = s if multiplier is None else s[:-1]
    if multiplier is None:
        multiplier = default_multiplier
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    n = int(digits)
    if n > _UINT64_MAX or n > _UINT64_MAX // multiplier:
        return None
    return n * multiplier


def parse_upload_target(s: str) -> int:
    """Parse a ``-maxuploadtarget`` value to bytes, as src/init.cpp does with
    ``ParseByteUnits(value, ByteUnit::M)``.

    A bare number is MiB: ``"0"`` -> 0 (no limit), ``"5000"`` -> 5000 * 2**20 =
    5_242_880_000; ``"5000m"`` -> 5_000_000_000; ``"1G"`` -> 2**30.

    Raises:
        ValueError: ``Unable to parse -maxuploadtarget: '<s>'`` (Core's init error) for
            anything :func:`parse_byte_units` refuses.
    """
    n = parse_byte_units(s, 1 << 20)
    if n is None:
        raise ValueError(f"Unable to parse -maxuploadtarget: '{s}'")
    return n


class UploadTarget:
    """Outbound byte accounting against ``-maxuploadtarget`` (src/net.cpp, ``CConnman``
    members ``nTotalBytesSent``, ``nMaxOutboundTotalBytesSentInCycle``,
    ``nMaxOutboundCycleStartTime``, ``nMaxOutboundLimit``).

    Cycle rule (Core ``RecordBytesSent``): the cycle start is 0 until the first send at
    a time ``now > start + MAX_UPLOAD_TIMEFRAME``; such a send starts a new cycle at
    ``now`` with the cycle count reset.  Only sending rolls the cycle: after a quiet
    day, :meth:`bytes_left_in_cycle` and ``target_reached(False)`` still describe the
    old cycle until the next :meth:`record_bytes_sent`, exactly as in Core.  As in Core,
    a cycle start of 0 means "no cycle yet" (so use realistic UNIX times in simulations:
    with ``now <= 86400`` no cycle ever starts).

    Args:
        limit_bytes: the target in bytes per cycle; 0 means unlimited.

    Raises:
        ValueError: ``limit_bytes`` is negative or above 2**64-1.
    """

    __slots__ = ("_limit", "_total_sent", "_cycle_sent", "_cycle_start")

    def __init__(self, limit_bytes: int = 0) -> None:
        if not 0 <= limit_bytes <= _UINT64_MAX:
            raise ValueError(f"upload target must be 0..2**64-1 bytes, got {limit_bytes}")
        self._limit = limit_bytes
        self._total_sent = 0
        self._cycle_sent = 0
        self._cycle_start = 0

    @property
    def target(self) -> int:
        """The limit in bytes per cycle, 0 = unlimited (Core ``GetMaxOutboundTarget``)."""
        return self._limit

    @property
    def timeframe(self) -> int:
        """Cycle length in seconds (Core ``GetMaxOutboundTimeframe``): 86400."""
        return MAX_UPLOAD_TIMEFRAME

    @property
    def total_bytes_sent(self) -> int:
        """All bytes ever recorded (Core ``GetTotalBytesSent``)."""
        return self._total_sent

    @property
    def bytes_sent_in_cycle(self) -> int:
        """Bytes recorded in the current cycle (Core ``nMaxOutboundTotalBytesSentInCycle``)."""
        return self._cycle_sent

    @property
    def cycle_start(self) -> int:
        """UNIX seconds the current cycle began, 0 before the first one
        (Core ``nMaxOutboundCycleStartTime``)."""
        return self._cycle_start

    def record_bytes_sent(self, n: int, now: float) -> None:
        """Count ``n`` bytes sent at ``now`` (Core ``CConnman::RecordBytesSent``).

        Starts a new cycle at ``now`` (and zeroes the cycle count) first if
        ``cycle_start + MAX_UPLOAD_TIMEFRAME < now``.  Counting happens even when the
        target is 0.

        Raises:
            ValueError: ``n`` is negative (nothing is recorded).
        """
        if n < 0:
            raise ValueError(f"bytes sent must be >= 0, got {n}")
        t = int(now)
        self._total_sent += n
        if self._cycle_start + MAX_UPLOAD_TIMEFRAME < t:
            self._cycle_start = t
            self._cycle_sent = 0
        self._cycle_sent += n

    def time_left_in_cycle(self, now: float) -> int:
        """Seconds until the current cycle ends (Core ``GetMaxOutboundTimeLeftInCycle_``):
        0 if unlimited; ``MAX_UPLOAD_TIMEFRAME`` if no cycle has started; else
        ``max(cycle_start + MAX_UPLOAD_TIMEFRAME - now, 0)``."""
        if self._limit == 0:
            return 0
        if self._cycle_start == 0:
            return MAX_UPLOAD_TIMEFRAME
        end = self._cycle_start + MAX_UPLOAD_TIMEFRAME
        t = int(now)
        return 0 if end < t else end - t

    def target_reached(self, historical_block_serving: bool, now: float) -> bool:
        """Core ``CConnman::OutboundTargetReached`` (src/net.cpp).

        Unlimited (target 0): always False.  With ``historical_block_serving`` False:
        ``bytes_sent_in_cycle >= target``.  With it True, a buffer of
        ``time_left_in_cycle(now) // 600 * MAX_BLOCK_SERIALIZED_SIZE`` bytes is kept
        for relaying one new block per 10 minutes: True if ``buffer >= target`` or
        ``bytes_sent_in_cycle >= target - buffer``.  (net_processing disconnects a peer
        asking for a block older than ``HISTORICAL_BLOCK_AGE`` -- or a filtered block --
        when this is True with ``historical_block_serving``, unless it has the
        ``download`` permission; and answers ``mempool`` only below the plain target.)
        """
        if self._limit == 0:
            return False
        if historical_block_serving:
            buffer = self.time_left_in_cycle(now) // 600 * MAX_BLOCK_SERIALIZED_SIZE
            return buffer >= self._limit or self._cycle_sent >= self._limit - buffer
        return self._cycle_sent >= self._limit

    def bytes_left_in_cycle(self, now: float | None = None) -> int:
        """Bytes left before the target (Core ``GetOutboundTargetBytesLeft``): 0 if
        unlimited or reached, else ``target - bytes_sent_in_cycle``.

        ``now`` is accepted for symmetry and not used: Core's value does not depend on
        the clock (the cycle only rolls in :meth:`record_bytes_sent`).
        """
        del now
        if self._limit == 0 or self._cycle_sent >= self._limit:
            return 0
        return self._limit - self._cycle_sent

    def rpc(self, now: float) -> dict[str, Any]:
        """The ``uploadtarget`` object of ``getnettotals`` (src/rpc/net.cpp), keys in
        Core's order: ``timeframe`` (s), ``target`` (bytes), ``target_reached``
        (``target_reached(False)``), ``serve_historical_blocks``
        (``not target_reached(True)``), ``bytes_left_in_cycle`` (bytes),
        ``time_left_in_cycle`` (s)."""
        return {
            "timeframe": MAX_UPLOAD_TIMEFRAME,
            "target": self._limit,
            "target_reached": self.target_reached(False, now),
            "serve_historical_blocks": not self.target_reached(True, now),
            "bytes_left_in_cycle": self.bytes_left_in_cycle(),
            "time_left_in_cycle": self.time_left_in_cycle(now),
        }
