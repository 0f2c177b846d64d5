"""Helpers shared by the test modules: tests import from here, never from each other.

* loopback basics: :func:`free_port`, :func:`wait_until`, :data:`REFUSED_DIALS` (filled
  by conftest's loopback-only guard);
* the virtual network: every node ``i`` gets a routable virtual address ``11.<i>.0.1``
  (:func:`virtual` for Bitcoin nodes, :func:`vpoint` for native nodes) that
  :class:`VirtualNet`'s ``dial_map`` turns into the loopback port where that node
  listens, dialling from ``127.1.<i>.1``, which its ``accept_map`` turns back into
  ``11.<i>.0.1``;
* Bitcoin nodes on loopback: :func:`running`, :func:`port_of`, :func:`handshaken`,
  :class:`RawPeer`, :func:`raw_handshake`;
* native nodes on the virtual network: :func:`native`, :func:`native_identity`;
* servers started by tests: :func:`pproxy_server` (SOCKS5), :func:`dns_server` with
  :class:`SeedZone`;
* small fakes: :class:`Recorder` (SockMan events), the dispatch codecs :class:`Text`,
  :class:`Blob`, :class:`Ping`, :func:`registry` and the :class:`Sink` conversation, and
  the PeerPool helpers :data:`T0`, :data:`ME`, :func:`pid`, :func:`pt`, :func:`connect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import DNSServer

from peerkeeper import Config, NativeConfig, NativeNode, NetAddr, Node, Service
from peerkeeper.dispatch.dispatcher import CodecRegistry, Conversation, Envelope
from peerkeeper.native.identity import Identity, PeerId
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.native.pool import PeerPool, PoolConfig
from peerkeeper.wire.messages import Message, Verack, Version, decode_message
from peerkeeper.wire.v1 import V1Transport

# -- loopback basics -----------------------------------------------------------------------

REFUSED_DIALS: list[Service] = []
"""Direct dials outside loopback that conftest's guard refused (tests may assert on it)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``pred`` every 5 ms until it is true; ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)


# -- the virtual network ---------------------------------------------------------------------

#: The port of a Bitcoin node's virtual address (regtest's default).
VIRTUAL_PORT = 18444
#: The port of a native node's virtual point.
NATIVE_PORT = 9732


def virtual(i: int) -> Service:
    return Service.parse(f"11.{i}.0.1", VIRTUAL_PORT)


def vpoint(i: int) -> Service:
    return Service(NetAddr.parse(f"11.{i}.0.1"), NATIVE_PORT)


def source_host(i: int) -> str:
    return f"127.1.{i}.1"


class VirtualNet:
    """The map between virtual addresses and loopback endpoints, shared by all nodes."""

    def __init__(self) -> None:
        self.ports: dict[Service, int] = {}  # virtual address -> listening loopback port
        self.dials: list[tuple[int, Service]] = []

    def dial_map(self, index: int):  # type: ignore[no-untyped-def]
        def dial(svc: Service) -> tuple[str, int, str] | None:
            self.dials.append((index, svc))
            port = self.ports.get(svc)
            return None if port is None else ("127.0.0.1", port, source_host(index))

        return dial

    @staticmethod
    def accept_map(them: Service) -> Service:
        parts = str(them.addr).split(".")
        if len(parts) == 4 and parts[:2] == ["127", "1"]:
            return Service(NetAddr.parse(f"11.{parts[2]}.0.1"), them.port)
        return them


# -- Bitcoin nodes on loopback ------------------------------------------------------------

REGTEST = bytes.fromhex("fabfb5da")


def port_of(node: Node) -> int:
    return node.connman.listening[0][1]


@asynccontextmanager
async def running(tmp: Path, name: str, **kw: object) -> AsyncIterator[Node]:
    fields: dict[str, object] = {
        "chain": "regtest",
        "datadir": tmp / name,
        "bind": ["127.0.0.1:0"],
        "listen": True,
        "rpcport": 0,
        "server": False,
    }
    fields.update(kw)
    node = Node(Config(**fields))  # type: ignore[arg-type]
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def handshaken(node: Node, n: int = 1) -> bool:
    return sum(1 for p in node.connman.peers.values() if p.proto.successfully_connected) >= n


def framed(t: V1Transport, msg: Message) -> bytes:
    """The bytes of one v1 message, through the transport's send queue."""
    t.send_message(msg)
    return t.data_to_send()


class RawPeer:
    """A hand-driven v1 client for adversarial tests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.t = V1Transport(REGTEST)

    @classmethod
    async def connect(cls, port: int) -> RawPeer:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    def send(self, msg: Message) -> None:
        self.t.send_message(msg)
        self.writer.write(self.t.data_to_send())

    async def recv(self, timeout: float = 10.0) -> Message | None:
        async with asyncio.timeout(timeout):
            while True:
                raw = self.t.next_message()
                if raw is not None:
                    return decode_message(raw.command, raw.payload)
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.t.receive_data(data)

    async def closed_by_peer(self, timeout: float = 10.0) -> bool:
        async with asyncio.timeout(timeout):
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return True

    def close(self) -> None:
        self.writer.close()


async def raw_handshake(port: int, nonce: int = 99, relay: bool = True) -> RawPeer:
    peer = await RawPeer.connect(port)
    peer.send(
        Version(
            version=70016,
            services=9,
            timestamp=1_800_000_000,
            nonce=nonce,
            user_agent="/raw/",
            relay=relay,
        )
    )
    await peer.writer.drain()
    while not isinstance(await peer.recv(), Verack):
        pass
    peer.send(Verack())
    return peer


# -- native nodes on the virtual network ---------------------------------------------------

NATIVE_DIFFICULTY = 4.0
_IDENTITIES: dict[int, Identity] = {}


def native_identity(i: int) -> Identity:
    """Native node ``i``'s identity (mined once per run, seeded by ``i``)."""
    if i not in _IDENTITIES:
        _IDENTITIES[i] = Identity.generate(NATIVE_DIFFICULTY, random.Random(i))
    return _IDENTITIES[i]


@asynccontextmanager
async def native(
    net: VirtualNet,
    tmp: Path,
    i: int,
    *,
    limits: MaintenanceConfig | None = None,
    maintenance: bool = False,
    ident: Identity | None = None,
    bootstrap: list[Service] | None = None,
    clock: Callable[[], float] | None = None,
    **pool_kw: object,
) -> AsyncIterator[NativeNode]:
    config = NativeConfig(
        datadir=tmp / f"n{i}",
        binds=[("127.0.0.1", 0)],
        advertised_port=NATIVE_PORT,
        pool=PoolConfig(**pool_kw),  # type: ignore[arg-type]
        limits=limits or MaintenanceConfig(),
        pow_difficulty=NATIVE_DIFFICULTY,
        maintenance=maintenance,
        dial_map=net.dial_map(i),
        accept_map=net.accept_map,
        bootstrap_points=bootstrap or [],
    )
    extra: dict[str, Callable[[], float]] = {} if clock is None else {"clock": clock}
    node = NativeNode(config, identity=ident or native_identity(i), rng=random.Random(i), **extra)
    await node.start()
    net.ports[vpoint(i)] = node.listening[0][1]
    try:
        yield node
    finally:
        net.ports.pop(vpoint(i), None)
        await node.stop()


# -- servers started by tests ---------------------------------------------------------------

# pproxy installs uvloop when it can and then calls asyncio.get_event_loop(), which
# uvloop refuses outside a running loop: run it on the default loop instead.
_PPROXY = (
    "import sys, asyncio; sys.modules['uvloop'] = None; "
    "asyncio.set_event_loop(asyncio.new_event_loop()); "
    "from pproxy.server import main; main(sys.argv[1:])"
)


@contextlib.contextmanager
def pproxy_server() -> Iterator[int]:
    """A real SOCKS5 server (pproxy) on a free loopback port; yields the port, kills it after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _PPROXY, "-l", f"socks5://127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5.0
        while True:
            if proc.poll() is not None:
                pytest.fail(f"pproxy exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("pproxy did not accept connections within 5 s")
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=5)


class _QuietLogger:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *a, **k: None


class SeedZone:
    """dnslib resolver: answers the configured names, NXDOMAIN for others; UDP answers
    over 512 bytes are truncated (TC, question kept) so clients retry over TCP."""

    def __init__(self, records: dict[str, list[tuple[str, str]]]) -> None:
        self.records = {k.lower(): v for k, v in records.items()}
        self.queries: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((qname, qtype, handler.protocol))
        recs = self.records.get(qname)
        if recs is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value in recs:
            if rtype != qtype:
                continue
            if rtype == "AAAA":
                rdata: Any = AAAA(tuple(ipaddress.IPv6Address(value).packed))
            else:
                rdata = {"A": A, "TXT": TXT}[rtype](value)
            reply.add_answer(RR(request.q.qname, getattr(QTYPE, rtype), rdata=rdata, ttl=60))
        if handler.protocol == "udp" and len(reply.pack()) > 512:
            reply.rr = []
            reply.header.tc = 1
        return reply


def _serve(srv: DNSServer) -> threading.Thread:
    th = threading.Thread(target=srv.server.serve_forever, kwargs={"poll_interval": 0.05})
    th.daemon = True
    th.start()
    return th


@contextlib.contextmanager
def dns_server(zone: SeedZone) -> Iterator[int]:
    """Serve ``zone`` on 127.0.0.1, UDP and TCP on one free port; yields the port."""
    servers: list[DNSServer] = []
    threads: list[threading.Thread] = []
    try:
        for _ in range(20):
            udp = DNSServer(zone, address="127.0.0.1", port=0, logger=_QuietLogger())
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    zone, address="127.0.0.1", port=port, tcp=True, logger=_QuietLogger()
                )
            except OSError:
                udp.server.server_close()
                continue
            servers = [udp, tcp]
            break
        else:
            pytest.fail("no free port for UDP and TCP")
        threads = [_serve(s) for s in servers]
        yield port
    finally:
        for s, _th in zip(servers, threads, strict=False):
            s.server.shutdown()
        for s in servers:
            s.server.server_close()
        for th in threads:
            th.join(timeout=2)


# -- fakes: SockMan events, dispatch codecs, PeerPool -----------------------------------------


class Recorder:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.accepted: list[tuple[int, Service, Service]] = []
        self.data: dict[int, bytearray] = {}
        self.eof: list[int] = []
        self.errors: list[tuple[int, Exception]] = []
        self.writable: list[int] = []
        self.io_batches = 0

    def on_accepted(self, conn_id: int, me: Service, them: Service) -> bool:
        self.accepted.append((conn_id, me, them))
        return self.accept

    def on_data(self, conn_id: int, data: bytes) -> None:
        self.data.setdefault(conn_id, bytearray()).extend(data)

    def on_eof(self, conn_id: int) -> None:
        self.eof.append(conn_id)

    def on_error(self, conn_id: int, exc: Exception) -> None:
        self.errors.append((conn_id, exc))

    def on_writable(self, conn_id: int) -> None:
        self.writable.append(conn_id)

    def on_io_loop_completed(self) -> None:
        self.io_batches += 1


@dataclass(frozen=True)
class Text:
    type: ClassVar[str] = "text"
    text: str

    def encode(self) -> bytes:
        return self.text.encode()

    @classmethod
    def decode(cls, payload: bytes) -> Text:
        return cls(payload.decode())


@dataclass(frozen=True)
class Blob:
    type: ClassVar[str] = "blob"
    data: bytes

    def encode(self) -> bytes:
        return self.data

    @classmethod
    def decode(cls, payload: bytes) -> Blob:
        return cls(payload)


@dataclass(frozen=True)
class Ping:
    type: ClassVar[str] = "ping"
    n: int

    def encode(self) -> bytes:
        return self.n.to_bytes(8, "little")

    @classmethod
    def decode(cls, payload: bytes) -> Ping:
        if len(payload) != 8:
            raise ValueError("ping is 8 bytes")
        return cls(int.from_bytes(payload, "little"))


def registry() -> CodecRegistry:
    reg = CodecRegistry()
    for cls in (Text, Blob, Ping):
        reg.register(cls)
    return reg


class Sink(Conversation):
    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def on_message(self, message: Any, envelope: Envelope) -> None:
        self.bytes += len(message.data)


T0 = 1_700_000_000.0
ME = PeerId(b"\xee" * 16)


def pid(n: int) -> PeerId:
    return PeerId(bytes([n % 256]) * 15 + bytes([n // 256]))


def pt(n: int, port: int = 9732) -> Service:
    return Service(NetAddr.parse(f"11.{n // 256}.{n % 256}.1"), port)


def connect(pool: PeerPool, n: int, now: float = T0, *, incoming: bool = False) -> str:
    point, peer = pt(n), pid(n)
    conn = f"conn{n}"
    if not incoming:
        pool.dial_started(point, now, conn)
    reason = pool.authenticated(
        conn, point, peer, now, incoming=incoming, listen_port=point.port, private=False
    )
    assert reason is None
    pool.established(peer, now)
    return conn


@functools.cache
def debian_binary(command: str, package: str | None = None) -> str | None:
    """The path of ``command``, installing Debian's ``package`` (default: ``command``)
    first when it is missing and we can (root with apt-get): a real component the tests
    run themselves (tor, i2pd), so a fresh CI machine has it too. Stale package lists
    are updated and the install tried once more. None when it cannot be had. Asked once
    per process; call it from a test, never at import, so collecting installs nothing."""
    found = shutil.which(command)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    pkg = package or command
    for step in (["install"], ["update"], ["install"]):
        done = subprocess.run(
            ["apt-get", *step, "-y", "-q", *([pkg] if step == ["install"] else [])],
            capture_output=True,
            timeout=300,
            check=False,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if step == ["install"] and done.returncode == 0:
            break
    return shutil.which(command)


def require_debian_binary(command: str, package: str | None = None) -> str:
    """:func:`debian_binary`, or skip the calling test with the reason."""
    found = debian_binary(command, package)
    if found is None:
        pytest.skip(f"no {command} binary, and it could not be installed")
    return found
