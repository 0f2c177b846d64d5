"""The dispatch layer: envelopes routed by type, in-reply-to and in-regards-to (seed 004).

The socket layer moves opaque blocks; this layer reads each block's header and hands the
message to a handler (a plain function, by type), to the request waiting for it
(``in_reply_to``), or to the live conversation it belongs to (``in_regards_to``), with
per-conversation credit, a fair per-peer send queue and token-bucket rate limits. It is
sans-IO: it takes ``now`` (seconds) and bytes, and gives bytes per peer from
:meth:`Dispatcher.poll`; the asyncio adapter (:mod:`peerkeeper.shell.dispatch`) runs it on
the network loop.

Envelope encoding (all integers CompactSize unless said otherwise)::

    flags (u8)        bit 0: in_reply_to present; bit 1: in_regards_to present;
                      bit 2: in_regards_to is a conversation the *sender* started
                      (else one the receiver started); other bits must be 0
    message_id        per sender, monotonic from 1
    type              CompactSize length (1..64) + ASCII; types starting with "_" are
                      the dispatcher's own (``_credit``, ``_error``)
    [in_reply_to]     a message id of the receiver's
    [in_regards_to]   a conversation id (the message id that started it)
    payload           the rest, opaque here (at most MAX_PAYLOAD bytes)

A conversation is identified by the peer, who started it, and the id of the message
that started it, so both sides number from 1 without clashing.

Routing (seed 004): neither field -> the handler registered for the type (which may
reply and may start a conversation); ``in_reply_to`` -> the pending request for (peer,
id), removed when its last expected reply arrives (unknown replies are dropped and
counted), or to the conversation that message started; ``in_regards_to`` -> the
conversation for (peer, origin, id) (a finished one: dropped and counted). When both are present, a pending request wins (seed 004: "the
reply-to takes precedence"). A handler or conversation that raises is reported to the
sender as an ``_error`` reply and logged; everything else goes on.

Flow control: a conversation may send :data:`INITIAL_CREDIT` payload bytes before the
receiver grants more (``_credit``, "I can receive m more"); the receiver grants what it
consumed once that reaches half the window (HTTP/2's ``WINDOW_UPDATE`` rhythm). A
message without credit waits in its conversation's outbox (bounded), not in the
connection. Credit above :data:`MAX_CREDIT` is a protocol error (HTTP/2
``FLOW_CONTROL_ERROR``), as is receiving more than was granted. A grant or an outbox
message that the peer's full send queue refuses is retried each time :meth:`Dispatcher.poll`
takes bytes from that queue, never dropped.

Sending: each peer has a queue of replies (sent first) and a round-robin over its
streams (each conversation, and one for new requests), so a bulk transfer delays a ping
by at most one message. A per-peer token bucket spreads everything but replies at a
steady rate (seed 004 "Minimal system"), and a global bucket limits upload.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from peerkeeper.dispatch.tokenbucket import TokenBucket
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size

__all__ = [
    "INITIAL_CREDIT",
    "MAX_CREDIT",
    "MAX_ENVELOPE",
    "MAX_PAYLOAD",
    "MAX_REMOTE_CONVERSATIONS",
    "Conversation",
    "CodecRegistry",
    "DispatchError",
    "Dispatcher",
    "Envelope",
    "EnvelopeError",
    "Incoming",
    "PendingRequests",
    "RemoteError",
]

log = logging.getLogger("peerkeeper.dispatch")

#: Largest encoded envelope (the native protocol's envelope limit).
MAX_ENVELOPE = 4_000_000
_MAX_TYPE = 64
#: Largest payload: the envelope limit less the largest header.
MAX_PAYLOAD = MAX_ENVELOPE - (1 + 9 + 1 + _MAX_TYPE + 9 + 9)
#: Payload bytes a conversation may send before the receiver grants more (HTTP/2's 65,535).
INITIAL_CREDIT = 65_536
#: Most credit a sender may hold (HTTP/2: 2^31 - 1).
MAX_CREDIT = 2**31 - 1
#: Bytes a conversation may hold waiting for credit.
MAX_OUTBOX = 8_000_000
#: Live conversations one peer may have started with us (a handler's ``start`` beyond
#: it raises DispatchError, answered to the peer as an ``_error``).
MAX_REMOTE_CONVERSATIONS = 64
#: Bytes queued for one peer before :meth:`Dispatcher.send` refuses.
MAX_PEER_QUEUE = 32_000_000
_F_REPLY, _F_REGARDS, _F_SENDER = 1, 2, 4
_CREDIT, _ERROR = "_credit", "_error"
_MAX_ERROR_TEXT = 1000

Peer = Hashable


class DispatchError(Exception):
    """Misuse of the dispatcher (a full queue, an ended conversation, ...)."""


class EnvelopeError(DecodeError):
    """An envelope that cannot be decoded (the text says why)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One dispatch message (see the module docstring for the encoding)."""

    message_id: int
    type: str
    payload: bytes = b""
    in_reply_to: int | None = None
    in_regards_to: int | None = None
    regards_sender: bool = False

    def encode(self) -> bytes:
        """The bytes; raises ValueError for a bad type, id or a payload too large."""
        name = self.type.encode("ascii")
        if not 1 <= len(name) <= _MAX_TYPE:
            raise ValueError(f"message type must be 1..{_MAX_TYPE} ASCII bytes")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError(f"payload above {MAX_PAYLOAD} bytes")
        flags = 0
        parts = [b"", ser_compact_size(self.message_id), ser_compact_size(len(name)), name]
        if self.in_reply_to is not None:
            flags |= _F_REPLY
            parts.append(ser_compact_size(self.in_reply_to))
        if self.in_regards_to is not None:
            flags |= _F_REGARDS | (_F_SENDER if self.regards_sender else 0)
            parts.append(ser_compact_size(self.in_regards_to))
        parts[0] = bytes([flags])
        parts.append(self.payload)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """Parse an envelope; raises :class:`EnvelopeError`."""
        if len(data) > MAX_ENVELOPE:
            raise EnvelopeError(f"envelope of {len(data)} bytes above {MAX_ENVELOPE}")
        r = Reader(data)
        try:
            flags = r.u8()
            if flags & ~(_F_REPLY | _F_REGARDS | _F_SENDER):
                raise EnvelopeError(f"unknown flags {flags:#x}")
            if flags & _F_SENDER and not flags & _F_REGARDS:
                raise EnvelopeError("sender flag without in_regards_to")
            message_id = r.compact_size(2**64 - 1)
            raw = r.var_bytes(_MAX_TYPE)
            if not raw or not raw.isascii():
                raise EnvelopeError("message type must be 1..64 ASCII bytes")
            reply = r.compact_size(2**64 - 1) if flags & _F_REPLY else None
            regards = r.compact_size(2**64 - 1) if flags & _F_REGARDS else None
            payload = r.read_rest()
        except EnvelopeError:
            raise
        except DecodeError as e:
            raise EnvelopeError(f"truncated envelope: {e}") from None
        return cls(
            message_id, raw.decode("ascii"), payload, reply, regards, bool(flags & _F_SENDER)
        )


class Message(Protocol):
    """A typed message: a ``type`` name, ``encode()`` and a ``decode(bytes)`` classmethod."""

    type: ClassVar[str]

    def encode(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class RemoteError:
    """An ``_error`` the remote sent about one of our messages."""

    type: ClassVar[str] = _ERROR
    text: str

    def encode(self) -> bytes:
        return self.text.encode("utf-8", "replace")[:_MAX_ERROR_TEXT]

    @classmethod
    def decode(cls, payload: bytes) -> RemoteError:
        return cls(payload[:_MAX_ERROR_TEXT].decode("utf-8", "replace"))


class CodecRegistry:
    """Message type name -> class with ``encode()`` / ``decode(payload)``.

    Raises ValueError when a name is registered twice or is not 1..64 ASCII bytes.
    """

    def __init__(self) -> None:
        self._types: dict[str, Any] = {_ERROR: RemoteError}

    def register(self, cls: Any) -> Any:
        """Register ``cls`` (usable as a class decorator); returns it."""
        name = cls.type
        if not isinstance(name, str) or not 1 <= len(name) <= _MAX_TYPE or not name.isascii():
            raise ValueError(f"bad message type name {name!r}")
        if name in self._types:
            raise ValueError(f"message type {name!r} registered twice")
        self._types[name] = cls
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def decode(self, name: str, payload: bytes) -> Any:
        """The typed message; raises KeyError (unknown type) or the class's own error."""
        return self._types[name].decode(payload)


# -- pending requests ----------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Pending:
    peer: Peer
    key: Hashable
    expected: int
    deadline: float
    on_reply: Callable[[Any], None]
    on_done: Callable[[str | None], None]
    received: int = 0
    done: bool = False


class PendingRequests:
    """Requests waiting for replies, by ``(peer, key)``, with deadlines (py-ipv8's
    ``RequestCache`` shape). ``key`` is a message id for the native protocol, or e.g.
    ``("pong", nonce)`` / ``("addr",)`` for Bitcoin peers.

    ``on_reply(message)`` is called for each reply; ``on_done(None)`` after the last
    expected one, ``on_done("timeout" | "closed" | "cancelled" | ...)`` otherwise.
    """

    def __init__(self) -> None:
        self._table: dict[tuple[Peer, Hashable], _Pending] = {}
        self._heap: list[tuple[float, int, _Pending]] = []
        self._seq = itertools.count()
        #: Replies that matched nothing.
        self.unknown_replies = 0

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, item: object) -> bool:
        return item in self._table

    def add(
        self,
        peer: Peer,
        key: Hashable,
        *,
        now: float,
        timeout: float,
        on_reply: Callable[[Any], None],
        on_done: Callable[[str | None], None] = lambda reason: None,
        replies: int = 1,
    ) -> None:
        """Wait for ``replies`` replies to ``key`` from ``peer`` for ``timeout`` seconds.

        Raises DispatchError if the same request is already pending, ValueError for
        ``replies < 1`` or a negative timeout.
        """
        if replies < 1 or not timeout >= 0:
            raise ValueError("need replies >= 1 and timeout >= 0")
        if (peer, key) in self._table:
            raise DispatchError(f"request {key!r} to {peer!r} already pending")
        entry = _Pending(peer, key, replies, now + timeout, on_reply, on_done)
        self._table[(peer, key)] = entry
        if len(self._heap) > 2 * len(self._table) + 64:
            # Finished entries leave the heap lazily; an owner that never calls expire()
            # (ConnMan) must not keep them all.
            self._heap = [h for h in self._heap if not h[2].done]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (entry.deadline, next(self._seq), entry))

    def _finish(self, entry: _Pending, reason: str | None) -> None:
        if entry.done:
            return
        entry.done = True
        self._table.pop((entry.peer, entry.key), None)
        try:
            entry.on_done(reason)
        except Exception:
            log.exception("request %r done callback failed", entry.key)

    def resolve(self, peer: Peer, key: Hashable, message: Any) -> bool:
        """Deliver a reply; False (and counted) when nothing waits for it."""
        entry = self._table.get((peer, key))
        if entry is None:
            self.unknown_replies += 1
            return False
        entry.received += 1
        last = entry.received >= entry.expected
        if last:
            self._table.pop((peer, key), None)
        try:
            entry.on_reply(message)
        except Exception:
            log.exception("reply handler for %r failed", key)
        if last:
            self._finish(entry, None)
        return True

    def expire(self, now: float) -> int:
        """End every request whose deadline passed (``on_done("timeout")``); how many."""
        n = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, entry = heapq.heappop(heap)
            if not entry.done:
                self._finish(entry, "timeout")
                n += 1
        return n

    def cancel(self, peer: Peer, key: Hashable, reason: str = "cancelled") -> bool:
        """End one request now; False if it was not pending."""
        entry = self._table.get((peer, key))
        if entry is None:
            return False
        self._finish(entry, reason)
        return True

    def cancel_peer(self, peer: Peer, reason: str = "closed") -> int:
        """End every request to ``peer`` (its connection closed); how many."""
        entries = [e for (p, _), e in self._table.items() if p == peer]
        for entry in entries:
            self._finish(entry, reason)
        return len(entries)

    def next_deadline(self) -> float | None:
        """The earliest deadline still pending, or None."""
        heap = self._heap
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        return heap[0][0] if heap else None


# -- conversations --------------------------------------------------------------------------


class Conversation:
    """A state machine owned by the dispatcher, for one (peer, origin, id).

    Subclass and override :meth:`on_start`, :meth:`on_message`, :meth:`on_end`. Send
    with :meth:`send`; finish with :meth:`end`. Children started with :meth:`spawn` end
    with their parent (seed 004's process tree); every conversation of a peer ends when
    its connection closes.
    """

    #: Grant credit back as soon as :meth:`on_message` returns. A conversation that
    #: buffers messages sets this False and calls :meth:`consumed` as it processes them.
    auto_credit: ClassVar[bool] = True

    def __init__(self) -> None:
        self.dispatcher: Dispatcher | None = None
        self.peer: Peer = None
        self.conv_id = 0
        self.local = True
        self.parent: Conversation | None = None
        self.children: list[Conversation] = []
        self.ended: str | None = None
        self.send_credit = INITIAL_CREDIT
        self.recv_allowed = INITIAL_CREDIT
        self._consumed = 0
        self._outbox: deque[tuple[str, bytes, int | None]] = deque()
        self._outbox_bytes = 0
        self._queued = 0  # messages given to send()
        self._sent = 0  # of those, messages that left the outbox

    # -- to override --
    def on_start(self, message: Any) -> None:
        """Called once registered, with the message that started it (ours or theirs)."""

    def on_message(self, message: Any, envelope: Envelope) -> None:
        """A message in regard to this conversation (a :class:`RemoteError` too)."""

    def on_end(self, reason: str) -> None:
        """Called once when the conversation ends (``done``, ``closed``, ``parent ended``...)."""

    # -- API --
    @property
    def key(self) -> tuple[Peer, bool, int]:
        """``(peer, started by us, conversation id)``."""
        return (self.peer, self.local, self.conv_id)

    @property
    def waiting_bytes(self) -> int:
        """Payload bytes waiting for credit."""
        return self._outbox_bytes

    def send(self, message: Any, *, in_reply_to: int | None = None) -> None:
        """Send ``message`` in regard to this conversation; it waits for credit if needed.

        Raises DispatchError if the conversation ended or its outbox is full.
        """
        if self.ended is not None or self.dispatcher is None:
            raise DispatchError("conversation ended")
        self.dispatcher._conv_send(self, message.type, message.encode(), in_reply_to)

    def consumed(self, nbytes: int) -> None:
        """``nbytes`` of received payload were processed: credit may be granted back."""
        if self.dispatcher is not None and self.ended is None:
            self.dispatcher._consumed(self, nbytes)

    def end(self, reason: str = "done") -> None:
        """End this conversation (and its children); the dispatcher forgets it."""
        if self.dispatcher is not None:
            self.dispatcher._end(self, reason)

    def spawn(self, child: Conversation, peer: Peer, first: Any) -> Conversation:
        """Start ``child`` (with ``peer``) as a child of this conversation."""
        if self.dispatcher is None or self.ended is not None:
            raise DispatchError("conversation ended")
        self.dispatcher.start_conversation(peer, child, first)
        child.parent = self
        self.children.append(child)
        return child


@dataclass(slots=True)
class Incoming:
    """What a type handler receives: the peer, the envelope, the decoded message."""

    dispatcher: Dispatcher
    peer: Peer
    envelope: Envelope
    message: Any

    def reply(self, message: Any) -> int:
        """Send ``message`` in reply (``in_reply_to`` this one); returns its id."""
        return self.dispatcher.send(self.peer, message, in_reply_to=self.envelope.message_id)

    def start(self, conversation: Conversation) -> Conversation:
        """Make ``conversation`` own the exchange this message started."""
        d = self.dispatcher
        d._register(conversation, self.peer, local=False, conv_id=self.envelope.message_id)
        d._call(conversation, conversation.on_start, self.message)
        return conversation


@dataclass(slots=True)
class _PeerQueue:
    bucket: TokenBucket
    replies: deque[bytes] = field(default_factory=deque)
    streams: OrderedDict[Hashable, deque[bytes]] = field(default_factory=OrderedDict)
    queued: int = 0
    #: Conversations whose credit grant or outbox head the full queue refused, retried
    #: (in order) each time :meth:`Dispatcher.poll` takes bytes from this queue.
    blocked: dict[tuple[Peer, bool, int], Conversation] = field(default_factory=dict)


@dataclass(slots=True)
class DispatchStats:
    """Counters (messages)."""

    received: int = 0
    sent: int = 0
    bad_envelopes: int = 0
    unknown_types: int = 0
    unknown_conversations: int = 0
    handler_errors: int = 0
    flow_control_errors: int = 0


class Dispatcher:
    """The sans-IO dispatcher (see the module docstring).

    ``Dispatcher(codecs, *, now, peer_rate=inf, peer_burst=1_000_000, upload_rate=inf,
    upload_burst=1_000_000)``: rates in bytes per second. Feed bytes with
    :meth:`receive`, send with :meth:`send` / :meth:`request` /
    :meth:`start_conversation`, take what may go out now with :meth:`poll`, call
    :meth:`tick` at :meth:`next_wakeup` and :meth:`peer_closed` when a connection ends.
    """

    def __init__(
        self,
        codecs: CodecRegistry,
        *,
        now: float,
        peer_rate: float = math.inf,
        peer_burst: float = 1_000_000,
        upload_rate: float = math.inf,
        upload_burst: float = 1_000_000,
    ) -> None:
        self.codecs = codecs
        self.handlers: dict[str, Callable[[Incoming], None]] = {}
        self.pending = PendingRequests()
        self.conversations: dict[tuple[Peer, bool, int], Conversation] = {}
        self.stats = DispatchStats()
        self.peer_rate = peer_rate
        self.peer_burst = peer_burst
        self.upload = TokenBucket(upload_rate, upload_burst, now)
        self._queues: dict[Peer, _PeerQueue] = {}
        self._next_id = 1
        self._now = now
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._remote_conversations: dict[Peer, int] = {}
        #: Called when a conversation's outbox moved or it ended (the adapter's kick).
        self.wake: Callable[[], None] | None = None
        self._timer_seq = itertools.count()

    # -- registration ------------------------------------------------------------------

    def on(self, type_name: str, handler: Callable[[Incoming], None]) -> None:
        """Route messages of ``type_name`` that start nothing to ``handler``."""
        self.handlers[type_name] = handler

    # -- sending -----------------------------------------------------------------------

    def _queue(self, peer: Peer) -> _PeerQueue:
        q = self._queues.get(peer)
        if q is None:
            q = _PeerQueue(TokenBucket(self.peer_rate, self.peer_burst, self._now))
            self._queues[peer] = q
        return q

    def _enqueue(self, peer: Peer, data: bytes, stream: Hashable | None) -> None:
        q = self._queue(peer)
        if q.queued + len(data) > MAX_PEER_QUEUE:
            raise DispatchError(f"send queue to {peer!r} full")
        q.queued += len(data)
        if stream is None:
            q.replies.append(data)
        else:
            q.streams.setdefault(stream, deque()).append(data)

    def _new_id(self) -> int:
        mid = self._next_id
        self._next_id += 1
        return mid

    def send(
        self,
        peer: Peer,
        message: Any,
        *,
        in_reply_to: int | None = None,
        conversation: Conversation | None = None,
    ) -> int:
        """Queue ``message`` for ``peer``; returns its message id. Replies (``in_reply_to``)
        jump the queue. Raises DispatchError when the peer's queue is full."""
        return self._send_raw(peer, message.type, message.encode(), in_reply_to, conversation)

    def _send_raw(
        self,
        peer: Peer,
        type_name: str,
        payload: bytes,
        in_reply_to: int | None,
        conversation: Conversation | None,
        mid: int | None = None,
        *,
        priority: bool = False,
    ) -> int:
        mid = self._new_id() if mid is None else mid
        env = Envelope(
            mid,
            type_name,
            payload,
            in_reply_to,
            conversation.conv_id if conversation is not None else None,
            conversation.local if conversation is not None else False,
        )
        data = env.encode()
        if in_reply_to is not None or priority:
            stream: Hashable | None = None
        elif conversation is not None:
            stream = conversation.key
        else:
            stream = "requests"
        self._enqueue(peer, data, stream)
        return mid

    def request(
        self,
        peer: Peer,
        message: Any,
        *,
        timeout: float,
        on_reply: Callable[[Any], None],
        on_done: Callable[[str | None], None] = lambda reason: None,
        replies: int = 1,
        now: float | None = None,
    ) -> int:
        """Send ``message`` and wait for ``replies`` replies for ``timeout`` seconds from
        ``now`` (default: the last time the dispatcher was given); returns the message id
        (the pending key)."""
        if now is not None:
            self._now = max(self._now, now)
        mid = self._new_id()
        self.pending.add(
            peer,
            mid,
            now=self._now,
            timeout=timeout,
            on_reply=on_reply,
            on_done=on_done,
            replies=replies,
        )
        try:
            self._send_raw(peer, message.type, message.encode(), None, None, mid)
        except Exception:
            self.pending.cancel(peer, mid, "not sent")
            raise
        return mid

    def start_conversation(self, peer: Peer, conversation: Conversation, first: Any) -> int:
        """Send ``first`` and register ``conversation`` under its id; returns the id."""
        mid = self._new_id()
        self._register(conversation, peer, local=True, conv_id=mid)
        self._send_raw(peer, first.type, first.encode(), None, None, mid)
        self._call(conversation, conversation.on_start, first)
        return mid

    def _register(self, conv: Conversation, peer: Peer, *, local: bool, conv_id: int) -> None:
        if conv.dispatcher is not None:
            raise DispatchError("conversation already started")
        if (peer, local, conv_id) in self.conversations:
            raise DispatchError(f"conversation {conv_id} with {peer!r} already exists")
        if not local:
            n = self._remote_conversations.get(peer, 0)
            if n >= MAX_REMOTE_CONVERSATIONS:
                raise DispatchError(f"{n} conversations started by {peer!r}: no more")
            self._remote_conversations[peer] = n + 1
        conv.dispatcher = self
        conv.peer = peer
        conv.local = local
        conv.conv_id = conv_id
        self.conversations[conv.key] = conv

    def _conv_send(
        self, conv: Conversation, type_name: str, payload: bytes, in_reply_to: int | None
    ) -> None:
        if conv._outbox_bytes + len(payload) > MAX_OUTBOX:
            raise DispatchError("conversation outbox full (the peer grants no credit)")
        conv._outbox.append((type_name, payload, in_reply_to))
        conv._outbox_bytes += len(payload)
        conv._queued += 1
        self._drain_outbox(conv)

    def _drain_outbox(self, conv: Conversation) -> None:
        """Send from the outbox while any credit is left: a message may overshoot the
        window (the credit goes negative), so a message larger than what is left never
        waits for a grant the receiver will not send (it grants per half window)."""
        while conv._outbox and conv.send_credit > 0 and conv.ended is None:
            type_name, payload, in_reply_to = conv._outbox[0]
            try:
                self._send_raw(conv.peer, type_name, payload, in_reply_to, conv)
            except DispatchError:
                # The peer's queue is full: the message waits in the outbox and is
                # retried when poll() makes room (nothing else may ever push it).
                self._block(conv)
                return
            conv._outbox.popleft()
            conv._outbox_bytes -= len(payload)
            conv.send_credit -= len(payload)
            conv._sent += 1
        if self.wake is not None:
            self.wake()

    def poll(self, now: float) -> list[tuple[Peer, bytes]]:
        """Everything that may be written now, in order: per peer, replies first, then
        one message per stream in turn; within the per-peer and global token buckets
        (replies skip the global one)."""
        self._now = max(self._now, now)
        out: list[tuple[Peer, bytes]] = []
        progress = True
        while progress:
            progress = False
            for peer, q in list(self._queues.items()):
                data = self._next_for(q, now)
                if data is not None:
                    out.append((peer, data))
                    progress = True
                    if q.blocked:
                        self._retry_blocked(q)
        self.stats.sent += len(out)
        return out

    def _block(self, conv: Conversation) -> None:
        """Remember that the full queue to ``conv.peer`` refused a grant or a message."""
        q = self._queues.get(conv.peer)
        if q is not None and conv.ended is None:
            q.blocked[conv.key] = conv

    def _retry_blocked(self, q: _PeerQueue) -> None:
        """The queue has room again: retry every refused grant, then every outbox.

        A conversation refused again goes back into ``q.blocked``; one that ended is
        forgotten. Both retries are idempotent (a grant is sent only while at least
        half a window was consumed, an outbox only drains with credit left).
        """
        blocked = list(q.blocked.values())
        q.blocked.clear()
        for conv in blocked:
            if conv.ended is not None:
                continue
            self._consumed(conv, 0)
            if conv._outbox and conv.send_credit > 0:
                self._drain_outbox(conv)

    def _next_for(self, q: _PeerQueue, now: float) -> bytes | None:
        if q.replies:
            data = q.replies[0]
            if not q.bucket.try_take(len(data), now):
                return None
            q.replies.popleft()
            q.queued -= len(data)
            return data
        while q.streams:
            key, dq = next(iter(q.streams.items()))
            if not dq:
                del q.streams[key]
                continue
            data = dq[0]
            if q.bucket.available(now) < min(len(data), q.bucket.burst):
                return None
            if not self.upload.try_take(len(data), now):
                return None
            q.bucket.try_take(len(data), now)
            dq.popleft()
            q.queued -= len(data)
            q.streams.move_to_end(key)  # round-robin
            if not dq:
                del q.streams[key]
            return data
        return None

    def queued_bytes(self, peer: Peer) -> int:
        """Bytes waiting to be written to ``peer``."""
        q = self._queues.get(peer)
        return q.queued if q is not None else 0

    # -- receiving ---------------------------------------------------------------------

    def receive(self, peer: Peer, data: bytes, now: float) -> None:
        """Route one envelope from ``peer``. Never raises for bad input: it is counted,
        logged and, where there is someone to tell, answered with ``_error``."""
        self._now = max(self._now, now)
        try:
            env = Envelope.decode(data)
        except EnvelopeError as e:
            self.stats.bad_envelopes += 1
            log.info("bad envelope from %r: %s", peer, e)
            return
        self.stats.received += 1
        if env.type == _CREDIT:
            self._credit(peer, env)
            return
        try:
            message = self.codecs.decode(env.type, env.payload)
        except KeyError:
            self.stats.unknown_types += 1
            self._error(peer, env, f"unknown message type {env.type!r}")
            return
        except Exception as e:  # an application's codec may raise anything on bad bytes
            self.stats.handler_errors += 1
            self._error(peer, env, f"undecodable {env.type}: {e}")
            return
        if env.in_reply_to is not None and (peer, env.in_reply_to) in self.pending:
            self.pending.resolve(peer, env.in_reply_to, message)
            return
        if env.in_reply_to is not None and env.in_regards_to is None:
            # A reply to the message that started one of our conversations goes to it
            # (seed 004: Carol's reply to Bob's first message reaches Bob's state machine).
            started = self.conversations.get((peer, True, env.in_reply_to))
            if started is not None:
                self._deliver(started, message, env)
                return
        if env.in_regards_to is not None:
            key = (peer, not env.regards_sender, env.in_regards_to)
            conv = self.conversations.get(key)
            if conv is None:
                self.stats.unknown_conversations += 1
                return
            self._deliver(conv, message, env)
            return
        if env.in_reply_to is not None:
            self.pending.unknown_replies += 1
            return
        if isinstance(message, RemoteError):
            return  # an error about nothing we track: counted by the sender only
        handler = self.handlers.get(env.type)
        if handler is None:
            self.stats.unknown_types += 1
            self._error(peer, env, f"no handler for {env.type!r}")
            return
        try:
            handler(Incoming(self, peer, env, message))
        except Exception as e:
            self.stats.handler_errors += 1
            log.exception("handler for %s from %r failed", env.type, peer)
            self._error(peer, env, f"{type(e).__name__}: {e}")

    def _deliver(self, conv: Conversation, message: Any, env: Envelope) -> None:
        size = 0 if env.type.startswith("_") else len(env.payload)  # errors are free
        if size and conv.recv_allowed <= 0:  # the sender had no credit left
            self.stats.flow_control_errors += 1
            self._error(conv.peer, env, "flow control: more than the credit granted", conv)
            self._end(conv, "flow control error")
            return
        conv.recv_allowed -= size
        if not self._call(conv, conv.on_message, message, env):
            self._error(conv.peer, env, "conversation failed", conv)
            self._end(conv, "error")
            return
        if conv.auto_credit:
            self._consumed(conv, size)

    def _consumed(self, conv: Conversation, size: int) -> None:
        conv._consumed += size
        if conv.ended is None and conv._consumed >= INITIAL_CREDIT // 2:
            grant = conv._consumed
            try:
                self._send_raw(
                    conv.peer, _CREDIT, ser_compact_size(grant), None, conv, priority=True
                )
            except DispatchError:
                # The queue is full: retried when poll() makes room. Waiting for the
                # next consumption would stall for good once the sender's window is
                # used up (it then sends nothing more to consume).
                self._block(conv)
                return
            conv._consumed = 0
            conv.recv_allowed += grant

    def _credit(self, peer: Peer, env: Envelope) -> None:
        if env.in_regards_to is None:
            self.stats.flow_control_errors += 1
            return
        conv = self.conversations.get((peer, not env.regards_sender, env.in_regards_to))
        if conv is None:
            self.stats.unknown_conversations += 1
            return
        try:
            r = Reader(env.payload)
            grant = r.compact_size(2**64 - 1)
            if not r.empty():
                raise DecodeError("trailing bytes")
        except DecodeError:
            grant = -1
        if grant < 0 or conv.send_credit + grant > MAX_CREDIT:
            self.stats.flow_control_errors += 1
            self._error(peer, env, "flow control: bad credit", conv)
            self._end(conv, "flow control error")
            return
        conv.send_credit += grant
        self._drain_outbox(conv)

    def _error(
        self, peer: Peer, env: Envelope, text: str, conv: Conversation | None = None
    ) -> None:
        if env.type == _ERROR:
            return  # never answer an error with an error
        with contextlib.suppress(DispatchError):  # a full queue: the error is only logged
            self._send_raw(peer, _ERROR, RemoteError(text).encode(), env.message_id, conv)

    def _call(self, conv: Conversation, fn: Callable[..., None], *args: Any) -> bool:
        try:
            fn(*args)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("conversation %r failed", conv.key)
            return False
        return True

    # -- lifecycle ---------------------------------------------------------------------

    def _end(self, conv: Conversation, reason: str) -> None:
        if conv.ended is not None:
            return
        conv.ended = reason
        if self.conversations.pop(conv.key, None) is conv and not conv.local:
            left = self._remote_conversations.get(conv.peer, 1) - 1
            if left > 0:
                self._remote_conversations[conv.peer] = left
            else:
                self._remote_conversations.pop(conv.peer, None)
        for child in list(conv.children):
            self._end(child, "parent ended")
        if conv.parent is not None and conv in conv.parent.children:
            conv.parent.children.remove(conv)
        # What was already queued still goes (a last "done" must arrive); what waits for
        # credit is dropped.
        conv._outbox.clear()
        q = self._queues.get(conv.peer)
        if q is not None:
            q.blocked.pop(conv.key, None)
        if self.wake is not None:
            self.wake()
        conv._outbox_bytes = 0
        self._call(conv, conv.on_end, reason)

    def peer_closed(self, peer: Peer, reason: str = "closed") -> None:
        """The connection to ``peer`` ended: cancel its requests, end its conversations,
        drop its queue."""
        self.pending.cancel_peer(peer, reason)
        for conv in [c for k, c in self.conversations.items() if k[0] == peer]:
            self._end(conv, reason)
        self._queues.pop(peer, None)
        self._remote_conversations.pop(peer, None)

    def call_at(self, when: float, fn: Callable[[float], None]) -> None:
        """Run ``fn(now)`` from the first :meth:`tick` at or after ``when`` (conversation
        timers: instalment schedules, nack delays). Exceptions are logged. Callers keep
        at most one timer pending per conversation (the heap is not otherwise bounded)."""
        heapq.heappush(self._timers, (when, next(self._timer_seq), fn))

    def tick(self, now: float) -> int:
        """Expire requests whose deadline passed and run due timers; returns how many
        requests expired."""
        self._now = max(self._now, now)
        expired = self.pending.expire(now)
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, fn = heapq.heappop(timers)
            try:
                fn(now)
            except Exception:
                log.exception("dispatch timer failed")
        return expired

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`tick` or :meth:`poll` next has work: a request deadline, or the
        time a rate-limited queue may send."""
        times: list[float] = []
        deadline = self.pending.next_deadline()
        if deadline is not None:
            times.append(deadline)
        if self._timers:
            times.append(self._timers[0][0])
        for q in self._queues.values():
            head: bytes | None = None
            if q.replies:
                head = q.replies[0]
            elif q.streams:
                first = next(iter(q.streams.values()))
                head = first[0] if first else None
            if head is not None:
                t = q.bucket.when_available(len(head), now)
                if not q.replies:
                    t = max(t, self.upload.when_available(len(head), now))
                times.append(t)
        return min(times) if times else None
