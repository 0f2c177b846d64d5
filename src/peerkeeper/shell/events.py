"""The node's event stream: fan-out of the cores' events to subscribers (asyncio shell).

The pure cores hand each :class:`~peerkeeper.wire.events.Event` to :meth:`EventHub.publish`
(their ``on_event``). Each subscriber has its own :class:`~peerkeeper.wire.events.EventFilter`
and a bounded queue; publishing is a filter check and an append per subscriber, never an
await, so a slow reader can never slow the peers down. A subscriber whose queue passes its
bound is dropped (its iterator ends with :class:`SubscriberTooSlow`): a websocket client
that stops reading loses its stream, not the node its memory.

:class:`EventLog` writes the stream as JSON lines to a file rotated by size (the standard
library's ``RotatingFileHandler``), for ``--eventlog FILE``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import logging.handlers
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from peerkeeper.wire.events import Event, EventFilter

__all__ = ["EventHub", "EventLog", "SubscriberTooSlow", "Subscription"]

log = logging.getLogger("peerkeeper.events")

#: Default bound of a subscriber's queue (events).
DEFAULT_MAXLEN = 10_000


class SubscriberTooSlow(Exception):
    """Raised by a subscription's iterator once it was dropped for falling behind."""


class Subscription:
    """One subscriber: an async iterator of the events its filter passes.

    :ivar dropped: set when the queue passed ``maxlen`` and the hub let go of it.
    """

    def __init__(self, hub: EventHub, filt: EventFilter, maxlen: int) -> None:
        self.hub = hub
        self.filter = filt
        self.maxlen = maxlen
        self.queue: collections.deque[Event] = collections.deque()
        self.dropped = False
        self.closed = False
        self._ready: asyncio.Future[None] | None = None

    def _push(self, event: Event) -> None:
        if len(self.queue) >= self.maxlen:
            self.dropped = True
            self.hub.unsubscribe(self)
            log.info("event subscriber %r fell %d events behind: dropped", self.filter, self.maxlen)
        else:
            self.queue.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def close(self) -> None:
        """Stop receiving; the iterator ends after what is queued."""
        self.closed = True
        self.hub.unsubscribe(self)
        self._wake()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        """The next event.

        :raises SubscriberTooSlow: the hub dropped this subscriber (queue full).
        :raises StopAsyncIteration: after :meth:`close`, once the queue is empty.
        """
        while not self.queue:
            if self.dropped:
                raise SubscriberTooSlow(f"more than {self.maxlen} events behind")
            if self.closed:
                raise StopAsyncIteration
            self._ready = asyncio.get_running_loop().create_future()
            try:
                await self._ready
            finally:
                self._ready = None
        return self.queue.popleft()


class EventHub:
    """Fans events out to subscriptions and sinks (see the module docstring).

    :param on_change: called with whether any subscriber names a per-message event,
        each time that may have changed (the node turns the cores' message events on
        or off with it).
    """

    def __init__(self, on_change: Callable[[bool], None] | None = None) -> None:
        self._subs: list[Subscription] = []
        self._sinks: list[tuple[EventFilter, Callable[[Event], None]]] = []
        self._on_change = on_change
        #: Events published, and subscribers dropped for being slow.
        self.published = 0
        self.slow_dropped = 0

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscription and sink whose filter passes it."""
        self.published += 1
        name = event.name
        for sub in tuple(self._subs):  # a copy: a full queue unsubscribes itself
            if sub.filter.matches(name):
                sub._push(event)
        for filt, sink in self._sinks:
            if filt.matches(name):
                try:
                    sink(event)
                except Exception:
                    log.exception("event sink failed on %s", name)

    def subscribe(
        self, spec: str | Iterable[str] | EventFilter = "*", *, maxlen: int = DEFAULT_MAXLEN
    ) -> Subscription:
        """A new subscription from now on.

        :param spec: an :class:`~peerkeeper.wire.events.EventFilter` or its text.
        :param maxlen: queue bound (events); past it the subscription is dropped.
        :raises ValueError: a malformed filter, or ``maxlen`` < 1.
        """
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        filt = spec if isinstance(spec, EventFilter) else EventFilter(spec)
        sub = Subscription(self, filt, maxlen)
        self._subs.append(sub)
        self._changed()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub`` (idempotent)."""
        if sub in self._subs:
            self._subs.remove(sub)
            if sub.dropped:
                self.slow_dropped += 1
            self._changed()

    def add_sink(self, filt: EventFilter, sink: Callable[[Event], None]) -> None:
        """Call ``sink(event)`` synchronously for each event ``filt`` passes (a file)."""
        self._sinks.append((filt, sink))
        self._changed()

    def remove_sink(self, sink: Callable[[Event], None]) -> None:
        self._sinks = [(f, s) for f, s in self._sinks if s is not sink]
        self._changed()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    @property
    def listening(self) -> bool:
        """Whether anyone listens (else the cores need not build events at all)."""
        return bool(self._subs or self._sinks)

    @property
    def wants_messages(self) -> bool:
        """Whether a subscriber or sink names a per-message event."""
        return any(s.filter.wants_messages for s in self._subs) or any(
            f.wants_messages for f, _ in self._sinks
        )

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self.wants_messages)


class EventLog:
    """``--eventlog FILE``: each event one JSON line, the file rotated by size.

    :param path: the file (its directory must exist).
    :param filt: which events (default ``*``: all but the per-message ones).
    :param max_bytes: rotate when the file would pass this size (default 10 MiB).
    :param backups: rotated files kept (``FILE.1`` ... ``FILE.N``, default 5).
    :raises OSError: the file cannot be opened.
    """

    def __init__(
        self,
        path: Path,
        filt: EventFilter | None = None,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
    ) -> None:
        self.filter = filt or EventFilter("*")
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self.written = 0

    def __call__(self, event: Event) -> None:
        line = json.dumps(event.to_json(), separators=(",", ":"), default=str)
        self._handler.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
        self.written += 1

    def close(self) -> None:
        self._handler.close()
