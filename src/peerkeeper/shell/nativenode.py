"""NativeNode: the native protocol's asyncio shell over SockMan and NativeNodeCore.

The policy (PeerPool, one NativePeer per connection, the maintenance worker, swaps) is
:class:`~peerkeeper.native.node.NativeNodeCore`, sans-IO; this shell carries its
actions out with :class:`~peerkeeper.io.sockman.SockMan` (sockets) and asyncio (one
timer), and owns what is I/O: the identity file, the store, the peers file, the dispatch
layer and the event stream (tezos/tezos-mirror ``src/lib_p2p/p2p.ml`` wires the same
parts).

Files under ``datadir``: ``identity.json`` (created on first start, mode 0600),
``peers.json`` (Octez's peers file, written atomically at stop and by
:meth:`NativeNode.save_peers`) and ``peerkeeper.sqlite`` (points and peers, the
canonical copy; written by the store's single thread).

Time: every timer of the node runs on its one ``clock``: the core's (connections'
timers, greylist countdowns, the maintenance worker's waits and trusted back-offs) and
the shell's saves share one asyncio timer armed at :meth:`NativeNode.next_wakeup`;
:meth:`NativeNode.wake` re-arms it at once after the clock jumped. Only the socket-level
dial timeout (SockMan's) is real time.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerkeeper.dispatch.dispatcher import CodecRegistry, Dispatcher
from peerkeeper.io.addrdb import atomic_write, load_or_create_identity
from peerkeeper.io.sockman import ConnectError, DialMap, SockMan
from peerkeeper.io.store import Store, load_native_pool, save_native_pool
from peerkeeper.native.identity import DEFAULT_POW_DIFFICULTY, Identity, PeerId
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.native.messages import Envelope, NativeMessage
from peerkeeper.native.node import (
    HOUSEKEEPING_INTERVAL,
    CancelDial,
    Close,
    Deliver,
    Dial,
    DialDone,
    NativeConn,
    NativeNodeCore,
    NodeAction,
    Send,
    Signal,
)
from peerkeeper.native.pool import PeerPool, PoolConfig, PoolEvent
from peerkeeper.native.poolstate import PeerInfo
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.dispatch import AsyncDispatcher
from peerkeeper.shell.events import EventHub
from peerkeeper.shell.poolevents import PoolEventHub
from peerkeeper.wire.events import Event

__all__ = ["DEFAULT_NATIVE_PORT", "NativeConfig", "NativeNode"]

log = logging.getLogger("peerkeeper.native")

#: Our default listening port for the native protocol (Octez uses 9732; we keep it).
DEFAULT_NATIVE_PORT = 9732
#: Seconds (of the node's clock) between saves of the pool to the store.
SAVE_INTERVAL = 900.0


@dataclass
class NativeConfig:
    """A native node's settings (seconds, counts; see :class:`PoolConfig` and
    :class:`MaintenanceConfig` for Octez's defaults).

    ``binds``: ``(host, port)`` to listen on (port 0 picks one); ``advertised_port``:
    the listening port sent in ``identity`` (default: the first bound port, 0 when not
    listening). ``pow_difficulty``: bits of proof of work our identity carries and a
    remote's must carry. ``dial_map`` / ``accept_map``: as SockMan's (tests give nodes
    virtual addresses). ``maintenance``: False disables the maintenance worker (Octez
    ``maintenance_idle_time = None``). ``dispatch_peer_rate`` / ``dispatch_upload_rate``:
    the dispatch layer's per-peer and global send rates for non-replies, in bytes per
    second (default unlimited).
    """

    datadir: Path
    binds: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 0)])
    advertised_port: int | None = None
    pool: PoolConfig = field(default_factory=PoolConfig)
    limits: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    pow_difficulty: float = DEFAULT_POW_DIFFICULTY
    maintenance: bool = True
    dial_map: DialMap | None = None
    accept_map: Callable[[Service], Service] | None = None
    bootstrap_points: list[Service] = field(default_factory=list)
    dispatch_peer_rate: float = math.inf
    dispatch_upload_rate: float = math.inf


def _os_reason(e: OSError) -> str:
    """Why a dial failed, in the OS's words: ``Connection refused (ECONNREFUSED)`` for
    SockMan's ``ECONNREFUSED``, else the error's own text."""
    reason = e.reason if isinstance(e, ConnectError) else (e.strerror or str(e))
    code = getattr(errno, reason, None) if reason.isupper() else None
    return f"{os.strerror(code)} ({reason})" if isinstance(code, int) else reason


class NativeNode:
    """A node speaking the native protocol (see the module docstring).

    ``NativeNode(config, *, identity=None, clock=time.time, rng=None)``. ``clock() ->
    float`` (seconds) is the one clock of everything the node owns (pool, peers'
    timers, dispatcher, gossip, the times saved in the store); ``rng`` (a
    ``random.Random``; default ``random.SystemRandom()``) is its one source of
    randomness: pool draws, swaps, ping nonces and the BIP324 key material of every
    connection, so a seeded ``random.Random`` belongs in tests and simulations only.
    ``async with`` or :meth:`start` / :meth:`stop`. Library API: :meth:`connect`,
    :meth:`disconnect`, the dispatch layer (``node.codecs`` to register message types,
    ``node.dispatcher.on`` for handlers, ``await node.dispatch.request(...)``), or raw
    :meth:`send_envelope` / ``on_envelope(peer_id, payload)`` (setting it takes
    envelopes from the dispatcher), :attr:`events`
    (:class:`~peerkeeper.shell.poolevents.PoolEventHub`: ``events.stream()``,
    ``await events.wait("new_connection")``), :meth:`maintain`, :meth:`propose_swap`,
    :meth:`save_peers`, the pool itself (:attr:`pool`) and the policy (:attr:`core`).
    Every timer follows ``clock``; after moving a simulated clock (or a jump of the
    real one), call :meth:`wake` to run what is due. What a direct call into the pool
    decides (a close by ``set_expected_peer_id``, a new point for the worker) is carried
    out at the node's next input or timer; :meth:`wake` runs it at once.
    """

    def __init__(
        self,
        config: NativeConfig,
        *,
        identity: Identity | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._rng: random.Random = rng if rng is not None else random.SystemRandom()
        self._identity = identity
        self.core: NativeNodeCore | None = None
        self.pool: PeerPool | None = None
        self.events: PoolEventHub | None = None
        self.sockman: SockMan | None = None
        self.store: Store | None = None
        self.on_envelope: Callable[[PeerId, bytes], None] | None = None
        self.codecs: CodecRegistry | None = None
        self.dispatcher: Dispatcher | None = None
        #: The pool's events as ``pool:<kind>`` :class:`~peerkeeper.wire.events.Event`
        #: values, for ``-web``'s ``/events`` and ``-eventlog`` (the typed stream is
        #: :attr:`events`).
        self.event_hub = EventHub()
        self.dispatch: AsyncDispatcher | None = None
        self.listening: list[tuple[str, int]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dial_tasks: dict[int, asyncio.Task[Any]] = {}
        self._outcomes: dict[int, asyncio.Future[PeerId | None]] = {}
        #: Connections we stopped reading because the peer does not read (fPauseSend).
        self.paused: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._save_at = float("inf")
        self._save_task: asyncio.Task[Any] | None = None
        self._last_save = 0.0
        self._stopping = False
        self._draining = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """Our identity (loaded or created at :meth:`start`)."""
        if self._identity is None:
            raise RuntimeError("node not started")
        return self._identity

    @property
    def peer_id(self) -> PeerId:
        """Our peer id."""
        return self.identity.peer_id

    @property
    def rng(self) -> random.Random:
        """The node's one source of randomness (the core's, once started)."""
        return self._rng

    @rng.setter
    def rng(self, rng: random.Random) -> None:
        self._rng = rng
        if self.core is not None:
            self.core.rng = rng

    @property
    def greylisted_dials(self) -> int:
        """Dials refused at once because the point is greylisted or banned."""
        return self.core.greylisted_dials if self.core is not None else 0

    def _core(self) -> NativeNodeCore:
        if self.core is None:
            raise RuntimeError("node not started")
        return self.core

    def _pool(self) -> PeerPool:
        return self._core().pool

    async def __aenter__(self) -> NativeNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load or create the identity, restore the pool, listen, start the workers.

        Raises :class:`~peerkeeper.native.identity.IdentityError` for a bad identity file,
        OSError when a bind fails.
        """
        cfg = self.config
        cfg.datadir.mkdir(parents=True, exist_ok=True)
        if self._identity is None:
            self._identity = await asyncio.to_thread(
                load_or_create_identity, cfg.datadir / "identity.json", cfg.pow_difficulty
            )
        now = self.clock()
        core = self.core = NativeNodeCore(
            cfg.pool,
            cfg.limits,
            self._identity,
            rng=self._rng,
            now=now,
            difficulty=cfg.pow_difficulty,
            maintenance=cfg.maintenance,
        )
        self.pool = core.pool
        self.events = PoolEventHub(core.pool)
        core.pool.subscribe(self._pool_event)
        self.store = Store(cfg.datadir)
        await asyncio.to_thread(self.store.open)
        await self._restore(now)
        # The dispatch layer (seed 004) owns the envelopes unless on_envelope is replaced.
        self.codecs = CodecRegistry()
        self.dispatcher = Dispatcher(
            self.codecs,
            now=self.clock(),
            peer_rate=cfg.dispatch_peer_rate,
            upload_rate=cfg.dispatch_upload_rate,
        )
        self.dispatch = AsyncDispatcher.for_native(self, self.dispatcher)
        self.sockman = SockMan(self, dial_map=cfg.dial_map, accept_map=cfg.accept_map)
        for host, port in cfg.binds:
            self.listening.append(await self.sockman.bind_and_listen(host, port))
        if cfg.advertised_port is not None:
            core.listen_port = cfg.advertised_port
        else:
            core.listen_port = self.listening[0][1] if self.listening else 0
        log.info("native node %s listening on %s", self.peer_id, self.listening)
        now = self.clock()
        self._save_at = self._next_save(now)
        core.start(now, cfg.bootstrap_points)
        self._drain()

    def _pool_event(self, ev: PoolEvent) -> None:
        if self.event_hub.listening:
            self.event_hub.publish(
                Event(
                    "pool:" + ev.kind,
                    ev.time,
                    {
                        "point": None if ev.point is None else str(ev.point),
                        "peer_id": None if ev.peer_id is None else str(ev.peer_id),
                        "reason": ev.reason,
                        "incoming": ev.incoming,
                    },
                )
            )

    async def _restore(self, now: float) -> None:
        pool = self._pool()
        assert self.store is not None
        saved = await self.store.call(load_native_pool)
        try:
            if saved is not None:
                pool.load_points_document(saved[0], now)
                pool.load_peers_document(saved[1], now)
            elif self.peers_file.exists():
                text = await asyncio.to_thread(self.peers_file.read_text)
                pool.load_peers_document(json.loads(text), now)
        except ValueError as e:
            log.warning("ignoring saved pool state: %s", e)

    @property
    def peers_file(self) -> Path:
        """The Octez-shaped peers file (``PoolConfig.peers_file``, else datadir/peers.json)."""
        name = self.config.pool.peers_file
        return Path(name) if name is not None else self.config.datadir / "peers.json"

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("native task failed", exc_info=task.exception())

    async def save_peers(self) -> None:
        """Write the pool to the store and the peers file (temp file + rename)."""
        pool = self._pool()
        points, peers = pool.points_document(), pool.peers_document()
        if self.store is not None:
            await self.store.call(lambda c: save_native_pool(c, points, peers))
        data = json.dumps(peers, indent=1).encode()
        await asyncio.to_thread(atomic_write, self.peers_file, data)
        self._last_save = self.clock()

    async def tear_down_connections(self, reason: str = "tear down") -> None:
        """Close every connection and dial (Octez); returns when the dials are cancelled."""
        core = self._core()
        await self._close_all(lambda now: core.tear_down_connections(reason, now))

    async def _close_all(self, close: Callable[[float], None]) -> None:
        """Run the core's ``close(now)`` (a tear-down or stop), carry its closes and
        cancellations out, and wait (at most 5 s) for the cancelled dials to end."""
        dials = list(self._dial_tasks.values())
        close(self.clock())
        self._drain()
        if dials:
            await asyncio.wait(dials, timeout=5.0)

    async def destroy(self) -> None:
        """Octez ``destroy``: the same as :meth:`stop`."""
        await self.stop()

    async def stop(self) -> None:
        """Destroy: stop the workers, tear down connections, save, close (Octez ``destroy``)."""
        if self._stopping:
            return
        self._stopping = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            if task is not self._save_task:  # a save under way ends before the last one
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sockman is not None:
            self.sockman.stop_listening()
        if self.core is not None:
            await self._close_all(self.core.stop)
            try:
                await self.save_peers()
            except Exception as e:  # noqa: BLE001 - the store may fail in any way; stop goes on
                log.error("could not save the pool: %s", e)
        if self.dispatch is not None:
            self.dispatch.close()
        if self.events is not None:
            self.events.close()
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- public API --------------------------------------------------------------------

    def maintain(self) -> None:
        """Wake the maintenance worker now (Octez ``P2p_maintenance.maintain``)."""
        if self.core is not None and not self._stopping:
            self.core.maintain()
            self._arm(self.clock())  # the worker runs from the timer, as a task would

    def next_wakeup(self) -> float:
        """When (seconds of the node's clock) the node's one timer is next due: the
        core's :meth:`~NativeNodeCore.next_wakeup` or the next save (``inf``: none)."""
        if self.core is None:
            return float("inf")
        return min(self.core.next_wakeup(), self._save_at)

    def wake(self) -> None:
        """Run the node's due timers now and re-arm (after the clock jumped, or a test
        moved a simulated clock); like ConnMan's ``wake``."""
        if self.core is not None and not self._stopping:
            self._arm(self.clock())
            if self.dispatch is not None:
                self.dispatch.wake()

    def running(self) -> list[PeerInfo]:
        """Peers with a running connection."""
        return self._pool().running_peers()

    def conn_of(self, peer_id: PeerId) -> NativeConn | None:
        """The connection running with ``peer_id`` (the core's), if any."""
        return self._core().conn_of(peer_id)

    def send(self, peer_id: PeerId, message: NativeMessage) -> bool:
        """Send ``message`` to a running peer; False if it is not connected."""
        sent = self._core().send(peer_id, message, self.clock())
        self._drain()
        return sent

    def send_envelope(self, peer_id: PeerId, payload: bytes) -> bool:
        """Send application bytes (an ``envelope``) to ``peer_id``; False if not connected."""
        return self.send(peer_id, Envelope(payload))

    def disconnect(self, peer_id: PeerId, reason: str = "requested") -> bool:
        """Close the connection to ``peer_id``; False if there is none."""
        done = self._core().disconnect(peer_id, reason, self.clock())
        self._drain()
        return done

    def propose_swap(self) -> bool:
        """Send one ``swaprequest`` (:meth:`NativeNodeCore.propose_swap`); False when the
        policy says no."""
        done = self._core().propose_swap(self.clock())
        self._drain()
        return done

    async def connect(self, point: Service) -> PeerId | None:
        """Dial ``point`` and run the handshake; the remote's peer id once running, else
        ``None`` (refused by the pool, dial failed, nacked, timed out). Cancelling the
        caller while the dial is in flight cancels the dial."""
        core = self._core()
        dial_id = core.connect(point, self.clock())
        if dial_id is None:
            log.debug("not dialling %s: %s", point, core.last_refusal)
            self._drain()
            return None
        outcome: asyncio.Future[PeerId | None] = asyncio.get_running_loop().create_future()
        self._outcomes[dial_id] = outcome
        self._drain()
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            if dial_id in core.dials:
                core.abort_dial(dial_id, self.clock())
                self._drain()
            raise
        finally:
            self._outcomes.pop(dial_id, None)

    # -- carrying the core's actions out ----------------------------------------------------

    def _drain(self) -> None:
        """Carry out the core's actions in the order it decided them. A handler that
        calls back into the node while they run (an ``on_envelope`` that replies or
        disconnects) only queues more: the loop below takes them after the batch, so
        bytes leave in the order they were encrypted."""
        core = self.core
        if core is None or self._draining:
            return
        self._draining = True
        try:
            while True:
                actions = core.poll_actions()
                if not actions:
                    break
                for action in actions:
                    self._execute(action)
        finally:
            self._draining = False
        self._rearm()

    def _execute(self, action: NodeAction) -> None:
        sockman = self.sockman
        if isinstance(action, Send):
            if sockman is not None:
                sockman.send(action.conn_id, action.data)
        elif isinstance(action, Close):
            self.paused.discard(action.conn_id)
            if sockman is not None:
                sockman.close(action.conn_id)
        elif isinstance(action, Dial):
            self._dial_tasks[action.id] = asyncio.ensure_future(self._dial(action))
        elif isinstance(action, CancelDial):
            task = self._dial_tasks.pop(action.id, None)
            if task is not None:
                task.cancel()
        elif isinstance(action, DialDone):
            outcome = self._outcomes.get(action.id)
            if outcome is not None and not outcome.done():
                outcome.set_result(action.peer_id)
        elif isinstance(action, Deliver):
            if self.on_envelope is not None:
                try:
                    self.on_envelope(action.peer_id, action.payload)
                except Exception:
                    log.exception("envelope handler failed")
        elif isinstance(action, Signal) and self.events is not None:
            self.events.fire(action.name, PoolEvent(action.name, action.time))

    async def _dial(self, action: Dial) -> None:
        sockman, core = self.sockman, self.core
        assert sockman is not None and core is not None
        try:
            conn_id = await sockman.connect(action.point, timeout=action.timeout)
        except (ConnectError, OSError) as e:
            log.info("could not connect to %s: %s", action.point, _os_reason(e))
            core.dial_failed(action.id, str(e), self.clock())
            self._drain()
            return
        except asyncio.CancelledError:
            return  # the core cancelled it and has already counted it as failed
        except Exception as e:  # a dial_map callback, say: the dial fails, the node goes on
            log.error("dial to %s failed: %r", action.point, e)
            core.dial_failed(action.id, repr(e), self.clock())
            self._drain()
            return
        finally:
            self._dial_tasks.pop(action.id, None)
        # In this same step: SockMan delivers bytes that arrived during the dial right
        # after connect() returns, and they must find the connection.
        core.connected(action.id, conn_id, self.clock())
        self._drain()

    # -- SockManEvents -------------------------------------------------------------------

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        """Octez ``accept``: refuse banned/greylisted addresses and too many handshakes."""
        if self._stopping or self.core is None:
            return False
        ok = self.core.accepted(conn_id, them, self.clock())
        self._drain()
        return ok

    def on_data(self, conn_id: int, data: bytes) -> None:
        """Feed the connection's state machine and carry its actions out."""
        core = self.core
        if core is None:
            return
        core.received(conn_id, data, self.clock())
        self._drain()
        sockman = self.sockman
        if core.is_open(conn_id) and sockman is not None and sockman.send_paused(conn_id):
            # A peer that does not read what it asks for is not read either (Core's
            # fPauseSend): our buffer for it stays near -maxsendbuffer.
            self.paused.add(conn_id)
            sockman.pause_receiving(conn_id)

    def on_eof(self, conn_id: int) -> None:
        """The remote closed."""
        self._gone(conn_id, "closed by peer")

    def on_error(self, conn_id: int, exc: Exception) -> None:
        """A socket error ended the connection."""
        self._gone(conn_id, f"socket error: {exc}")

    def _gone(self, conn_id: int, reason: str) -> None:
        self.paused.discard(conn_id)
        if self.core is not None:
            self.core.closed(conn_id, reason, self.clock())
            self._drain()

    def on_writable(self, conn_id: int) -> None:
        """The peer read what we queued: read from it again (Core clears ``fPauseSend``)."""
        if conn_id in self.paused and self.sockman is not None:
            self.paused.discard(conn_id)
            self.sockman.resume_receiving(conn_id)

    def on_io_loop_completed(self) -> None:
        """Nothing to do per batch."""

    # -- the one timer ------------------------------------------------------------------------

    def _next_save(self, now: float) -> float:
        return max(self._last_save + SAVE_INTERVAL, now + HOUSEKEEPING_INTERVAL)

    def _arm(self, at: float) -> None:
        """Arm the one timer ``at`` (node clock): after ``at - clock()`` loop seconds."""
        if self._stopping:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at == float("inf"):
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, at - self.clock()), self._on_timer)

    def _rearm(self) -> None:
        """Arm the timer at :meth:`next_wakeup` if that is earlier than it is armed."""
        at = self.next_wakeup()
        if at < self._timer_at:
            self._arm(at)

    def _on_timer(self) -> None:
        """Run the core's due timers and a save when due (in the background, one at a
        time; a failing save is retried at the next interval); then re-arm."""
        self._timer = None
        self._timer_at = float("inf")
        core = self.core
        if core is None or self._stopping:
            return
        now = self.clock()
        core.tick(now)
        if now >= self._save_at:
            if now - self._last_save >= SAVE_INTERVAL and self._save_task is None:
                self._last_save = now
                self._save_task = self._spawn(self._background_save())
            self._save_at = self._next_save(now)
        self._drain()

    async def _background_save(self) -> None:
        try:
            await self.save_peers()
        except Exception as e:  # noqa: BLE001 - the timer must survive the store
            log.error("could not save the pool: %s", e)
        finally:
            self._save_task = None
