"""The dispatcher, sans-IO: routing, requests, conversations, credit, fairness, buckets."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import Blob, Ping, Sink, Text, registry

from peerkeeper.dispatch.dispatcher import (
    INITIAL_CREDIT,
    MAX_CREDIT,
    MAX_ENVELOPE,
    Conversation,
    Dispatcher,
    DispatchError,
    Envelope,
    EnvelopeError,
    Incoming,
    PendingRequests,
    RemoteError,
)
from peerkeeper.dispatch.tokenbucket import TokenBucket
from peerkeeper.wire.codec import Reader, ser_compact_size


class Net:
    """Two dispatchers, "a" and "b", each seeing the other as its peer."""

    def __init__(self, **kw: Any) -> None:
        self.now = 0.0
        self.a = Dispatcher(registry(), now=0.0, **kw)
        self.b = Dispatcher(registry(), now=0.0, **kw)
        self.wire: list[tuple[str, Envelope]] = []

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for me, other, name in ((self.a, self.b, "a"), (self.b, self.a, "b")):
                for _peer, data in me.poll(self.now):
                    self.wire.append((name, Envelope.decode(data)))
                    other.receive(name, data, self.now)
                    moved = True
            if not moved:
                return


# -- envelopes ------------------------------------------------------------------------------


@given(
    st.integers(0, 2**64 - 1),
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=64),
    st.binary(max_size=200),
    st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    st.booleans(),
)
def test_envelope_round_trip(
    mid: int, name: str, payload: bytes, reply: int | None, regards: int | None, sender: bool
) -> None:
    env = Envelope(mid, name, payload, reply, regards, sender and regards is not None)
    assert Envelope.decode(env.encode()) == env


def test_envelope_layout_and_errors() -> None:
    env = Envelope(5, "text", b"hi", in_reply_to=3, in_regards_to=2, regards_sender=True)
    assert env.encode() == bytes([7, 5, 4]) + b"text" + bytes([3, 2]) + b"hi"
    for bad in (
        b"",
        bytes([8, 1, 1]) + b"x",  # unknown flag
        bytes([4, 1, 1]) + b"x",  # sender flag without in_regards_to
        bytes([0, 1, 0]),  # empty type
        bytes([0, 1, 65]) + b"x" * 65,  # type too long
        bytes([1, 1, 1]) + b"x",  # in_reply_to missing
        bytes([0, 1, 2]) + b"\xff\xfe",  # not ASCII
    ):
        with pytest.raises(EnvelopeError):
            Envelope.decode(bad)
    with pytest.raises(EnvelopeError):
        Envelope.decode(b"\x00" * (MAX_ENVELOPE + 1))
    with pytest.raises(ValueError):
        Envelope(1, "x" * 65).encode()


def test_registry_refuses_duplicates_and_bad_names() -> None:
    reg = registry()
    with pytest.raises(ValueError):
        reg.register(Text)

    class Bad:
        type = ""

    with pytest.raises(ValueError):
        reg.register(Bad)


# -- routing --------------------------------------------------------------------------------


def test_handler_by_type_and_reply_to_request() -> None:
    net = Net()
    net.b.on("ping", lambda inc: inc.reply(Ping(inc.message.n + 1)))
    got: list[Any] = []
    done: list[str | None] = []
    mid = net.a.request("b", Ping(41), timeout=5, on_reply=got.append, on_done=done.append)
    net.pump()
    assert got == [Ping(42)] and done == [None]
    assert len(net.a.pending) == 0
    reply = [e for who, e in net.wire if who == "b"][0]
    assert reply.in_reply_to == mid


def test_several_replies_then_entry_removed() -> None:
    net = Net()

    def three(inc: Incoming) -> None:
        for i in range(3):
            inc.reply(Text(str(i)))

    net.b.on("text", three)
    got: list[Any] = []
    done: list[str | None] = []
    net.a.request("b", Text("go"), timeout=5, replies=2, on_reply=got.append, on_done=done.append)
    net.pump()
    assert got == [Text("0"), Text("1")] and done == [None]
    assert net.a.pending.unknown_replies == 1  # the third reply matched nothing


def test_request_expiry_and_cancellation() -> None:
    net = Net()
    net.b.on("text", lambda inc: None)  # never answers
    done: list[str | None] = []
    net.a.request("b", Text("x"), timeout=10, on_reply=lambda m: None, on_done=done.append)
    net.pump()
    assert net.a.next_wakeup(0.0) == 10.0
    assert net.a.tick(9.9) == 0 and done == []
    assert net.a.tick(10.0) == 1 and done == ["timeout"]
    mid = net.a.request("b", Text("y"), timeout=10, on_reply=lambda m: None, on_done=done.append)
    assert net.a.pending.cancel("b", mid)
    assert done[-1] == "cancelled"
    net.a.request("b", Text("z"), timeout=10, on_reply=lambda m: None, on_done=done.append)
    net.a.peer_closed("b")
    assert done[-1] == "closed" and len(net.a.pending) == 0


def test_unknown_replies_and_types_are_counted() -> None:
    net = Net()
    net.a.receive("b", Envelope(9, "text", b"x", in_reply_to=777).encode(), 0.0)
    assert net.a.pending.unknown_replies == 1
    net.a.receive("b", Envelope(10, "nosuch", b"").encode(), 0.0)
    assert net.a.stats.unknown_types == 1
    net.a.receive("b", b"\xff", 0.0)
    assert net.a.stats.bad_envelopes == 1
    net.a.receive("b", Envelope(11, "text", b"", in_regards_to=5).encode(), 0.0)
    assert net.a.stats.unknown_conversations == 1
    # The unknown type got an _error reply; nothing else was answered.
    out = [Envelope.decode(d) for _, d in net.a.poll(0.0)]
    assert [(e.type, e.in_reply_to) for e in out] == [("_error", 10)]


def test_handler_that_raises_gets_an_error_reply_and_others_continue(
    caplog: pytest.LogCaptureFixture,
) -> None:
    net = Net()

    def boom(inc: Incoming) -> None:
        raise RuntimeError("kaput")

    net.b.on("text", boom)
    net.b.on("ping", lambda inc: inc.reply(Ping(0)))
    replies: list[Any] = []
    net.a.request("b", Text("x"), timeout=5, on_reply=replies.append)
    net.a.request("b", Ping(1), timeout=5, on_reply=replies.append)
    with caplog.at_level(logging.ERROR):
        net.pump()
    assert replies == [RemoteError("RuntimeError: kaput"), Ping(0)]
    assert net.b.stats.handler_errors == 1
    assert "kaput" in caplog.text


def test_undecodable_payload_is_reported() -> None:
    net = Net()
    net.b.on("ping", lambda inc: inc.reply(Ping(0)))
    net.a.receive("b", Envelope(1, "ping", b"short").encode(), 0.0)
    out = [Envelope.decode(d) for _, d in net.a.poll(0.0)]
    assert out[0].type == "_error" and b"undecodable" in out[0].payload


# -- conversations --------------------------------------------------------------------------


class Echo(Conversation):
    """Remote side: echoes every text in regard to the conversation, ends on "bye"."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def on_start(self, message: Any) -> None:
        self.log.append(f"start {message.text}")

    def on_message(self, message: Any, envelope: Envelope) -> None:
        if message == Text("bye"):
            self.end()
            return
        self.send(Text("echo " + message.text))

    def on_end(self, reason: str) -> None:
        self.log.append(f"end {reason}")


class Client(Conversation):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[Any] = []
        self.reason: str | None = None

    def on_message(self, message: Any, envelope: Envelope) -> None:
        self.got.append(message)

    def on_end(self, reason: str) -> None:
        self.reason = reason


def serve_echo(d: Dispatcher, log: list[str]) -> None:
    d.on("text", lambda inc: inc.start(Echo(log)))


def test_conversation_lifecycle() -> None:
    net = Net()
    log: list[str] = []
    serve_echo(net.b, log)
    client = Client()
    cid = net.a.start_conversation("b", client, Text("hello"))
    net.pump()
    assert log == ["start hello"]
    client.send(Text("one"))
    client.send(Text("two"))
    net.pump()
    assert client.got == [Text("echo one"), Text("echo two")]
    assert ("a", False, cid) in net.b.conversations
    client.send(Text("bye"))
    net.pump()
    assert log[-1] == "end done"
    assert net.b.conversations == {}
    # in_regards_to a finished conversation: dropped and counted.
    client.send(Text("anyone?"))
    net.pump()
    assert net.b.stats.unknown_conversations == 1
    client.end()
    assert client.reason == "done" and net.a.conversations == {}
    with pytest.raises(DispatchError):
        client.send(Text("late"))


def test_conversation_ids_do_not_clash_between_sides() -> None:
    net = Net()
    la: list[str] = []
    lb: list[str] = []
    serve_echo(net.a, la)
    serve_echo(net.b, lb)
    ca, cb = Client(), Client()
    ida = net.a.start_conversation("b", ca, Text("from a"))
    idb = net.b.start_conversation("a", cb, Text("from b"))
    assert ida == idb == 1  # both sides number from 1
    net.pump()
    ca.send(Text("x"))
    cb.send(Text("y"))
    net.pump()
    assert ca.got == [Text("echo x")] and cb.got == [Text("echo y")]


def test_children_end_with_parent_and_connection_close_ends_all() -> None:
    net = Net()
    serve_echo(net.b, [])
    parent = Client()
    net.a.start_conversation("b", parent, Text("p"))
    child = parent.spawn(Client(), "b", Text("c"))
    grandchild = child.spawn(Client(), "b", Text("g"))
    parent.end("stop")
    assert child.reason == "parent ended" and grandchild.reason == "parent ended"
    assert net.a.conversations == {}
    other = Client()
    net.a.start_conversation("b", other, Text("o"))
    net.pump()
    net.b.peer_closed("a")
    net.a.peer_closed("b")
    assert other.reason == "closed" and net.b.conversations == {}


def test_conversation_that_raises_ends_and_reports() -> None:
    class Fragile(Conversation):
        def on_message(self, message: Any, envelope: Envelope) -> None:
            raise ValueError("no")

    net = Net()
    net.b.on("text", lambda inc: inc.start(Fragile()))
    client = Client()
    net.a.start_conversation("b", client, Text("hi"))
    net.pump()
    client.send(Text("x"))
    net.pump()
    assert client.got == [RemoteError("conversation failed")]
    assert net.b.conversations == {}


# -- credit ---------------------------------------------------------------------------------


def test_credit_blocks_the_sender_until_granted() -> None:
    net = Net()
    sinks: list[Sink] = []
    net.b.on("text", lambda inc: sinks.append(inc.start(Sink())))  # type: ignore[func-returns-value]
    src = Client()
    net.a.start_conversation("b", src, Text("upload"))
    net.pump()
    chunk = b"x" * 10_000
    for _ in range(20):  # 200,000 bytes; the window is 65,536
        src.send(Blob(chunk))
    # Sent while credit remained: 7 messages (the 7th overshoots the window).
    assert src.waiting_bytes == 200_000 - 70_000 and src.send_credit == 65_536 - 70_000
    net.pump()
    assert sinks[0].bytes == 200_000 and src.waiting_bytes == 0
    credits = [e for who, e in net.wire if who == "b" and e.type == "_credit"]
    assert credits and all(e.in_regards_to == src.conv_id for e in credits)


def test_peer_that_never_grants_credit() -> None:
    net = Net()
    src = Client()
    net.a.start_conversation("b", src, Text("upload"))
    for _ in range(8):
        src.send(Blob(b"x" * 10_000))
    assert src.waiting_bytes == 10_000  # 70,000 sent (credit gone), the 8th waits
    # The connection is not blocked: other traffic flows.
    other = net.a.send("b", Text("hello"))
    assert other > 0 and any(Envelope.decode(d).type == "text" for _, d in net.a.poll(0.0))
    with pytest.raises(DispatchError):
        for _ in range(1000):
            src.send(Blob(b"y" * 10_000))  # the outbox is bounded
    src.end()
    assert src.waiting_bytes == 0


def test_credit_overflow_and_overrun_are_errors() -> None:
    net = Net()
    serve_echo(net.b, [])
    client = Client()
    cid = net.a.start_conversation("b", client, Text("hi"))
    net.pump()
    # b grants a credit that would overflow a's window: a ends the conversation.
    env = Envelope(99, "_credit", ser_compact_size(MAX_CREDIT), in_regards_to=cid)
    net.a.receive("b", env.encode(), 0.0)
    assert client.reason == "flow control error" and net.a.stats.flow_control_errors == 1
    # A sender that ignores credit: more than the window in regard to a conversation.
    ends: list[str] = []

    class LoggingSink(Sink):
        auto_credit = False  # holds what it receives: grants nothing back

        def on_end(self, reason: str) -> None:
            ends.append(reason)

    net2 = Net()
    net2.b.on("text", lambda inc: inc.start(LoggingSink()))  # type: ignore[func-returns-value]
    c2 = Client()
    cid2 = net2.a.start_conversation("b", c2, Text("hi"))
    net2.pump()
    for i in range(8):
        raw = Envelope(100 + i, "blob", b"z" * 10_000, in_regards_to=cid2, regards_sender=True)
        net2.b.receive("a", raw.encode(), 0.0)
    assert net2.b.stats.flow_control_errors == 1 and ends == ["flow control error"]


# -- fairness and rate limits -----------------------------------------------------------------


def test_bulk_transfer_delays_a_ping_by_at_most_one_message() -> None:
    net = Net()
    bulk = Client()
    net.a.start_conversation("b", bulk, Text("bulk"))
    net.a.poll(0.0)
    for _ in range(6):
        bulk.send(Blob(b"b" * 10_000))
    net.a.request("b", Ping(1), timeout=5, on_reply=lambda m: None)
    order = [Envelope.decode(d).type for _, d in net.a.poll(0.0)]
    assert order.index("ping") <= 1


def test_replies_go_before_new_requests_and_streams_round_robin() -> None:
    d = Dispatcher(registry(), now=0.0)
    c1, c2 = Client(), Client()
    d.start_conversation("p", c1, Text("c1"))
    d.start_conversation("p", c2, Text("c2"))
    d.poll(0.0)
    for i in range(3):
        c1.send(Text(f"1.{i}"))
        c2.send(Text(f"2.{i}"))
    d.send("p", Text("new"))
    d.send("p", Text("reply"), in_reply_to=5)
    texts = [Envelope.decode(x).payload.decode() for _, x in d.poll(0.0)]
    assert texts[0] == "reply"
    assert texts[1:] == ["1.0", "2.0", "new", "1.1", "2.1", "1.2", "2.2"]


def test_per_peer_rate_spreads_messages() -> None:
    d = Dispatcher(registry(), now=0.0, peer_rate=1000.0, peer_burst=1000.0)
    for _ in range(10):
        d.send("p", Blob(b"x" * 490))  # ~500 bytes each with the header
    assert len(d.poll(0.0)) == 2
    assert d.poll(0.1) == []
    wake = d.next_wakeup(0.1)
    assert wake is not None and 0.1 < wake <= 0.6
    assert len(d.poll(wake)) == 1
    assert len(d.poll(10.0)) == 2  # the burst caps what accrued


def test_global_upload_limit_across_peers() -> None:
    d = Dispatcher(registry(), now=0.0, upload_rate=1000.0, upload_burst=1000.0)
    for peer in ("p", "q", "r"):
        for _ in range(3):
            d.send(peer, Blob(b"x" * 490))
    first = d.poll(0.0)
    assert len(first) == 2 and {p for p, _ in first} == {"p", "q"}  # fair across peers
    # Replies skip the global limit.
    d.send("p", Text("answer"), in_reply_to=1)
    assert [p for p, _ in d.poll(0.0)] == ["p"]


def test_full_peer_queue_refuses() -> None:
    d = Dispatcher(registry(), now=0.0, peer_rate=0.0, peer_burst=0.0)
    with pytest.raises(DispatchError):
        for _ in range(100):
            d.send("p", Blob(b"x" * 1_000_000))


# -- token bucket ---------------------------------------------------------------------------


def test_token_bucket_in_simulated_time() -> None:
    b = TokenBucket(10.0, 5.0, now=0.0)
    assert b.try_take(5, 0.0) and not b.try_take(1, 0.0)
    assert b.when_available(1, 0.0) == pytest.approx(0.1)
    assert b.try_take(1, 0.1)
    assert b.available(100.0) == 5.0  # capped at the burst
    assert b.try_take(50, 100.0)  # larger than the burst: allowed once full
    assert b.available(100.0) == -45.0
    assert b.available(99.0) == -45.0  # a clock stepping back adds nothing
    free = TokenBucket(math.inf, 0.0, 0.0)
    assert free.try_take(10**9, 0.0) and free.when_available(10**9, 0.0) == 0.0
    with pytest.raises(ValueError):
        TokenBucket(-1.0, 1.0, 0.0)


def test_pending_requests_generic_keys() -> None:
    """The table Bitcoin peers use: ping nonce -> pong, getaddr -> addr."""
    table = PendingRequests()
    got: list[Any] = []
    done: list[str | None] = []
    table.add(7, ("pong", 1234), now=0.0, timeout=1200, on_reply=got.append, on_done=done.append)
    table.add(7, ("addr",), now=0.0, timeout=60, on_reply=got.append, on_done=done.append)
    with pytest.raises(DispatchError):
        table.add(7, ("addr",), now=0.0, timeout=60, on_reply=got.append)
    assert not table.resolve(7, ("pong", 999), "wrong nonce")
    assert table.resolve(7, ("pong", 1234), "pong")
    assert table.next_deadline() == 60.0
    assert table.expire(60.0) == 1
    assert got == ["pong"] and done == [None, "timeout"]
    assert table.unknown_replies == 1


def test_manual_credit_follows_consumption() -> None:
    class Slow(Sink):
        auto_credit = False

    net = Net()
    sinks: list[Slow] = []
    net.b.on("text", lambda inc: sinks.append(inc.start(Slow())))  # type: ignore[func-returns-value]
    src = Client()
    net.a.start_conversation("b", src, Text("upload"))
    net.pump()
    for _ in range(10):
        src.send(Blob(b"x" * 10_000))
    net.pump()
    assert sinks[0].bytes == 70_000 and src.waiting_bytes == 30_000
    sinks[0].consumed(40_000)  # the application caught up: 40,000 more may come
    net.pump()
    assert sinks[0].bytes == 100_000 and src.waiting_bytes == 0


def test_a_peer_cannot_start_conversations_without_end() -> None:
    from peerkeeper.dispatch.dispatcher import MAX_REMOTE_CONVERSATIONS

    net = Net()
    serve_echo(net.b, [])
    clients = [Client() for _ in range(MAX_REMOTE_CONVERSATIONS + 5)]
    for c in clients:
        net.a.start_conversation("b", c, Text("hi"))
    net.pump()
    assert len(net.b.conversations) == MAX_REMOTE_CONVERSATIONS
    refused = [c for c in clients if c.got and isinstance(c.got[0], RemoteError)]
    assert len(refused) == 5  # the refusal answers the first message: it reaches the client
    assert net.b.stats.handler_errors == 5
    clients[0].send(Text("bye"))
    net.pump()
    assert len(net.b.conversations) == MAX_REMOTE_CONVERSATIONS - 1
    net.b.peer_closed("a")
    assert net.b._remote_conversations == {}


def test_reply_to_the_first_message_reaches_the_conversation() -> None:
    net = Net()

    def welcome(inc: Incoming) -> None:
        inc.start(Echo([]))
        inc.reply(Text("welcome"))

    net.b.on("text", welcome)
    client = Client()
    net.a.start_conversation("b", client, Text("hello"))
    net.pump()
    assert client.got == [Text("welcome")]
    assert net.a.pending.unknown_replies == 0


def test_small_then_large_message_does_not_deadlock() -> None:
    """20,000 then 50,000 bytes: the second goes although only 45,536 credit is left
    (a window-sized wait would never end: the receiver grants per half window)."""
    net = Net()
    sinks: list[Sink] = []
    net.b.on("text", lambda inc: sinks.append(inc.start(Sink())))  # type: ignore[func-returns-value]
    src = Client()
    net.a.start_conversation("b", src, Text("up"))
    net.pump()
    src.send(Blob(b"a" * 20_000))
    src.send(Blob(b"b" * 50_000))
    src.send(Blob(b"c" * 1))
    net.pump()
    assert sinks[0].bytes == 70_001 and src.waiting_bytes == 0


def test_receive_never_raises_when_our_queue_is_full() -> None:
    from peerkeeper.dispatch.dispatcher import MAX_PEER_QUEUE

    d = Dispatcher(registry(), now=0.0, peer_rate=0.0, peer_burst=0.0)  # nothing drains
    sinks: list[Sink] = []
    d.on("text", lambda inc: sinks.append(inc.start(Sink())))  # type: ignore[func-returns-value]
    d.receive("p", Envelope(1, "text", b"go").encode(), 0.0)
    with pytest.raises(DispatchError):
        while True:
            d.send("p", Blob(b"f" * 1_000_000))
    assert d.queued_bytes("p") <= MAX_PEER_QUEUE
    # Incoming data that would trigger a credit grant, and a credit grant for our own
    # conversation, both need the full queue: nothing raises.
    for i in range(8):
        d.receive(
            "p",
            Envelope(10 + i, "blob", b"z" * 10_000, in_regards_to=1, regards_sender=True).encode(),
            0.0,
        )
    assert sinks[0].bytes == 80_000


def _fill_queue(d: Dispatcher, peer: str) -> None:
    """Queue blobs to ``peer`` until fewer than 16 bytes are left in its queue."""
    from peerkeeper.dispatch.dispatcher import MAX_PEER_QUEUE

    with pytest.raises(DispatchError):
        while True:
            d.send(peer, Blob(b"f" * 1_000_000))
    while (left := MAX_PEER_QUEUE - d.queued_bytes(peer)) >= 16:
        d.send(peer, Blob(b"f" * (left - 16)))


def _drain(d: Dispatcher, now: float = 0.0) -> list[Envelope]:
    """Poll ``d`` until nothing more comes; the envelopes written, in order."""
    out: list[Envelope] = []
    while True:
        batch = d.poll(now)
        if not batch:
            return out
        out.extend(Envelope.decode(data) for _peer, data in batch)


def test_a_credit_grant_refused_by_a_full_queue_is_sent_once_there_is_room() -> None:
    """The sender used its whole window while our queue was full: no more data will
    come, so the grant must be retried when the queue drains (else a permanent stall)."""
    d = Dispatcher(registry(), now=0.0)
    sinks: list[Sink] = []
    d.on("text", lambda inc: sinks.append(inc.start(Sink())))  # type: ignore[func-returns-value]
    d.receive("p", Envelope(1, "text", b"go").encode(), 0.0)
    _drain(d)
    _fill_queue(d, "p")
    for i in range(4):  # 4 x 16,384 = the sender's whole initial window
        env = Envelope(10 + i, "blob", b"z" * 16_384, in_regards_to=1, regards_sender=True)
        d.receive("p", env.encode(), 0.0)
    assert sinks[0].bytes == INITIAL_CREDIT and sinks[0].recv_allowed == 0
    sent = _drain(d)
    grants = [e for e in sent if e.type == "_credit"]
    assert [Reader(e.payload).compact_size(2**64) for e in grants] == [INITIAL_CREDIT]
    assert grants[0].in_regards_to == 1 and not grants[0].regards_sender
    assert sinks[0].recv_allowed == INITIAL_CREDIT


def test_a_conversation_message_refused_by_a_full_queue_is_sent_once_there_is_room() -> None:
    """A message with credit but no room in the peer's queue waits in the outbox and
    leaves when the queue drains, without another send or grant to push it."""
    d = Dispatcher(registry(), now=0.0)
    conv = Client()
    d.start_conversation("p", conv, Text("hello"))
    _fill_queue(d, "p")
    conv.send(Text("waiting for room"))
    assert conv.waiting_bytes == len(b"waiting for room")
    sent = _drain(d)
    assert conv.waiting_bytes == 0
    texts = [e for e in sent if e.type == "text"]
    assert [e.payload for e in texts] == [b"hello", b"waiting for room"]
    assert texts[1].in_regards_to == conv.conv_id and texts[1].regards_sender


def test_a_reused_conversation_id_is_refused() -> None:
    net = Net()
    net.b.on("text", lambda inc: inc.start(Client()))  # type: ignore[func-returns-value]
    raw = Envelope(7, "text", b"first").encode()
    net.b.receive("a", raw, 0.0)
    net.b.receive("a", raw, 0.0)  # the same id again: refused, the first one kept
    assert len(net.b.conversations) == 1
    assert net.b.stats.handler_errors == 1
    net.b.peer_closed("a")
    assert net.b.conversations == {} and net.b._remote_conversations == {}


def test_finished_requests_leave_the_heap_without_expire() -> None:
    table = PendingRequests()
    for n in range(10_000):
        table.add("p", n, now=0.0, timeout=60, on_reply=lambda m: None)
        table.cancel("p", n)
    assert len(table) == 0 and len(table._heap) <= 100


def test_a_codec_raising_anything_is_an_error_reply_not_a_crash() -> None:
    @dataclass(frozen=True)
    class Fragile:
        type: ClassVar[str] = "fragile"

        def encode(self) -> bytes:
            return b""

        @classmethod
        def decode(cls, payload: bytes) -> Fragile:
            raise IndexError("sloppy application codec")

    reg = registry()
    reg.register(Fragile)
    d = Dispatcher(reg, now=0.0)
    d.receive("p", Envelope(1, "fragile", b"x").encode(), 0.0)
    out = [Envelope.decode(x) for _, x in d.poll(0.0)]
    assert [e.type for e in out] == ["_error"] and d.stats.handler_errors == 1
