"""ConnMan on asyncio: the driver of :class:`~peerkeeper.bitcoin.connman.ConnManCore`.

Every decision of Bitcoin Core's ``CConnman`` (src/net.cpp) lives in the sans-IO core;
this class only binds and listens, resolves names, dials through SockMan, keeps the
futures of :meth:`ConnMan.request_pong` and :meth:`ConnMan.request_addr`, and runs one
loop: feed SockMan's events and ``now`` (from the node's one clock) in, carry the core's
actions out, and arm one timer at the core's ``next_wakeup``. No rule lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.bitcoin.banman import BanMan
from peerkeeper.bitcoin.connman import (
    LOCAL_MANUAL,
    Close,
    ConnAction,
    ConnManCore,
    ConnManOptions,
    Dial,
    PauseRead,
    PeerConn,
    Resolve,
    ResumeRead,
    Send,
)
from peerkeeper.bitcoin.outbound import OutboundPolicy
from peerkeeper.bitcoin.uploadtarget import UploadTarget
from peerkeeper.dispatch.dispatcher import PendingRequests
from peerkeeper.io.dns import make_resolver, resolve_seed, resolve_service
from peerkeeper.io.sockman import ConnectError, SockMan
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Service, SubNet
from peerkeeper.shell.i2p import I2PSessions
from peerkeeper.wire import corelog
from peerkeeper.wire.messages import AddrEntry, GetAddr, Message, Ping

__all__ = ["ConnManOptions", "PeerConn", "ConnMan"]

log = logging.getLogger("peerkeeper.net")


T = TypeVar("T")


class _CoreView(Generic[T]):
    """A read-only attribute of the driver: the core's attribute of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"The core's ``{name}`` (read-only; see ConnManCore)."

    def __get__(self, obj: ConnMan, owner: type | None = None) -> T:
        return cast(T, getattr(obj.core, self.name))


class ConnMan:
    """The connection manager on asyncio; implements :class:`~peerkeeper.io.sockman.SockManEvents`.

    ``ConnMan(options, addrman, clock=time.time, rng=random.Random(), banman=None)``:
    ``clock`` is the node's one time base (unix seconds; Core's mockable ``GetTime``),
    handed to the core with every event. Start with ``await start()`` inside a running
    loop, stop with ``await stop()``. The core is :attr:`core`; its state (peers,
    policy, counters) is read through the properties below.
    """

    def __init__(
        self,
        options: ConnManOptions,
        addrman: AddrMan,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        banman: BanMan | None = None,
        steady: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        #: Core's steady clock: paces the loops and back-offs, never mocked.
        self.steady = steady
        self.core = ConnManCore(
            options,
            addrman,
            rng=rng if rng is not None else random.Random(),
            transport_rng=os.urandom,
            banman=banman,
        )
        self.sockman = SockMan(
            self,
            max_send_buffer=options.max_send_buffer,
            dial_map=options.dial_map,
            accept_map=options.accept_map,
        )
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._tasks: set[asyncio.Task[None]] = set()
        # (peer, key) -> its lock and how many requests use it (_request).
        self._request_locks: dict[
            tuple[int, tuple[object, ...]], tuple[asyncio.Lock, list[int]]
        ] = {}
        self._stopping = False
        self._resolver: Any = None
        #: The I2P sessions, with ``-i2psam`` (Core's ``m_i2p_sam_session`` and
        #: ``m_unused_i2p_sessions``).
        self.i2p: I2PSessions | None = None
        sam = options.proxies.i2p_sam
        if sam is not None:
            key_file = options.i2p_private_key_file
            self.i2p = I2PSessions(
                sam,
                accept_incoming=options.i2p_accept_incoming,
                private_key_file=Path(key_file) if key_file is not None else None,
                connect_timeout=options.connect_timeout,
            )
        # conn id -> the drain() calls waiting for its send buffer to empty
        self._drain_waiters: dict[int, list[asyncio.Future[None]]] = {}

    # -- the core's state (read-only views) -----------------------------------------------

    @property
    def addrman(self) -> AddrMan:
        """The address table the core draws from (replaced when the store loads)."""
        return self.core.addrman

    @addrman.setter
    def addrman(self, value: AddrMan) -> None:
        self.core.addrman = value

    options: _CoreView[ConnManOptions] = _CoreView()
    peers: _CoreView[dict[int, PeerConn]] = _CoreView()
    policy: _CoreView[OutboundPolicy | None] = _CoreView()
    pending: _CoreView[PendingRequests] = _CoreView()
    rng: _CoreView[random.Random] = _CoreView()
    listening: _CoreView[list[tuple[str, int]]] = _CoreView()
    network_active: _CoreView[bool] = _CoreView()
    total_bytes_sent: _CoreView[int] = _CoreView()
    total_bytes_recv: _CoreView[int] = _CoreView()
    upload_target: _CoreView[UploadTarget] = _CoreView()
    local_addresses: _CoreView[dict[Service, int]] = _CoreView()
    anchors_at_stop: _CoreView[list[AddrEntry]] = _CoreView()
    inbound_count: _CoreView[int] = _CoreView()
    feelers_done: _CoreView[int] = _CoreView()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listeners and start the core (its loops run on one timer).

        Raises ``OSError`` when a bind fails.
        """
        opts = self.options
        listening: list[tuple[str, int]] = []
        onion: list[tuple[str, int]] = []
        if opts.listen:
            binds = list(opts.bind)
            if not binds and (opts.onion_binds_default or not opts.onion_binds):
                binds = [("::", opts.chain.default_port), ("0.0.0.0", opts.chain.default_port)]
            for (host, port), into, explicit in [
                *((b, listening, bool(opts.bind)) for b in binds),
                *((b, onion, not opts.onion_binds_default) for b in opts.onion_binds),
            ]:
                try:  # Core BindListenPort; an explicit -bind that fails is an init error
                    into.append(await self.sockman.bind_and_listen(host, port))
                    log.info(corelog.BOUND_TO, corelog.host_port(*into[-1]))
                except OSError as e:
                    if explicit:
                        raise OSError(corelog.unable_to_bind(host, port, e)) from None
                    log.debug(corelog.unable_to_bind(host, port, e))
            if not listening and not onion:
                raise OSError(corelog.FAILED_TO_LISTEN)
        self.core.start(self.clock(), listening, onion_listening=onion, steady=self.steady())
        self._pump()
        if self.i2p is not None:  # Core starts ThreadI2PAcceptIncoming with the others
            self.i2p.start_accepting(self._adopt_i2p, self._add_i2p_local, self.core.remove_local)

    async def stop(self) -> None:
        """Close every connection and listener and cancel the dials and resolutions.

        Before closing, the core keeps the block-relay-only peers in
        :attr:`anchors_at_stop` (Core ``StopNodes`` dumps them to anchors.dat).
        """
        self.core.stop(self.clock(), steady=self.steady())
        self._pump()
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.i2p is not None:
            await self.i2p.stop()
        await self.sockman.stop()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the one loop: actions out, timer armed -----------------------------------------------

    def _pump(self) -> None:
        """Carry out every action the core decided, then arm the timer at its next wakeup."""
        core = self.core
        while True:
            actions = core.poll_actions()
            if not actions:
                break
            for action in actions:
                self._execute(action)
        if not self._stopping:
            at = core.next_wakeup()
            if at < self._timer_at:
                self._arm(at)

    def _execute(self, action: ConnAction) -> None:
        sockman = self.sockman
        if isinstance(action, Send):
            sockman.send(action.conn_id, action.data)
        elif isinstance(action, Close):
            sockman.close(action.conn_id)
            self._ended(action.conn_id)
        elif isinstance(action, PauseRead):
            sockman.pause_receiving(action.conn_id)
            if action.send and not sockman.send_paused(action.conn_id):
                # The kernel took it all already: nothing will report the drain.
                asyncio.get_running_loop().call_soon(self.on_writable, action.conn_id)
        elif isinstance(action, ResumeRead):
            sockman.resume_receiving(action.conn_id)
        elif isinstance(action, Dial):
            self._spawn(self._dial(action))
        elif isinstance(action, Resolve):
            self._spawn(self._resolve(action))

    def _arm(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        if at == float("inf"):
            self._timer = None
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, at - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        try:
            self.core.tick(self.clock(), steady=self.steady())
        finally:
            self._pump()  # re-arms the timer whatever happened
            self.sockman.flush()

    def wake(self) -> None:
        """Run the core's timers now (after the clock jumped: ``setmocktime``)."""
        if not self._stopping:
            self._arm(self.clock())

    async def _connect(self, dial: Dial) -> tuple[int, Service | None, bool]:
        """Open the connection a :class:`Dial` asks for: ``(conn id, our end, through
        SAM)``. An I2P dial is bounded by its session's own timeouts (``-timeout`` to
        reach the bridge, 3 min per reply), as Core's, not by ``dial.timeout``."""
        service = dial.service
        if self.i2p is not None and service.addr.is_i2p() and dial.proxy is not None:
            # Core ConnectNode: an I2P destination with a proxy goes through SAM.
            sock, rest, me, session = await self.i2p.connect(service)
            try:
                conn_id = await self.sockman.adopt(
                    sock, inbound=False, ends=(me, service), initial=rest
                )
            except BaseException:
                if session is not None:
                    await session.close()
                raise
            if session is not None:
                self.i2p.own(conn_id, session)
            return conn_id, me, True
        conn_id = await self.sockman.connect(dial.dest, dial.timeout, proxy=dial.proxy)
        ends = self.sockman.endpoints(conn_id)
        return conn_id, ends[0] if ends else None, False

    async def _dial(self, dial: Dial) -> None:
        core = self.core
        try:
            conn_id, local, through_sam = await self._connect(dial)
        except ConnectError as e:
            core.dial_failed(
                dial.id, e.reason, self.clock(), proxy_failed=e.proxy_failed, steady=self.steady()
            )
        except Exception as e:  # a bug below must still end the dial in the core
            log.exception("dialling %s failed", dial.dest)
            core.dial_failed(dial.id, str(e), self.clock(), steady=self.steady())
        else:
            # Attached here, in the dial task: SockMan holds the connection's events
            # until this returns, so bytes a responder sends at once are not lost.
            try:
                core.connected(
                    dial.id,
                    conn_id,
                    local,
                    self.clock(),
                    steady=self.steady(),
                    through_sam=through_sam,
                )
            except Exception:
                log.exception("starting the connection to %s failed", dial.dest)
                self.sockman.close(conn_id)
                self._ended(conn_id)
        self._pump()
        self.sockman.flush()

    async def _resolve(self, req: Resolve) -> None:
        if req.seed:
            addrs: list[NetAddr] = []
            try:
                if self._resolver is None:
                    opts = self.options
                    self._resolver = make_resolver(opts.dns_nameservers, opts.dns_port)
                addrs = await resolve_seed(self._resolver, req.name)
            except Exception as e:  # a resolver failure is an empty answer (Core)
                log.warning("DNS seed %s: %s", req.name, e)
            self.core.seed_resolved(req.id, addrs, self.clock(), steady=self.steady())
        else:
            service: Service | None = None
            error = ""
            try:
                service = await resolve_service(req.name, req.port)
            except Exception as e:  # ValueError: nothing resolves; anything else is logged too
                error = str(e)
            self.core.resolved(req.id, service, error, self.clock(), steady=self.steady())
        self._pump()
        self.sockman.flush()

    # -- I2P (Core ThreadI2PAcceptIncoming's calls into CConnman) ------------------------------

    async def _adopt_i2p(
        self, sock: socket.socket, rest: bytes, me: Service, peer: Service
    ) -> None:
        """An I2P peer came in: Core ``CreateNodeFromAcceptedSocket(sock, None, me, peer)``."""
        await self.sockman.adopt(sock, inbound=True, ends=(me, peer), initial=rest)
        self.sockman.flush()

    def _add_i2p_local(self, me: Service) -> None:
        """Core ``AddLocal(conn.me, LOCAL_MANUAL)``: our I2P address is advertised."""
        self.core.add_local(me, LOCAL_MANUAL)

    # -- SockManEvents --------------------------------------------------------------------

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        """Ask the core to admit an inbound connection (Core ``CreateNodeFromAcceptedSocket``)."""
        ok = self.core.accepted(conn_id, me, them, self.clock(), steady=self.steady())
        self._pump()
        return ok

    def on_data(self, conn_id: int, data: bytes) -> None:
        """Bytes in: the core processes them; SockMan writes the answers after this batch."""
        self.core.received(conn_id, data, self.clock(), steady=self.steady())
        self._pump()

    def on_eof(self, conn_id: int) -> None:
        """The peer closed (a v2 attempt it refused is retried once as v1 by the core)."""
        self.core.closed(conn_id, corelog.SOCKET_CLOSED, self.clock(), steady=self.steady())
        self._pump()
        self._ended(conn_id)

    def on_error(self, conn_id: int, exc: Exception) -> None:
        """A socket error ends the connection."""
        self.core.closed(conn_id, f"socket error: {exc}", self.clock(), steady=self.steady())
        self._pump()
        self._ended(conn_id)

    def on_writable(self, conn_id: int) -> None:
        """The send buffer drained: the core processes what the peer sent meanwhile."""
        self.core.writable(conn_id, self.clock(), steady=self.steady())
        self._pump()
        self._wake_drainers(conn_id)

    def _ended(self, conn_id: int) -> None:
        """Connection ``conn_id`` is gone: its drain() waiters wake, and the transient I2P
        session it owned, if any, ends with it."""
        self._wake_drainers(conn_id)
        if self.i2p is not None:
            self.i2p.release(conn_id)

    def _wake_drainers(self, conn_id: int) -> None:
        for fut in self._drain_waiters.pop(conn_id, ()):
            if not fut.done():
                fut.set_result(None)

    async def drain(self, peer_id: int) -> None:
        """Wait until what is queued for ``peer_id`` is at most ``-maxsendbuffer`` bytes
        (Core clears ``fPauseSend``); returns at once when it is already.

        An application pushing large messages awaits this between pushes, as Core's
        message handler stops producing for a peer whose send is paused.

        :raises KeyError: no such peer, or it disconnected while we waited.
        """
        while True:
            peer = self.core.peers.get(peer_id)
            if peer is None or peer.closed:
                raise KeyError(peer_id)
            if not self.sockman.send_paused(peer.conn_id):
                return
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.setdefault(peer.conn_id, []).append(fut)
            await fut

    def on_io_loop_completed(self) -> None:
        """Nothing per batch: sends are flushed by SockMan right after this."""

    # -- control (RPC) ----------------------------------------------------------------------

    def _control(self) -> None:
        self._pump()
        self.sockman.flush()

    def disconnect_node(self, address: str | None = None, peer_id: int | None = None) -> bool:
        """Disconnect one peer by address string or id; False if none matched (Core ``DisconnectNode``)."""
        ok = self.core.disconnect_node(self.clock(), address, peer_id, steady=self.steady())
        self._control()
        return ok

    def disconnect_matching(self, target: NetAddr | SubNet) -> int:
        """Disconnect every peer at ``target`` or inside it (setban); returns how many."""
        n = self.core.disconnect_matching(target, self.clock(), steady=self.steady())
        self._control()
        return n

    def add_node(self, node: str, command: str) -> None:
        """``addnode`` RPC (add / remove / onetry); errors as
        :meth:`~peerkeeper.bitcoin.connman.ConnManCore.add_node`."""
        self.core.add_node(node, command, self.clock(), steady=self.steady())
        self._control()

    async def add_connection(self, address: str, conn_type: ConnectionType, use_v2: bool) -> bool:
        """The ``addconnection`` test RPC (Core ``CConnman::AddConnection``): False if no
        room; else True once the dial ended (Core connects before it answers)."""
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        args = (address, conn_type, use_v2, self.clock())
        ok = self.core.add_connection(*args, steady=self.steady(), on_done=_resolver(fut))
        self._control()
        if ok:
            await fut
        return ok

    def ping_all(self) -> None:
        """Queue a ping to every peer (the ``ping`` RPC)."""
        self.core.ping_all(self.clock(), steady=self.steady())
        self.wake()

    def set_network_active(self, active: bool) -> None:
        """Turn all P2P activity on or off (Core ``SetNetworkActive``)."""
        self.core.set_network_active(active, self.clock(), steady=self.steady())
        self._control()

    async def open_connection(
        self,
        target: str | Service,
        conn_type: ConnectionType,
        *,
        count_failure: bool | None = None,
        use_v2: bool | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> PeerConn | None:
        """Dial ``target`` once as ``conn_type`` and wait for the outcome: the new peer,
        or None when refused or failed (logged, never raised; ``on_failed`` is told why).

        Cancelled while the dial is in flight, the connection it makes is closed as soon
        as it exists: nobody waits for it any more.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[PeerConn | None] = loop.create_future()

        def done(peer: PeerConn | None) -> None:
            if not fut.done():
                fut.set_result(peer)
            elif fut.cancelled() and peer is not None:
                # Not from inside the core's own call: on the next turn of the loop.
                loop.call_soon(self.disconnect_node, None, peer.id)

        self.core.open_connection(
            target,
            conn_type,
            self.clock(),
            count_failure=count_failure,
            use_v2=use_v2,
            on_done=done,
            on_failed=on_failed,
            steady=self.steady(),
        )
        self._control()
        return await fut

    def send_message(self, peer_id: int, msg: Message) -> None:
        """Push ``msg`` to ``peer_id`` (Core ``PushMessage``); KeyError for an unknown peer."""
        self.core.send_message(peer_id, msg, self.clock(), steady=self.steady())
        self._control()

    async def _request(
        self,
        peer_id: int,
        message: Message,
        key: tuple[object, ...],
        timeout: float,
        *,
        send: bool = True,
    ) -> Any:
        """Send ``message`` to ``peer_id`` (unless ``send`` is False: the request is out
        already) and wait for the reply matched by ``key`` in :attr:`pending` (the
        dispatch layer's table). Raises KeyError for an unknown peer,
        :class:`~peerkeeper.shell.dispatch.RequestFailed` (``timeout``, or why the peer
        was dropped)."""
        if peer_id not in self.core.peers:
            raise KeyError(peer_id)
        # One request per (peer, key) at a time: two getheaders to one peer cannot tell
        # whose headers came back, so the second waits for the first to end.
        from peerkeeper.shell.dispatch import RequestFailed

        slot = (peer_id, key)
        entry = self._request_locks.setdefault(slot, (asyncio.Lock(), [0]))
        lock, users = entry
        users[0] += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await lock.acquire()
            except TimeoutError:
                raise RequestFailed("timeout") from None
            try:
                if peer_id not in self.core.peers:
                    raise KeyError(peer_id)
                left = max(0.0, deadline - loop.time())
                return await self._request_now(peer_id, message, key, left, send=send)
            finally:
                lock.release()
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._request_locks[slot]

    async def _request_now(
        self,
        peer_id: int,
        message: Message,
        key: tuple[object, ...],
        timeout: float,
        *,
        send: bool,
    ) -> Any:
        from peerkeeper.shell.dispatch import RequestFailed

        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_done(reason: str | None) -> None:
            if reason is not None and not fut.done():
                fut.set_exception(RequestFailed(reason))

        def on_reply(msg: Any) -> None:
            if not fut.done():
                fut.set_result(msg)

        self.pending.add(
            peer_id, key, now=self.clock(), timeout=timeout, on_reply=on_reply, on_done=on_done
        )
        if send:
            self.send_message(peer_id, message)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise RequestFailed("timeout") from None
        finally:
            fut.cancel()  # nobody reads it any more: on_done must not leave an exception in it
            self.pending.cancel(peer_id, key, "cancelled")

    async def request_pong(self, peer_id: int, timeout: float = 60.0) -> float:
        """Ping ``peer_id`` with a fresh nonce; the round trip in seconds once its pong
        (matched by nonce) arrives. Core's own ping schedule is not disturbed (a pong
        with another nonce is ignored by it, src/net_processing.cpp ``PONG``)."""
        nonce = self.rng.getrandbits(64) or 1
        start = self.clock()
        await self._request(peer_id, Ping(nonce), ("pong", nonce), timeout)
        return self.clock() - start

    async def request_addr(self, peer_id: int, timeout: float = 60.0) -> list[AddrEntry]:
        """Send ``getaddr`` and return the entries of the next ``addr``/``addrv2`` from
        ``peer_id`` with more than one (one is a self-announcement: Core's addr-fetch
        rule); it is also processed as usual. Core answers ``getaddr`` once per
        connection, and only on connections it received."""
        msg = await self._request(peer_id, GetAddr(), ("addr",), timeout)
        return list(msg.entries)


def _resolver(fut: asyncio.Future[Any]) -> Callable[[Any], None]:
    """A dial's ``on_done`` callback that settles ``fut`` once."""
    return lambda result: None if fut.done() else fut.set_result(result)
