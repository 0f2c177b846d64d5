"""SockMan on loopback: accept veto, connect failures, events, send high-water mark, receive pause."""

from __future__ import annotations

import asyncio
import socket

import pytest
from support import Recorder, wait_until

from peerkeeper.io.sockman import ConnectError, SockMan
from peerkeeper.net.netaddr import Service

pytestmark = pytest.mark.timeout(30)


def svc(port: int) -> Service:
    return Service.parse(f"127.0.0.1:{port}", 0)


async def test_connect_send_receive_eof() -> None:
    server_ev, client_ev = Recorder(), Recorder()
    server, client = SockMan(server_ev), SockMan(client_ev)
    host, port = await server.bind_and_listen("127.0.0.1", 0)
    conn = await client.connect(svc(port))
    await wait_until(lambda: len(server_ev.accepted) == 1)
    sid, me, them = server_ev.accepted[0]
    assert me.port == port and str(them.addr) == "127.0.0.1"
    assert client.send(conn, b"hello ") and client.send(conn, b"world")
    await wait_until(lambda: bytes(server_ev.data.get(sid, b"")) == b"hello world")
    assert server_ev.io_batches >= 1
    sock = client._conns[conn].transport.get_extra_info("socket")  # type: ignore[union-attr]
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    client.close(conn)
    await wait_until(lambda: server_ev.eof == [sid])
    assert not client.send(conn, b"late")  # closed: dropped, reported
    await client.stop()
    await server.stop()


async def test_accept_veto_closes_connection() -> None:
    server_ev = Recorder(accept=False)
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # refused: closed at once
    assert len(server_ev.accepted) == 1 and len(server) == 0
    writer.close()
    await server.stop()


async def test_connect_failures_are_typed() -> None:
    sm = SockMan(Recorder())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
    with pytest.raises(ConnectError) as info:
        await sm.connect(svc(port), timeout=2)
    assert info.value.reason
    mapped = SockMan(Recorder(), dial_map=lambda s: None)
    with pytest.raises(ConnectError, match="dial map"):
        await mapped.connect(Service.parse("11.0.0.1:8333", 0))


async def test_dial_map_routes_virtual_addresses() -> None:
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    virtual = Service.parse("11.22.0.1:8333", 0)
    client = SockMan(Recorder(), dial_map=lambda s: ("127.0.0.1", port) if s == virtual else None)
    await client.connect(virtual)
    await wait_until(lambda: len(server_ev.accepted) == 1)
    await client.stop()
    await server.stop()


async def test_send_high_water_mark_and_writable() -> None:
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    client_ev = Recorder()
    client = SockMan(client_ev, max_send_buffer=64 * 1024)
    conn = await client.connect(svc(port))
    await wait_until(lambda: len(server_ev.accepted) == 1)
    sid = server_ev.accepted[0][0]
    server.pause_receiving(sid)  # the peer stops reading
    chunk = bytes(256 * 1024)
    for _ in range(64):  # 16 MB: far more than the kernel buffers hold
        client.send(conn, chunk)
        client.flush()
        if client.send_paused(conn):
            break
        await asyncio.sleep(0)
    assert client.send_paused(conn)
    assert client.send_buffer_size(conn) > 64 * 1024
    server.resume_receiving(sid)
    await wait_until(lambda: conn in client_ev.writable)
    assert not client.send_paused(conn)
    await client.stop()
    await server.stop()


async def test_receive_pause_holds_data_until_resume() -> None:
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    client = SockMan(Recorder())
    conn = await client.connect(svc(port))
    await wait_until(lambda: len(server_ev.accepted) == 1)
    sid = server_ev.accepted[0][0]
    server.pause_receiving(sid)
    client.send(conn, b"x" * 1000)
    client.flush()
    await asyncio.sleep(0.1)
    assert sid not in server_ev.data
    server.resume_receiving(sid)
    await wait_until(lambda: len(server_ev.data.get(sid, b"")) == 1000)
    await client.stop()
    await server.stop()


async def test_peer_reset_reports_error_or_eof() -> None:
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    raw = socket.create_connection(("127.0.0.1", port))
    await wait_until(lambda: len(server_ev.accepted) == 1)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()  # RST
    await wait_until(lambda: bool(server_ev.errors or server_ev.eof))
    await wait_until(lambda: len(server) == 0)
    await server.stop()


async def test_stop_closes_everything() -> None:
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    readers = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
    await wait_until(lambda: len(server_ev.accepted) == 5)
    await server.stop()
    for reader, writer in readers:
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_onion_never_reaches_the_resolver() -> None:
    sm = SockMan(Recorder())
    onion = Service.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333", 0)
    with pytest.raises(ConnectError, match="onion needs a proxy"):
        await sm.connect(onion)


async def test_close_aborts_a_peer_that_does_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import peerkeeper.io.sockman as sockman_module

    monkeypatch.setattr(sockman_module, "CLOSE_GRACE", 0.2)
    server_ev = Recorder()
    server = SockMan(server_ev)
    _, port = await server.bind_and_listen("127.0.0.1", 0)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    await wait_until(lambda: len(server_ev.accepted) == 1)
    sid = server_ev.accepted[0][0]
    transport = server._conns[sid].transport
    assert transport is not None
    server.send(sid, bytes(8 * 1024 * 1024))
    server.flush()
    server.close(sid)
    assert transport.get_write_buffer_size() > 0  # the peer is not reading
    await wait_until(lambda: transport.get_write_buffer_size() == 0, timeout=5)
    raw.close()
    await server.stop()
