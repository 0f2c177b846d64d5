"""JSON-RPC methods of a native node (served by :class:`~peerkeeper.daemon.rpc.RpcServer`).

Names follow the issue and Octez's ``/network`` RPCs where they exist
(tezos/tezos-mirror ``src/lib_p2p_services``): ``listpeers``, ``listpoints``,
``greylist``, ``trust``, ``untrust``, plus ``getnodeinfo``, ``getconnectioncount``,
``connect`` and ``disconnect``. Errors use Core's codes (``RPC_INVALID_PARAMETER`` -8,
``RPC_INVALID_PARAMS`` -32602).
"""

from __future__ import annotations

from typing import Any

from peerkeeper.daemon.rpc import Handler, RpcError
from peerkeeper.native.identity import IdentityError, PeerId
from peerkeeper.native.maintenance import bounds
from peerkeeper.net.netaddr import AddrError, NetAddr, Service
from peerkeeper.shell.nativenode import NativeNode

__all__ = ["native_rpc_methods"]

RPC_INVALID_PARAMETER = -8
RPC_INVALID_PARAMS = -32602


def _params(params: list[Any] | dict[str, Any], names: tuple[str, ...], required: int) -> list[Any]:
    if isinstance(params, dict):
        values = [params.get(n) for n in names]
    else:
        if len(params) > len(names):
            raise RpcError(RPC_INVALID_PARAMS, f"at most {len(names)} parameters")
        values = list(params) + [None] * (len(names) - len(params))
    for name, value in zip(names[:required], values[:required], strict=True):
        if value is None:
            raise RpcError(RPC_INVALID_PARAMS, f"missing parameter {name}")
    return values


def _target(text: Any) -> PeerId | Service | NetAddr:
    """A peer id, a point ``host:port`` or an address, from RPC text."""
    if not isinstance(text, str):
        raise RpcError(RPC_INVALID_PARAMETER, "expected a peer id, a point or an address")
    try:
        return PeerId.parse(text)
    except IdentityError:
        pass
    try:
        svc = Service.parse(text, 0)
    except AddrError:
        raise RpcError(RPC_INVALID_PARAMETER, f"not a peer id, point or address: {text}") from None
    return svc if svc.port else svc.addr


def _time(t: float | None) -> int | None:
    return None if t is None else int(t)


def native_rpc_methods(node: NativeNode) -> dict[str, Handler]:
    """The RPC table for ``node`` (a started :class:`NativeNode`)."""

    def pool() -> Any:
        if node.pool is None:
            raise RpcError(-28, "node is starting")
        return node.pool

    async def listpeers(params: list[Any] | dict[str, Any]) -> Any:
        """Known peer ids with their state, point, score and flags."""
        _params(params, (), 0)
        p = pool()
        now = node.clock()
        out = []
        for info in p.known_peer_ids.values():
            seen = info.last_seen
            out.append(
                {
                    "peer_id": str(info.peer_id),
                    "state": info.state.value,
                    "point": str(info.current_point) if info.current_point else None,
                    "trusted": info.trusted,
                    "private": info.private,
                    "score": round(p.score(info.peer_id, now), 6),
                    "greylisted": p.banned_peer(info.peer_id),
                    "created": _time(info.created),
                    "last_seen": None if seen is None else [str(seen[0]), int(seen[1])],
                }
            )
        return out

    async def listpoints(params: list[Any] | dict[str, Any]) -> Any:
        """Known points with their state, peer, back-off and flags."""
        _params(params, (), 0)
        p = pool()
        out = []
        for info in p.known_points.values():
            out.append(
                {
                    "point": str(info.point),
                    "state": info.state.value,
                    "trusted": info.trusted,
                    "public": info.known_public,
                    "peer_id": str(info.current_peer_id) if info.current_peer_id else None,
                    "expected_peer_id": (
                        str(info.expected_peer_id) if info.expected_peer_id else None
                    ),
                    "greylisted": p.banned_addr(info.point.addr),
                    "last_seen": _time(info.last_seen),
                    "last_miss": _time(info.last_miss),
                    "reconnection_end": _time(info.reconnection_end),
                }
            )
        return out

    async def greylist(params: list[Any] | dict[str, Any]) -> Any:
        """``greylist``: list both greylists; ``greylist TARGET``: greylist an address or
        a peer id (and close its connection); ``greylist clear``: empty both."""
        (target,) = _params(params, ("target",), 0)
        p = pool()
        now = node.clock()
        if target == "clear":
            p.clear_greylist()
            return None
        if target is not None:
            what = _target(target)
            if isinstance(what, PeerId):
                done = p.greylist_peer(what, now, reason="rpc")
                if done:
                    node.disconnect(what, "greylisted")
            else:
                addr = what.addr if isinstance(what, Service) else what
                done = p.greylist_addr(addr, now, reason="rpc")
                if done:
                    for info in p.running_peers():
                        if info.current_point is not None and info.current_point.addr == addr:
                            node.disconnect(info.peer_id, "greylisted")
            if not done:
                raise RpcError(
                    RPC_INVALID_PARAMETER, "trusted points and peers are never greylisted"
                )
            return None
        grey = p.ip_greylist
        return {
            "addresses": [str(a) for a in grey.listed()],
            "addresses_listing_complete_since": _time(grey.fifo_not_reliable_since),
            "peer_ids": [str(PeerId(raw)) for raw in p.peer_greylist.listed()],
            "ip_greylist_bytes": grey.memory_bytes,
        }

    async def trust(params: list[Any] | dict[str, Any]) -> Any:
        """``trust POINT|PEER_ID``: unban and trust (Octez ``trust``)."""
        (target,) = _params(params, ("target",), 1)
        what = _target(target)
        now = node.clock()
        if isinstance(what, PeerId):
            pool().trust_peer(what, now)
        elif isinstance(what, Service):
            pool().trust_point(what, now)
            node.maintain()
        else:
            raise RpcError(RPC_INVALID_PARAMETER, "a point needs a port")
        return None

    async def untrust(params: list[Any] | dict[str, Any]) -> Any:
        """``untrust POINT|PEER_ID``: clear the trusted flag."""
        (target,) = _params(params, ("target",), 1)
        what = _target(target)
        now = node.clock()
        if isinstance(what, PeerId):
            pool().untrust_peer(what, now)
        elif isinstance(what, Service):
            pool().untrust_point(what, now)
        else:
            raise RpcError(RPC_INVALID_PARAMETER, "a point needs a port")
        return None

    async def getnodeinfo(params: list[Any] | dict[str, Any]) -> Any:
        """Our peer id, listening addresses, connection counts and thresholds."""
        _params(params, (), 0)
        p = pool()
        lim = node.config.limits
        b = bounds(lim.min_connections, lim.expected_connections, lim.max_connections)
        return {
            "peer_id": str(node.peer_id),
            "peer_id_b32": node.peer_id.b32(),
            "listening": [f"{h}:{port}" for h, port in node.listening],
            "private_mode": p.config.private_mode,
            "connections": p.active_connections(),
            "known_points": len(p.known_points),
            "known_peer_ids": len(p.known_peer_ids),
            "limits": {
                "min": lim.min_connections,
                "expected": lim.expected_connections,
                "max": lim.max_connections,
                "thresholds": [b.min_threshold, b.min_target, b.max_target, b.max_threshold],
            },
        }

    async def getconnectioncount(params: list[Any] | dict[str, Any]) -> Any:
        """Running connections."""
        _params(params, (), 0)
        return pool().active_connections()

    async def connect(params: list[Any] | dict[str, Any]) -> Any:
        """``connect POINT``: dial it now; the peer id, or an error."""
        (target,) = _params(params, ("point",), 1)
        what = _target(target)
        if not isinstance(what, Service):
            raise RpcError(RPC_INVALID_PARAMETER, "expected a point host:port")
        peer = await node.connect(what)
        if peer is None:
            raise RpcError(-24, f"could not connect to {what}")
        return str(peer)

    async def disconnect(params: list[Any] | dict[str, Any]) -> Any:
        """``disconnect PEER_ID``."""
        (target,) = _params(params, ("peer_id",), 1)
        what = _target(target)
        if not isinstance(what, PeerId) or not node.disconnect(what, "rpc"):
            raise RpcError(-29, "peer not connected")
        return None

    return {
        "listpeers": listpeers,
        "listpoints": listpoints,
        "greylist": greylist,
        "trust": trust,
        "untrust": untrust,
        "getnodeinfo": getnodeinfo,
        "getconnectioncount": getconnectioncount,
        "connect": connect,
        "disconnect": disconnect,
    }
