"""Connection-recency gossip: seed 004's first application, on the dispatch layer.

Each node keeps the list of peers it successfully connected to, newest first
(:class:`RecencyList`: every connection gets the next sequence number, so a reconnection
moves the peer to the front). It shares that list with its counterparties and remembers
each counterparty's list and how far each counterparty is up to date with its own
(``acked``), so it sends only what is new (seed 004, "Minimal system": "how up to date
their counter parties are with their own list, so that they do not have endlessly
resend data"). A counterparty that lost its copy asks again from 0. A node that wants
to reach a peer it cannot dial asks a counterparty to introduce it: the counterparty
forwards a connect request to the third party, which dials the requester.

Messages (payloads; the dispatch envelope carries type and ids):

* ``recency`` (a request): CompactSize ``latest`` sequence of the sender, CompactSize
  count (at most :data:`MAX_ENTRIES_PER_MESSAGE`), entries: seq (CompactSize), peer id
  (16), point (native point encoding), time (u32 LE, seconds);
* ``recencyack`` (its reply): CompactSize sequence now held;
* ``recencyget`` (a request): CompactSize sequence to resend from (0 = everything);
* ``introduce`` (a request): the target's peer id (16); reply ``introduced``: u8 1/0;
* ``connectreq``: requester peer id (16) || requester point.

:class:`RecencyGossip` is sans-IO over a :class:`~peerkeeper.dispatch.dispatcher.Dispatcher`
(``now`` and ``rng`` are arguments); :class:`peerkeeper.shell.gossip.GossipApp` runs it
on a :class:`~peerkeeper.shell.nativenode.NativeNode`.
"""

from __future__ import annotations

import logging
import random
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from peerkeeper.dispatch.dispatcher import CodecRegistry, Dispatcher, Incoming
from peerkeeper.native.messages import decode_point, encode_point
from peerkeeper.net.netaddr import Service
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size

__all__ = [
    "MAX_ENTRIES_PER_MESSAGE",
    "MAX_LIST",
    "RecencyEntry",
    "RecencyGossip",
    "RecencyList",
    "gossip_codecs",
]

log = logging.getLogger("peerkeeper.gossip")

#: Entries per ``recency`` message.
MAX_ENTRIES_PER_MESSAGE = 100
#: Entries kept per list (ours and each counterparty's); the oldest go first.
MAX_LIST = 1000
#: Counterparties whose lists (and acknowledged positions) are kept; the least recently
#: heard from are forgotten first. With MAX_LIST entries each, at most 256,000 entries
#: (tens of MB) whatever peers send.
MAX_COUNTERPARTIES = 256
#: Seconds a gossip request waits for its reply.
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class RecencyEntry:
    """One connection: sequence number, the peer's id (16 bytes), its point, the time."""

    seq: int
    peer_id: bytes
    point: Service
    time: int


def _encode_entries(latest: int, entries: list[RecencyEntry]) -> bytes:
    parts = [ser_compact_size(latest), ser_compact_size(len(entries))]
    for e in entries:
        parts += [ser_compact_size(e.seq), e.peer_id, encode_point(e.point)]
        parts.append(struct.pack("<I", max(0, min(e.time, 2**32 - 1))))
    return b"".join(parts)


class RecencyList:
    """A list of connections, newest first, at most ``limit`` peers (oldest dropped)."""

    def __init__(self, limit: int = MAX_LIST) -> None:
        self.limit = limit
        self._entries: OrderedDict[bytes, RecencyEntry] = OrderedDict()  # oldest first
        self.latest = 0

    def __len__(self) -> int:
        return len(self._entries)

    def record(self, peer_id: bytes, point: Service, when: int) -> RecencyEntry:
        """A successful connection: the peer moves to the front with the next sequence."""
        self.latest += 1
        entry = RecencyEntry(self.latest, peer_id, point, when)
        self._entries.pop(peer_id, None)
        self._entries[peer_id] = entry
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        return entry

    def merge(self, entries: list[RecencyEntry], latest: int) -> int:
        """Apply entries received from the list's owner (any order); returns how many
        changed anything. ``latest`` is the owner's newest sequence."""
        changed = 0
        for e in sorted(entries, key=lambda x: x.seq):
            old = self._entries.get(e.peer_id)
            if old is not None and old.seq >= e.seq:
                continue
            self._entries.pop(e.peer_id, None)
            self._entries[e.peer_id] = e
            changed += 1
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        self.latest = max(self.latest, latest)
        return changed

    def since(self, seq: int, limit: int = MAX_ENTRIES_PER_MESSAGE) -> list[RecencyEntry]:
        """Entries with a sequence above ``seq``, oldest first, at most ``limit``."""
        out = [e for e in self._entries.values() if e.seq > seq]
        out.sort(key=lambda e: e.seq)
        return out[:limit]

    def newest_first(self) -> list[RecencyEntry]:
        """The list as users see it."""
        return sorted(self._entries.values(), key=lambda e: -e.seq)


# -- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recency:
    """``recency``: entries of the sender's list (a request). ``epoch`` names the
    sender's list (a new one after a restart, whose sequences start again); ``base`` is
    how much of it the sender believes we hold; ``latest`` its newest sequence."""

    type: ClassVar[str] = "recency"
    epoch: int
    base: int
    latest: int
    entries: tuple[RecencyEntry, ...]

    def encode(self) -> bytes:
        head = struct.pack("<Q", self.epoch) + ser_compact_size(self.base)
        return head + _encode_entries(self.latest, list(self.entries))

    @classmethod
    def decode(cls, payload: bytes) -> Recency:
        r = Reader(payload)
        epoch = r.u64()
        base = r.compact_size(2**63)
        latest = r.compact_size(2**63)
        n = r.compact_size(MAX_ENTRIES_PER_MESSAGE)
        entries = []
        for _ in range(n):
            seq = r.compact_size(2**63)
            peer_id = r.read(16)
            point = decode_point(r)
            entries.append(RecencyEntry(seq, peer_id, point, r.u32()))
        if not r.empty():
            raise DecodeError("trailing bytes")
        if any(e.seq > latest for e in entries) or base > latest:
            raise DecodeError("entry or base newer than the list's latest")
        return cls(epoch, base, latest, tuple(entries))


@dataclass(frozen=True, slots=True)
class _Seq:
    """Payload: one CompactSize sequence number."""

    seq: int

    def encode(self) -> bytes:
        return ser_compact_size(self.seq)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        r = Reader(payload)
        seq = r.compact_size(2**63)
        if not r.empty():
            raise DecodeError("trailing bytes")
        return cls(seq)


@dataclass(frozen=True, slots=True)
class RecencyAck(_Seq):
    """Reply to ``recency``: the sequence of the sender's list now held."""

    type: ClassVar[str] = "recencyack"


@dataclass(frozen=True, slots=True)
class RecencyGet(_Seq):
    """Ask for a counterparty's list again from ``seq`` (0 = everything)."""

    type: ClassVar[str] = "recencyget"


@dataclass(frozen=True, slots=True)
class Introduce:
    """``introduce``: please forward a connect request to this peer id."""

    type: ClassVar[str] = "introduce"
    target: bytes

    def encode(self) -> bytes:
        return self.target

    @classmethod
    def decode(cls, payload: bytes) -> Introduce:
        if len(payload) != 16:
            raise DecodeError("introduce carries a 16-byte peer id")
        return cls(payload)


@dataclass(frozen=True, slots=True)
class Introduced:
    """Reply to ``introduce``: whether it was forwarded."""

    type: ClassVar[str] = "introduced"
    ok: bool

    def encode(self) -> bytes:
        return b"\x01" if self.ok else b"\x00"

    @classmethod
    def decode(cls, payload: bytes) -> Introduced:
        if payload not in (b"\x00", b"\x01"):
            raise DecodeError("introduced carries one byte, 0 or 1")
        return cls(payload == b"\x01")


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """``connectreq``: the requester (peer id, point) asks you to dial it."""

    type: ClassVar[str] = "connectreq"
    requester: bytes
    point: Service

    def encode(self) -> bytes:
        return self.requester + encode_point(self.point)

    @classmethod
    def decode(cls, payload: bytes) -> ConnectRequest:
        r = Reader(payload)
        requester = r.read(16)
        point = decode_point(r)
        if not r.empty():
            raise DecodeError("trailing bytes")
        return cls(requester, point)


def gossip_codecs(registry: CodecRegistry | None = None) -> CodecRegistry:
    """A registry with the gossip messages (added to ``registry`` when given)."""
    reg = registry if registry is not None else CodecRegistry()
    for cls in (Recency, RecencyAck, RecencyGet, Introduce, Introduced, ConnectRequest):
        reg.register(cls)
    return reg


# -- the application, sans-IO -----------------------------------------------------------------


class RecencyGossip:
    """The gossip state and rules for one node (sans-IO, over ``dispatcher``).

    ``connect(point, requester)`` is called when a counterparty relays a connect
    request; ``my_point`` is the point others should dial (None when not listening).
    Peers are the dispatcher's peer keys (peer ids for the native node). ``rng`` (a
    ``random.Random``) draws this run's list ``epoch`` (64 bits) unless ``epoch`` is
    given; every method that sends takes ``now`` in seconds on the dispatcher's clock.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        my_point: Service | None,
        connect: Callable[[Service, Any], None],
        is_connected: Callable[[Any], bool],
        rng: random.Random,
        epoch: int | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.my_point = my_point
        self.connect = connect
        self.is_connected = is_connected
        self.mine = RecencyList()
        #: Names this run's list: a restart makes a new one (counterparties start over).
        self.epoch = epoch if epoch is not None else rng.getrandbits(64)
        #: Each counterparty's list as we know it, and its epoch (LRU, bounded).
        self.lists: OrderedDict[Any, RecencyList] = OrderedDict()
        self.epochs: OrderedDict[Any, int] = OrderedDict()
        #: How far each counterparty holds our list (its acknowledged sequence).
        self.acked: OrderedDict[Any, int] = OrderedDict()
        self._in_flight: set[Any] = set()
        self.points: dict[Any, Service] = {}
        self.ids: dict[Any, bytes] = {}
        self.introductions_forwarded = 0
        self.entries_sent = 0
        d = dispatcher
        d.on(Recency.type, self._on_recency)
        d.on(RecencyGet.type, self._on_get)
        d.on(Introduce.type, self._on_introduce)
        d.on(ConnectRequest.type, self._on_connect_request)

    # -- events from the node --
    def connected(self, peer: Any, peer_id: bytes, point: Service, now: float) -> None:
        """A connection to ``peer`` was established: it goes to the front of our list."""
        self.mine.record(peer_id, point, int(now))
        self.points[peer] = point
        self.ids[peer] = peer_id
        self._remember(self.acked, peer, self.acked.get(peer, 0))

    def disconnected(self, peer: Any) -> None:
        """``peer``'s connection ended (we keep its list and its acknowledged position,
        within :data:`MAX_COUNTERPARTIES`)."""
        self._in_flight.discard(peer)
        self.points.pop(peer, None)
        self.ids.pop(peer, None)

    # -- pushing --
    def push(self, peer: Any, now: float) -> bool:
        """Send ``peer`` what it lacks of our list (one message, one in flight)."""
        if peer in self._in_flight:
            return False
        have = self.acked.get(peer, 0)
        if have >= self.mine.latest:
            return False
        entries = self.mine.since(have)
        if not entries:
            self.acked[peer] = self.mine.latest
            return False
        self._in_flight.add(peer)
        top = entries[-1].seq if len(entries) == MAX_ENTRIES_PER_MESSAGE else self.mine.latest

        def on_reply(reply: Any) -> None:
            if isinstance(reply, RecencyAck):
                # What the peer says it holds (less than we thought after it restarted).
                self._remember(self.acked, peer, min(reply.seq, top))

        def on_done(reason: str | None) -> None:
            self._in_flight.discard(peer)

        self.dispatcher.request(
            peer,
            Recency(self.epoch, have, top, tuple(entries)),
            timeout=REQUEST_TIMEOUT,
            on_reply=on_reply,
            on_done=on_done,
            now=now,
        )
        self.entries_sent += len(entries)
        return True

    def push_all(self, peers: list[Any], now: float) -> int:
        """Push to every peer in ``peers``; how many messages were sent."""
        return sum(self.push(p, now) for p in peers)

    def resync(self, peer: Any, now: float) -> None:
        """We lost ``peer``'s list: ask for everything again."""
        self.lists.pop(peer, None)
        self.dispatcher.request(
            peer, RecencyGet(0), timeout=REQUEST_TIMEOUT, on_reply=lambda m: None, now=now
        )

    def introduce(
        self, via: Any, target: bytes, now: float, on_result: Callable[[bool], None]
    ) -> None:
        """Ask ``via`` to introduce us to ``target`` (a peer id in ``via``'s list)."""

        def on_reply(reply: Any) -> None:
            on_result(isinstance(reply, Introduced) and reply.ok)

        def on_done(reason: str | None) -> None:
            if reason is not None:
                on_result(False)

        self.dispatcher.request(
            via,
            Introduce(target),
            timeout=REQUEST_TIMEOUT,
            on_reply=on_reply,
            on_done=on_done,
            now=now,
        )

    # -- handlers --
    def _on_recency(self, inc: Incoming) -> None:
        msg: Recency = inc.message
        peer = inc.peer
        theirs = self.lists.get(peer)
        if theirs is None or self.epochs.get(peer) != msg.epoch:
            theirs = RecencyList()  # first contact, or the sender restarted: start over
            self.epochs[peer] = msg.epoch
        self._remember(self.lists, peer, theirs)
        self._remember(self.epochs, peer, msg.epoch)
        if msg.base > theirs.latest:
            # The sender thinks we hold more than we do (we restarted): say how much.
            inc.reply(RecencyAck(theirs.latest))
            return
        theirs.merge(list(msg.entries), msg.latest)
        inc.reply(RecencyAck(theirs.latest))

    def _remember(self, table: OrderedDict[Any, Any], peer: Any, value: Any) -> None:
        table[peer] = value
        table.move_to_end(peer)
        while len(table) > MAX_COUNTERPARTIES:
            table.popitem(last=False)

    def _on_get(self, inc: Incoming) -> None:
        self.acked[inc.peer] = inc.message.seq
        inc.reply(RecencyAck(self.mine.latest))

    def _on_introduce(self, inc: Incoming) -> None:
        target = inc.message.target
        requester_point = self.points.get(inc.peer)
        peer = self._peer_with_id(target)
        if peer is None or requester_point is None or not self.is_connected(peer):
            inc.reply(Introduced(False))
            return
        requester_id = self.ids.get(inc.peer, bytes(16))
        self.dispatcher.send(peer, ConnectRequest(requester_id, requester_point))
        self.introductions_forwarded += 1
        inc.reply(Introduced(True))

    def _on_connect_request(self, inc: Incoming) -> None:
        msg: ConnectRequest = inc.message
        self.connect(msg.point, msg.requester)

    def _peer_with_id(self, peer_id: bytes) -> Any:
        for peer, known in self.ids.items():
            if known == peer_id:
                return peer
        return None
