"""The recency gossip on a running native node (asyncio).

:class:`GossipApp` runs the sans-IO :class:`~peerkeeper.dispatch.gossip.RecencyGossip`
(seed 004's first application) on a started :class:`~peerkeeper.shell.nativenode.
NativeNode`: it registers the gossip messages on the node's dispatch layer, subscribes
to the pool's events, pushes on a timer and dials relayed connect requests. Every
``now`` it gives the core is the node's ``clock()``, and the list's epoch is drawn from
the node's ``rng``: one clock and one source of randomness per node.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from peerkeeper.dispatch.gossip import RecencyGossip, gossip_codecs
from peerkeeper.native.identity import PeerId
from peerkeeper.native.pool import PoolEvent
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.nativenode import NativeNode

__all__ = ["GossipApp"]

log = logging.getLogger("peerkeeper.gossip")


class GossipApp:
    """:class:`RecencyGossip` on a started :class:`NativeNode` (its dispatcher).

    ``GossipApp(node, *, interval=1.0)``: records every established connection, pushes
    every ``interval`` seconds (and soon after each new connection), and dials the point
    of a relayed connect request. :meth:`close` stops it.
    """

    def __init__(self, node: NativeNode, *, interval: float = 1.0) -> None:
        self.node = node
        self.interval = interval
        assert node.codecs is not None and node.dispatcher is not None and node.dispatch
        gossip_codecs(node.codecs)  # the node's dispatch layer carries the gossip
        self.dispatcher = node.dispatcher
        self.adapter = node.dispatch
        port = node.config.advertised_port or (node.listening[0][1] if node.listening else 0)
        my_point = Service.parse(f"{node.listening[0][0]}:{port}", port) if node.listening else None
        self.gossip = RecencyGossip(
            self.dispatcher,
            my_point=my_point,
            connect=self._connect,
            is_connected=lambda peer: peer in (node.pool.connected_peer_ids() if node.pool else {}),
            rng=node.rng,
        )
        assert node.pool is not None
        self._unsubscribe = node.pool.subscribe(self._on_event)
        #: Connections opened because a counterparty relayed a connect request.
        self.introduced = 0
        self._task = asyncio.ensure_future(self._loop())
        self._tasks: set[asyncio.Task[Any]] = set()

    def _on_event(self, event: PoolEvent) -> None:
        if event.kind == "connection_established" and event.peer_id is not None:
            point = event.point
            info = self.node.pool.known_peer_ids.get(event.peer_id) if self.node.pool else None
            if point is not None and info is not None and info.listen_port:
                point = Service(point.addr, info.listen_port)
            if point is not None:
                self.gossip.connected(event.peer_id, event.peer_id.raw, point, self.node.clock())
            self.adapter.kick()
        elif event.kind == "connection_closed" and event.peer_id is not None:
            self.gossip.disconnected(event.peer_id)

    def _connect(self, point: Service, requester: Any) -> None:
        async def dial() -> None:
            if await self.node.connect(point) is not None:
                self.introduced += 1

        task = asyncio.ensure_future(dial())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def push_now(self) -> int:
        """Push to every running peer now; how many messages went out."""
        peers = [p.peer_id for p in self.node.running()]
        n = self.gossip.push_all(peers, self.node.clock())
        self.adapter.kick()
        return n

    async def introduce(self, via: PeerId, target: PeerId) -> bool:
        """Ask ``via`` to introduce us to ``target``; True if ``via`` forwarded it."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def done(ok: bool) -> None:
            if not fut.done():
                fut.set_result(ok)

        self.gossip.introduce(via, target.raw, self.node.clock(), done)
        self.adapter.kick()
        return await fut

    async def _loop(self) -> None:
        while True:
            self.push_now()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """Stop pushing and detach from the node."""
        self._task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(self._task, *self._tasks, return_exceptions=True)
        self._unsubscribe()
