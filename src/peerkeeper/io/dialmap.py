"""The dial map file: virtual addresses -> the loopback endpoints that answer for them.

A lab network (``peerkeeper lab``) gives every node a routable virtual address (so
AddrMan, netgroups and getaddr behave as on the Internet) and listens on loopback. The
file maps one to the other, a JSON object with one entry per node::

    {"11.1.0.1:18444": "127.0.0.1:40211", "11.2.0.1:18444": "127.0.0.1:40213"}

``peerkeeper node --dialmap FILE`` and ``peerkeeper crawl --dialmap FILE`` dial through
it (SockMan's ``dial_map``); an address the map does not name is refused before any
socket is opened, so only the map's targets are ever dialled (a lab's are all on
127.0.0.1). peerkeeper's own format: Core has none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from peerkeeper.io.sockman import DialMap
from peerkeeper.net.netaddr import AddrError, Service

__all__ = ["DialMapError", "dialmap_function", "load_dialmap", "write_dialmap"]


class DialMapError(ValueError):
    """A dial map file that cannot be used; the message names the file and the entry."""


def load_dialmap(path: str | os.PathLike[str]) -> dict[Service, tuple[str, int]]:
    """Read a dial map file: ``{virtual Service: (loopback host, port)}``.

    :raises DialMapError: unreadable file, not a JSON object, a key given twice, or an
        entry that is not ``"ADDR:PORT": "HOST:PORT"`` with a port.
    """
    p = Path(path)

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen: dict[str, object] = {}
        for key, value in pairs:
            if key in seen:
                raise DialMapError(f"{p}: {key!r} is mapped twice")
            seen[key] = value
        return seen

    try:
        obj = json.loads(p.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DialMapError(f"{p}: {e}") from None
    if not isinstance(obj, dict):
        raise DialMapError(f'{p}: expected a JSON object of "ADDR:PORT": "HOST:PORT"')
    out: dict[Service, tuple[str, int]] = {}
    for key, value in obj.items():
        try:
            if not isinstance(value, str):
                raise AddrError("not a string")
            virtual = Service.parse(key, 0)
            target = Service.parse(value, 0)
            if virtual.port == 0 or target.port == 0:
                raise AddrError("a port is required")
        except AddrError as e:
            raise DialMapError(f"{p}: entry {key!r}: {value!r}: {e}") from None
        out[virtual] = (str(target.addr), target.port)
    return out


def dialmap_function(mapping: Mapping[Service, tuple[str, int]]) -> DialMap:
    """SockMan's ``dial_map`` callable over ``mapping`` (None: refuse the dial)."""

    def dial(service: Service) -> tuple[str, int] | None:
        return mapping.get(service)

    return dial


def write_dialmap(path: str | os.PathLike[str], mapping: Mapping[Service, tuple[str, int]]) -> None:
    """Write ``mapping`` as a dial map file (sorted, one entry per line).

    :raises OSError: the file cannot be written.
    """
    obj = {str(k): f"{host}:{port}" for k, (host, port) in mapping.items()}
    Path(path).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")
