"""``peerkeeper crawl``: visit every reachable node of a Bitcoin network, on asyncio.

bitnodes' job (github.com/ayeowch/bitnodes) built on the library's own application
API: the crawler is a :class:`~peerkeeper.daemon.node.Node` with no listener, no RPC
server and no automatic connections, which opens Core's *addr-fetch* connections
(``ConnectionType.ADDR_FETCH``: handshake, ``getaddr``, disconnect once the answer
came, src/net.cpp) to each address the breadth-first
:class:`~peerkeeper.bitcoin.crawl.CrawlFrontier` hands out, ``--concurrency`` at a time,
BIP324 first with the v1 fallback Core uses. Each visit is recorded
(:class:`~peerkeeper.bitcoin.crawl.NodeRecord`) in ``--out crawl.sqlite``
(:mod:`peerkeeper.io.crawldb`; an interrupted crawl continues from it) and exported
with ``--json`` / ``--csv``. ``-proxy`` / ``-onion`` / ``-i2psam`` are the node's:
onion addresses are visited only through a SOCKS5 proxy, I2P addresses only through a
SAM bridge (a transient session per visit, as an outbound-only Core node dials them).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from peerkeeper.bitcoin.crawl import (
    RECORD_FIELDS,
    CrawlFrontier,
    CrawlTimeouts,
    NodeRecord,
    summarize,
    timeouts_for,
)
from peerkeeper.daemon.config import Config
from peerkeeper.daemon.node import Node
from peerkeeper.io.crawldb import CrawlDB
from peerkeeper.io.dns import make_resolver, resolve_seed
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import AddrError, Network, Service
from peerkeeper.net.netbase import ConnectError
from peerkeeper.shell.peerapi import Peer, PeerDisconnected
from peerkeeper.wire.messages import Addr, AddrV2

__all__ = ["CrawlOptions", "Crawler", "export_csv", "export_json", "run_crawl"]

log = logging.getLogger("peerkeeper.crawl")

#: Seconds between flushes of the crawl database.
FLUSH_INTERVAL = 1.0
#: Seconds without another addr message, after one of a single address, that end a
#: visit's wait for its getaddr answer.
QUIET = 2.0


@dataclass(slots=True)
class CrawlOptions:
    """``chain``; ``seeds`` ("host:port" strings), ``dns_seeds`` (names), ``peers_dat``;
    ``concurrency`` (visits at once, default 256), ``rate`` (visits started per second,
    0: no limit), ``dialmap`` (a lab's map), ``proxy``/``onion``/``i2psam`` (Core's options),
    ``out`` (the database), ``edges`` (keep who gave whom), ``max_nodes`` (stop after
    that many visits; 0: no limit), ``timeouts`` (one set of limits for every network)."""

    chain: str = "main"
    seeds: list[str] = field(default_factory=list)
    dns_seeds: list[str] = field(default_factory=list)
    peers_dat: Path | None = None
    concurrency: int = 256
    rate: float = 0.0
    dialmap: Path | None = None
    proxy: list[str] = field(default_factory=list)
    onion: str | None = None
    i2psam: str | None = None
    dnsserver: list[str] = field(default_factory=list)
    out: Path | None = None
    edges: bool = False
    max_nodes: int = 0
    #: The same limits on every network instead of virtu's per-network ones.
    timeouts: CrawlTimeouts | None = None


class _Visit:
    __slots__ = ("addrs", "done", "heard")

    def __init__(self) -> None:
        self.addrs: dict[Service, None] = {}  # the distinct addresses, in arrival order
        self.done = asyncio.Event()
        self.heard = asyncio.Event()  # an addr message came (reset by the quiet wait)


class Crawler:
    """The crawl on a running :class:`Node` (``node.connman`` dials; ``node.on`` hears
    the answers). ``await crawler.run()`` returns when nothing is left to visit."""

    def __init__(
        self,
        node: Node,
        frontier: CrawlFrontier,
        *,
        concurrency: int = 256,
        db: CrawlDB | None = None,
        max_nodes: int = 0,
        timeouts: CrawlTimeouts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.frontier = frontier
        self.concurrency = max(1, concurrency)
        self.db = db
        self.max_nodes = max_nodes
        self.timeouts = timeouts
        self.clock = clock
        self._visits: dict[str, _Visit] = {}
        self._new_queued: list[str] = []
        self._new_records: list[NodeRecord] = []
        self._edges_flushed = 0
        self.started = 0
        self.t0 = 0.0
        node.on(Addr, self._on_addr)
        node.on(AddrV2, self._on_addr)

    def _on_addr(self, peer: Peer, msg: Addr | AddrV2) -> None:
        visit = self._visits.get(str(peer.addr))
        if visit is None:
            return
        addrs = visit.addrs
        room = self.frontier.max_addrs_per_node
        for e in msg.entries:
            if len(addrs) >= room:
                break
            addrs[e.service] = None
        visit.heard.set()
        if len(msg.entries) > 1:  # Core's addr-fetch rule: the answer, not a self-announcement
            visit.done.set()

    async def _watch(self) -> None:
        events = self.node.peer_events(maxlen=1_000_000)
        async for ev in events:
            if isinstance(ev, PeerDisconnected):
                visit = self._visits.get(str(ev.peer.addr))
                if visit is not None:
                    visit.done.set()

    def queue(self, services: Iterable[Service], source: str | None = None) -> int:
        """Add addresses to visit (the new ones are stored at the next flush)."""
        before = len(self.frontier.queue)
        new = self.frontier.add(services, source)
        if self.db is not None and new:
            self._new_queued.extend(str(s) for s in list(self.frontier.queue)[before:])
        return new

    async def _visit(self, svc: Service) -> NodeRecord:
        network = svc.addr.get_network()
        limits = self.timeouts or timeouts_for(network)
        key = str(svc)
        rec = NodeRecord(key, network.rpc_name, crawled_at=self.clock())
        visit = self._visits[key] = _Visit()
        t0 = time.monotonic()
        try:
            peer = await self.node.connect(
                svc,
                conn_type=ConnectionType.ADDR_FETCH,
                timeout=limits.connect + limits.message,
                v2=True,
            )
        except ConnectError as e:
            rec.failure = e.reason
            return rec
        finally:
            if key not in self._visits:  # pragma: no cover - defensive
                self._visits[key] = visit
        rec.reachable = True
        rec.latency_ms = round((time.monotonic() - t0) * 1000, 3)
        rec.version = peer.version
        rec.services = peer.services
        rec.user_agent = peer.user_agent
        rec.start_height = peer.start_height
        rec.relay = peer.relay
        rec.transport = peer.transport
        await self._collect(visit, limits.getaddr)
        self.node.disconnect(peer)  # Core's addr-fetch rule has done it already, mostly
        rec.addrs_returned = len(visit.addrs)
        self.queue(visit.addrs, key)
        return rec

    async def _collect(self, visit: _Visit, limit: float) -> None:
        """Wait for the getaddr answer: an addr of more than one address (Core's
        addr-fetch rule), the peer going, ``limit`` seconds, or :data:`QUIET` seconds
        without another addr after one of a single address (a node that knows one
        address answers with one; a self-announcement may come first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while not visit.done.is_set():
                    quiet = QUIET if visit.addrs else None
                    visit.heard.clear()
                    done = asyncio.ensure_future(visit.done.wait())
                    heard = asyncio.ensure_future(visit.heard.wait())
                    try:
                        finished, _ = await asyncio.wait(
                            (done, heard), timeout=quiet, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        done.cancel()
                        heard.cancel()
                    if not finished:
                        return  # quiet: that was all

    async def _worker(self) -> None:
        frontier = self.frontier
        while True:
            if self.max_nodes and self.started >= self.max_nodes:
                return
            now = self.clock()
            nxt = frontier.next_visit(now)
            if nxt is None:
                if not frontier.queue:
                    if not frontier.in_flight:
                        return
                    await asyncio.sleep(0.05)  # more may come from the visits in flight
                else:
                    await asyncio.sleep(frontier.wait(now))
                continue
            if isinstance(nxt, tuple):
                self._new_records.append(nxt[1])
                continue
            self.started += 1
            try:
                rec = await self._visit(nxt)
            except Exception as e:  # a bug in one visit must not end the crawl
                log.exception("visiting %s", nxt)
                rec = NodeRecord(str(nxt), nxt.addr.get_network().rpc_name, failure=repr(e))
            finally:
                self._visits.pop(str(nxt), None)
            frontier.finish(rec)
            self._new_records.append(rec)

    async def flush(self) -> None:
        """Store what changed since the last flush."""
        if self.db is None:
            return
        queued, self._new_queued = self._new_queued, []
        records, self._new_records = self._new_records, []
        edges = self.frontier.edges[self._edges_flushed :]
        self._edges_flushed = len(self.frontier.edges)
        await self.db.flush(queued, records, edges)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()

    async def run(self) -> None:
        """Crawl until nothing is queued or in flight (or ``max_nodes`` visits)."""
        self.t0 = time.monotonic()
        self.frontier.start(self.clock())
        watcher = asyncio.ensure_future(self._watch())
        flusher = asyncio.ensure_future(self._flusher())
        try:
            await asyncio.gather(*(self._worker() for _ in range(self.concurrency)))
        finally:
            for task in (watcher, flusher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.flush()

    def progress(self) -> str:
        """The live line: known, visited, reachable, in flight, visits per second."""
        f = self.frontier
        done = len(f.records)
        reachable = sum(1 for r in f.records.values() if r.reachable)
        rate = self.started / max(1e-9, time.monotonic() - self.t0) if self.t0 else 0.0
        return (
            f"known {len(f.known)}  tried {done}  reachable {reachable}  "
            f"in flight {len(f.in_flight)}  {rate:.0f} nodes/s"
        )


def export_json(path: Path, records: Iterable[NodeRecord]) -> None:
    """Write the records as a JSON list of objects (:meth:`NodeRecord.to_json`)."""
    data = [r.to_json() for r in sorted(records, key=lambda r: r.address)]
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def export_csv(path: Path, records: Iterable[NodeRecord]) -> None:
    """Write the records as CSV, one row per node, :data:`RECORD_FIELDS` as the header."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(RECORD_FIELDS)
        for r in sorted(records, key=lambda r: r.address):
            w.writerow(["" if getattr(r, k) is None else getattr(r, k) for k in RECORD_FIELDS])


async def _seed_addresses(opts: CrawlOptions, port_for: Callable[[str], int]) -> list[Service]:
    """The seeds' addresses; ``port_for(name)`` is the port of a seed given without one
    (Core's ``GetDefaultPort``: the chain's, 0 for an I2P name)."""
    seeds: list[Service] = []
    for s in opts.seeds:
        seeds.append(Service.parse(s, port_for(s)))
    if opts.peers_dat is not None:
        from peerkeeper.io.addrdb import read_peers_dat

        magic = Config(chain=opts.chain).chain_params.magic
        book = read_peers_dat(opts.peers_dat, magic, random.Random(0))
        seeds.extend(e.service for e in book.entries())
    if opts.dns_seeds:
        nameservers: list[str] | None = None
        port = 53
        if opts.dnsserver:
            svc = Service.parse(opts.dnsserver[0], 53)
            nameservers, port = [str(svc.addr)], svc.port
        resolver = make_resolver(nameservers, port)
        for name in opts.dns_seeds:
            try:
                addrs = await resolve_seed(resolver, name)
            except Exception as e:
                log.warning("DNS seed %s: %s", name, e)
                continue
            seeds.extend(Service(a, port_for(str(a))) for a in addrs)
    return seeds


def node_config(opts: CrawlOptions) -> Config:
    """The crawler's node: no listener (nor I2P accepting: transient sessions only), no
    RPC, no automatic connections, no seeding, connect timeout of the IP networks
    (virtu's 3 s)."""
    return Config(
        chain=opts.chain,
        connect=["0"],
        listen=False,
        server=False,
        dnsseed=False,
        fixedseeds=False,
        dialmap=opts.dialmap,
        proxy=list(opts.proxy),
        onion=opts.onion,
        i2psam=opts.i2psam,
        i2pacceptincoming=False,
        timeout=int((opts.timeouts or timeouts_for(Network.IPV4)).connect * 1000),
        maxconnections=max(opts.concurrency + 16, 125),
    )


async def run_crawl(
    opts: CrawlOptions,
    *,
    json_out: Path | None = None,
    csv_out: Path | None = None,
    progress: TextIO | None = None,
    summary_out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Run a crawl to the end: seeds, visits, exports; returns the summary.

    :raises ValueError: ``concurrency`` below 1, a negative ``rate`` or ``max_nodes``.
    :raises OSError: an export file cannot be written (checked before the crawl: an
        hours-long crawl must not end unable to save).
    """
    if opts.concurrency < 1:
        raise ValueError("--concurrency must be at least 1")
    if opts.rate < 0 or opts.max_nodes < 0:
        raise ValueError("--rate and --max-nodes must not be negative")
    for path in (json_out, csv_out):
        if path is not None:
            with path.open("a", encoding="utf-8"):
                pass  # writable, before the crawl
    config = node_config(opts)
    chain_port = config.chain_params.default_port
    node = Node(config)
    # The crawler reads every answer itself and keeps no address book.
    node.connman.options.peer = dataclasses.replace(node.connman.options.peer, learn_addrs=False)
    _, reachable = config.proxy_settings()
    frontier = CrawlFrontier(reachable=frozenset(reachable), rate=opts.rate, keep_edges=opts.edges)
    db: CrawlDB | None = None
    if opts.out is not None:
        db = CrawlDB(opts.out)
        db.open()
    try:
        async with node:
            crawler = Crawler(
                node,
                frontier,
                concurrency=opts.concurrency,
                db=db,
                max_nodes=opts.max_nodes,
                timeouts=opts.timeouts,
            )
            if db is not None:
                records, queued = db.load()
                pending: list[Service] = []
                for a in queued:
                    with contextlib.suppress(AddrError):
                        pending.append(Service.parse(a, chain_port))
                frontier.resume(records, pending)
                if records:
                    log.info("resuming: %d visited, %d queued", len(records), len(pending))
            crawler.queue(await _seed_addresses(opts, node.connman.core.default_port))
            ticker = (
                asyncio.ensure_future(_show_progress(crawler, progress))
                if progress is not None
                else None
            )
            try:
                await crawler.run()
            finally:
                if ticker is not None:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
    finally:
        if db is not None:
            db.close()
    records_all = list(frontier.records.values())
    if json_out is not None:
        export_json(json_out, records_all)
    if csv_out is not None:
        export_csv(csv_out, records_all)
    summary = summarize(records_all)
    summary_out.write(json.dumps(summary, indent=1) + "\n")
    return summary


async def _show_progress(crawler: Crawler, out: TextIO) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(file=out)
    with Live(Text(crawler.progress()), console=console, refresh_per_second=4) as live:
        try:
            while True:
                await asyncio.sleep(0.25)
                live.update(Text(crawler.progress()))
        finally:
            live.update(Text(crawler.progress()), refresh=True)  # the final count stays
