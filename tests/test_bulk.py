"""Bulk transfer in instalments, in simulated time (seed 004 "Minimal system")."""

from __future__ import annotations

import pytest

from peerkeeper.dispatch.bulk import (
    NACK_DELAY,
    BulkReceiver,
    BulkSender,
    Instalment,
    bulk_codecs,
    serve_bulk,
)
from peerkeeper.dispatch.dispatcher import Dispatcher, Envelope


class Wire:
    def __init__(self, drop: set[int] | None = None) -> None:
        self.now = 0.0
        self.a = Dispatcher(bulk_codecs(), now=0.0)  # asks
        self.b = Dispatcher(bulk_codecs(), now=0.0)  # serves
        self.drop = set(drop or ())
        self.senders: list[BulkSender] = []
        self.sent_at: dict[int, list[float]] = {}

        def read(peer: object, offset: int, n: int) -> bytes:
            return bytes((offset + i) % 251 for i in range(n))

        serve_bulk(self.b, read)
        orig = self.b.handlers["bulkreq"]

        def spy(inc: object) -> None:
            orig(inc)  # type: ignore[arg-type]
            self.senders.extend(
                c for c in self.b.conversations.values() if isinstance(c, BulkSender)
            )

        self.b.handlers["bulkreq"] = spy

    def run(self, until: float, step: float = 0.05) -> None:
        while self.now <= until:
            for name, me, other in (("a", self.a, self.b), ("b", self.b, self.a)):
                me.tick(self.now)
                for _, data in me.poll(self.now):
                    env = Envelope.decode(data)
                    if env.type == "instalment":
                        index = Instalment.decode(env.payload).index
                        self.sent_at.setdefault(index, []).append(self.now)
                        if index in self.drop:
                            self.drop.discard(index)  # lost once
                            continue
                    other.receive(name, data, self.now)
            self.now = round(self.now + step, 6)


def expected(total: int) -> bytes:
    return bytes(i % 251 for i in range(total))


def test_instalments_follow_the_schedule() -> None:
    w = Wire()
    got: list[bytes] = []
    rx = BulkReceiver(100_000, 10_000, 10_000, got.append)
    w.a.start_conversation("b", rx, rx.request)
    w.run(12.0)
    assert got == [expected(100_000)]
    # The first instalment at once, then one per size / rate = 1 s.
    starts = [w.sent_at[i][0] for i in range(10)]
    assert starts[0] <= 0.1
    for k in range(1, 10):
        assert abs(starts[k] - starts[0] - k) <= 0.11
    assert rx.nacks_sent == 0 and rx.ended == "done"
    assert w.senders and w.senders[0].ended == "done"  # ended by bulkdone
    assert w.a.conversations == {} and w.b.conversations == {}


def test_missed_instalment_is_nacked_and_resent() -> None:
    w = Wire(drop={3})
    got: list[bytes] = []
    rx = BulkReceiver(60_000, 10_000, 10_000, got.append)
    w.a.start_conversation("b", rx, rx.request)
    w.run(15.0)
    assert got == [expected(60_000)]
    assert rx.nacks_sent >= 1 and w.senders[0].resent >= 1
    # Instalment 3 went twice: the resend came after the nack delay.
    assert len(w.sent_at[3]) == 2
    assert w.sent_at[3][1] - w.sent_at[3][0] >= NACK_DELAY


def test_last_instalment_lost_is_recovered() -> None:
    w = Wire(drop={4})
    got: list[bytes] = []
    rx = BulkReceiver(50_000, 10_000, 10_000, got.append)
    w.a.start_conversation("b", rx, rx.request)
    w.run(15.0)
    assert got == [expected(50_000)]
    assert len(w.sent_at[4]) == 2


def test_connection_close_ends_both_sides() -> None:
    w = Wire()
    rx = BulkReceiver(1_000_000, 10_000, 10_000, lambda data: None)
    w.a.start_conversation("b", rx, rx.request)
    w.run(2.0)
    w.a.peer_closed("b")
    w.b.peer_closed("a")
    assert rx.ended == "closed" and w.senders[0].ended == "closed"
    before = sum(len(v) for v in w.sent_at.values())
    w.run(5.0)
    assert sum(len(v) for v in w.sent_at.values()) == before  # the schedule stopped


def test_a_huge_request_costs_no_memory_and_too_huge_is_refused() -> None:
    from peerkeeper.dispatch.bulk import MAX_BULK_TOTAL, BulkRequest
    from peerkeeper.wire.codec import DecodeError

    w = Wire()
    rx = BulkReceiver(MAX_BULK_TOTAL, 10_000, 1, lambda data: None)  # 2^40 instalments
    w.a.start_conversation("b", rx, rx.request)
    w.run(0.5)
    sender = w.senders[0]
    assert sender.count == MAX_BULK_TOTAL and sender.next_index > 0 and not sender.resend
    with pytest.raises(DecodeError):
        BulkRequest.decode(BulkRequest(MAX_BULK_TOTAL + 1, 1, 1).encode())


def test_duplicates_and_nack_floods_stay_bounded() -> None:
    from peerkeeper.dispatch.bulk import BulkNack

    w = Wire()
    rx = BulkReceiver(100_000, 10_000, 10_000, lambda data: None)
    cid = w.a.start_conversation("b", rx, rx.request)
    w.run(0.2)
    sender = w.senders[0]
    # The same nack 200 times: each sent index queued once.
    for i in range(200):
        nack = Envelope(
            500 + i,
            "bulknack",
            BulkNack(tuple(range(1000))).encode(),
            in_regards_to=cid,
            regards_sender=True,
        )
        w.b.receive("a", nack.encode(), w.now)
    assert len(sender.resend) <= sender.next_index
    # Duplicate and out-of-range instalments: one timer pending at most.
    for i in range(2000):
        inst = Instalment(i % 3 if i % 2 else 10_000 + i, 0, 0, 4_000_000_000, b"x")
        env = Envelope(900 + i, "instalment", inst.encode(), in_regards_to=cid)
        w.a.receive("b", env.encode(), w.now)
    assert len(w.a._timers) <= 2
