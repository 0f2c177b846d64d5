"""The dispatcher on the asyncio network loop (thin adapter over :mod:`peerkeeper.dispatch.dispatcher`).

``AsyncDispatcher(dispatcher, send)`` drives a sans-IO :class:`~peerkeeper.dispatch.dispatcher.
Dispatcher`: :meth:`feed` hands it received envelopes, one timer (the dispatcher's
:meth:`~peerkeeper.dispatch.dispatcher.Dispatcher.next_wakeup`) runs request expiry and
rate-limited sends, and everything :meth:`~peerkeeper.dispatch.dispatcher.Dispatcher.poll` gives is
written with ``send(peer, data)``. On top:

* ``await request(peer, message, timeout)`` — the reply, or :class:`RequestFailed`
  (``timeout``, ``closed``, ``cancelled``); cancelling the awaiting task cancels the
  request (py-ipv8's ``RequestCache`` in coroutine form).
* ``await send_with_credit(conversation, message)`` — returns once the message has left
  the conversation's outbox: a sender without credit waits here, its connection does
  not.
* ``await in_db(fn)`` — run ``fn(sqlite3.Connection)`` on the store's single database
  thread (seed 004: handlers that touch the database never block the network loop).
* :meth:`attach_native` wires it to a :class:`~peerkeeper.shell.nativenode.NativeNode`
  (anything shaped like :class:`EnvelopeNode`): envelopes in and out, the node's clock,
  and ``peer_closed`` when a connection ends. This module does not import the node
  module; the node imports this one (one-way).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from peerkeeper.dispatch.dispatcher import Conversation, Dispatcher, DispatchError

if TYPE_CHECKING:
    import sqlite3

    from peerkeeper.io.store import Store
    from peerkeeper.native.identity import PeerId
    from peerkeeper.native.pool import PeerPool, PoolEvent

__all__ = ["AsyncDispatcher", "EnvelopeNode", "RequestFailed"]

T = TypeVar("T")


class RequestFailed(Exception):
    """A request ended without its reply: ``reason`` is ``timeout``, ``closed``, ..."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EnvelopeNode(Protocol):
    """What :meth:`AsyncDispatcher.attach_native` needs of a node (a started
    :class:`~peerkeeper.shell.nativenode.NativeNode` is one): its ``clock() -> float``
    (seconds), its ``pool`` (for ``connection_closed`` events), its ``store``, the
    ``on_envelope(peer_id, payload)`` hook and ``send_envelope(peer_id, payload) -> bool``.
    """

    clock: Callable[[], float]
    pool: PeerPool | None
    store: Store | None
    on_envelope: Callable[[PeerId, bytes], None] | None

    def send_envelope(self, peer_id: PeerId, payload: bytes) -> bool:
        """Send ``payload`` to ``peer_id``; False if it is not connected."""
        ...


class AsyncDispatcher:
    """See the module docstring. ``clock`` gives the dispatcher's ``now`` (seconds)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        send: Callable[[Hashable, bytes], object],
        *,
        clock: Callable[[], float] = time.monotonic,
        store: Store | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self._send = send
        self.clock = clock
        self.store = store
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self._credit_waiters: dict[int, list[asyncio.Future[None]]] = {}
        dispatcher.wake = self._wake_soon

    # -- plumbing ---------------------------------------------------------------------

    def feed(self, peer: Hashable, data: bytes) -> None:
        """An envelope arrived from ``peer``."""
        self.dispatcher.receive(peer, data, self.clock())
        self.kick()

    def peer_closed(self, peer: Hashable, reason: str = "closed") -> None:
        """The connection to ``peer`` ended."""
        self.dispatcher.peer_closed(peer, reason)
        self.kick()

    def _wake_soon(self) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop: nothing waits
            self.kick()

    def kick(self) -> None:
        """Flush soon (once per loop iteration, however many sends happened)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        now = self.clock()
        d = self.dispatcher
        d.tick(now)
        for peer, data in d.poll(now):
            self._send(peer, data)
        self._wake_credit_waiters()
        wake = d.next_wakeup(now)
        if wake is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
                self._timer_at = None
            return
        if self._timer_at is not None and self._timer_at <= wake:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, wake - now)
        self._timer_at = wake
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._flush()

    def wake(self) -> None:
        """Run the dispatcher's due timers now and re-arm (after the clock jumped, or a
        test moved a simulated clock): request timeouts follow the node's clock."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        self._flush()

    def close(self) -> None:
        """Stop the timer (pending requests stay until their peers close)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- API --------------------------------------------------------------------------

    def send(self, peer: Hashable, message: Any, *, in_reply_to: int | None = None) -> int:
        """Queue ``message`` (see :meth:`Dispatcher.send`) and flush soon."""
        mid = self.dispatcher.send(peer, message, in_reply_to=in_reply_to)
        self.kick()
        return mid

    async def request(
        self, peer: Hashable, message: Any, timeout: float, *, replies: int = 1
    ) -> Any:
        """Send ``message``; the reply (a list when ``replies > 1``). Raises
        :class:`RequestFailed`; cancelling the caller cancels the request."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        got: list[Any] = []

        def on_done(reason: str | None) -> None:
            if fut.done():
                return
            if reason is None:
                fut.set_result(got[0] if replies == 1 else list(got))
            else:
                fut.set_exception(RequestFailed(reason))

        mid = self.dispatcher.request(
            peer,
            message,
            timeout=timeout,
            on_reply=got.append,
            on_done=on_done,
            replies=replies,
            now=self.clock(),
        )
        self.kick()
        try:
            return await fut
        except asyncio.CancelledError:
            self.dispatcher.pending.cancel(peer, mid, "cancelled")
            raise

    async def send_with_credit(self, conversation: Conversation, message: Any) -> None:
        """Send in ``conversation``; return once the message is out of its outbox.

        Raises :class:`~peerkeeper.dispatch.dispatcher.DispatchError` if the conversation ends first.
        """
        conversation.send(message)
        target = conversation._queued
        self.kick()
        while conversation._sent < target:
            if conversation.ended is not None:
                raise DispatchError(f"conversation ended ({conversation.ended}); not sent")
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._credit_waiters.setdefault(id(conversation), []).append(fut)
            await fut

    def _wake_credit_waiters(self) -> None:
        if not self._credit_waiters:
            return
        waiters, self._credit_waiters = self._credit_waiters, {}
        for futs in waiters.values():
            for fut in futs:
                if not fut.done():
                    fut.set_result(None)

    async def in_db(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the store's database thread; raises RuntimeError without a store."""
        if self.store is None:
            raise RuntimeError("no store attached")
        return await self.store.call(fn)

    # -- the native node ----------------------------------------------------------------

    @classmethod
    def for_native(cls, node: EnvelopeNode, dispatcher: Dispatcher) -> AsyncDispatcher:
        """An adapter sending through ``node``, on ``node.clock``, attached to it (see
        :meth:`attach_native`)."""
        adapter = cls(
            dispatcher,
            lambda peer, data: node.send_envelope(peer, data),  # type: ignore[arg-type]
            clock=node.clock,
        )
        adapter.attach_native(node)
        return adapter

    def attach_native(self, node: EnvelopeNode) -> Callable[[], None]:
        """Route ``node``'s envelopes through this dispatcher (peers are PeerIds) and
        tell it when connections end. Returns a function that detaches. The adapter's
        ``clock`` stays as constructed (:meth:`for_native` gives it the node's)."""
        node.on_envelope = lambda peer, payload: self.feed(peer, payload)
        if self.store is None:
            self.store = node.store

        def on_event(event: PoolEvent) -> None:
            if event.kind == "connection_closed" and event.peer_id is not None:
                self.peer_closed(event.peer_id, event.reason or "closed")

        assert node.pool is not None, "start the node first"
        unsubscribe = node.pool.subscribe(on_event)

        def detach() -> None:
            unsubscribe()
            node.on_envelope = None
            self.close()

        return detach
