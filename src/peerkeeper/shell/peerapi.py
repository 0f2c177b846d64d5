"""The application API of the Bitcoin node: peers, messages, sending and requests.

:class:`PeerApi` is mixed into :class:`~peerkeeper.daemon.node.Node`; it is the
:class:`~peerkeeper.bitcoin.app.AppSink` of its ConnManCore. Core has no application
API; the names are its ``CConnman``'s (src/net.h): ``ForEachNode`` ->
:meth:`PeerApi.for_each_node`, ``PushMessage`` -> :meth:`PeerApi.push_message`,
``FindNode`` -> :meth:`PeerApi.find_node`, ``GetNodeStats`` -> :meth:`PeerApi.node_stats`.

* ``async for ev in node.peer_events()``: :class:`PeerConnected`, :class:`PeerDisconnected`
  (with a :class:`~peerkeeper.bitcoin.app.DisconnectReason`);
* ``node.on(Inv, handler)``: ``handler(peer, msg)``, a function or a coroutine function;
* ``async for peer, msg in node.messages(Inv, Headers)``;
* ``await node.request(peer, GetHeaders(...), expect=Headers, timeout=30)``, on the
  dispatch layer's pending table: a ``RequestFailed`` when the peer goes or time runs out.

Handlers and iterators get messages after the core processed them as Core would, in
order, one event-loop turn later (never inside the core's own call, so a handler may
send). A subscriber that falls ``maxlen`` items behind is dropped
(:class:`~peerkeeper.shell.events.SubscriberTooSlow`), so a stuck reader never grows
the node's memory.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from peerkeeper.bitcoin.app import DisconnectReason, request_key
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import AddrError, NetAddr, Service
from peerkeeper.net.netbase import ConnectError
from peerkeeper.shell.dispatch import RequestFailed
from peerkeeper.shell.events import SubscriberTooSlow
from peerkeeper.wire.messages import GetAddr, Message

if TYPE_CHECKING:
    from peerkeeper.bitcoin.connman import PeerConn
    from peerkeeper.shell.connman import ConnMan

__all__ = [
    "MAX_HANDLER_TASKS",
    "DisconnectReason",
    "NodeStats",
    "Peer",
    "PeerApi",
    "PeerConnected",
    "PeerDisconnected",
    "PeerEvent",
]

log = logging.getLogger("peerkeeper.app")

#: Coroutine handlers running at once; past it a message's handlers are skipped (logged,
#: counted in ``handler_overflows``) so that a flood cannot grow the node's memory.
MAX_HANDLER_TASKS = 10_000
#: Payload bytes of the messages held by running coroutine handlers, and the default
#: of each iterator's queue (``max_bytes``): a decoded message takes about 4x its
#: payload in Python objects (an ``inv`` of 50,000 items: 1.8 MB -> 7.4 MB), so this
#: holds the memory near 64 MB each.
MAX_QUEUED_BYTES = 16 * 1024 * 1024

M = TypeVar("M", bound=Message)
T = TypeVar("T")
Handler = Callable[["Peer", Any], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Peer:
    """A connected peer as the application sees it, fixed at the handshake.

    ``id`` (Core's node id, as in getpeerinfo), ``addr`` (:class:`Service`), ``name``
    (the name we dialled, or the address for inbound: getpeerinfo's ``addr``),
    ``conn_type``, ``inbound``; from its version message: ``version``, ``services``
    (bits), ``user_agent``, ``start_height``, ``relay``; ``transport`` (``"v1"`` or
    ``"v2"``); ``connected_at`` (unix seconds).
    """

    id: int
    addr: Service
    name: str
    conn_type: ConnectionType
    inbound: bool
    version: int
    services: int
    user_agent: str
    start_height: int
    relay: bool
    transport: str
    connected_at: float

    @classmethod
    def of(cls, conn: PeerConn) -> Peer:
        """The view of a live connection."""
        their = conn.proto.their
        return cls(
            conn.id,
            conn.addr,
            conn.addr_string,
            conn.conn_type,
            conn.inbound,
            their.version,
            their.services,
            their.user_agent,
            their.start_height,
            their.relay,
            conn.transport.transport_type,
            conn.connected_at,
        )


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """``peer`` completed the version handshake."""

    peer: Peer


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    """``peer`` is gone: ``reason`` (typed) and ``text`` (the log line's words)."""

    peer: Peer
    reason: DisconnectReason
    text: str


PeerEvent = PeerConnected | PeerDisconnected


@dataclass(frozen=True, slots=True)
class NodeStats:
    """One peer's numbers (Core ``CNodeStats``, src/net.h; getpeerinfo's fields).

    Times in unix seconds, ping times in seconds (None before the first pong), byte
    counts in bytes.
    """

    peer: Peer
    addr_bind: Service | None
    network: str
    last_send: float
    last_recv: float
    bytes_sent: int
    bytes_recv: int
    ping_time: float | None
    min_ping_time: float | None
    session_id: bytes | None


class _RetryV1(Exception):
    """The peer hung up on our BIP324 key: dial again in v1 (Core ``ShouldReconnectV1``)."""


class _Stream(Generic[T]):
    """A bounded queue behind an async iterator: dropped when ``maxlen`` items or
    ``max_bytes`` of message payload behind."""

    def __init__(
        self,
        owner: PeerApi,
        maxlen: int,
        types: tuple[type[Message], ...] = (),
        max_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        self.owner = owner
        self.maxlen = maxlen
        self.max_bytes = max_bytes
        self.types = types
        self.queue: collections.deque[tuple[T, int]] = collections.deque()
        self.queued_bytes = 0
        self.dropped = False
        self.closed = False
        self._ready: asyncio.Future[None] | None = None

    def push(self, item: T, size: int = 0) -> None:
        if len(self.queue) >= self.maxlen or self.queued_bytes + size > self.max_bytes:
            self.dropped = True
            self.owner._unsubscribe(self)
            log.info(
                "application subscriber fell %d items (%d bytes) behind: dropped",
                len(self.queue),
                self.queued_bytes,
            )
        else:
            self.queue.append((item, size))
            self.queued_bytes += size
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def close(self) -> None:
        """Stop receiving; the iterator ends after what is queued."""
        self.closed = True
        self.owner._unsubscribe(self)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        """The next item; :class:`SubscriberTooSlow` once dropped (after the queue empties)."""
        while not self.queue:
            if self.dropped:
                raise SubscriberTooSlow(
                    f"fell {self.maxlen} items or {self.max_bytes} bytes behind"
                )
            if self.closed:
                raise StopAsyncIteration
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._ready
            finally:
                self._ready = None
        item, size = self.queue.popleft()
        self.queued_bytes -= size
        return item


class PeerApi:
    """The application API (mixed into the Bitcoin ``Node``); needs ``self.connman``."""

    connman: ConnMan

    def _init_app(self) -> None:
        self._handlers: dict[type[Message], list[Handler]] = {}
        self._msg_streams: list[_Stream[tuple[Peer, Message]]] = []
        self._event_streams: list[_Stream[PeerEvent]] = []
        self._views: dict[int, Peer] = {}
        self._inbox: collections.deque[tuple[Peer, Message, int] | PeerEvent] = collections.deque()
        self._drain_scheduled = False
        self._handler_tasks: dict[asyncio.Task[None], int] = {}  # -> the message's bytes
        self._handler_bytes = 0
        self._connecting: dict[int, asyncio.Future[Peer]] = {}
        self._requests_getdata = 0  # getdata requests waiting: tx and block get decoded
        #: Messages not handled because :data:`MAX_HANDLER_TASKS` coroutines were running.
        self.handler_overflows = 0
        self.connman.core.app = self

    async def _stop_app(self) -> None:
        """End every iterator (after what is queued) and cancel running handler tasks."""
        for msg_stream in list(self._msg_streams):
            msg_stream.close()
        for ev_stream in list(self._event_streams):
            ev_stream.close()
        tasks = list(self._handler_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- AppSink (called by the core) ---------------------------------------------------------

    def peer_connected(self, peer: PeerConn) -> None:
        """AppSink: a peer completed the handshake."""
        view = self._views[peer.id] = Peer.of(peer)
        waiter = self._connecting.get(peer.id)
        if waiter is not None and not waiter.done():
            waiter.set_result(view)
        if self._event_streams:
            self._post(PeerConnected(view))

    def peer_disconnected(self, peer: PeerConn, reason: DisconnectReason, text: str) -> None:
        """AppSink: a peer is gone (reported on only if it had completed the handshake)."""
        waiter = self._connecting.get(peer.id)
        if waiter is not None and not waiter.done():
            retry = not peer.inbound and peer.transport.should_reconnect_v1()
            waiter.set_exception(_RetryV1() if retry else ConnectError(peer.addr_string, text))
        view = self._views.pop(peer.id, None)
        if view is not None and self._event_streams:
            self._post(PeerDisconnected(view, reason, text))

    def message(self, peer: PeerConn, msg: Message, size: int) -> None:
        """AppSink: a message from a connected peer (queued only if someone wants it)."""
        if not self._msg_streams and type(msg) not in self._handlers:
            return
        view = self._views.get(peer.id)
        if view is not None:
            self._post((view, msg, size))

    def wants(self, command: str) -> bool:
        """AppSink: a handler, an iterator or a request wants messages of ``command``."""
        # UnknownMessage has no class-level command: its handlers never want tx or block.
        if any(getattr(cls, "command", None) == command for cls in self._handlers):
            return True
        for stream in self._msg_streams:
            if not stream.types or any(
                getattr(t, "command", None) == command for t in stream.types
            ):
                return True
        return command in ("tx", "block") and self._requests_getdata > 0

    def _post(self, item: tuple[Peer, Message, int] | PeerEvent) -> None:
        self._inbox.append(item)
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        inbox = self._inbox
        while inbox:
            item = inbox.popleft()
            if isinstance(item, tuple):
                peer, msg, size = item
                for handler in self._handlers.get(type(msg), ()):
                    self._call(handler, peer, msg, size)
                for stream in list(self._msg_streams):
                    if not stream.types or type(msg) in stream.types:
                        stream.push((peer, msg), size)
            else:
                for ev_stream in list(self._event_streams):
                    ev_stream.push(item)

    def _call(self, handler: Handler, peer: Peer, msg: Message, size: int) -> None:
        try:
            result = handler(peer, msg)
        except Exception:
            log.exception("handler %r failed on %s from peer=%d", handler, msg.command, peer.id)
            return
        if inspect.isawaitable(result):
            if (
                len(self._handler_tasks) >= MAX_HANDLER_TASKS
                or self._handler_bytes + size > MAX_QUEUED_BYTES
            ):
                # A flood outrunning slow coroutine handlers: drop, never grow without bound.
                self.handler_overflows += 1
                if inspect.iscoroutine(result):
                    result.close()  # never awaited: no "coroutine was never awaited" warning
                log.warning(
                    "%d handler tasks holding %d bytes: %s from peer=%d not handled",
                    len(self._handler_tasks),
                    self._handler_bytes,
                    msg.command,
                    peer.id,
                )
                return
            task = asyncio.ensure_future(result)
            self._handler_tasks[task] = size
            self._handler_bytes += size
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._handler_bytes -= self._handler_tasks.pop(task, 0)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler failed", exc_info=task.exception())

    def _unsubscribe(self, stream: _Stream[Any]) -> None:
        for streams in (self._msg_streams, self._event_streams):
            if stream in streams:
                streams.remove(stream)

    # -- receiving ----------------------------------------------------------------------------

    def peer_events(self, *, maxlen: int = 10_000) -> _Stream[PeerEvent]:
        """``async for ev in node.peer_events():`` :class:`PeerConnected` and
        :class:`PeerDisconnected`, from now on. ``.close()`` ends it.

        :param maxlen: queue bound; past it the iterator raises
            :class:`~peerkeeper.shell.events.SubscriberTooSlow`.
        """
        stream: _Stream[PeerEvent] = _Stream(self, maxlen)
        self._event_streams.append(stream)
        return stream

    def messages(
        self, *types: type[Message], maxlen: int = 10_000, max_bytes: int = MAX_QUEUED_BYTES
    ) -> _Stream[tuple[Peer, Message]]:
        """``async for peer, msg in node.messages(Inv, Headers):`` messages of exactly
        those types (every type when none is given) from connected peers, from now on.

        :param maxlen: queue bound in messages, ``max_bytes`` in payload bytes; past
            either the iterator raises
            :class:`~peerkeeper.shell.events.SubscriberTooSlow`.
        """
        stream: _Stream[tuple[Peer, Message]] = _Stream(self, maxlen, tuple(types), max_bytes)
        self._msg_streams.append(stream)
        return stream

    def on(self, msg_type: type[M], handler: Handler | None = None) -> Any:
        """Call ``handler(peer, msg)`` for every message of exactly ``msg_type`` (``Inv``
        is not ``GetData``, though they share a layout).

        A coroutine function runs as a task; an exception is logged, never raised
        into the node. Without ``handler`` it is a decorator: ``@node.on(Inv)``.
        Returns the handler. :meth:`off` removes it.
        """
        if handler is None:
            return lambda fn: self.on(msg_type, fn)
        self._handlers.setdefault(msg_type, []).append(handler)
        return handler

    def off(self, msg_type: type[Message], handler: Handler) -> None:
        """Remove a handler :meth:`on` added; ValueError if it is not there."""
        handlers = self._handlers.get(msg_type, [])
        handlers.remove(handler)
        if not handlers:
            self._handlers.pop(msg_type, None)

    # -- peers --------------------------------------------------------------------------------

    def peers(self) -> list[Peer]:
        """The peers that completed the handshake, by id."""
        return [self._views[i] for i in sorted(self._views)]

    def for_each_node(self, fn: Callable[[Peer], object]) -> None:
        """Call ``fn(peer)`` for every connected peer (Core ``CConnman::ForEachNode``,
        which also skips peers not fully connected)."""
        for peer in self.peers():
            fn(peer)

    def find_node(
        self,
        *,
        addr: Service | NetAddr | str | None = None,
        id: int | None = None,
        name: str | None = None,
    ) -> Peer | None:
        """A connected peer by ``id``, by ``addr`` (a :class:`Service`, or a
        :class:`NetAddr` for any port; a string is parsed), or by ``name`` (the name we
        dialled); None when none matches (Core ``CConnman::FindNode`` variants).

        :raises ValueError: not exactly one of ``addr``, ``id``, ``name``, or an
            unparsable ``addr`` string.
        """
        if sum(x is not None for x in (addr, id, name)) != 1:
            raise ValueError("find_node takes exactly one of addr=, id=, name=")
        if id is not None:
            return self._views.get(id)
        if isinstance(addr, str):
            try:
                addr = Service.parse(addr, self.connman.options.chain.default_port)
            except AddrError as e:
                raise ValueError(str(e)) from None
        for peer in self.peers():
            if name is not None and peer.name == name:
                return peer
            if isinstance(addr, Service) and peer.addr == addr:
                return peer
            if isinstance(addr, NetAddr) and peer.addr.addr == addr:
                return peer
        return None

    def node_stats(self) -> list[NodeStats]:
        """Every connected peer's numbers (Core ``CConnman::GetNodeStats``)."""
        out = []
        core_peers = self.connman.peers
        for view in self.peers():
            conn = core_peers.get(view.id)
            if conn is None or conn.closed:
                continue
            proto = conn.proto
            out.append(
                NodeStats(
                    view,
                    conn.addr_bind,
                    conn.net_class.rpc_name,
                    proto.last_send,
                    proto.last_recv,
                    conn.bytes_sent,
                    conn.bytes_recv,
                    proto.ping.last_time,
                    proto.ping.min_time,
                    conn.transport.session_id,
                )
            )
        return out

    # -- sending ------------------------------------------------------------------------------

    def _peer_id(self, peer: Peer | int) -> int:
        return peer if isinstance(peer, int) else peer.id

    def push_message(self, peer: Peer | int, msg: Message) -> None:
        """Send ``msg`` to ``peer`` (Core ``CConnman::PushMessage``): counted, framed by
        its transport, subject to ``-maxsendbuffer`` and ``-maxuploadtarget`` as Core's.

        :raises KeyError: no such connected peer.
        """
        peer_id = self._peer_id(peer)
        if peer_id not in self._views:
            raise KeyError(peer_id)
        self.connman.send_message(peer_id, msg)

    async def drain(self, peer: Peer | int) -> None:
        """Wait until ``peer``'s queued bytes are at most ``-maxsendbuffer`` (Core's
        ``fPauseSend`` cleared); at once when they are already. Await it between
        :meth:`push_message` calls that send much: memory then stays bounded by
        about one message plus ``-maxsendbuffer`` per peer.

        :raises KeyError: no such connected peer, or it disconnected while waiting.
        """
        peer_id = self._peer_id(peer)
        if peer_id not in self._views:
            raise KeyError(peer_id)
        await self.connman.drain(peer_id)

    def broadcast(self, msg: Message, predicate: Callable[[Peer], bool] | None = None) -> int:
        """Send ``msg`` to every connected peer ``predicate`` accepts (all by default);
        returns how many."""
        sent = 0
        for peer in self.peers():
            if predicate is None or predicate(peer):
                self.connman.send_message(peer.id, msg)
                sent += 1
        return sent

    async def request(
        self,
        peer: Peer | int,
        msg: Message,
        *,
        expect: type[Message] | tuple[type[Message], ...] | None = None,
        timeout: float = 30.0,
    ) -> Message:
        """Send ``msg`` and return the peer's reply: ``ping`` -> ``pong`` (same nonce),
        ``getaddr`` -> ``addr``/``addrv2``, ``getheaders`` -> ``headers``, a one-item
        ``getdata`` -> that ``block`` or ``tx``, or a ``notfound`` naming it.

        The reply is processed by the node as usual too. ``timeout`` in seconds. Core
        answers one ``getaddr`` per connection, and the node sends its own to every
        outbound peer at the handshake: a ``getaddr`` request then waits for that
        answer (one already received is not asked again, so it times out).

        :raises KeyError: no such connected peer.
        :raises ValueError: ``msg`` has no reply to wait for
            (:func:`~peerkeeper.bitcoin.app.request_key`).
        :raises RequestFailed: ``reason`` ``"timeout"``, the disconnect's reason when the
            peer goes first, or ``"unexpected <command>"`` when the reply is not an
            ``expect`` type (a ``notfound`` to a getdata that expects ``Block``, say).
        """
        key = request_key(msg)
        peer_id = self._peer_id(peer)
        if peer_id not in self._views:
            raise KeyError(peer_id)
        conn = self.connman.peers[peer_id]
        # Our own getaddr to an outbound peer went out at the handshake (Core's
        # SendGetAddr) and Core answers one per connection: wait for that answer.
        send = not (isinstance(msg, GetAddr) and conn.proto.getaddr_sent)
        getdata = key[0] == "getdata"
        self._requests_getdata += getdata
        try:
            reply: Message = await self.connman._request(peer_id, msg, key, timeout, send=send)
        finally:
            self._requests_getdata -= getdata
        if expect is not None and not isinstance(reply, expect):
            raise RequestFailed(f"unexpected {reply.command}")
        return reply

    # -- connecting ---------------------------------------------------------------------------

    async def connect(
        self,
        address: str | Service,
        *,
        conn_type: ConnectionType = ConnectionType.MANUAL,
        timeout: float = 60.0,
        v2: bool | None = None,
    ) -> Peer:
        """Dial ``address`` once (Core ``addnode onetry``) and wait for the handshake.

        ``v2``: BIP324 first (default: for manual peers and peers advertising
        NODE_P2P_V2, as Core); a peer that hangs up on our key is dialled again in v1.

        :raises ConnectError: the dial was refused or failed (``reason``: the OS's text,
            "already connected", "banned or discouraged", "network not active", ...),
            or the peer went before completing the handshake, or ``timeout`` seconds
            passed.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        use_v2: bool | None = v2
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    return await self._connect_once(address, conn_type, use_v2)
            except _RetryV1:
                use_v2 = False  # Core: a v2 attempt the peer hung up on is retried as v1
            except TimeoutError:
                raise ConnectError(address, f"no handshake within {timeout:g}s") from None

    async def _connect_once(
        self, address: str | Service, conn_type: ConnectionType, use_v2: bool | None
    ) -> Peer:
        failure: list[str] = []
        conn = await self.connman.open_connection(
            address, conn_type, use_v2=use_v2, on_failed=failure.append
        )
        if conn is None:
            raise ConnectError(address, failure[0] if failure else "refused")
        if conn.id in self._views:
            return self._views[conn.id]
        if conn.closed:
            raise ConnectError(address, "disconnected during the handshake")
        fut: asyncio.Future[Peer] = asyncio.get_running_loop().create_future()
        self._connecting[conn.id] = fut
        try:
            return await fut
        except asyncio.CancelledError:
            # Timed out or cancelled: nobody will use this connection; close it now
            # rather than at the handshake timeout, so a retry is not "already connected".
            self.connman.disconnect_node(peer_id=conn.id)
            raise
        finally:
            self._connecting.pop(conn.id, None)

    def disconnect(self, peer: Peer | int) -> bool:
        """Disconnect ``peer`` (Core ``DisconnectNode`` by id); False when it is not connected."""
        return self.connman.disconnect_node(peer_id=self._peer_id(peer))
