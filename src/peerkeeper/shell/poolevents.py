"""The pool's events as an async stream and awaitable triggers (asyncio shell).

Octez's pool logs ``P2p_event`` values for the layer above and signals condition
variables (``P2p_trigger``: ``new_point``, ``new_peer``, ``new_connection``,
``disconnection``, ``too_few_connections``, ``too_many_connections``) for the other
workers (seed 003; tezos/tezos-mirror ``src/lib_p2p/p2p_trigger.ml``). Here:

* :meth:`PoolEventHub.stream` yields every :class:`~peerkeeper.native.pool.PoolEvent` from
  the moment it is entered; each stream has a bounded queue (``maxsize`` events): when a
  slow reader lets it fill, the oldest events are dropped and counted in
  ``dropped`` (memory stays bounded whatever the event rate).
* :meth:`PoolEventHub.wait` awaits the next occurrence of a trigger.

Every event is also logged by the pool itself (logger ``peerkeeper.native.pool``:
connections and greylistings at INFO, table changes at DEBUG).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator
from typing import Literal

from peerkeeper.native.pool import PeerPool, PoolEvent

__all__ = ["TRIGGERS", "EventStream", "PoolEventHub", "Trigger"]

log = logging.getLogger("peerkeeper.pool")

Trigger = Literal[
    "new_point",
    "new_peer",
    "new_connection",
    "disconnection",
    "too_few_connections",
    "too_many_connections",
]
#: Trigger name -> the pool event kinds that fire it (the last two are fired by the node).
TRIGGERS: dict[str, tuple[str, ...]] = {
    "new_point": ("new_point",),
    "new_peer": ("new_peer",),
    "new_connection": ("connection_established",),
    "disconnection": ("connection_closed",),
    "too_few_connections": (),
    "too_many_connections": (),
}


class EventStream:
    """One subscriber's bounded queue of events; an async iterator (see module doc)."""

    def __init__(self, hub: PoolEventHub, maxsize: int) -> None:
        self._hub = hub
        self._queue: collections.deque[PoolEvent] = collections.deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        #: Events dropped because the reader was too slow.
        self.dropped = 0
        self.closed = False

    def _push(self, event: PoolEvent) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> PoolEvent:
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def close(self) -> None:
        """Stop receiving events; a waiting reader ends its iteration."""
        self.closed = True
        self._hub._streams.discard(self)
        self._ready.set()


class PoolEventHub:
    """Fan-out of a :class:`~peerkeeper.native.pool.PeerPool`'s events to streams and triggers.

    Create it on the running loop: ``PoolEventHub(pool)``.
    """

    def __init__(self, pool: PeerPool) -> None:
        self._streams: set[EventStream] = set()
        self._waiters: dict[str, list[asyncio.Future[PoolEvent]]] = {t: [] for t in TRIGGERS}
        self._kind_to_triggers: dict[str, list[str]] = collections.defaultdict(list)
        for trigger, kinds in TRIGGERS.items():
            for kind in kinds:
                self._kind_to_triggers[kind].append(trigger)
        self._unsubscribe = pool.subscribe(self._on_event)

    def _on_event(self, event: PoolEvent) -> None:
        for stream in list(self._streams):
            stream._push(event)
        for trigger in self._kind_to_triggers.get(event.kind, ()):
            self.fire(trigger, event)

    def fire(self, trigger: str, event: PoolEvent) -> None:
        """Wake everyone waiting on ``trigger`` with ``event``."""
        waiters = self._waiters[trigger]
        self._waiters[trigger] = []
        for fut in waiters:
            if not fut.done():
                fut.set_result(event)

    def stream(self, maxsize: int = 1000) -> EventStream:
        """A new :class:`EventStream` receiving every later event (``maxsize`` >= 1)."""
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        stream = EventStream(self, maxsize)
        self._streams.add(stream)
        return stream

    async def wait(self, trigger: Trigger, timeout: float | None = None) -> PoolEvent | None:
        """The next event firing ``trigger``, or ``None`` after ``timeout`` seconds.

        Raises ValueError for an unknown trigger name.
        """
        if trigger not in self._waiters:
            raise ValueError(f"unknown trigger {trigger!r}")
        fut: asyncio.Future[PoolEvent] = asyncio.get_running_loop().create_future()
        self._waiters[trigger].append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None
        finally:
            if not fut.done():
                fut.cancel()
                waiters = self._waiters[trigger]
                if fut in waiters:  # a waiter that gave up leaves nothing behind
                    waiters.remove(fut)

    async def wait_any(self, triggers: tuple[Trigger, ...], timeout: float | None) -> str | None:
        """Wait for the first of ``triggers``; returns its name, or ``None`` on timeout."""
        tasks = {asyncio.ensure_future(self.wait(t)): t for t in triggers}
        try:
            done, _ = await asyncio.wait(
                tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()
        for task in done:
            if not task.cancelled() and task.result() is not None:
                return tasks[task]
        return None

    def close(self) -> None:
        """Detach from the pool, end every stream, cancel every waiter."""
        self._unsubscribe()
        for stream in list(self._streams):
            stream.close()
        for waiters in self._waiters.values():
            for fut in waiters:
                fut.cancel()
            waiters.clear()

    async def events(self) -> AsyncIterator[PoolEvent]:
        """Shorthand: ``async for event in hub.events(): ...`` over a fresh stream."""
        stream = self.stream()
        try:
            async for event in stream:
                yield event
        finally:
            stream.close()
