"""Connection-recency gossip (seed 004's first application): lists, deltas, introductions."""

from __future__ import annotations

import random

import pytest

from peerkeeper.daemon.gossipdemo import run_gossip_demo
from peerkeeper.dispatch.dispatcher import Dispatcher, Envelope
from peerkeeper.dispatch.gossip import (
    MAX_ENTRIES_PER_MESSAGE,
    Recency,
    RecencyEntry,
    RecencyGossip,
    RecencyList,
    gossip_codecs,
)
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.codec import DecodeError


def pid(n: int) -> bytes:
    return bytes([n]) * 16


def pt(n: int) -> Service:
    return Service(NetAddr.parse(f"11.{n}.0.1"), 9732)


def test_recency_list_order_and_limits() -> None:
    lst = RecencyList(limit=3)
    for n in (1, 2, 3):
        lst.record(pid(n), pt(n), 100 + n)
    lst.record(pid(1), pt(1), 200)  # reconnection: to the front, next sequence
    assert [e.peer_id for e in lst.newest_first()] == [pid(1), pid(3), pid(2)]
    assert lst.latest == 4
    lst.record(pid(4), pt(4), 300)  # over the limit: the oldest goes
    assert [e.peer_id for e in lst.newest_first()] == [pid(4), pid(1), pid(3)]
    assert [e.seq for e in lst.since(3)] == [4, 5]
    copy = RecencyList()
    assert copy.merge(list(reversed(lst.since(0))), lst.latest) == 3
    assert copy.merge(lst.since(0), lst.latest) == 0  # nothing new
    assert [e.peer_id for e in copy.newest_first()] == [pid(4), pid(1), pid(3)]


class Nodes:
    """Dispatchers named "a", "b", "c", fully meshed in memory, each with a gossip."""

    def __init__(self, names: str = "abc") -> None:
        self.d = {n: Dispatcher(gossip_codecs(), now=0.0) for n in names}
        self.dialled: list[tuple[str, Service]] = []
        self.g = {
            n: RecencyGossip(
                self.d[n],
                my_point=pt(ord(n)),
                connect=lambda point, req, n=n: self.dialled.append((n, point)),  # type: ignore[misc]
                is_connected=lambda peer: True,
                rng=random.Random(ord(n)),
            )
            for n in names
        }
        self.bytes = 0

    def pump(self) -> None:
        for _ in range(20):
            moved = False
            for name, d in self.d.items():
                for peer, data in d.poll(0.0):
                    self.bytes += len(data)
                    self.d[peer].receive(name, data, 0.0)
                    moved = True
            if not moved:
                return


def test_push_sends_only_what_is_new() -> None:
    net = Nodes("ab")
    a, b = net.g["a"], net.g["b"]
    for n in range(1, 6):
        a.connected(f"x{n}", pid(n), pt(n), 1000.0 + n)
    a.connected("b", ord("b").to_bytes(1, "big") * 16, pt(ord("b")), 2000.0)
    assert a.push("b", 0.0)
    assert not a.push("b", 0.0)  # one in flight
    net.pump()
    assert b.lists["a"].latest == a.mine.latest == 6
    assert a.acked["b"] == 6
    assert not a.push("b", 0.0)  # up to date: nothing sent
    first = net.bytes
    a.connected("x9", pid(9), pt(9), 3000.0)
    assert a.push("b", 0.0)
    net.pump()
    assert b.lists["a"].latest == 7
    assert net.bytes - first < first / 2  # the delta, not the whole list
    assert [e.peer_id for e in b.lists["a"].newest_first()][:2] == [pid(9), b"b" * 16]


def test_long_lists_go_in_several_messages() -> None:
    net = Nodes("ab")
    a, b = net.g["a"], net.g["b"]
    for n in range(250):
        a.connected(f"x{n}", n.to_bytes(16, "big"), pt(n % 200), float(n))
    for _ in range(5):
        a.push("b", 0.0)
        net.pump()
    assert b.lists["a"].latest == 250 and len(b.lists["a"]) == 250


def test_resync_after_data_loss() -> None:
    net = Nodes("ab")
    a, b = net.g["a"], net.g["b"]
    a.connected("x", pid(1), pt(1), 1.0)
    a.push("b", 0.0)
    net.pump()
    assert a.acked["b"] == 1
    b.resync("a", 0.0)  # b lost a's list: a hears it and starts again from 0
    net.pump()
    assert a.acked["b"] == 0
    a.push("b", 0.0)
    net.pump()
    assert b.lists["a"].latest == 1


def test_introduction_is_forwarded_to_the_third_party() -> None:
    net = Nodes("abc")
    a, b = net.g["a"], net.g["b"]
    b.connected("a", b"a" * 16, pt(ord("a")), 1.0)
    b.connected("c", b"c" * 16, pt(ord("c")), 2.0)
    results: list[bool] = []
    a.introduce("b", b"c" * 16, 0.0, results.append)
    net.pump()
    assert results == [True]
    assert net.dialled == [("c", pt(ord("a")))]  # c dials a's point
    a.introduce("b", b"z" * 16, 0.0, results.append)  # b does not know z
    net.pump()
    assert results == [True, False]
    assert b.introductions_forwarded == 1


def test_recency_decode_errors() -> None:
    entry = RecencyEntry(1, pid(1), pt(1), 5)
    good = Recency(7, 0, 1, (entry,)).encode()
    assert Recency.decode(good) == Recency(7, 0, 1, (entry,))
    with pytest.raises(DecodeError):
        Recency.decode(good + b"\x00")
    with pytest.raises(DecodeError):
        Recency.decode(Recency(7, 0, 0, (entry,)).encode())  # entry newer than the list
    with pytest.raises(DecodeError):
        Recency.decode(Recency(7, 5, 1, ()).encode())  # base beyond the list
    too_many = bytes(8) + b"\x00\x01" + bytes([MAX_ENTRIES_PER_MESSAGE + 1])
    with pytest.raises(DecodeError):
        Recency.decode(too_many)
    # Over the wire, an undecodable update gets an _error reply, nothing is stored.
    net = Nodes("ab")
    net.d["b"].receive("a", Envelope(1, "recency", b"\x01\x05").encode(), 0.0)
    out = [Envelope.decode(d) for _, d in net.d["b"].poll(0.0)]
    assert [e.type for e in out] == ["_error"] and "a" not in net.g["b"].lists


def test_a_restart_on_either_side_converges_again() -> None:
    net = Nodes("ab")
    a = net.g["a"]
    for n in range(1, 6):
        a.connected(f"x{n}", pid(n), pt(n), float(n))
    a.push("b", 0.0)
    net.pump()
    assert net.g["b"].lists["a"].latest == 5
    # b restarts: a new dispatcher and gossip, nothing remembered.
    net.d["b"] = Dispatcher(gossip_codecs(), now=0.0)
    net.g["b"] = RecencyGossip(
        net.d["b"],
        my_point=pt(98),
        connect=lambda p, r: None,
        is_connected=lambda p: True,
        rng=random.Random(198),
    )
    a.connected("x9", pid(9), pt(9), 9.0)
    for _ in range(3):
        a.push("b", 0.0)
        net.pump()
    assert [e.peer_id for e in net.g["b"].lists["a"].newest_first()] == [
        pid(9),
        pid(5),
        pid(4),
        pid(3),
        pid(2),
        pid(1),
    ]
    # a restarts: its sequences start again under a new epoch; b replaces its copy.
    net.d["a"] = Dispatcher(gossip_codecs(), now=0.0)
    a2 = RecencyGossip(
        net.d["a"],
        my_point=pt(97),
        connect=lambda p, r: None,
        is_connected=lambda p: True,
        rng=random.Random(197),  # a new run draws a new epoch
    )
    net.g["a"] = a2
    a2.connected("x7", pid(7), pt(7), 20.0)
    a2.push("b", 0.0)
    net.pump()
    assert [e.peer_id for e in net.g["b"].lists["a"].newest_first()] == [pid(7)]


def test_counterparty_tables_are_bounded() -> None:
    from peerkeeper.dispatch.gossip import MAX_COUNTERPARTIES

    net = Nodes("b")
    b = net.g["b"]
    for n in range(MAX_COUNTERPARTIES + 50):
        env = Envelope(n + 1, "recency", Recency(n, 0, 0, ()).encode())
        net.d["b"].receive(f"peer{n}", env.encode(), 0.0)
    assert len(b.lists) == MAX_COUNTERPARTIES and len(b.epochs) == MAX_COUNTERPARTIES
    assert "peer0" not in b.lists and f"peer{MAX_COUNTERPARTIES + 49}" in b.lists
    b.connected("c", pid(3), pt(3), 1.0)
    b.disconnected("c")
    assert "c" not in b.points and "c" not in b.ids


@pytest.mark.timeout(60)
async def test_demo_converges() -> None:
    lines: list[str] = []
    result = await run_gossip_demo(6, seconds=20, out=lines.append)
    assert result.converged_after is not None, lines
    assert all(2 <= c <= 6 for c in result.connections)
    assert result.pairs > 0 and result.entries_sent > 0
    assert any(line.startswith("converged after") for line in lines)
    assert result.introductions_forwarded <= result.introductions_asked


def test_demo_needs_two_nodes() -> None:
    import asyncio

    with pytest.raises(ValueError):
        asyncio.run(run_gossip_demo(1))
