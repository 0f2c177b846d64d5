"""SockMan: the only socket code. Listens, accepts, connects, sends, closes.

A protocol-agnostic socket manager in the shape of Bitcoin Core's SockMan split
(seed 001, bitcoin/bitcoin PR 30988): it knows connection ids and bytes, nothing
of Bitcoin. The layer above implements :class:`SockManEvents` and is told:

* ``on_accepted(conn_id, me, them) -> bool`` – a new inbound connection; return
  ``False`` to refuse it (it is closed at once);
* ``on_data(conn_id, data)`` – bytes arrived;
* ``on_eof(conn_id)`` – the peer closed its side cleanly;
* ``on_error(conn_id, exc)`` – a permanent read/write error; the connection is gone;
* ``on_writable(conn_id)`` – the send buffer drained below the low-water mark after
  having passed ``max_send_buffer`` (Core's ``fPauseSend`` cleared);
* ``on_io_loop_completed()`` – once after each batch of I/O events (Core's
  ``EventIOLoopCompletedForAll``), where the upper layer does its per-batch work.

Built on asyncio Protocols (uvloop's loop is used by the node when installed):
no task per connection, no polling; an idle connection costs no CPU. Sends made
during one batch are coalesced into one write per connection, flushed before
``on_io_loop_completed``. Every socket gets ``TCP_NODELAY``.

Flow control: the transport's write buffer high-water mark is ``max_send_buffer``
(Core ``-maxsendbuffer``, default 1,000,000 bytes); :meth:`SockMan.send_paused`
says when the upper layer should stop producing for that peer. Receiving can be
paused and resumed per connection (:meth:`SockMan.pause_receiving`), which the
upper layer does when its unprocessed queue passes ``-maxreceivebuffer``.

Outbound dials go through ``dial_map`` when one is given: a function from the
:class:`~peerkeeper.net.netaddr.Service` being dialled to the ``(host, port)`` that
really answers for it, or ``(host, port, source_host)`` to also bind the socket's
local end to ``source_host`` (tests give nodes virtual routable addresses this way,
each dialling from its own 127.x address). A service the map does not know is
refused before any socket is opened. ``accept_map`` is its inverse for inbound
connections: it turns the accepted socket's peer address into the address the
upper layer sees (a loopback source back into that node's virtual address).

Outbound dials may go through a SOCKS5 proxy (``connect(..., proxy=...)``, Core
``ConnectThroughProxy``, src/netbase.cpp): the destination, possibly a ``.onion`` or
``.b32.i2p`` name, goes to the proxy unchanged (never to the local resolver, and
never through ``dial_map``), and the connected socket then takes the same asyncio
Protocol path as a direct connection. See :mod:`peerkeeper.io.proxy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
from collections.abc import Callable
from typing import Protocol, cast

from peerkeeper.io.proxy import connect_via_proxy
from peerkeeper.net.netaddr import AddrError, NetAddr, Service, split_host_port
from peerkeeper.net.netbase import ConnectError, Proxy, StreamIsolationGenerator

__all__ = [
    "DEFAULT_MAX_SEND_BUFFER",
    "DEFAULT_MAX_RECEIVE_BUFFER",
    "ConnectError",
    "SockManEvents",
    "SockMan",
]

#: ``Service -> (host, port)`` or ``(host, port, source_host)``, None to refuse.
DialMap = Callable[[Service], tuple[str, int] | tuple[str, int, str] | None]

log = logging.getLogger("peerkeeper.net")

#: Core ``DEFAULT_MAXSENDBUFFER`` (1000) x 1000 bytes (src/net.h, src/init.cpp).
DEFAULT_MAX_SEND_BUFFER = 1_000_000
#: Core ``DEFAULT_MAXRECEIVEBUFFER`` (5000) x 1000 bytes (src/net.h, src/init.cpp).
DEFAULT_MAX_RECEIVE_BUFFER = 5_000_000


#: Seconds a closed connection may take to flush its send buffer before it is aborted.
CLOSE_GRACE = 2.0


def _abort_if_open(transport: asyncio.Transport) -> None:
    """Abort a closing transport that still holds unsent bytes."""
    if transport.get_write_buffer_size():
        transport.abort()


class SockManEvents(Protocol):
    """What the layer above SockMan implements (the SockMan PR's virtual methods)."""

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        """A new inbound connection; return False to refuse it."""
        ...

    def on_data(self, conn_id: int, data: bytes) -> None:
        """Bytes arrived on ``conn_id``."""
        ...

    def on_eof(self, conn_id: int) -> None:
        """The peer closed its sending side; the connection is closed."""
        ...

    def on_error(self, conn_id: int, exc: Exception) -> None:
        """A permanent error; the connection is closed."""
        ...

    def on_writable(self, conn_id: int) -> None:
        """The send buffer drained after having been full."""
        ...

    def on_io_loop_completed(self) -> None:
        """One batch of I/O events has been delivered."""
        ...


def _service_of(sockaddr: object) -> Service:
    """Turn a socket address tuple into a Service (unknown forms become [::]:0)."""
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        host, port = sockaddr[0], sockaddr[1]
        try:
            return Service(NetAddr.parse(str(host).split("%", 1)[0]), int(port))
        except (AddrError, ValueError):
            pass
    return Service(NetAddr.parse("::"), 0)


class _Connection(asyncio.Protocol):
    """One socket's asyncio protocol; forwards events to the SockMan that owns it."""

    __slots__ = (
        "sockman",
        "conn_id",
        "transport",
        "send_paused",
        "recv_paused",
        "closing",
        "pending",
        "pending_bytes",
        "blocked",
        "inbound",
        "held",
        "ends",
    )

    def __init__(
        self,
        sockman: SockMan,
        inbound: bool,
        *,
        ends: tuple[Service, Service] | None = None,
        initial: bytes = b"",
    ) -> None:
        self.sockman = sockman
        self.inbound = inbound
        #: ``(local, remote)`` as the layer above knows them, when not the socket's own
        #: (a stream through an I2P SAM bridge).
        self.ends = ends
        self.conn_id = -1
        self.transport: asyncio.Transport | None = None
        self.send_paused = False
        self.recv_paused = False
        self.closing = False
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.blocked = False  # the upper layer was told the send buffer is full
        # Outbound: events are held until connect() has handed the id to the caller.
        self.held: list[bytes | BaseException | None] | None = None if inbound else []
        if initial:  # bytes of the stream read before the socket came here: they go first
            self.held = [initial]

    def release(self) -> None:
        """Deliver what arrived before the caller knew this connection's id."""
        held, self.held = self.held, None
        for item in held or ():
            if isinstance(item, bytes):
                self.data_received(item)
            elif item is None:
                self.eof_received()
            else:
                self.connection_lost(item if isinstance(item, Exception) else None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sm = self.sockman
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.set_write_buffer_limits(high=sm.max_send_buffer)
        self.conn_id = sm._register(self)
        if self.inbound:
            if self.ends is not None:
                me, them = self.ends
            else:
                me = _service_of(transport.get_extra_info("sockname"))
                them = _service_of(transport.get_extra_info("peername"))
                if sm.accept_map is not None:
                    them = sm.accept_map(them)
            try:
                ok = sm.events.on_accepted(self.conn_id, me, them)
            except Exception:
                log.exception("on_accepted failed for connection %d", self.conn_id)
                ok = False
            if not ok:
                self.closing = True
                self.held = None  # nothing to deliver; connection_lost must unregister it
                self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.held is not None:
            self.held.append(data)
            return
        if self.closing:
            return
        sm = self.sockman
        sm._schedule_io_completed()
        try:
            sm.events.on_data(self.conn_id, data)
        except Exception as e:  # a bug above must not kill the loop: drop this connection
            log.exception("on_data failed for connection %d", self.conn_id)
            sm._fail(self, e)

    def eof_received(self) -> bool:
        if self.held is not None:
            self.held.append(None)
            return False
        if not self.closing:
            self.closing = True
            self.sockman._schedule_io_completed()
            self.sockman._notify(self, None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.held is not None:
            self.held.append(exc if exc is not None else ConnectionResetError("connection lost"))
            return
        sm = self.sockman
        if not self.closing:
            self.closing = True
            sm._schedule_io_completed()
            sm._notify(self, exc)
        sm._unregister(self)

    def pause_writing(self) -> None:
        self.send_paused = True

    def resume_writing(self) -> None:
        self.send_paused = False
        self.sockman._maybe_writable(self)


class SockMan:
    """Asyncio socket manager for many connections.

    ``SockMan(events, max_send_buffer=1_000_000, dial_map=None, stream_isolation=None)``;
    use inside a running event loop. Connection ids are positive ints, never reused.
    ``stream_isolation`` makes the credentials of proxies with
    ``randomize_credentials`` (Core ``-proxyrandomize``); by default one
    :class:`~peerkeeper.io.proxy.StreamIsolationGenerator` seeded from
    ``random.SystemRandom()`` is made on first use (Core's is a process-wide static).
    """

    def __init__(
        self,
        events: SockManEvents,
        *,
        max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER,
        dial_map: DialMap | None = None,
        stream_isolation: StreamIsolationGenerator | None = None,
        accept_map: Callable[[Service], Service] | None = None,
    ) -> None:
        self.events = events
        self.max_send_buffer = max_send_buffer
        self.dial_map = dial_map
        self.accept_map = accept_map
        self.stream_isolation = stream_isolation
        self._conns: dict[int, _Connection] = {}
        self._next_id = 1
        self._servers: list[asyncio.Server] = []
        self._dirty: set[_Connection] = set()
        self._io_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- bookkeeping ----------------------------------------------------------------------

    def _register(self, conn: _Connection) -> int:
        conn_id = self._next_id
        self._next_id += 1
        self._conns[conn_id] = conn
        return conn_id

    def _unregister(self, conn: _Connection) -> None:
        if self._conns.get(conn.conn_id) is conn:
            del self._conns[conn.conn_id]
        self._dirty.discard(conn)

    def _notify(self, conn: _Connection, exc: Exception | None) -> None:
        try:
            if exc is None:
                self.events.on_eof(conn.conn_id)
            else:
                self.events.on_error(conn.conn_id, exc)
        except Exception:
            log.exception("close event failed for connection %d", conn.conn_id)

    def _fail(self, conn: _Connection, exc: Exception) -> None:
        if not conn.closing:
            conn.closing = True
            self._notify(conn, exc)
        if conn.transport is not None:
            conn.transport.abort()

    def _schedule_io_completed(self) -> None:
        if not self._io_scheduled:
            self._io_scheduled = True
            asyncio.get_running_loop().call_soon(self._io_completed)

    def _io_completed(self) -> None:
        self._io_scheduled = False
        try:
            self.events.on_io_loop_completed()
        except Exception:
            log.exception("on_io_loop_completed failed")
        self.flush()

    # -- public API -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._conns)

    async def bind_and_listen(self, host: str, port: int, backlog: int = 4096) -> tuple[str, int]:
        """Listen on ``host:port`` (IPv4 or IPv6 literal; port 0 picks one).

        Returns the bound ``(host, port)``. Raises ``OSError`` when binding fails.
        """
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _Connection(self, inbound=True),
            host=host,
            port=port,
            reuse_address=True,
            backlog=backlog,
        )
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def stop_listening(self) -> None:
        """Close every listening socket; existing connections stay."""
        for server in self._servers:
            server.close()
        self._servers.clear()

    async def connect(
        self,
        service: Service | str,
        timeout: float = 5.0,
        *,
        proxy: Proxy | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> int:
        """Open an outbound TCP connection to ``service`` within ``timeout`` seconds.

        ``service`` is a :class:`Service` or its text ``"host:port"`` (``"[v6]:port"``,
        ``"<name>.onion:8333"``, or a DNS name when a proxy is given). Without a proxy
        the destination must be an IPv4/IPv6 address (through ``dial_map`` when one is
        set); onion/I2P/CJDNS addresses and names are refused, never handed to the
        system resolver. With ``proxy`` the destination text goes to the proxy
        unchanged (``dial_map`` is not consulted) and Core's ``ConnectThroughProxy``
        runs (src/netbase.cpp): one connection to the proxy, a SOCKS5 handshake, no
        retry. ``credentials`` are sent if given; otherwise a proxy with
        ``randomize_credentials`` gets the next pair from ``stream_isolation``.
        With a proxy, ``timeout`` bounds the whole exchange; Core allows the
        5 s connect plus 20 s per SOCKS5 read
        (:data:`~peerkeeper.io.proxy.SOCKS5_RECV_TIMEOUT`).

        :meth:`endpoints` of a proxied connection gives the socket's own ends: the
        remote end is the proxy, not the destination.

        Returns the new connection id. Raises :class:`ConnectError` with a reason
        (not in the dial map, refused, timeout, unreachable, needs a proxy, ...);
        through a proxy, a :class:`~peerkeeper.io.proxy.ProxyError` with its ``kind``.
        Core's ``-timeout`` default is 5 s (src/netbase.h ``DEFAULT_CONNECT_TIMEOUT``).
        """
        loop = asyncio.get_running_loop()
        if proxy is not None:
            return await self._connect_via_proxy(service, timeout, proxy, credentials)
        if isinstance(service, str):
            try:
                service = Service.parse(service, 0)
            except AddrError:
                raise ConnectError(service, "a host name needs a proxy") from None
        local_addr: tuple[str, int] | None = None
        if self.dial_map is not None:
            target = self.dial_map(service)
            if target is None:
                raise ConnectError(service, "address not in the dial map")
            host, port = target[0], target[1]
            if len(target) == 3:
                local_addr = (target[2], 0)
        elif service.addr.is_ipv4() or service.addr.is_ipv6():
            host, port = str(service.addr), service.port
        else:
            # Never hand an onion / I2P / CJDNS name to the system resolver (Core needs a proxy).
            raise ConnectError(service, f"{service.addr.get_network().rpc_name} needs a proxy")
        try:
            async with asyncio.timeout(timeout):
                _, proto = await loop.create_connection(
                    lambda: _Connection(self, inbound=False), host, port, local_addr=local_addr
                )
        except TimeoutError:
            raise ConnectError(service, "timeout") from None
        except OSError as e:
            reason = errno.errorcode.get(e.errno or 0, "") or str(e)
            raise ConnectError(service, reason) from None
        return self._adopt(proto)

    def _adopt(self, proto: asyncio.BaseProtocol) -> int:
        """Hand a freshly connected outbound protocol to the caller (events held until then)."""
        assert isinstance(proto, _Connection)
        if proto.held:
            asyncio.get_running_loop().call_soon(proto.release)
        else:
            proto.held = None
        return proto.conn_id

    async def _connect_via_proxy(
        self,
        service: Service | str,
        timeout: float,
        proxy: Proxy,
        credentials: tuple[str, str] | None,
    ) -> int:
        if isinstance(service, Service):
            host, port = str(service.addr), service.port  # Core ToStringAddr(): no brackets
        else:
            host, port, valid = split_host_port(service, -1)
            if port < 0 or (not valid and port != 0) or not host:
                raise ConnectError(service, "destination must be host:port")
        if credentials is None and proxy.randomize_credentials:
            if self.stream_isolation is None:
                self.stream_isolation = StreamIsolationGenerator(random.SystemRandom())
            credentials = self.stream_isolation.generate()
        sock = await connect_via_proxy(proxy, host, port, timeout=timeout, credentials=credentials)
        loop = asyncio.get_running_loop()
        try:
            if sock.family == getattr(socket, "AF_UNIX", None):
                _, proto = await loop.create_unix_connection(
                    lambda: _Connection(self, inbound=False), sock=sock
                )
            else:
                _, proto = await loop.create_connection(
                    lambda: _Connection(self, inbound=False), sock=sock
                )
        except BaseException:
            sock.close()
            raise
        return self._adopt(proto)

    async def adopt(
        self,
        sock: socket.socket,
        *,
        inbound: bool,
        ends: tuple[Service, Service],
        initial: bytes = b"",
    ) -> int:
        """Take a connected socket another layer set up (a stream through an I2P SAM
        bridge) as a connection like any other: its ``ends`` (local, remote) are what
        :meth:`endpoints` and ``on_accepted`` report, and ``initial``, bytes of the
        stream already read, are delivered before anything the socket brings.

        Inbound: ``on_accepted`` is asked first, as for a listener's connection; a
        refused one is closed and its id is still returned. Returns the connection id.
        Raises ``OSError`` when the socket cannot be taken (it is then closed).
        """
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(
                lambda: _Connection(self, inbound=inbound, ends=ends, initial=initial), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        assert isinstance(proto, _Connection)
        if inbound:
            if proto.held is not None:
                loop.call_soon(proto.release)
            return proto.conn_id
        return self._adopt(proto)

    def send(self, conn_id: int, data: bytes) -> bool:
        """Queue ``data`` for ``conn_id``; written at the end of this loop iteration.

        Returns False if the connection is unknown or closing (the data is dropped).
        """
        conn = self._conns.get(conn_id)
        if conn is None or conn.closing:
            return False
        conn.pending.append(data)
        conn.pending_bytes += len(data)
        if conn not in self._dirty:
            self._dirty.add(conn)
            self._schedule_io_completed()
        return True

    def flush(self) -> None:
        """Write every queued send now (normally done once per I/O batch)."""
        dirty = self._dirty
        self._dirty = set()
        for conn in dirty:
            if conn.pending and conn.transport is not None and not conn.closing:
                data = conn.pending[0] if len(conn.pending) == 1 else b"".join(conn.pending)
                conn.pending.clear()
                conn.pending_bytes = 0
                conn.transport.write(data)
                if conn.blocked and not conn.send_paused:
                    asyncio.get_running_loop().call_soon(self._maybe_writable, conn)
            else:
                conn.pending.clear()
                conn.pending_bytes = 0
                if conn.blocked and not conn.send_paused and not conn.closing:
                    asyncio.get_running_loop().call_soon(self._maybe_writable, conn)

    def _maybe_writable(self, conn: _Connection) -> None:
        """Tell the upper layer it may send again, once, if it was told to stop."""
        if not conn.blocked or conn.closing or conn.send_paused or conn.transport is None:
            return
        if conn.transport.get_write_buffer_size() + conn.pending_bytes > self.max_send_buffer:
            return
        conn.blocked = False
        try:
            self.events.on_writable(conn.conn_id)
        except Exception:
            log.exception("on_writable failed for connection %d", conn.conn_id)

    def send_paused(self, conn_id: int) -> bool:
        """True when ``conn_id``'s queued bytes reach ``max_send_buffer`` (Core ``fPauseSend``).

        Counts what :meth:`send` queued this iteration plus the transport's buffer.
        Once this has returned True, ``on_writable`` follows when the buffer drains.
        """
        conn = self._conns.get(conn_id)
        if conn is None or conn.transport is None:
            return False
        if (
            conn.send_paused
            or conn.pending_bytes + conn.transport.get_write_buffer_size() > self.max_send_buffer
        ):
            if not conn.blocked:
                conn.blocked = True
                if not conn.send_paused:
                    # Nothing from the transport will wake us if the kernel takes it all.
                    self._dirty.add(conn)
                    self._schedule_io_completed()
            return True
        return False

    def send_buffer_size(self, conn_id: int) -> int:
        """Bytes queued but not yet written to the kernel for ``conn_id``."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.transport is None:
            return 0
        return conn.transport.get_write_buffer_size() + conn.pending_bytes

    def pause_receiving(self, conn_id: int) -> None:
        """Stop reading from ``conn_id`` until :meth:`resume_receiving`."""
        conn = self._conns.get(conn_id)
        if (
            conn is not None
            and conn.transport is not None
            and not conn.recv_paused
            and not conn.closing
        ):
            conn.recv_paused = True
            conn.transport.pause_reading()

    def resume_receiving(self, conn_id: int) -> None:
        """Read from ``conn_id`` again."""
        conn = self._conns.get(conn_id)
        if (
            conn is not None
            and conn.transport is not None
            and conn.recv_paused
            and not conn.closing
        ):
            conn.recv_paused = False
            conn.transport.resume_reading()

    def endpoints(self, conn_id: int) -> tuple[Service, Service] | None:
        """``(local, remote)`` socket addresses of ``conn_id``, or None if unknown."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.transport is None:
            return None
        if conn.ends is not None:
            return conn.ends
        t = conn.transport
        return _service_of(t.get_extra_info("sockname")), _service_of(t.get_extra_info("peername"))

    def close(self, conn_id: int) -> None:
        """Close ``conn_id``; no event is raised for it.

        What is queued is handed to the kernel, but a peer that does not read
        cannot hold the socket: after ``CLOSE_GRACE`` seconds the connection is
        aborted and its buffers dropped (Core closes at once and discards its
        send queue, src/net.cpp ``CloseSocketDisconnect``).
        """
        conn = self._conns.get(conn_id)
        if conn is None or conn.closing:
            return
        conn.closing = True
        transport = conn.transport
        if transport is None:
            return
        if conn.pending:
            transport.write(b"".join(conn.pending))
            conn.pending.clear()
            conn.pending_bytes = 0
        transport.close()
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, _abort_if_open, transport)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        self.stop_listening()
        for conn in list(self._conns.values()):
            conn.closing = True
            if conn.transport is not None:
                conn.transport.abort()
        self._conns.clear()
        self._dirty.clear()
        await asyncio.sleep(0)
