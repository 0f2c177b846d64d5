"""A token bucket in simulated time (sans-IO): rates in bytes (or messages) per second.

Used for per-peer send rates and the global upload limit of the dispatch layer (seed
004, "Minimal system": limit global bandwidth and spread non-reply messages at a
constant rate per counterparty), in the shape of Core's ``m_addr_token_bucket``
(src/net_processing.cpp: tokens accrue with time up to a cap, each use spends one).
"""

from __future__ import annotations

import math

__all__ = ["TokenBucket"]


class TokenBucket:
    """``TokenBucket(rate, burst, now)``: ``rate`` tokens per second, at most ``burst``.

    ``rate = math.inf`` never limits. Raises ValueError for a negative rate or a burst
    below 0. Time may only move forward; a clock stepping back adds nothing.
    """

    __slots__ = ("rate", "burst", "tokens", "_time")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 0 or math.isnan(rate) or math.isnan(burst):
            raise ValueError("token bucket rate and burst must be >= 0")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._time = now

    def _refill(self, now: float) -> None:
        if now > self._time:
            if math.isinf(self.rate):
                self.tokens = self.burst
            else:
                self.tokens = min(self.burst, self.tokens + (now - self._time) * self.rate)
            self._time = now

    def available(self, now: float) -> float:
        """Tokens available at ``now``."""
        if math.isinf(self.rate):
            return math.inf
        self._refill(now)
        return self.tokens

    def try_take(self, amount: float, now: float) -> bool:
        """Spend ``amount`` tokens if there are that many (an amount above ``burst`` is
        allowed once the bucket is full, so a large message is never stuck forever)."""
        if math.isinf(self.rate):
            return True
        self._refill(now)
        if self.tokens >= amount or (self.tokens >= self.burst and amount > self.burst):
            self.tokens -= amount
            return True
        return False

    def when_available(self, amount: float, now: float) -> float:
        """The earliest time at which :meth:`try_take` of ``amount`` can succeed."""
        if math.isinf(self.rate):
            return now
        self._refill(now)
        need = min(amount, self.burst) - self.tokens
        if need <= 0:
            return now
        if self.rate == 0:
            return math.inf
        return now + need / self.rate
