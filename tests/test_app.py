"""The application API of the Bitcoin node, on loopback against a small lab.

Peer events with typed reasons, handlers (sync and async), message iterators, sending
(push_message, broadcast, for_each_node), lookups (find_node, node_stats), requests on
the pending table (getheaders, ping, getdata -> notfound) and their typed failures,
connect()'s typed errors, and a library node's defaults (no RPC, no listener, nothing
on disk).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support import free_port, wait_until

from peerkeeper import Config, ConnectError, Node, RequestFailed
from peerkeeper.bitcoin.app import DisconnectReason, classify_disconnect, reply_keys, request_key
from peerkeeper.daemon.lab import Lab, LabOptions
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.events import SubscriberTooSlow
from peerkeeper.shell.peerapi import PeerConnected, PeerDisconnected
from peerkeeper.wire import corelog
from peerkeeper.wire.messages import (
    Addr,
    AddrEntry,
    AddrV2,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    NotFound,
    Ping,
    Pong,
    Tx,
)

pytestmark = pytest.mark.timeout(60)

GENESIS = bytes.fromhex("0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206")[::-1]


@asynccontextmanager
async def app_and_lab(tmp: Path, nodes: int = 3) -> AsyncIterator[tuple[Node, Lab]]:
    async with Lab(LabOptions(nodes=nodes, rpc=False, outbound=False, datadir=tmp / "lab")) as lab:
        dm = tmp / "dm.json"
        lab.write_dialmap(dm)
        async with Node(Config(chain="regtest", dialmap=dm, connect=["0"])) as app:
            yield app, lab


# -- pure pieces ----------------------------------------------------------------------------


def test_request_keys_pair_each_request_with_its_replies() -> None:
    h = bytes(range(32))
    assert request_key(Ping(7)) in reply_keys(Pong(7))
    two = [AddrEntry(0, 9, Service.parse(f"1.2.3.{i}", 8333)) for i in (1, 2)]
    assert request_key(GetAddr()) in reply_keys(Addr(two))
    assert request_key(GetAddr()) not in reply_keys(Addr(two[:1]))  # a self-announcement
    assert request_key(GetHeaders()) in reply_keys(Headers([]))
    assert request_key(GetData([(1, h)])) in reply_keys(NotFound([(1, h)]))
    for bad in (Ping(None), GetData([]), GetData([(1, h), (1, h)]), Inv([])):
        with pytest.raises(ValueError):
            request_key(bad)


def test_disconnect_reasons_from_core_texts() -> None:
    assert classify_disconnect(corelog.PING_TIMEOUT % 1200.0) is DisconnectReason.TIMEOUT
    assert classify_disconnect(corelog.SOCKET_NO_MESSAGE % (60, "")) is DisconnectReason.TIMEOUT
    assert classify_disconnect(corelog.FEELER_COMPLETED) is DisconnectReason.COMPLETED
    assert classify_disconnect("connected to self at x, disconnecting") is DisconnectReason.PROTOCOL


# -- on loopback ----------------------------------------------------------------------------


async def test_peer_events_handlers_and_requests(tmp_path: Path) -> None:
    async with app_and_lab(tmp_path) as (app, lab):
        events = app.peer_events()
        pongs: list[int] = []
        seen_async: list[str] = []

        def on_pong(peer: object, msg: Pong) -> None:
            pongs.append(msg.nonce or 0)

        async def on_headers(peer: object, msg: Headers) -> None:
            await asyncio.sleep(0)
            seen_async.append(f"{len(msg.headers)}")

        app.on(Pong, on_pong)
        app.on(Headers)(on_headers)  # the decorator form
        stream = app.messages(Headers)

        peer = await app.connect(str(lab.virtual[1]))
        assert peer.transport == "v2" and peer.start_height == 10
        ev = await anext(events)
        assert isinstance(ev, PeerConnected) and ev.peer == peer

        headers = await app.request(peer, GetHeaders(locator=[GENESIS]), expect=Headers)
        assert isinstance(headers, Headers) and len(headers.headers) == 10
        assert headers.headers[0].prev_block == GENESIS
        got_peer, got = await anext(stream)
        assert got_peer == peer and got == headers
        await wait_until(lambda: seen_async == ["10"])

        pong = await app.request(peer, Ping(424242))
        assert pong == Pong(424242)
        await wait_until(lambda: 424242 in pongs)

        # getdata of a transaction nobody has: Core's notfound, to a peer that asked for
        # transaction relay in its version (ours does not by default: no mempool)
        app.disconnect(peer)
        app.connman.options.peer = dataclasses.replace(app.connman.options.peer, relay=True)
        await anext(events)
        peer = await app.connect(str(lab.virtual[1]))
        await anext(events)
        h = bytes(range(32))
        with pytest.raises(RequestFailed, match="unexpected notfound"):
            await app.request(peer, GetData([(1, h)]), expect=Tx, timeout=5)

        assert app.find_node(id=peer.id) == peer
        assert app.find_node(addr=str(lab.virtual[1])) == peer
        assert app.find_node(addr=lab.virtual[1].addr) == peer
        assert app.find_node(name=peer.name) == peer
        assert app.find_node(id=peer.id + 100) is None
        with pytest.raises(ValueError):
            app.find_node()
        stats = app.node_stats()
        assert [s.peer for s in stats] == [peer]
        assert stats[0].bytes_recv > 0 and stats[0].network == "ipv4"
        visited: list[int] = []
        app.for_each_node(lambda p: visited.append(p.id))
        assert visited == [peer.id]

        assert app.disconnect(peer)
        ev = await anext(events)
        assert isinstance(ev, PeerDisconnected)
        assert ev.reason is DisconnectReason.LOCAL_REQUEST and ev.peer == peer
        with pytest.raises(KeyError):
            app.push_message(peer, Ping(1))


async def test_broadcast_and_a_request_cut_short_by_the_peer_going(tmp_path: Path) -> None:
    async with app_and_lab(tmp_path, nodes=3) as (app, lab):
        peers = [await app.connect(str(v)) for v in lab.virtual]
        assert app.broadcast(Ping(5)) == 3
        assert app.broadcast(Ping(6), lambda p: p.id == peers[0].id) == 1
        # a request whose peer goes: RequestFailed with the disconnect's reason
        pending = asyncio.ensure_future(
            app.request(peers[2], GetData([(2, bytes(32))]), timeout=30)  # no block: no answer
        )
        await asyncio.sleep(0.05)
        await lab.nodes[2].stop()  # the remote end goes away
        with pytest.raises(RequestFailed) as info:
            await pending
        assert info.value.reason != "timeout"


async def test_getaddr_request_waits_for_the_handshakes_own_getaddr(tmp_path: Path) -> None:
    """Our node sends getaddr to an outbound peer at the handshake and Core answers one
    per connection: request(GetAddr()) right after connect() gets that answer."""
    async with app_and_lab(tmp_path, nodes=4) as (app, lab):
        peer = await app.connect(str(lab.virtual[0]))
        reply = await app.request(peer, GetAddr(), timeout=10)
        assert isinstance(reply, Addr | AddrV2)
        assert {e.service for e in reply.entries} <= set(lab.virtual)
        assert len(reply.entries) > 1


async def test_connect_raises_a_typed_error_with_the_reason(tmp_path: Path) -> None:
    async with Node(Config(chain="regtest", connect=["0"])) as app:
        with pytest.raises(ConnectError) as info:
            await app.connect(f"127.0.0.1:{free_port()}", timeout=10)
        assert "refused" in info.value.reason.lower()


async def test_a_slow_message_reader_is_dropped_not_buffered(tmp_path: Path) -> None:
    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        stream = app.messages(Pong, maxlen=3)
        peer = await app.connect(str(lab.virtual[0]))
        for n in range(1, 6):
            app.push_message(peer, Ping(n))
        await wait_until(lambda: stream.dropped)
        with pytest.raises(SubscriberTooSlow):
            while True:
                await anext(stream)


async def test_library_defaults_serve_nothing_and_write_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    config = Config(chain="regtest")
    assert config.in_memory and not config.rpc_server and not config.listening
    async with Node(config) as node:
        assert node.rpc is None and node.connman.listening == []
        node.addrman  # noqa: B018 - the address book lives in memory
    assert list(tmp_path.iterdir()) == []
    # the daemon's defaults are Core's
    daemon = Config(chain="regtest", daemon=True, datadir=tmp_path / "d")
    assert daemon.rpc_server and daemon.listening
    with pytest.raises(Exception, match="datadir"):
        Config(chain="regtest", server=True).validate()


async def test_slow_coroutine_handlers_are_bounded_and_stop_ends_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerkeeper.shell import peerapi

    monkeypatch.setattr(peerapi, "MAX_HANDLER_TASKS", 2)
    release = asyncio.Event()
    started: list[int] = []

    async def stuck(peer: object, msg: Pong) -> None:
        started.append(msg.nonce or 0)
        await release.wait()

    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        app.on(Pong, stuck)
        events = app.peer_events()
        peer = await app.connect(str(lab.virtual[0]))
        for n in range(1, 6):
            app.push_message(peer, Ping(n))
        # the handshake's own ping is answered too: six pongs, two handlers run
        await wait_until(lambda: app.handler_overflows >= 3)
        assert len(started) == 2 and app.handler_overflows == 4
        iterator_done = asyncio.ensure_future(_drain(events))
    # leaving the node ends the iterator and cancels the stuck handlers
    assert await asyncio.wait_for(iterator_done, 5) >= 1
    assert not app._handler_tasks


async def _drain(stream: AsyncIterator[object]) -> int:
    n = 0
    async for _ in stream:
        n += 1
    return n


async def test_blocks_are_decoded_only_for_an_application_that_wants_them(
    tmp_path: Path,
) -> None:
    """Walking a block for txids is costly: the node decodes ``block`` and ``tx`` only
    for a handler, an iterator or a getdata request; otherwise they stay unknown."""
    from test_primitives import GENESIS_BLOCK

    from peerkeeper.wire.messages import Block, UnknownMessage

    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        assert not app.wants("block") and not app.wants("tx")
        peer = await app.connect(str(lab.virtual[0]))
        remote = lab.nodes[0]
        await wait_until(lambda: len(remote.peers()) == 1)  # its side of the handshake
        them = remote.peers()[0]
        seen: list[object] = []
        app.on(Block, lambda p, m: seen.append(m))
        assert app.wants("block") and not app.wants("tx")
        remote.push_message(them, Block(GENESIS_BLOCK))
        await wait_until(lambda: len(seen) == 1)
        assert isinstance(seen[0], Block) and seen[0].txids
        # the lab node has no handler: what it receives stays an UnknownMessage
        got: list[object] = []
        remote.connman.core.app.message = lambda p, m, n: got.append(m)  # type: ignore[method-assign, union-attr]
        app.push_message(peer, Block(GENESIS_BLOCK))
        await wait_until(lambda: len(got) == 1)
        assert type(got[0]) is UnknownMessage and got[0].command == "block"


async def test_queues_are_bounded_in_bytes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few big messages hold memory as many small ones do: iterators and coroutine
    handlers are bounded by payload bytes as well as by count (a pong's is 8 bytes)."""
    from peerkeeper.shell import peerapi

    monkeypatch.setattr(peerapi, "MAX_QUEUED_BYTES", 20)
    release = asyncio.Event()

    async def stuck(peer: object, msg: Pong) -> None:
        await release.wait()

    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        stream = app.messages(Pong, max_bytes=20)
        app.on(Pong, stuck)
        peer = await app.connect(str(lab.virtual[0]))
        for n in range(1, 5):
            app.push_message(peer, Ping(n))
        await wait_until(lambda: stream.dropped and app.handler_overflows >= 2)
        assert len(app._handler_tasks) == 2 and app._handler_bytes == 16
        release.set()
        await wait_until(lambda: not app._handler_tasks)
        assert app._handler_bytes == 0


async def test_same_key_requests_queue_and_a_timed_out_connect_leaves_nothing(
    tmp_path: Path,
) -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # accepts, never answers
        w.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with app_and_lab(tmp_path, nodes=1) as (app, lab):
            peer = await app.connect(str(lab.virtual[0]))
            # two getheaders to one peer: the second waits for the first, both answered
            a, b = await asyncio.gather(
                app.request(peer, GetHeaders(locator=[GENESIS]), expect=Headers),
                app.request(peer, GetHeaders(locator=[bytes(32)]), expect=Headers),
            )
            assert isinstance(a, Headers) and isinstance(b, Headers)
            assert len(a.headers) == len(b.headers) == 10
        async with Node(Config(chain="regtest", connect=["0"])) as plain:
            for _ in range(2):  # the first attempt's connection is gone: no "already connected"
                with pytest.raises(ConnectError, match="no handshake within"):
                    await plain.connect(f"127.0.0.1:{port}", timeout=0.5)
                await wait_until(lambda: not plain.connman.peers)
    finally:
        server.close()
        await server.wait_closed()


async def test_getheaders_follows_cores_handler(tmp_path: Path) -> None:
    """A null locator asks for hash_stop alone (nothing when unknown); a locator past
    MAX_LOCATOR_SZ (101) disconnects without discouraging (src/net_processing.cpp)."""
    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        peer = await app.connect(str(lab.virtual[0]))
        full = await app.request(peer, GetHeaders(locator=[GENESIS]), expect=Headers)
        assert isinstance(full, Headers)
        third = full.headers[2].hash()
        one = await app.request(peer, GetHeaders(locator=[], hash_stop=third), expect=Headers)
        assert isinstance(one, Headers) and [h.hash() for h in one.headers] == [third]
        with pytest.raises(RequestFailed, match="timeout"):
            await app.request(peer, GetHeaders(locator=[], hash_stop=bytes(32)), timeout=0.5)
        events = app.peer_events()
        app.push_message(peer, GetHeaders(locator=[GENESIS] * 102))
        ev = await anext(events)
        assert isinstance(ev, PeerDisconnected)
        assert ev.reason is DisconnectReason.REMOTE_CLOSED  # the lab node hung up


# -- pushing much: drain() ----------------------------------------------------------------------

BIG = 1_000_000  # bytes per message


async def test_drain_paces_large_pushes_and_every_message_arrives_in_order() -> None:
    from peerkeeper.wire.messages import UnknownMessage

    port = free_port()
    receiver = Node(Config(chain="regtest", listen=True, bind=[f"127.0.0.1:{port}"]))
    got: list[int] = []
    receiver.on(UnknownMessage, lambda peer, msg: got.append(int.from_bytes(msg.payload[:4])))
    async with receiver, Node(Config(chain="regtest", connect=["0"])) as sender:
        peer = await sender.connect(f"127.0.0.1:{port}")
        conn_id = sender.connman.peers[peer.id].conn_id
        limit = sender.connman.options.max_send_buffer
        for n in range(20):
            sender.push_message(peer, UnknownMessage("bulk", n.to_bytes(4) + bytes(BIG - 4)))
            await sender.drain(peer)
            # After drain, at most -maxsendbuffer is queued in the process for this peer.
            assert sender.connman.sockman.send_buffer_size(conn_id) <= limit
        await wait_until(lambda: len(got) == 20)
        assert got == list(range(20))


async def test_drain_waits_for_a_peer_that_stops_reading_and_fails_when_it_goes() -> None:
    from peerkeeper.wire.messages import UnknownMessage, Verack, Version
    from peerkeeper.wire.v1 import V1Transport

    magic = bytes.fromhex("fabfb5da")
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    accepted = asyncio.get_running_loop().create_future()

    async def handshake_then_stall(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        t = V1Transport(magic)
        t.send_message(Version(version=70016, services=0, timestamp=0, nonce=7, relay=False))
        t.send_message(Verack())
        w.write(t.data_to_send())
        accepted.set_result((r, w))  # and never read again

    server = await asyncio.start_server(handshake_then_stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Node(Config(chain="regtest", connect=["0"], v2transport=False)) as sender:
            peer = await sender.connect(f"127.0.0.1:{port}")
            _, writer = await accepted
            conn_id = sender.connman.peers[peer.id].conn_id
            limit = sender.connman.options.max_send_buffer
            # Enough to fill both kernel buffers and -maxsendbuffer behind them.
            for _ in range(64):
                sender.push_message(peer, UnknownMessage("bulk", bytes(BIG)))
            assert sender.connman.sockman.send_buffer_size(conn_id) > limit
            waiter = asyncio.ensure_future(sender.drain(peer))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not waiter.done()
            writer.transport.abort()  # the peer goes: the waiter fails, it never hangs
            with pytest.raises(KeyError):
                await asyncio.wait_for(waiter, 10)
            with pytest.raises(KeyError):
                await sender.drain(peer)
    finally:
        server.close()


async def test_a_handler_for_unknown_messages_does_not_break_tx_delivery(tmp_path: Path) -> None:
    """``wants()`` asked about ``tx`` with an UnknownMessage handler (no class command)."""
    from peerkeeper.wire.messages import UnknownMessage

    async with app_and_lab(tmp_path, nodes=1) as (app, lab):
        unknown: list[str] = []
        app.on(UnknownMessage, lambda peer, msg: unknown.append(msg.command))
        assert app.wants("tx") is False
        peer = await app.connect(str(lab.virtual[0]))
        assert app.wants("tx") is False and app.wants("bench") is False
        app.push_message(peer, Ping(5))
        pong = await app.request(peer, Ping(6), timeout=10)
        assert isinstance(pong, Pong) and pong.nonce == 6
