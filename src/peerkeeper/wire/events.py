"""Observable events: what happened to the node's connections, with Core's names.

Bitcoin Core exposes its P2P happenings as USDT tracepoints (doc/tracing.md, context
``net``); peerkeeper gives the same vocabulary as plain values, so a library user, the
``--eventlog`` file and the ``/events`` websocket all see one stream. The pure cores
emit them through an :data:`EventSink` (a callable set by the shell, ``None`` when
nobody listens: then no event is even built).

Core's tracepoints and their fields here (doc/tracing.md, src/net.cpp,
src/net_processing.cpp):

* ``net:inbound_connection``: ``id``, ``addr``, ``conn_type``, ``network``,
  ``existing`` (inbound connections, this one included, as Core's);
* ``net:outbound_connection``: the same, ``existing`` counting outbound ones;
* ``net:closed_connection``: ``id``, ``addr``, ``conn_type``, ``network``,
  ``time_established`` (unix seconds), and peerkeeper's ``reason``;
* ``net:evicted_inbound_connection``: ``id``, ``addr``, ``conn_type``, ``network``,
  ``time_established``;
* ``net:misbehaving_connection``: ``id``, ``message``;
* ``net:inbound_message`` / ``net:outbound_message``: ``id``, ``addr``, ``conn_type``,
  ``msg_type``, ``size`` (payload bytes, as Core's tracepoint). A busy node sends
  thousands a second, so they are never matched by a wildcard: a subscriber names them.

peerkeeper's own: ``net:handshake`` (``id``, ``addr``, ``conn_type``, ``network``,
``transport``, ``version``, ``subver``, ``seconds``), ``ban`` (``address``,
``banned_until``), ``discourage`` (``address``), ``addrman:add`` (``id`` of the source
peer, ``received``, ``added``), ``addrman:good`` (``addr``), ``anchor`` (``addr``,
``action``: ``loaded`` at start, ``saved`` at stop), and the
native pool's events as ``pool:<kind>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "EVENT_NAMES",
    "MESSAGE_EVENTS",
    "Event",
    "EventFilter",
    "EventSink",
]

#: Core's tracepoints (doc/tracing.md) and peerkeeper's own names.
EVENT_NAMES = frozenset(
    {
        "net:inbound_connection",
        "net:outbound_connection",
        "net:closed_connection",
        "net:evicted_inbound_connection",
        "net:misbehaving_connection",
        "net:inbound_message",
        "net:outbound_message",
        "net:handshake",
        "ban",
        "discourage",
        "addrman:add",
        "addrman:good",
        "anchor",
    }
)
#: The per-message events: only delivered to a subscriber that names them.
MESSAGE_EVENTS = frozenset({"net:inbound_message", "net:outbound_message"})

_PATTERN = re.compile(r"[a-z0-9_]+(:[a-z0-9_]+)?(:\*)?|[a-z0-9_]+:\*|\*")


@dataclass(frozen=True, slots=True)
class Event:
    """One event.

    :ivar name: the event's name (see the module docstring), e.g.
        ``"net:inbound_connection"``.
    :ivar time: unix seconds, from the node's clock.
    :ivar fields: the event's fields (JSON values only).
    """

    name: str
    time: float
    fields: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``{"event": name, "time": time, **fields}``, the JSON line and websocket frame."""
        return {"event": self.name, "time": self.time, **self.fields}


EventSink: TypeAlias = Callable[[Event], None]
"""Where a core hands its events; the shell's hub fans them out."""


class EventFilter:
    """Which events a subscriber wants: a comma-separated list of names and patterns.

    ``*`` is every event but the per-message ones, ``net:*`` every ``net:`` one but the
    per-message ones, ``pool:*`` the native pool's; an exact name (``ban``,
    ``net:inbound_message``) selects that event. Examples: ``"*"``,
    ``"net:*,ban,discourage"``, ``"net:inbound_message"``.

    :param spec: the list, as a string (commas, optional spaces) or as names.
    :raises ValueError: an empty list or item, or an item that is neither a known name,
        ``pool:<kind>`` nor a ``prefix:*`` / ``*`` pattern (the message says which).
    """

    __slots__ = ("exact", "prefixes", "spec")

    def __init__(self, spec: str | Iterable[str] = "*") -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        items = [item.strip() for item in items]
        if not items or any(not item for item in items):
            raise ValueError(f"event filter {spec!r}: empty item")
        exact: set[str] = set()
        prefixes: set[str] = set()
        for item in items:
            if len(item) > 64 or _PATTERN.fullmatch(item) is None:
                raise ValueError(f"event filter: malformed item {item[:64]!r}")
            if item == "*":
                prefixes.add("")
            elif item.endswith(":*"):
                prefixes.add(item[:-1])
            elif item in EVENT_NAMES or item.startswith("pool:"):
                exact.add(item)
            else:
                raise ValueError(f"event filter: unknown event {item!r}")
        self.exact = frozenset(exact)
        self.prefixes = tuple(sorted(prefixes))
        self.spec = ",".join(items)

    def matches(self, name: str) -> bool:
        """Whether an event called ``name`` passes."""
        if name in self.exact:
            return True
        if name in MESSAGE_EVENTS:
            return False
        return any(name.startswith(prefix) for prefix in self.prefixes)

    @property
    def wants_messages(self) -> bool:
        """Whether it names a per-message event (the cores emit those only then)."""
        return not MESSAGE_EVENTS.isdisjoint(self.exact)

    def __repr__(self) -> str:
        return f"EventFilter({self.spec!r})"
