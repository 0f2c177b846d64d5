"""Native nodes over loopback: handshake, pool rules, maintenance, swaps, bad input.

Every node gets a virtual point 11.<i>.0.1:9732 mapped to its loopback port (the
virtual network of tests/support.py); it dials from 127.1.<i>.1 and its accepted
peers are mapped back to their virtual address, so the pool's per-address rules
(greylists) see one address per node. Only loopback sockets are opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from support import NATIVE_DIFFICULTY as DIFFICULTY
from support import VirtualNet as Net
from support import native, vpoint
from support import native_identity as identity
from support import wait_until as until

from peerkeeper import NativeConfig, NativeNode, NetAddr
from peerkeeper.native.identity import Identity, IdentityError
from peerkeeper.native.maintenance import MaintenanceConfig, swap_candidates
from peerkeeper.native.messages import (
    MAX_POINTS,
    Advertise,
)
from peerkeeper.native.messages import (
    Identity as IdentityMessage,
)
from peerkeeper.native.peer import NativePeer
from peerkeeper.native.pool import PoolEvent
from peerkeeper.native.poolstate import PointState

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """A callback that raised (logged by SockMan or a task) fails the test."""
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


class SimClock:
    """A clock that moves only when the test says (seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_handshake_and_envelope(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        got: list[tuple[object, bytes]] = []
        b.on_envelope = lambda peer, payload: got.append((peer, payload))
        stream = b.events.stream() if b.events else None
        assert await a.connect(vpoint(2)) == b.peer_id
        await until(lambda: b.pool is not None and b.pool.active_connections() == 1)
        assert b.pool is not None and a.pool is not None
        # b sees a on a's listening point (virtual address, advertised port).
        assert b.pool.known_peer_ids[a.peer_id].current_point == vpoint(1)
        assert a.send_envelope(b.peer_id, b"hello")
        await until(lambda: bool(got))
        assert got == [(a.peer_id, b"hello")]
        assert stream is not None
        kinds = []
        while stream._queue:
            kinds.append((await stream.__anext__()).kind)
        assert "new_peer" in kinds and "connection_established" in kinds
        # Already connected: a second dial is refused by the pool itself.
        assert await a.connect(vpoint(2)) is None


async def test_identity_file_created_once(tmp_path: Path) -> None:
    config = NativeConfig(datadir=tmp_path / "x", pow_difficulty=DIFFICULTY, maintenance=False)
    node = NativeNode(config)
    await node.start()
    first = node.peer_id
    await node.stop()
    path = tmp_path / "x" / "identity.json"
    assert os.stat(path).st_mode & 0o777 == 0o600
    node = NativeNode(config)
    await node.start()
    assert node.peer_id == first
    await node.stop()


async def test_wrong_expected_identity_refused_and_greylisted(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        assert a.pool is not None
        a.pool.set_expected_peer_id(vpoint(2), identity(7).peer_id, 0.0)
        assert await a.connect(vpoint(2)) is None
        assert a.pool.banned_addr(vpoint(2).addr)
        assert a.pool.active_connections() == 0
        await until(lambda: b.pool is not None and b.pool.active_connections() == 0)
        # Greylisted: no further dial, and its connections are refused at accept.
        assert await a.connect(vpoint(2)) is None
        assert a.greylisted_dials == 1
        assert await b.connect(vpoint(1)) is None


async def test_private_mode_only_trusted(tmp_path: Path) -> None:
    net = Net()
    async with (
        native(net, tmp_path, 1, private_mode=True, trusted_points=((vpoint(2), None),)) as p,
        native(net, tmp_path, 2) as trusted,
        native(net, tmp_path, 3) as other,
    ):
        assert p.pool is not None and trusted.pool is not None
        assert await p.connect(vpoint(3)) is None  # not trusted: never dialled
        assert vpoint(3) not in [svc for _, svc in net.dials]
        assert await other.connect(vpoint(1)) is None  # not trusted: nacked
        assert await p.connect(vpoint(2)) == trusted.peer_id
        # The trusted peer learns that p is private: p is never advertised.
        assert vpoint(1) not in trusted.pool.list_known_points(ignore_private=True)
        # Advertisements to a private node are ignored.
        before = set(p.pool.known_points)
        trusted.send(p.peer_id, Advertise((vpoint(9), vpoint(10))))
        await asyncio.sleep(0.2)
        assert set(p.pool.known_points) == before
        # A private node never proposes a swap.
        assert not p.propose_swap()


async def test_swap_changes_topology_not_count(tmp_path: Path) -> None:
    net = Net()
    async with AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(native(net, tmp_path, i)) for i in range(4)]
        a, b, c, d = nodes
        assert await a.connect(vpoint(1)) == b.peer_id
        assert await a.connect(vpoint(2)) == c.peer_id
        assert await b.connect(vpoint(3)) == d.peer_id

        def edges() -> set[frozenset[int]]:
            out = set()
            for i, n in enumerate(nodes):
                assert n.pool is not None
                for info in n.pool.running_peers():
                    j = next(k for k, m in enumerate(nodes) if m.peer_id == info.peer_id)
                    out.add(frozenset((i, j)))
            return out

        await until(lambda: len(edges()) == 3)
        before = edges()
        assert before == {frozenset((0, 1)), frozenset((0, 2)), frozenset((1, 3))}
        # a asks b to take c; b answers with d: a <-> d and b <-> c replace a-c and b-d.
        a.rng = random.Random(0)
        while True:  # make the draw pick recipient b and proposal c
            state = a.rng.getstate()
            assert a.pool is not None
            cands = swap_candidates(a.pool, set())
            r, p = a.rng.sample(cands, 2)
            if r.peer_id == b.peer_id and p.peer_id == c.peer_id:
                a.rng.setstate(state)
                break
        assert a.propose_swap()
        assert not a.propose_swap()  # one proposal at a time (swap_linger)
        await until(lambda: edges() == {frozenset((0, 1)), frozenset((0, 3)), frozenset((1, 2))})
        assert len(edges()) == len(before)


async def test_twenty_nodes_converge(tmp_path: Path) -> None:
    limits = MaintenanceConfig(
        min_connections=3,
        expected_connections=5,
        max_connections=8,
        maintenance_idle_time=1.0,
        time_between_looking_for_peers=0.2,
    )
    net = Net()
    async with AsyncExitStack() as stack:
        nodes = []
        for i in range(20):
            boot = [vpoint(0)] if i else []
            nodes.append(
                await stack.enter_async_context(
                    native(net, tmp_path, i, limits=limits, maintenance=True, bootstrap=boot)
                )
            )
        ids = {n.peer_id for n in nodes}
        assert len(ids) == 20

        def counts() -> list[int]:
            return [n.pool.active_connections() for n in nodes if n.pool is not None]

        await until(lambda: all(3 <= c <= 8 for c in counts()), timeout=60)
        assert all(3 <= c <= 8 for c in counts())
        assert all(d.addr.is_ipv4() and str(d.addr).startswith("11.") for _, d in net.dials)


async def test_bad_identities_are_greylisted(tmp_path: Path) -> None:
    """A forged signature, a stamp below the difficulty, a replayed identity."""
    net = Net()
    async with native(net, tmp_path, 1) as node:
        assert node.pool is not None
        host, port = node.listening[0]
        me = identity(5)
        weak = None
        for seed in range(1000):  # an identity whose stamp is below 4 bits... at 0 bits
            cand = Identity.generate(0.0, random.Random(seed))
            from peerkeeper.native.identity import check_proof_of_work

            if not check_proof_of_work(cand.public_key, cand.stamp, DIFFICULTY):
                weak = cand
                break
        assert weak is not None

        async def attempt(i: int, make: Callable[[bytes], IdentityMessage]) -> bool:
            """Connect from 127.1.i.1, send ``make(session_id)``; True if closed on us."""
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(f"127.1.{i}.1", 0)
            )
            peer = NativePeer(
                me,
                inbound=False,
                listen_port=0,
                private=False,
                difficulty=0.0,
                rng=random.Random(5),
                now=0.0,
            )
            peer._sent_identity = True  # we send our own (bad) identity below
            writer.write(peer.data_to_send())
            try:
                async with asyncio.timeout(5):
                    while peer.session_id is None:
                        data = await reader.read(65536)
                        if not data:
                            return True
                        peer.receive_data(data, 0.0)
                    peer.send(make(peer.session_id))
                    writer.write(peer.data_to_send())
                    while await reader.read(65536):
                        pass
                    return True
            finally:
                writer.close()

        def signed(ident: Identity, session: bytes, *, forge: bool = False) -> IdentityMessage:
            data = IdentityMessage.signed_data(session, ident.public_key, ident.stamp, 0, False)
            sig = ident.sign(data)
            if forge:
                sig = bytes([sig[0] ^ 1]) + sig[1:]
            return IdentityMessage(ident.public_key, ident.stamp, 0, False, sig)

        assert await attempt(11, lambda s: signed(me, s, forge=True))
        assert node.pool.banned_addr(NetAddr.parse("11.11.0.1"))
        assert await attempt(12, lambda s: signed(weak, s))
        assert node.pool.banned_addr(NetAddr.parse("11.12.0.1"))
        # Replay: a valid identity signed for another session id.
        assert await attempt(13, lambda s: signed(me, bytes(32)))
        assert node.pool.banned_addr(NetAddr.parse("11.13.0.1"))
        # Greylisted addresses are then refused at accept.
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.1.11.1", 0))
        async with asyncio.timeout(5):
            assert await reader.read(100) == b""
        writer.close()
        assert node.pool.active_connections() == 0


async def test_oversized_advertise_greylists(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        assert await a.connect(vpoint(2)) == b.peer_id
        assert a.pool is not None and b.pool is not None
        conn = a.conn_of(b.peer_id)
        assert conn is not None and conn.peer is not None
        # 101 points: bypass the encoder's own check to send what a bad peer would.
        from peerkeeper.wire.codec import ser_compact_size

        point = Advertise((vpoint(9),)).encode()[1:]
        conn.peer.transport.send("advertise", ser_compact_size(MAX_POINTS + 1) + point * 101)
        a.core._flush(conn)
        a._drain()
        await until(lambda: b.pool is not None and b.pool.banned_peer(a.peer_id))
        assert b.pool.banned_addr(vpoint(1).addr)
        await until(lambda: a.pool is not None and a.pool.active_connections() == 0)


async def test_connection_flood_keeps_greylist_memory_fixed(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1, ip_greylist_size_in_kilobytes=16) as node:
        assert node.pool is not None
        grey = node.pool.ip_greylist
        before = grey.memory_bytes
        host, port = node.listening[0]
        # 200 connections from one IP sending garbage: each is greylisted (the first
        # already refuses the rest at accept), none is kept.
        writers = []
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=("127.1.50.1", 0)
                )
            except OSError:
                continue
            # A v1 "version" header under another magic: no v1 fallback, greylisted.
            writer.write(b"\xf9\xbe\xb4\xd9version\x00\x00\x00\x00\x00" + os.urandom(64))
            writers.append(writer)
        await asyncio.sleep(0.3)
        for w in writers:
            w.close()
        assert node.pool.banned_addr(NetAddr.parse("11.50.0.1"))
        for n in range(20_000):  # and a flood of distinct addresses
            node.pool.greylist_addr(NetAddr.parse(f"12.{n // 256 % 256}.{n % 256}.1"), 0.0)
        assert grey.memory_bytes == before
        assert node.pool.active_connections() == 0


async def test_pool_saved_and_restored(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        assert await a.connect(vpoint(2)) == b.peer_id
        assert a.pool is not None
        a.pool.trust_point(vpoint(3), 0.0)
    peers = json.loads((tmp_path / "n1" / "peers.json").read_text())
    assert [p["peer_id"] for p in peers] == [str(b.peer_id)]
    assert "last_disconnection" in peers[0]
    async with native(net, tmp_path, 1) as again:
        assert again.pool is not None
        assert b.peer_id in again.pool.known_peer_ids
        assert again.pool.known_points[vpoint(3)].trusted
        assert vpoint(2) in again.pool.known_points


async def test_trusted_point_reconnected_with_backoff(tmp_path: Path) -> None:
    """Maintenance redials a trusted point when its back-off ends, on the node's
    simulated clock with Octez's delays (point_reconnection_config.ml: 1 s, x1.2 after
    each failed dial; 60 s after a running connection) and ``cannot_reconnect_yet``
    (p2p_point_state.ml: no dial while ``now <= end``)."""
    net = Net()
    clock = SimClock()
    limits = MaintenanceConfig(min_connections=0, expected_connections=0, max_connections=4)
    async with native(
        net,
        tmp_path,
        1,
        clock=clock,
        limits=limits,
        maintenance=True,
        trusted_points=((vpoint(2), identity(2).peer_id),),
    ) as a:
        assert a.pool is not None
        pool = a.pool
        info = pool.known_points[vpoint(2)]

        def dials() -> int:
            return sum(1 for _, d in net.dials if d == vpoint(2))

        def waiting(n: int) -> Callable[[], bool]:
            """n dials made, the last one over, the worker's wakeup at the back-off end."""
            return lambda: (
                dials() == n
                and info.state is PointState.DISCONNECTED
                and info.reconnection_end is not None
                and a.core.schedule.next_wakeup() == math.nextafter(info.reconnection_end, math.inf)
            )

        async def advance_to(t: float) -> None:
            clock.now = t
            a.wake()
            await asyncio.sleep(0.05)  # the timer, the worker and a refused dial run

        # Not there yet: dialled at start, then at each back-off end, the delay growing
        # 1.2x; never before the end (no busy loop).
        t0 = clock.now
        await until(waiting(1))
        assert info.reconnection_end == t0 + 1.0
        ends = [t0]
        for n in range(2, 5):
            end = info.reconnection_end
            assert end is not None
            await advance_to(end)
            assert dials() == n - 1  # now == end: cannot reconnect yet
            clock.now = math.nextafter(end, math.inf)
            a.wake()
            await until(waiting(n))
            ends.append(clock.now)
        gaps = [b - a for a, b in zip(ends, ends[1:], strict=False)]
        assert gaps == pytest.approx([1.0, 1.2, 1.44])
        assert info.reconnection_delay == pytest.approx(1.2**4)
        # b comes up: dialled at the end of the back-off, not before.
        async with native(net, tmp_path, 2, clock=clock) as b:
            end = info.reconnection_end
            assert end is not None
            await advance_to(end)
            assert b.peer_id not in pool.connected_peer_ids() and dials() == 4
            clock.now = math.nextafter(end, math.inf)
            a.wake()
            await until(lambda: b.peer_id in pool.connected_peer_ids())
        await until(waiting(5))
        # A running connection ended: 60 s back-off, delay reset (Octez set_disconnected).
        assert info.reconnection_end == clock.now + 60.0 and info.reconnection_delay == 1.0
        assert info.trusted
        async with native(net, tmp_path, 2, clock=clock) as b:
            end = info.reconnection_end
            await advance_to(end)
            assert b.peer_id not in pool.connected_peer_ids() and dials() == 5
            clock.now = math.nextafter(end, math.inf)
            a.wake()
            await until(lambda: b.peer_id in pool.connected_peer_ids())
        # Never greylisted, never collected.
        assert not pool.greylist_addr(vpoint(2).addr, 0.0)
        assert vpoint(2) in pool.known_points


async def test_maintenance_waits_on_the_node_clock(tmp_path: Path) -> None:
    """Octez ask_for_more_contacts waits time_between_looking_for_peers (5 s) when no
    point can be contacted, and worker_loop idles maintenance_idle_time (120 s) between
    passes within bounds (its swap proposal shows the pass): both in simulated time."""
    net = Net()
    clock = SimClock()
    t0 = clock.now
    # Too few connections and one known point that refuses: dialled, then nothing left.
    limits = MaintenanceConfig(min_connections=1, expected_connections=1, max_connections=4)
    async with native(
        net, tmp_path, 1, clock=clock, limits=limits, maintenance=True, bootstrap=[vpoint(5)]
    ) as a:

        def dials() -> int:
            return sum(1 for _, d in net.dials if d == vpoint(5))

        await until(lambda: dials() == 1 and a.core.schedule.next_wakeup() == t0 + 5.0)
        clock.now = t0 + 4.99
        a.wake()
        await asyncio.sleep(0.05)
        assert dials() == 1
        clock.now = t0 + 5.0  # a new round: the point's miss is before it, back-off over
        a.wake()
        await until(lambda: dials() == 2 and a.core.schedule.next_wakeup() == t0 + 10.0)
    # Within bounds: idle 120 s, then a pass that proposes a swap (two peers to trade).
    limits = MaintenanceConfig(min_connections=0, expected_connections=2, max_connections=4)
    async with (
        native(net, tmp_path, 11, clock=clock, limits=limits, maintenance=True) as a,
        native(net, tmp_path, 12, clock=clock) as b,
        native(net, tmp_path, 13, clock=clock) as c,
    ):
        t1 = clock.now
        await until(lambda: a.core.schedule.next_wakeup() == t1 + 120.0)
        assert await a.connect(vpoint(12)) == b.peer_id
        assert await a.connect(vpoint(13)) == c.peer_id
        clock.now = t1 + 119.99
        a.wake()
        await asyncio.sleep(0.05)
        assert a.core.last_swap_proposal == float("-inf")
        clock.now = t1 + 120.0
        a.wake()
        await until(lambda: a.core.last_swap_proposal == t1 + 120.0)
        await until(lambda: a.core.schedule.next_wakeup() == t1 + 240.0)


async def test_events_and_triggers(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        assert a.events is not None and a.pool is not None
        stream = a.events.stream(maxsize=3)
        waits = {
            name: asyncio.ensure_future(a.events.wait(name, timeout=10))  # type: ignore[arg-type]
            for name in ("new_point", "new_peer", "new_connection", "disconnection")
        }
        await asyncio.sleep(0)
        assert await a.connect(vpoint(2)) == b.peer_id
        assert b.disconnect(a.peer_id)
        done = {name: await fut for name, fut in waits.items()}
        assert done["new_point"] is not None and done["new_point"].point == vpoint(2)
        assert done["new_peer"] is not None and done["new_peer"].peer_id == b.peer_id
        assert done["new_connection"] is not None
        assert done["new_connection"].kind == "connection_established"
        assert done["disconnection"] is not None
        assert done["disconnection"].reason == "closed by peer"
        # The stream kept the last 3 events and counted what it dropped.
        assert len(stream._queue) == 3 and stream.dropped >= 3
        assert stream._queue[-1].kind == "connection_closed"
        assert await a.events.wait("new_peer", timeout=0.05) is None
        with pytest.raises(ValueError):
            await a.events.wait("nonsense", timeout=0.05)  # type: ignore[arg-type]


async def test_connecting_to_ourselves(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as a:
        assert a.pool is not None
        assert await a.connect(vpoint(1)) is None
        assert vpoint(1) in a.pool.my_id_points
        assert vpoint(1) not in a.pool.known_points
        assert a.pool.may_dial(vpoint(1), 0.0) == "myself"


async def test_corrupt_files(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    net = Net()
    datadir = tmp_path / "n1"
    datadir.mkdir()
    (datadir / "peers.json").write_text('[{"peer_id": "garbage"}]')
    async with native(net, tmp_path, 1) as a:
        assert a.pool is not None and a.pool.known_peer_ids == {}
    assert "ignoring saved pool state" in caplog.text
    # The corrupt peers file was replaced at stop by a good one; the SQLite copy rules.
    assert json.loads((datadir / "peers.json").read_text()) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "identity.json").write_text("{}")
    node = NativeNode(NativeConfig(datadir=bad, maintenance=False))
    with pytest.raises(IdentityError, match="identity.json"):
        await node.start()
    assert (bad / "identity.json").read_text() == "{}"


async def _raw_native_client(
    host: str, port: int, me: Identity, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, NativePeer]:
    """A hand-driven native client that completes the handshake."""
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    peer = NativePeer(
        me,
        inbound=False,
        listen_port=0,
        private=False,
        difficulty=0.0,
        rng=random.Random(5),
        now=0.0,
    )
    writer.write(peer.data_to_send())
    async with asyncio.timeout(5):
        while peer.state != "running":
            data = await reader.read(65536)
            assert data, "closed during the handshake"
            for action in peer.receive_data(data, 0.0):
                if type(action).__name__ == "Authenticated":
                    peer.accept(0.0)
            writer.write(peer.data_to_send())
    return reader, writer, peer


async def test_a_peer_that_does_not_read_is_not_read(tmp_path: Path) -> None:
    """When our buffer for a peer is full (Core's fPauseSend) we stop reading it until it
    drains; bootstraps are answered at most every 5 s."""
    from peerkeeper.native.messages import Bootstrap, Ping

    net = Net()
    async with native(net, tmp_path, 1) as node:
        assert node.pool is not None and node.sockman is not None
        sm = node.sockman
        host, port = node.listening[0]
        reader, writer, peer = await _raw_native_client(host, port, identity(9), "127.1.9.1")
        conn_id = next(iter(node.core.conns))
        calls: list[str] = []
        real_pause, real_resume = sm.pause_receiving, sm.resume_receiving
        sm.send_paused = lambda cid: True  # type: ignore[method-assign]
        sm.pause_receiving = lambda cid: calls.append("pause") or real_pause(cid)  # type: ignore[method-assign,func-returns-value]
        sm.resume_receiving = lambda cid: calls.append("resume") or real_resume(cid)  # type: ignore[method-assign,func-returns-value]
        for _ in range(3):
            peer.send(Bootstrap())
        peer.send(Ping(1))
        writer.write(peer.data_to_send())
        await until(lambda: calls == ["pause"])
        assert conn_id in node.paused
        node.on_writable(conn_id)
        assert calls == ["pause", "resume"] and conn_id not in node.paused
        # Three bootstraps in a row got one advertise.
        answers: list[object] = []

        async def read_for(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    while True:
                        for action in peer.receive_data(await reader.read(65536), 0.0):
                            answers.append(getattr(action, "message", action))

        await read_for(1.0)
        assert sum(type(m).__name__ == "Advertise" for m in answers) == 1
        writer.close()


async def test_stop_closes_connections_still_in_handshake(tmp_path: Path) -> None:
    net = Net()
    node_cm = native(net, tmp_path, 1)
    node = await node_cm.__aenter__()
    host, port = node.listening[0]
    reader, writer = await asyncio.open_connection(host, port, local_addr=("127.1.8.1", 0))
    await asyncio.sleep(0.1)
    assert len(node.core.conns) == 1
    async with asyncio.timeout(3):
        await node_cm.__aexit__(None, None, None)
        while await reader.read(65536):
            pass  # EOF: the node closed it
    assert node.core.conns == {}
    writer.close()


async def test_housekeeping_survives_a_failing_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Saves run on the node's clock (every HOUSEKEEPING_INTERVAL here: SAVE_INTERVAL
    is 0); a failing store is logged and retried, and the timer keeps running."""
    import sqlite3

    import peerkeeper.shell.nativenode as nn

    monkeypatch.setattr(nn, "SAVE_INTERVAL", 0.0)
    net = Net()
    clock = SimClock()
    t0 = clock.now
    async with native(net, tmp_path, 1, clock=clock) as node:

        async def broken() -> None:
            raise sqlite3.OperationalError("disk I/O error")

        node.save_peers = broken  # type: ignore[method-assign]
        host, port = node.listening[0]
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.1.8.1", 0))
        await until(lambda: len(node.core.conns) == 1)

        def failures() -> int:
            return caplog.text.count("could not save the pool")

        await asyncio.sleep(0.1)  # the clock stands still: no housekeeping, no save
        assert failures() == 0

        async def housekeeping_at(t: float) -> int:
            before = failures()
            clock.now = t
            node.wake()
            await until(lambda: failures() > before)
            return failures()

        # One failed save per housekeeping run.
        got = [await housekeeping_at(t0 + n * nn.HOUSEKEEPING_INTERVAL) for n in (1, 2, 3)]
        assert got == [1, 2, 3]
        clock.now = t0 + 5.0  # Octez authentication_timeout, in simulated time
        node.wake()
        async with asyncio.timeout(3):
            while await reader.read(65536):
                pass  # closed by the handshake deadline although every save fails
        writer.close()
        assert all(not t.done() for t in node._tasks)
        assert node._timer is not None and node._save_at == clock.now + 1.0
    caplog.clear()  # the errors were expected


async def test_waiters_that_give_up_leave_nothing(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as node:
        assert node.events is not None
        for _ in range(50):
            assert await node.events.wait("too_many_connections", timeout=0.001) is None
        assert len(node.events._waiters["too_many_connections"]) <= 2


async def test_tear_down_cancels_the_dial_not_the_caller(tmp_path: Path) -> None:
    net = Net()
    async with native(net, tmp_path, 1) as node:
        assert node.sockman is not None

        async def hang(*args: object, **kw: object) -> int:
            await asyncio.sleep(3600)
            return 0

        node.sockman.connect = hang  # type: ignore[method-assign]
        task = asyncio.ensure_future(node.connect(vpoint(5)))
        await asyncio.sleep(0.05)
        await node.tear_down_connections("test")
        assert await asyncio.wait_for(task, 2) is None  # the caller got an answer


async def test_connection_timers_run_on_the_node_clock(tmp_path: Path) -> None:
    """One timer heap over the peers' next_wakeup: pings and ping timeouts in simulated
    time (the test fires the node's timer itself after moving the clock)."""
    from peerkeeper.native.peer import PING_INTERVAL, PING_TIMEOUT

    net = Net()
    clock = SimClock()
    async with (
        native(net, tmp_path, 1, clock=clock) as a,
        native(net, tmp_path, 2, clock=clock) as b,
    ):
        t0 = clock.now
        assert await a.connect(vpoint(2)) == b.peer_id
        assert a.pool is not None
        events: list[PoolEvent] = []
        a.pool.subscribe(events.append)
        conn = a.conn_of(b.peer_id)
        assert conn is not None and conn.peer is not None
        live = [
            (at, i) for at, i in a.core.heap if i in a.core.conns and a.core.conns[i].wake_at == at
        ]
        assert live == [(t0 + PING_INTERVAL, conn.conn_id)]  # the handshake entry is stale
        clock.now = t0 + PING_INTERVAL - 0.01
        a._on_timer()
        assert conn.peer.ping_nonce is None  # not due yet
        clock.now = t0 + PING_INTERVAL
        a._on_timer()
        assert conn.peer.ping_sent_at == t0 + PING_INTERVAL and conn.peer.ping_nonce is not None
        assert conn.wake_at == t0 + PING_INTERVAL + PING_TIMEOUT
        # The pong has not arrived (the loop has not run): at the timeout, a closes.
        clock.now = t0 + PING_INTERVAL + PING_TIMEOUT
        a._on_timer()
        assert conn.closing and a.pool.active_connections() == 0
        closed = [e for e in events if e.kind == "connection_closed"]
        assert [(e.peer_id, e.reason, e.time) for e in closed] == [
            (b.peer_id, "ping timeout", clock.now)
        ]


async def test_handshake_deadline_on_the_node_clock(tmp_path: Path) -> None:
    net = Net()
    clock = SimClock()
    async with native(net, tmp_path, 1, clock=clock) as node:
        host, port = node.listening[0]
        reader, writer = await asyncio.open_connection(host, port, local_addr=("127.1.8.1", 0))
        await until(lambda: len(node.core.conns) == 1)
        conn = next(iter(node.core.conns.values()))
        assert conn.wake_at == clock.now + 5.0  # Octez authentication_timeout
        clock.now += 4.99
        node._on_timer()
        assert not conn.closing
        clock.now += 0.01
        node._on_timer()
        assert conn.closing and node.core.conns == {}
        async with asyncio.timeout(3):
            while await reader.read(65536):
                pass  # EOF: the node closed it
        writer.close()


async def test_a_handler_that_replies_at_once_keeps_the_stream_in_order(tmp_path: Path) -> None:
    """An on_envelope that sends (or another message in the same chunk makes the core
    answer): the reply's packet leaves after the bytes the core encrypted first, so the
    remote decrypts both and keeps the connection."""
    from peerkeeper.native.messages import Envelope, Ping

    net = Net()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        got: list[bytes] = []
        a.on_envelope = lambda p, d: got.append(d)
        b.on_envelope = lambda p, d: b.send_envelope(p, d)  # echo, synchronously
        assert await a.connect(vpoint(2)) == b.peer_id
        conn = a.conn_of(b.peer_id)
        assert conn is not None and conn.peer is not None and a.core is not None
        conn.peer.send(Envelope(b"hi"))
        conn.peer.send(Ping(7))  # one chunk: b's core queues a pong behind the Deliver
        a.core._flush(conn)
        a._drain()
        await until(lambda: got == [b"hi"])
        await asyncio.sleep(0.1)
        assert a.pool is not None and a.pool.active_connections() == 1
        assert not a.pool.banned_peer(b.peer_id)


async def test_a_dial_that_raises_unexpectedly_fails_and_the_worker_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = Net()
    clock = SimClock()
    limits = MaintenanceConfig(min_connections=1, expected_connections=1, max_connections=2)
    async with native(
        net, tmp_path, 1, clock=clock, limits=limits, maintenance=True, bootstrap=[vpoint(5)]
    ) as a:
        assert a.sockman is not None and a.core is not None

        async def broken(*args: object, **kw: object) -> int:
            raise RuntimeError("dial map exploded")

        a.sockman.connect = broken  # type: ignore[method-assign]
        a.maintain()
        await until(lambda: "dial map exploded" in caplog.text)
        await until(lambda: a.core is not None and a.core.worker == "look" and not a.core.dials)
        # A dial cancelled before its task ever ran leaves no task behind.
        a.core.tear_down_connections("test", clock())
        a._drain()
        assert a._dial_tasks == {}
    caplog.clear()
