"""``peerkeeper gossip-demo --nodes N``: N native nodes on loopback run the recency gossip.

Every node listens on 127.0.0.1 (a free port), bootstraps from node 0, keeps 2..6
connections (Octez's maintenance), and runs :class:`~peerkeeper.shell.gossip.GossipApp`
(push every 0.5 s). Each half second the demo prints how many (node, counterparty)
pairs hold the counterparty's latest list; once all do (twice in a row) it reports the
time, then every node asks one counterparty to introduce it to a peer from that
counterparty's list, and the demo counts the connections the introduced peers open.
Identities use 8 bits of proof of work so that N of them are made in a blink.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peerkeeper.native.identity import Identity, PeerId
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.gossip import GossipApp
from peerkeeper.shell.nativenode import NativeConfig, NativeNode

__all__ = ["DemoResult", "run_gossip_demo"]

_DIFFICULTY = 8.0


@dataclass
class DemoResult:
    """What the demo measured (seconds, counts)."""

    nodes: int
    converged_after: float | None
    connections: list[int]
    pairs: int
    entries_sent: int
    introductions_asked: int
    introductions_forwarded: int
    introduced_connections: int


def _in_sync(apps: list[GossipApp]) -> tuple[int, int]:
    by_id = {app.node.peer_id: app for app in apps}
    good = total = 0
    for app in apps:
        for info in app.node.running():
            other = by_id.get(info.peer_id)
            if other is None:
                continue
            total += 1
            theirs = app.gossip.lists.get(info.peer_id)
            if theirs is not None and theirs.latest == other.gossip.mine.latest:
                good += 1
    return good, total


async def run_gossip_demo(
    nodes: int, *, seconds: float = 30.0, out: Callable[[str], None] = print, seed: int = 1
) -> DemoResult:
    """Run the demo (see the module docstring); raises ValueError for ``nodes < 2`` or
    ``seconds <= 0``."""
    if nodes < 2:
        raise ValueError("the demo needs at least 2 nodes")
    if not seconds > 0:
        raise ValueError("the demo needs more than 0 seconds")
    rng = random.Random(seed)
    limits = MaintenanceConfig(
        min_connections=2,
        expected_connections=4,
        max_connections=6,
        maintenance_idle_time=1.0,
        time_between_looking_for_peers=0.2,
    )
    # Converged: every list in sync and every node with its minimum of connections, or
    # with every other node when there are fewer (2 nodes can hold 1 connection each).
    enough = min(limits.min_connections, nodes - 1)
    with tempfile.TemporaryDirectory() as tmp:
        started: list[NativeNode] = []
        apps: list[GossipApp] = []
        try:
            boot: list[Service] = []
            for i in range(nodes):
                node = NativeNode(
                    NativeConfig(
                        datadir=Path(tmp) / f"n{i}",
                        binds=[("127.0.0.1", 0)],
                        limits=limits,
                        pow_difficulty=_DIFFICULTY,
                        bootstrap_points=list(boot),
                    ),
                    identity=Identity.generate(_DIFFICULTY, random.Random(rng.random())),
                    rng=random.Random(rng.random()),
                )
                await node.start()
                started.append(node)
                apps.append(GossipApp(node, interval=0.5))
                if not boot:
                    host, port = node.listening[0]
                    boot = [Service.parse(f"{host}:{port}", port)]
            t0 = time.monotonic()
            converged: float | None = None
            streak = 0
            while time.monotonic() - t0 < seconds:
                await asyncio.sleep(0.5)
                good, total = _in_sync(apps)
                counts = [n.pool.active_connections() if n.pool else 0 for n in started]
                elapsed = time.monotonic() - t0
                out(
                    f"t={elapsed:5.1f}s  connections min/avg/max "
                    f"{min(counts)}/{sum(counts) / len(counts):.1f}/{max(counts)}  "
                    f"lists in sync {good}/{total}"
                )
                if total and good == total and min(counts) >= enough:
                    streak += 1
                    if streak == 2 and converged is None:
                        converged = elapsed
                        break
                else:
                    streak = 0
            if converged is not None:
                out(f"converged after {converged:.1f} s")
            else:
                out(f"not converged within {seconds:g} s")
            asked = forwarded = 0
            for app in apps:
                target = _someone_to_meet(app, apps, rng)
                if target is None:
                    continue
                via, who = target
                asked += 1
                if await app.introduce(via, who):
                    forwarded += 1
            await asyncio.sleep(1.0)
            introduced = sum(a.introduced for a in apps)
            out(
                f"introductions: {asked} asked, {forwarded} forwarded, {introduced} connections "
                "opened by the introduced peers (a node with 6 refuses more)"
            )
            good, total = _in_sync(apps)
            return DemoResult(
                nodes=nodes,
                converged_after=converged,
                connections=[n.pool.active_connections() if n.pool else 0 for n in started],
                pairs=total,
                entries_sent=sum(a.gossip.entries_sent for a in apps),
                introductions_asked=asked,
                introductions_forwarded=forwarded,
                introduced_connections=introduced,
            )
        finally:
            for app in apps:
                await app.close()
            for node in started:
                await node.stop()


def _someone_to_meet(
    app: GossipApp, apps: list[GossipApp], rng: random.Random
) -> tuple[PeerId, PeerId] | None:
    """A counterparty and a peer from its list that ``app`` is not connected to."""
    me = app.node.peer_id
    connected = {p.peer_id for p in app.node.running()}
    by_raw = {a.node.peer_id.raw: a.node.peer_id for a in apps}
    options: list[tuple[PeerId, PeerId]] = []
    for via in connected:
        theirs = app.gossip.lists.get(via)
        if theirs is None:
            continue
        for entry in theirs.newest_first():
            who = by_raw.get(entry.peer_id)
            if who is not None and who != me and who not in connected:
                options.append((via, who))
    return rng.choice(options) if options else None
