"""``peerkeeper lab``: a local network of Bitcoin-protocol peerkeeper nodes on loopback.

Each node ``i`` listens on ``127.0.0.1`` and has a routable *virtual* address,
:func:`virtual_address` (``11.1.0.1``, ``11.2.0.1``, ...: one /16 each, so netgroups,
AddrMan buckets and eviction behave as on the Internet, where 127.0.0.0/8 is one
unroutable group that AddrMan refuses). Nodes dial each other's virtual addresses
through SockMan's ``dial_map``, from their own loopback source ``127.A.B.1`` that the
accepting node's ``accept_map`` turns back into the dialler's virtual address. Every
node starts with the virtual addresses of up to :data:`SEED_PEERS` others in its
address book, advertises its own (``-externalip``), and answers ``getaddr`` as Core
does. ``--write-dialmap FILE`` writes the virtual -> loopback map
(:mod:`peerkeeper.io.dialmap`) for ``peerkeeper node --dialmap`` and ``peerkeeper
crawl --dialmap``, which then reach the lab from another process.

This is the tool to try connection policy, the crawler and the examples with no
Internet. Core has no such tool (its functional tests start regtest nodes on
loopback, test/functional/test_framework/test_node.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from peerkeeper.daemon.config import Config
from peerkeeper.daemon.node import Node
from peerkeeper.io.dialmap import write_dialmap
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.messages import AddrEntry, ServiceFlags

__all__ = [
    "LAB_SERVICES",
    "SEED_PEERS",
    "Lab",
    "LabOptions",
    "source_host",
    "virtual_address",
]

#: Addresses of other lab nodes each node starts with (all of them in a smaller lab).
SEED_PEERS = 64
#: The services lab nodes advertise and are known by (NODE_NETWORK | NODE_WITNESS |
#: NODE_P2P_V2: full nodes that speak BIP324, so peers dial them in v2 first).
LAB_SERVICES = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS | ServiceFlags.NODE_P2P_V2)


def virtual_address(i: int, port: int) -> Service:
    """Node ``i``'s virtual address: ``11.<i+1>.0.1`` for the first 255 nodes, then
    ``12.<x>.0.1`` ...: a /16 of its own, routable, never dialled for real.

    :raises ValueError: a negative ``i``, or beyond the 22,783 addresses below 100.0.0.0.
    """
    n = i + 1
    first, second = 11 + n // 256, n % 256
    if i < 0 or first > 99:  # 100.64.0.0/10 is not routable (Core IsRFC6598)
        raise ValueError(f"no virtual address for lab node {i}")
    return Service(NetAddr.parse(f"{first}.{second}.0.1"), port)


def source_host(i: int) -> str:
    """The loopback address node ``i`` dials from (``127.<1 + i // 256>.<i % 256>.1``)."""
    return f"127.{1 + i // 256}.{i % 256}.1"


def _index_of_source(host: str) -> int | None:
    parts = host.split(".")
    if len(parts) != 4 or parts[0] != "127" or parts[3] != "1":
        return None
    a, b = int(parts[1]), int(parts[2])
    if a < 1:
        return None
    return (a - 1) * 256 + b


@dataclass(slots=True)
class LabOptions:
    """What ``peerkeeper lab`` runs.

    ``nodes`` (count), ``port_base`` (node ``i`` listens on ``port_base + 2i`` and serves
    RPC on ``port_base + 2i + 1``; 0: ports the OS picks), ``datadir`` (each node in
    ``datadir/node<i>``; None: a temporary directory removed at the end), ``rpc``
    (serve RPC), ``outbound`` (nodes open automatic outbound connections to each
    other), ``seed`` (the random seed of who knows whom), ``chain``, ``blocks`` (a
    chain of that many regtest headers every node shares, for ``getheaders``),
    ``getaddr_all`` (answer getaddr with everything known, up to 1,000: Core's 23 %
    would leave nodes of a lab of a few dozen unfound by a crawl; by default only in
    labs of at most ``SEED_PEERS + 1`` nodes, where the chance is real).
    """

    nodes: int = 10
    port_base: int = 0
    datadir: Path | None = None
    rpc: bool = True
    outbound: bool = True
    seed: int = 1
    chain: str = "regtest"
    blocks: int = 10
    #: Answer getaddr with the whole address book (up to 1,000) instead of Core's 23 %,
    #: so that a crawl of a small lab finds every node; None: only in labs where every
    #: node knows every other (``nodes <= SEED_PEERS + 1``). Larger labs answer as Core.
    getaddr_all: bool | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Lab:
    """The running lab: ``async with Lab(LabOptions(nodes=30)) as lab:``.

    ``lab.nodes`` (the :class:`Node` objects), ``lab.virtual`` (their virtual
    addresses), ``lab.dialmap`` (virtual address -> ``("127.0.0.1", port)``).
    :raises OSError: a port is taken (the message names it).
    """

    def __init__(self, options: LabOptions, *, clock: Callable[[], float] = time.time) -> None:
        if options.nodes < 1:
            raise ValueError("a lab needs at least one node")
        self.options = options
        self.clock = clock
        self.nodes: list[Node] = []
        self.virtual: list[Service] = []
        self.dialmap: dict[Service, tuple[str, int]] = {}
        self._tmp: Path | None = None
        self.datadir = options.datadir

    def _dial(self, index: int) -> Callable[[Service], tuple[str, int, str] | None]:
        def dial(service: Service) -> tuple[str, int, str] | None:
            target = self.dialmap.get(service)
            return None if target is None else (target[0], target[1], source_host(index))

        return dial

    def _accept(self, them: Service) -> Service:
        i = _index_of_source(str(them.addr))
        if i is None or i >= len(self.virtual):
            return them
        return Service(self.virtual[i].addr, them.port)

    async def start(self) -> None:
        """Start every node, fill the dial map, seed the address books."""
        opts = self.options
        if self.datadir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="peerkeeper-lab-"))
            self.datadir = self._tmp
        chain_port = Config(chain=opts.chain).chain_params.default_port
        rng = random.Random(opts.seed)
        try:
            for i in range(opts.nodes):
                virtual = virtual_address(i, chain_port)
                p2p = opts.port_base + 2 * i if opts.port_base else 0
                fields: dict[str, object] = {
                    "chain": opts.chain,
                    "datadir": self.datadir / f"node{i}",
                    "bind": [f"127.0.0.1:{p2p}"],
                    "listen": True,
                    "server": opts.rpc,
                    "rpcport": opts.port_base + 2 * i + 1 if opts.port_base else 0,
                    "dnsseed": False,
                    "fixedseeds": False,
                    "externalip": [str(virtual)],
                    "services": LAB_SERVICES & ~int(ServiceFlags.NODE_P2P_V2),
                }
                if not opts.outbound:
                    fields["connect"] = ["0"]
                fields.update(opts.extra)
                node = Node(Config(**fields), clock=self.clock)  # type: ignore[arg-type]
                cm = node.connman
                getaddr_all = opts.getaddr_all
                if getaddr_all is None:
                    getaddr_all = opts.nodes <= SEED_PEERS + 1
                if getaddr_all:
                    cm.options.peer = dataclasses.replace(cm.options.peer, getaddr_max_pct=100)
                cm.options.dial_map = cm.sockman.dial_map = self._dial(i)
                cm.options.accept_map = cm.sockman.accept_map = self._accept
                await node.start()
                self.nodes.append(node)
                if node.rpc is not None:
                    # ``peerkeeper rpc --datadir DIR/node<i>`` finds the port here, as
                    # bitcoin-cli finds it in bitcoin.conf.
                    (self.datadir / f"node{i}" / "bitcoin.conf").write_text(
                        f"[{opts.chain}]\nrpcport={node.rpc_port}\n", encoding="utf-8"
                    )
                self.virtual.append(virtual)
                self.dialmap[virtual] = ("127.0.0.1", cm.listening[0][1])
            now = int(self.clock())
            self._mine(opts.blocks, now)
            for i, node in enumerate(self.nodes):
                others = [j for j in range(len(self.nodes)) if j != i]
                known = rng.sample(others, min(SEED_PEERS, len(others)))
                if others:
                    known.append(others[i % len(others)])  # a ring: the lab is one network
                source = self.virtual[i].addr
                entries = [
                    AddrEntry(now - rng.randrange(600, 86_400), LAB_SERVICES, self.virtual[j])
                    for j in sorted(set(known))
                ]
                node.addrman.add(entries, source, now=now)
                node.connman.wake()
        except BaseException:
            await self.stop()
            raise

    def _mine(self, blocks: int, now: int) -> None:
        """One chain of ``blocks`` headers (mined on the first node's chain, timed up to
        ``now``), given to every node: their ``getheaders`` answers and start heights agree."""
        first = self.nodes[0].headers
        if first is None or blocks <= 0:
            return
        raws = []
        for k in range(blocks):
            raw = first.mine(now - 600 * (blocks - k))
            first.add(raw)
            raws.append(raw)
        for node in self.nodes:
            if node.headers is not None and node.headers is not first:
                for raw in raws:
                    node.headers.add(raw)
            node._announce_height()

    async def stop(self) -> None:
        """Stop every node (each stop runs even when another fails); remove the temporary datadir."""
        nodes, self.nodes = self.nodes, []
        for node in reversed(nodes):
            with contextlib.suppress(Exception):
                await node.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_dialmap(self, path: Path) -> None:
        """Write the virtual -> loopback map for other processes (:mod:`peerkeeper.io.dialmap`)."""
        write_dialmap(path, self.dialmap)

    def table(self, out: TextIO) -> None:
        """Print one line per node: index, virtual address, P2P endpoint, RPC port, datadir."""
        out.write(f"{'node':>5}  {'virtual address':<22} {'listens on':<22} {'rpc':>6}  datadir\n")
        for i, node in enumerate(self.nodes):
            host, port = self.dialmap[self.virtual[i]]
            rpc = str(node.rpc_port) if node.rpc is not None else "-"
            out.write(
                f"{i:>5}  {self.virtual[i]!s:<22} {host}:{port:<12} {rpc:>6}  "
                f"{node.config.datadir}\n"
            )


async def run_lab(
    options: LabOptions,
    *,
    seconds: float | None,
    dialmap_file: Path | None,
    out: TextIO,
) -> int:
    """Run a lab until Ctrl-C, SIGTERM or SIGHUP (or ``seconds``); print the table; 0, or
    1 when it cannot start. Every node is stopped and a temporary datadir removed
    whichever way it ends."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    lab = Lab(options)
    try:
        await lab.start()
    except OSError as e:
        hint = (
            f" (the lab's ports start at --port-base {options.port_base})"
            if options.port_base
            else ""
        )
        out.write(f"Error: {e}{hint}\n")
        return 1
    try:
        lab.table(out)
        if dialmap_file is not None:
            lab.write_dialmap(dialmap_file)
            out.write(f"dial map: {dialmap_file}\n")
        if options.rpc:
            out.write(
                f"try: peerkeeper rpc --chain {options.chain} --datadir "
                f"{lab.datadir}/node0 getpeerinfo\n"
            )
        n = len(lab.nodes)
        out.write(
            f"{n} node{'s' if n != 1 else ''} running"
            + (f" for {seconds:g} s" if seconds is not None else " until Ctrl-C")
            + "\n"
        )
        out.flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
    finally:
        await lab.stop()
    return 0
