"""Bulk transfer in instalments, on the dispatch layer (seed 004, "Minimal system").

"If you are trying to download a sackload of data, you request a counterparty to send a
certain amount to you at a given rate, he immediately responds ... with the first
instalment, and a promise of further instalments at a certain time. Each instalment
records how much has been sent, and when, when the next instalment is coming, and the
schedule for further instalments. If you miss an instalment, you nack it after a delay.
If he receives a nack, he replaces the promised instalments with the missing ones."

* :class:`BulkReceiver` starts the conversation with ``bulkreq`` (total bytes, rate in
  bytes per second, instalment size); it expects instalment ``k`` by the time the
  previous one promised, and nacks what is missing :data:`NACK_DELAY` seconds later.
* :class:`BulkSender` (created by :func:`serve_bulk`'s handler) sends instalment 0 at
  once and instalment ``k`` at ``start + k * size / rate``; a nack puts the missing
  instalments first in the schedule. It ends when the receiver says ``bulkdone``.

Payloads: ``bulkreq``: total, rate, size (CompactSize each; size at most
:data:`MAX_INSTALMENT`); ``instalment``: index, offset, sent so far, seconds until the
next (u32, milliseconds), data; ``bulknack``: CompactSize count (at most 1000) of
indices; ``bulkdone``: empty.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from peerkeeper.dispatch.dispatcher import (
    CodecRegistry,
    Conversation,
    Dispatcher,
    Envelope,
    Incoming,
)
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size

__all__ = [
    "MAX_BULK_TOTAL",
    "MAX_INSTALMENT",
    "MAX_PROMISE",
    "NACK_DELAY",
    "BulkReceiver",
    "BulkSender",
    "bulk_codecs",
    "serve_bulk",
]

#: Largest instalment (bytes).
MAX_INSTALMENT = 1_000_000
#: Seconds after a promised instalment's time before it is nacked.
NACK_DELAY = 2.0
#: Most bytes one request may ask for (1 TiB; the sender keeps counters, not lists).
MAX_BULK_TOTAL = 2**40
#: Longest promise (seconds) a receiver waits for before nacking.
MAX_PROMISE = 3600.0
_MAX_NACK = 1000


def _read_all(payload: bytes, n: int) -> list[int]:
    r = Reader(payload)
    out = [r.compact_size(2**63) for _ in range(n)]
    if not r.empty():
        raise DecodeError("trailing bytes")
    return out


@dataclass(frozen=True, slots=True)
class BulkRequest:
    """``bulkreq``: send me ``total`` bytes at ``rate`` bytes/s in ``size``-byte instalments."""

    type: ClassVar[str] = "bulkreq"
    total: int
    rate: int
    size: int

    def encode(self) -> bytes:
        return b"".join(ser_compact_size(v) for v in (self.total, self.rate, self.size))

    @classmethod
    def decode(cls, payload: bytes) -> BulkRequest:
        total, rate, size = _read_all(payload, 3)
        if not 0 < size <= MAX_INSTALMENT or rate <= 0 or total > MAX_BULK_TOTAL:
            raise DecodeError("bad instalment size, rate or total")
        return cls(total, rate, size)


@dataclass(frozen=True, slots=True)
class Instalment:
    """``instalment``: part ``index`` at ``offset``; ``sent`` bytes so far; the next one
    is due in ``next_in_ms`` milliseconds (0: none promised)."""

    type: ClassVar[str] = "instalment"
    index: int
    offset: int
    sent: int
    next_in_ms: int
    data: bytes

    def encode(self) -> bytes:
        head = b"".join(ser_compact_size(v) for v in (self.index, self.offset, self.sent))
        return head + struct.pack("<I", min(self.next_in_ms, 2**32 - 1)) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Instalment:
        r = Reader(payload)
        index, offset, sent = (r.compact_size(2**63) for _ in range(3))
        next_in = r.u32()
        data = r.read_rest()
        if len(data) > MAX_INSTALMENT:
            raise DecodeError("instalment too large")
        return cls(index, offset, sent, next_in, data)


@dataclass(frozen=True, slots=True)
class BulkNack:
    """``bulknack``: these instalments never arrived."""

    type: ClassVar[str] = "bulknack"
    indices: tuple[int, ...]

    def encode(self) -> bytes:
        return ser_compact_size(len(self.indices)) + b"".join(
            ser_compact_size(i) for i in self.indices
        )

    @classmethod
    def decode(cls, payload: bytes) -> BulkNack:
        r = Reader(payload)
        n = r.compact_size(_MAX_NACK)
        indices = tuple(r.compact_size(2**63) for _ in range(n))
        if not r.empty():
            raise DecodeError("trailing bytes")
        return cls(indices)


@dataclass(frozen=True, slots=True)
class BulkDone:
    """``bulkdone``: everything arrived."""

    type: ClassVar[str] = "bulkdone"

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes) -> BulkDone:
        if payload:
            raise DecodeError("bulkdone is empty")
        return cls()


def bulk_codecs(registry: CodecRegistry | None = None) -> CodecRegistry:
    """A registry with the bulk messages (added to ``registry`` when given)."""
    reg = registry if registry is not None else CodecRegistry()
    for cls in (BulkRequest, Instalment, BulkNack, BulkDone):
        reg.register(cls)
    return reg


def _count(total: int, size: int) -> int:
    return max(1, -(-total // size))


class BulkSender(Conversation):
    """Sends ``read(offset, n)`` in instalments on the schedule the request asked for.

    Memory stays small whatever the request: the next fresh index is a counter, and only
    nacked indices (each at most once) wait in a queue; one timer is pending at a time.
    """

    def __init__(self, read: Callable[[int, int], bytes]) -> None:
        super().__init__()
        self.read = read
        self.request: BulkRequest | None = None
        self.start = 0.0
        self.count = 0
        self.next_index = 0
        self.resend: deque[int] = deque()
        self._resend_set: set[int] = set()
        self._armed = False
        self.sent_bytes = 0
        self.sent_count = 0
        self.resent = 0

    def on_start(self, message: Any) -> None:
        assert isinstance(message, BulkRequest) and self.dispatcher is not None
        self.request = message
        self.start = self.dispatcher._now
        self.count = _count(message.total, message.size)
        self._send_next(self.start)  # the first instalment at once

    def _more(self) -> bool:
        return bool(self.resend) or self.next_index < self.count

    def _send_next(self, now: float) -> None:
        self._armed = False
        if self.ended is not None or not self._more() or self.request is None:
            return
        req = self.request
        if self.resend:
            index = self.resend.popleft()
            self._resend_set.discard(index)
        else:
            index = self.next_index
            self.next_index += 1
        offset = index * req.size
        data = self.read(offset, min(req.size, req.total - offset))
        self.sent_bytes += len(data)
        self.sent_count += 1
        next_at = self.start + self.sent_count * req.size / req.rate
        next_ms = int(max(0.0, next_at - now) * 1000) if self._more() else 0
        self.send(Instalment(index, offset, self.sent_bytes, next_ms, data))
        if self._more():
            self._arm(max(next_at, now))

    def _arm(self, when: float) -> None:
        if not self._armed and self.dispatcher is not None:
            self._armed = True
            self.dispatcher.call_at(when, self._send_next)

    def on_message(self, message: Any, envelope: Envelope) -> None:
        if isinstance(message, BulkNack) and self.request is not None:
            for i in message.indices:  # only what was sent, each at most once in the queue
                if 0 <= i < self.next_index and i not in self._resend_set:
                    self._resend_set.add(i)
                    self.resend.append(i)
                    self.resent += 1
            if self.resend and self.dispatcher is not None:
                self._arm(self.dispatcher._now)  # the missing ones replace the next promises
        elif isinstance(message, BulkDone):
            self.end()


class BulkReceiver(Conversation):
    """Asks for ``total`` bytes at ``rate``; ``on_complete(data)`` gets them all.

    One nack timer is pending at a time; a promise further than :data:`MAX_PROMISE`
    seconds away is not believed.
    """

    def __init__(
        self, total: int, rate: int, size: int, on_complete: Callable[[bytes], None]
    ) -> None:
        super().__init__()
        self.request = BulkRequest(total, rate, size)
        self.on_complete = on_complete
        self.parts: dict[int, bytes] = {}
        self.nacks_sent = 0
        self._expect_by: float | None = None
        self._armed = False

    @property
    def count(self) -> int:
        """Instalments in the whole transfer."""
        return _count(self.request.total, self.request.size)

    def on_message(self, message: Any, envelope: Envelope) -> None:
        if not isinstance(message, Instalment) or self.dispatcher is None:
            return
        if not 0 <= message.index < self.count or message.index in self.parts:
            return  # out of range or a duplicate: nothing changes
        now = self.dispatcher._now
        self.parts[message.index] = message.data
        if len(self.parts) == self.count:
            self.send(BulkDone())
            data = b"".join(self.parts[i] for i in range(self.count))
            self.end()
            self.on_complete(data)
            return
        # The sender promised the next one in next_in_ms; nack what is missing after that.
        promise = min(message.next_in_ms / 1000, MAX_PROMISE) if message.next_in_ms else 0.0
        self._expect_by = now + promise + NACK_DELAY
        if not self._armed:
            self._armed = True
            self.dispatcher.call_at(self._expect_by, self._check)

    def _check(self, now: float) -> None:
        self._armed = False
        if self.ended is not None or self._expect_by is None or self.dispatcher is None:
            return
        if now < self._expect_by:  # a later instalment moved the deadline
            self._armed = True
            self.dispatcher.call_at(self._expect_by, self._check)
            return
        highest = max(self.parts) if self.parts else -1
        missing = tuple(i for i in range(highest + 1) if i not in self.parts)[:_MAX_NACK]
        if not missing and highest + 1 < self.count:
            missing = (highest + 1,)
        if missing:
            self.nacks_sent += 1
            self.send(BulkNack(missing))
            self._expect_by = now + NACK_DELAY + self.request.size / self.request.rate
            self._armed = True
            self.dispatcher.call_at(self._expect_by, self._check)


def serve_bulk(dispatcher: Dispatcher, read: Callable[[Any, int, int], bytes]) -> None:
    """Answer ``bulkreq`` from any peer with a :class:`BulkSender` over
    ``read(peer, offset, n)``."""

    def handler(inc: Incoming) -> None:
        peer = inc.peer
        inc.start(BulkSender(lambda offset, n: read(peer, offset, n)))

    dispatcher.on(BulkRequest.type, handler)
