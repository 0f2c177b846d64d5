"""I2P SAM sessions (peerkeeper.io.i2psam, peerkeeper.shell.i2p) against a scripted SAM
router on loopback (tests/fakesam.py), as Core's own p2p_i2p_sessions uses a fake one:
persistent and transient sessions, the key kept and reused, connect and accept, and
every way the router can fail us (unreachable, silent, INVALID_ID, I2P_ERROR, a dropped
control socket, a flood). Each failure is logged as Core logs it and loses nothing."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
from fakesam import FakeSamRouter, make_private_key
from support import free_port, wait_until

from peerkeeper.io.i2psam import I2PConnectError, Session
from peerkeeper.net.i2p import (
    MAX_UNUSED_I2P_SESSIONS_SIZE,
    I2PError,
    dest_bin_to_addr,
    my_destination,
)
from peerkeeper.net.netaddr import Network, Service
from peerkeeper.net.netbase import Proxy
from peerkeeper.shell.i2p import I2PSessions

pytestmark = pytest.mark.timeout(60)


def bridge(router: FakeSamRouter) -> Proxy:
    return Proxy("127.0.0.1", router.port, False)


async def test_a_persistent_session_generates_its_key_once_and_reuses_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "i2p_private_key"
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    async with FakeSamRouter() as router:
        s = Session(bridge(router), private_key_file=key_file)
        sam, me = await s.listen()
        sam.close()
        assert me.port == 0 and me.addr.get_network() is Network.I2P
        assert key_file.read_bytes() == router.generated[0]
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert me.addr == dest_bin_to_addr(my_destination(router.generated[0]))
        assert router.address_of(s.session_id) == str(me.addr)
        first_id = s.session_id
        await s.close()
        assert re.search(
            rf"Creating persistent I2P SAM session [0-9a-f]{{10}} with 127.0.0.1:{router.port}",
            caplog.text,
        )
        assert f"Persistent I2P SAM session {first_id} created, my address={me}" in caplog.text
        # A restart: the same key file, no DEST GENERATE, the same address.
        again = Session(bridge(router), private_key_file=key_file)
        sam, me2 = await again.listen()
        sam.close()
        assert me2 == me and len(router.generated) == 1
        assert sum(r.startswith("DEST GENERATE") for r in router.requests) == 1
        await again.close()
        assert "Destroying I2P SAM session" in caplog.text


async def test_a_transient_session_takes_the_destination_the_router_made(tmp_path: Path) -> None:
    async with FakeSamRouter() as router:
        s = Session(bridge(router), transient=True)
        sam, me = await s.listen()
        sam.close()
        assert not router.generated and not list(tmp_path.iterdir())
        create = next(r for r in router.requests if r.startswith("SESSION CREATE"))
        assert "DESTINATION=TRANSIENT" in create and "inbound.quantity=1" in create
        assert str(me.addr) == router.address_of(s.session_id)
        await s.close()


async def test_a_damaged_key_file_fails_with_cores_text_and_is_never_overwritten(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "i2p_private_key"
    key_file.write_bytes(b"abcd")
    async with FakeSamRouter() as router:
        s = Session(bridge(router), private_key_file=key_file)
        with pytest.raises(I2PError, match=r"The private key is too short \(4 < 387\)"):
            await s.listen()
        assert key_file.read_bytes() == b"abcd" and not s.alive
        await s.close()


async def test_connect_refuses_an_arbitrary_port_without_asking_the_router(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    to = Service(dest_bin_to_addr(bytes(387)), 8333)
    async with FakeSamRouter() as router:
        s = Session(bridge(router), transient=True)
        with pytest.raises(I2PConnectError) as info:
            await s.connect(to)
        assert info.value.proxy_failed is False and router.connections == 0
        assert (
            f"Error connecting to {to}, connection refused due to arbitrary port 8333"
            in caplog.text
        )


async def test_an_unreachable_bridge_is_the_proxys_fault(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    port = free_port()
    to = Service(dest_bin_to_addr(bytes(387)), 0)
    s = Session(Proxy("127.0.0.1", port, False), transient=True)
    with pytest.raises(I2PConnectError) as info:
        await s.connect(to)
    assert info.value.proxy_failed is True
    assert f"Error connecting to {to}: Cannot connect to 127.0.0.1:{port}" in caplog.text
    assert "Creating transient I2P SAM session" in caplog.text


async def test_connect_and_accept_join_two_sessions_and_carry_bytes_both_ways() -> None:
    async with FakeSamRouter() as router:
        listener = Session(bridge(router))
        dialer = Session(bridge(router), transient=True)
        sam, me = await listener.listen()
        raw, rest, dialer_me = await dialer.connect(me)
        assert rest == b"" and dialer_me.addr.get_network() is Network.I2P
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(raw, b"hello over i2p")
        peer = await listener.accept(sam)
        assert peer == dialer_me  # the dialer's own address, port 0
        got = sam.reader.rest
        accepted, _ = sam.detach()
        while len(got) < len(b"hello over i2p"):
            got += await loop.sock_recv(accepted, 100)
        assert got == b"hello over i2p"
        await loop.sock_sendall(accepted, b"and back")
        assert await loop.sock_recv(raw, 100) == b"and back"
        raw.close()
        accepted.close()
        await listener.close()
        await dialer.close()


async def test_stream_bytes_right_behind_a_sam_line_are_the_peers_and_come_first() -> None:
    """A router may send the first bytes of the stream in the same segment as its last
    SAM line: behind STREAM STATUS to the dialer, behind the destination to the acceptor.
    They are handed on with the socket, never lost and never taken for a reply."""
    loop = asyncio.get_running_loop()
    async with FakeSamRouter() as router:
        listener = Session(bridge(router))
        dialer = Session(bridge(router), transient=True)
        router.coalesce_connect = True
        sam, me = await listener.listen()

        async def acceptor_speaks_first() -> Service:
            peer = await listener.accept(sam)
            await loop.sock_sendall(sam.sock, b"acceptor first")
            return peer

        accepting = asyncio.create_task(acceptor_speaks_first())
        raw, rest, _ = await dialer.connect(me)
        await accepting
        assert rest == b"acceptor first"  # read with the OK line, handed on
        raw.close()
        sam.close()

        router.coalesce_connect, router.coalesce_accept = False, True
        sam, me = await listener.listen()
        raw, rest, dialer_me = await dialer.connect(me)
        assert rest == b""
        await loop.sock_sendall(raw, b"dialer first")
        assert await listener.accept(sam) == dialer_me
        accepted, behind = sam.detach()
        assert behind == b"dialer first"  # read with the destination line
        accepted.close()
        raw.close()
        await listener.close()
        await dialer.close()


async def test_a_peer_that_cannot_be_reached_is_its_own_fault_not_the_routers() -> None:
    async with FakeSamRouter() as router:
        s = Session(bridge(router), transient=True)
        other = Session(bridge(router), transient=True)
        sam, other_me = await other.listen()
        sam.close()
        router.answers["STREAM CONNECT"] = "STREAM STATUS RESULT=CANT_REACH_PEER"
        with pytest.raises(I2PConnectError) as info:
            await s.connect(other_me)
        assert info.value.proxy_failed is False
        router.answers["STREAM CONNECT"] = "STREAM STATUS RESULT=I2P_ERROR"
        with pytest.raises(I2PConnectError) as info:
            await s.connect(other_me)
        assert info.value.proxy_failed is True
        del router.answers["STREAM CONNECT"]
        unknown = Service(dest_bin_to_addr(bytes(387)), 0)
        with pytest.raises(I2PConnectError) as info:
            await s.connect(unknown)  # Core: NAMING LOOKUP's RESULT must be OK
        assert info.value.reason == (
            f'Reply to "NAMING LOOKUP NAME={unknown.addr}": had a RESULT not equal to OK.'
        )
        assert s.alive  # none of these broke the session
        await s.close()
        await other.close()


async def test_invalid_id_destroys_the_session_and_the_next_use_makes_a_new_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    async with FakeSamRouter() as router:
        s = Session(bridge(router), transient=True)
        sam, _ = await s.listen()
        sam.close()
        first = s.session_id
        router.answers["STREAM ACCEPT"] = "STREAM STATUS RESULT=INVALID_ID"
        with pytest.raises(I2PError):
            await s.listen()
        assert not s.alive and f"Destroying I2P SAM session {first}" in caplog.text
        del router.answers["STREAM ACCEPT"]
        sam, _ = await s.listen()
        sam.close()
        assert s.alive and s.session_id != first
        await s.close()


async def test_a_dropped_control_socket_is_noticed_as_core_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The router drops the session: the next use makes a new one (Core's
    CreateIfNotCreatedAlready sees !IsConnected); a failure meanwhile logs Core's
    "Control socket error" and destroys the dead session (CheckControlSock)."""
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    async with FakeSamRouter() as router:
        s = Session(bridge(router))
        sam, me = await s.listen()
        sam.close()
        router.close_controls()  # the router restarted
        await wait_until(lambda: not s.alive, 5)
        assert s.created and "Control socket error" not in caplog.text
        sam, me2 = await s.listen()  # re-created, same key, same address
        sam.close()
        assert s.alive and me2 == me
        assert caplog.text.count("Creating persistent I2P SAM session") == 2
        dead_id = s.session_id
        router.close_controls()
        await wait_until(lambda: not s.alive, 5)
        router.answers["HELLO"] = "HELLO REPLY RESULT=NOVERSION"
        with pytest.raises(I2PConnectError, match="RESULT not equal to OK"):
            await s.connect(Service(dest_bin_to_addr(bytes(387)), 0))
        assert "Control socket error: closed" in caplog.text
        assert f"Destroying I2P SAM session {dead_id}" in caplog.text
        assert not s.created
        await s.close()


async def test_closing_a_session_never_leaves_its_watch_on_a_reused_descriptor() -> None:
    """Closing a session while its control socket is being watched, and opening another
    socket in the same turn of the loop (which gets the same descriptor number), must
    leave the new socket working: the watch is dropped before the close. (Without that,
    the loop's selector kept the old registration and the new socket's connect failed
    with ENOENT or its read never woke.)"""
    loop = asyncio.get_running_loop()
    async with FakeSamRouter() as router:
        for _ in range(5):
            s = Session(bridge(router), transient=True)
            sam, _ = await s.listen()
            sam.close()
            await asyncio.sleep(0.01)  # the watch is reading
            assert s._control is not None
            old_fd = s._control.sock.fileno()

            async def reopen() -> tuple[int, bytes]:
                fresh = socket.socket()
                fresh.setblocking(False)
                try:
                    fd = fresh.fileno()
                    await loop.sock_connect(fresh, ("127.0.0.1", router.port))
                    await loop.sock_sendall(fresh, b"HELLO VERSION MIN=3.1 MAX=3.1\n")
                    return fd, await loop.sock_recv(fresh, 100)
                finally:
                    fresh.close()

            closing = asyncio.create_task(s.close())
            fresh_task = asyncio.create_task(reopen())  # runs right after the close
            fd, got = await asyncio.wait_for(fresh_task, 5)
            await closing
            assert fd == old_fd  # the descriptor number was reused
            assert got.startswith(b"HELLO REPLY RESULT=OK")


async def test_an_i2p_error_instead_of_a_peer_closes_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="peerkeeper.i2p")
    async with FakeSamRouter() as router:
        s = Session(bridge(router))
        sam, _ = await s.listen()
        router.send_to_acceptors('STREAM STATUS RESULT=I2P_ERROR MESSAGE="Session was closed"')
        with pytest.raises(I2PError):
            await s.accept(sam)
        sam.close()
        assert not s.alive
        assert "Error accepting (will close the session): unexpected reply" in caplog.text
        # Garbage instead of a destination is an error, but the session stays.
        sam, _ = await s.listen()
        router.send_to_acceptors("garbage!")
        with pytest.raises(I2PError, match="Cannot decode Base64"):
            await s.accept(sam)
        sam.close()
        assert s.alive
        await s.close()


async def test_a_destination_line_that_stalls_half_way_is_given_up_after_max_wait_for_io(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Core Accept: once the first byte of the peer's destination came, the line must end
    within MAX_WAIT_FOR_IO (1 s; shortened here); a half-sent line is an error, and the
    session stays."""
    monkeypatch.setattr("peerkeeper.io.i2psam.MAX_WAIT_FOR_IO", 0.2)
    async with FakeSamRouter() as router:
        s = Session(bridge(router))
        sam, _ = await s.listen()
        router.send_to_acceptors("half a destin", end="")
        with pytest.raises(I2PError, match=r"Receive timeout \(received 13 bytes"):
            await s.accept(sam)
        sam.close()
        assert s.alive
        await s.close()


async def test_a_router_that_never_answers_session_create_times_out() -> None:
    async with FakeSamRouter() as router:
        router.answers["SESSION CREATE"] = None
        s = Session(bridge(router), transient=True, reply_timeout=0.3)
        with pytest.raises(I2PError, match="Receive timeout"):
            await s.listen()
        assert not s.alive
        await s.close()


async def test_a_flood_without_a_newline_is_refused_at_64_kib() -> None:
    async with FakeSamRouter() as router:
        router.answers["HELLO"] = "x" * 70_000
        s = Session(bridge(router), transient=True)
        with pytest.raises(I2PError, match="Received too many bytes without a terminator"):
            await s.listen()
        await s.close()


async def test_failed_transient_sessions_are_kept_for_reuse_up_to_cores_limit() -> None:
    async with FakeSamRouter() as router:
        sessions = I2PSessions(bridge(router), accept_incoming=False)
        to = Service(dest_bin_to_addr(bytes(387)), 0)  # nobody: KEY_NOT_FOUND
        for _ in range(3):
            with pytest.raises(I2PConnectError):
                await sessions.connect(to)
        # One session made, failed, kept and reused each time (Core m_unused_i2p_sessions).
        assert len(sessions.unused) == 1
        assert sum(r.startswith("SESSION CREATE") for r in router.requests) == 1
        await sessions.stop()

    async with FakeSamRouter() as router:
        sessions = I2PSessions(bridge(router), accept_incoming=False)
        results = await asyncio.gather(
            *(sessions.connect(to) for _ in range(MAX_UNUSED_I2P_SESSIONS_SIZE + 2)),
            return_exceptions=True,
        )
        assert all(isinstance(r, I2PConnectError) for r in results)
        assert len(sessions.unused) == MAX_UNUSED_I2P_SESSIONS_SIZE
        await sessions.stop()


async def test_the_accept_loop_backs_off_and_withdraws_our_address_while_listening_fails() -> None:
    waits: list[float] = []
    added: list[Service] = []
    removed: list[Service] = []
    wake = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await wake.wait()
        wake.clear()

    async def adopt(*args: object) -> None:
        raise AssertionError("nobody connects in this test")

    async with FakeSamRouter() as router:
        sessions = I2PSessions(bridge(router), sleep=sleep)
        sessions.start_accepting(adopt, added.append, removed.append)
        await wait_until(lambda: len(added) == 1, 5)
        me = added[0]
        router.answers["STREAM ACCEPT"] = "STREAM STATUS RESULT=I2P_ERROR"
        router.send_to_acceptors("garbage!")  # the pending accept fails: back-off 1 s
        await wait_until(lambda: waits == [1.0], 5)
        wake.set()  # listening now fails: the address is withdrawn, back-off 2 s
        await wait_until(lambda: waits == [1.0, 2.0], 5)
        assert removed == [me] and sessions.listening_as is None
        del router.answers["STREAM ACCEPT"]
        wake.set()
        await wait_until(lambda: len(added) == 2, 5)
        assert added[1] == me  # advertised again, the same persistent address
        await sessions.stop()


async def test_i2psessions_stop_closes_every_session() -> None:
    async with FakeSamRouter() as router:
        sessions = I2PSessions(bridge(router), accept_incoming=True)
        other = Session(bridge(router), transient=True)
        sam, other_me = await other.listen()
        raw, _, _, session = await sessions.connect(other_me)
        assert session is None  # the persistent session dials too (Core)
        raw.close()
        sam.close()
        assert len(router.sessions) == 2
        await sessions.stop()
        await wait_until(lambda: len(router.sessions) == 1, 5)
        await other.close()


def test_fake_keys_have_the_shape_of_i2pds() -> None:
    key = make_private_key()
    assert len(my_destination(key)) == 391  # 387 + a 4-byte key certificate
    assert len(key) == 391 + 64


async def test_two_nodes_meet_over_i2p_and_know_each_other_by_their_b32_addresses(
    tmp_path: Path,
) -> None:
    """End to end through the router: the listening node advertises its .b32.i2p address
    (port 0) in getnetworkinfo; an outbound-only node dials it by name through a
    transient session; both finish the BIP324 handshake (the initiator's bytes come
    first, right behind the router's destination line) and see an I2P peer; when the
    connection ends, the transient session it owned ends too."""
    from support import handshaken

    from peerkeeper import Config, Node
    from peerkeeper.net.connection_types import ConnectionType

    async with FakeSamRouter() as router:
        router.coalesce_accept = True  # B's BIP324 key arrives with B's destination
        a_cfg = Config(
            chain="regtest",
            datadir=tmp_path / "a",
            bind=[f"127.0.0.1:{free_port()}"],
            i2psam=router.proxy,
            connect=["0"],
        )
        b_cfg = Config(
            chain="regtest",
            datadir=tmp_path / "b",
            listen=False,
            i2psam=router.proxy,
            connect=["0"],
        )
        assert a_cfg.i2p_accept_incoming and not b_cfg.i2p_accept_incoming
        async with Node(a_cfg) as a, Node(b_cfg) as b:
            assert a.connman.i2p is not None and b.connman.i2p is not None
            assert b.connman.i2p.persistent is None
            await wait_until(lambda: a.connman.i2p.listening_as is not None, 10)  # type: ignore[union-attr]
            a_addr = a.connman.i2p.listening_as
            assert a_addr is not None
            info = await a.rpc_methods()["getnetworkinfo"]([])
            assert {"address": str(a_addr.addr), "port": 0} in [
                {k: x[k] for k in ("address", "port")} for x in info["localaddresses"]
            ]
            nets = {n["name"]: n for n in info["networks"]}
            assert nets["i2p"]["reachable"] and nets["i2p"]["proxy"] == router.proxy
            key = (tmp_path / "a" / "regtest" / "i2p_private_key").read_bytes()
            assert dest_bin_to_addr(my_destination(key)) == a_addr.addr

            handed: list[bytes] = []
            adopt = a.connman.sockman.adopt

            async def recording_adopt(sock: socket.socket, **kw: Any) -> int:
                handed.append(kw.get("initial", b""))
                return await adopt(sock, **kw)

            a.connman.sockman.adopt = recording_adopt  # type: ignore[method-assign]
            peer = await b.connman.open_connection(str(a_addr.addr), ConnectionType.MANUAL)
            assert peer is not None
            await wait_until(lambda: handshaken(a) and handshaken(b), 10)
            assert len(handed) == 1 and len(handed[0]) >= 64  # B's ElligatorSwift key
            [b_view] = await b.rpc_methods()["getpeerinfo"]([])
            [a_view] = await a.rpc_methods()["getpeerinfo"]([])
            # Core's m_addr_name: the name dialled, as given (no port).
            assert b_view["network"] == "i2p" and b_view["addr"] == str(a_addr.addr)
            assert b_view["connection_type"] == "manual" and not b_view["inbound"]
            assert b_view["transport_protocol_type"] == "v2"
            assert a_view["network"] == "i2p" and a_view["inbound"]
            assert a_view["addr"] == b_view["addrbind"] and a_view["addrbind"] == f"{a_addr}"
            sessions_before = len(router.sessions)
            assert sessions_before == 2  # A's persistent one, B's transient one
            b.connman.disconnect_node(peer_id=peer.id)
            await wait_until(lambda: len(router.sessions) == 1, 10)
            await wait_until(lambda: not a.connman.peers, 10)
