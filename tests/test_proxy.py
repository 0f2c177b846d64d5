"""SOCKS5 proxies: -proxy/-onion parsing, reachable networks, stream isolation, and real
connections through pproxy and a tiny in-test SOCKS5 server, all on loopback."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Recorder, free_port, pproxy_server, wait_until

from peerkeeper.io.proxy import connect_via_proxy
from peerkeeper.io.sockman import ConnectError, SockMan
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.net.netbase import (
    DEFAULT_TOR_SOCKS_PORT,
    PROXY_ERROR_KINDS,
    SOCKS5_RECV_TIMEOUT,
    SOCKS5_REPLIES,
    Proxy,
    ProxyConfigError,
    ProxyCredentials,
    ProxyError,
    ProxySettings,
    StreamIsolationGenerator,
    parse_proxy,
    socks5_reply_error,
)

pytestmark = pytest.mark.timeout(30)

ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"
ALL_DEFAULT = {
    Network.UNROUTABLE,
    Network.IPV4,
    Network.IPV6,
    Network.INTERNAL,
}


# --- parse_proxy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1", "127.0.0.1", DEFAULT_TOR_SOCKS_PORT),
        ("127.0.0.1:9150", "127.0.0.1", 9150),
        ("[::1]:9050", "::1", 9050),
        ("::1", "::1", 9050),
        ("[::1]", "::1", 9050),
        ("localhost", "localhost", 9050),
        ("tor.example.org:1080", "tor.example.org", 1080),
    ],
)
def test_parse_proxy_accepts(text: str, host: str, port: int) -> None:
    p = parse_proxy(text)
    assert (p.host, p.port, p.randomize_credentials) == (host, port, True)
    assert not p.is_unix_socket


def test_parse_proxy_default_port_is_core_tor_socks_port() -> None:
    assert DEFAULT_TOR_SOCKS_PORT == 9050
    assert SOCKS5_RECV_TIMEOUT == 20.0
    assert str(parse_proxy("[::1]:9050", False)) == "[::1]:9050"
    assert parse_proxy("127.0.0.1", False).randomize_credentials is False


def test_proxies_given_by_name_are_resolved_once_with_cores_error_when_they_are_not() -> None:
    """Core resolves -proxy, -onion and -i2psam host names once, at startup (src/init.cpp
    ``Lookup(..., fNameLookup)``): the proxy holds the address; a name that does not
    resolve, or resolves to an address no proxy can have, is Core's init error."""
    asked: list[str] = []
    table = {"tor.example.org": "10.1.2.3", "sam.example.org": "::1", "zero.example.org": "0.0.0.0"}

    def lookup(name: str) -> NetAddr | None:
        asked.append(name)
        found = table.get(name)
        return NetAddr.parse(found) if found else None

    s = ProxySettings.from_options(
        ["tor.example.org:1080"], None, True, i2psam="sam.example.org", lookup=lookup
    )
    ipv4 = s.for_network(Network.IPV4)
    assert ipv4 is not None and (ipv4.host, ipv4.port) == ("10.1.2.3", 1080)
    assert s.name_proxy == ipv4
    assert s.i2p_sam is not None and str(s.i2p_sam) == "[::1]:7656"
    assert asked == ["tor.example.org", "sam.example.org"]
    assert parse_proxy("127.0.0.1:9050", lookup=lookup).host == "127.0.0.1"
    assert asked == ["tor.example.org", "sam.example.org"]  # addresses are not looked up
    for kwargs, message in (
        ({"proxy": ["nowhere.example.org"]}, "Invalid -proxy address or hostname: 'nowhere.example.org'"),
        ({"onion": "nowhere.example.org:9050"}, "Invalid -onion address or hostname: 'nowhere.example.org:9050'"),
        ({"i2psam": "nowhere.example.org"}, "Invalid -i2psam address or hostname: 'nowhere.example.org'"),
        ({"proxy": ["zero.example.org"]}, "Invalid -proxy address or hostname: 'zero.example.org'"),
    ):  # fmt: skip
        with pytest.raises(ProxyConfigError, match=re.escape(message)):
            ProxySettings.from_options(lookup=lookup, **kwargs)  # type: ignore[arg-type]


def test_a_node_resolves_its_proxy_names_at_startup(tmp_path: Path) -> None:
    """The node passes the system resolver: "localhost" becomes a loopback address; a
    .invalid name (RFC 6761: never looked up) stops the node with Core's error."""
    from peerkeeper import Config, Node
    from peerkeeper.daemon.config import ConfigError
    from peerkeeper.io.dns import lookup_host

    assert lookup_host("localhost") in (NetAddr.parse("127.0.0.1"), NetAddr.parse("::1"))
    assert lookup_host("nowhere.invalid") is None
    node = Node(Config(chain="regtest", proxy=["localhost:1080"], i2psam="localhost"))
    ipv4 = node.proxies.for_network(Network.IPV4)
    assert ipv4 is not None and ipv4.host in ("127.0.0.1", "::1") and ipv4.port == 1080
    assert node.proxies.i2p_sam is not None and node.proxies.i2p_sam.host == ipv4.host
    with pytest.raises(
        ConfigError, match=re.escape("Invalid -proxy address or hostname: 'nowhere.invalid:9050'")
    ):
        Node(Config(chain="regtest", proxy=["nowhere.invalid:9050"]))


def test_parse_proxy_unix_socket() -> None:
    p = parse_proxy("unix:/run/tor/socks")
    assert p.is_unix_socket and p.unix_path == "/run/tor/socks" and p.port == 0
    assert str(p) == "unix:/run/tor/socks"
    assert Proxy.unix("/x", False) == Proxy("unix:/x", 0, False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Invalid -proxy address or hostname: ''"),
        ("127.0.0.1:0", "Invalid port specified in -proxy: '127.0.0.1:0'"),
        ("127.0.0.1:junk", "Invalid port specified in -proxy: '127.0.0.1:junk'"),
        ("127.0.0.1:65536", "Invalid port specified in -proxy: '127.0.0.1:65536'"),
        ("0.0.0.0:9050", "Invalid -proxy address or hostname: '0.0.0.0:9050'"),
        ("[::]:9050", "Invalid -proxy address or hostname: '[::]:9050'"),
        ("300.1.2.3", "Invalid -proxy address or hostname: '300.1.2.3'"),
        ("bad host!", "Invalid -proxy address or hostname: 'bad host!'"),
        (f"{ONION}:9050", f"Invalid -proxy address or hostname: '{ONION}:9050'"),
        ("unix:", "Invalid -proxy address or hostname: 'unix:'"),
        ("unix:/" + "a" * 200, "Invalid -proxy address or hostname"),
        ("127.0.0.1\0", "Invalid -proxy address or hostname"),
    ],
)
def test_parse_proxy_rejects(text: str, message: str) -> None:
    with pytest.raises(ProxyConfigError) as ei:
        parse_proxy(text)
    assert message in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_proxy_dataclass_validates() -> None:
    with pytest.raises(ProxyConfigError):
        Proxy("127.0.0.1", 0)
    with pytest.raises(ProxyConfigError):
        Proxy("127.0.0.1", 70000)
    with pytest.raises(ProxyConfigError):
        Proxy("", 9050)
    with pytest.raises(ProxyConfigError):
        Proxy("unix:/x", 9050)


# --- ProxySettings.from_options ----------------------------------------------------------------


def test_no_proxy_options() -> None:
    s = ProxySettings.from_options([], None, True)
    assert s.proxies == {} and s.name_proxy is None
    assert all(s.for_network(n) is None for n in Network)


def test_proxy_for_all_networks() -> None:
    s = ProxySettings.from_options(["127.0.0.1:9050"], None, True)
    p = Proxy("127.0.0.1", 9050, True)
    for net in (Network.IPV4, Network.IPV6, Network.TORV3, Network.CJDNS):
        assert s.for_network(net) == p
    assert s.for_network(Network.TORV2) == p  # same network as TORV3 (Core NET_ONION)
    assert s.for_network(Network.I2P) is None  # I2P goes through SAM, not SOCKS5
    assert s.for_network(Network.UNROUTABLE) is None  # local addresses are dialled directly
    assert s.name_proxy == p


@pytest.mark.parametrize(
    ("net", "nets", "name"),
    [
        ("ipv4", {Network.IPV4}, True),
        ("IPv6", {Network.IPV6}, True),
        ("onion", {Network.TORV3}, False),
        ("cjdns", {Network.CJDNS}, False),
    ],
)
def test_proxy_per_network(net: str, nets: set[Network], name: bool) -> None:
    s = ProxySettings.from_options([f"127.0.0.1:9050={net}"], None, False)
    assert set(s.proxies) == nets
    assert (s.name_proxy is not None) is name
    assert all(p.randomize_credentials is False for p in s.proxies.values())


def test_proxy_later_overrides_and_zero_clears() -> None:
    s = ProxySettings.from_options(["127.0.0.1:9050", "127.0.0.2:9051=ipv4"], None, True)
    assert s.for_network(Network.IPV4) == Proxy("127.0.0.2", 9051)
    assert s.name_proxy == Proxy("127.0.0.2", 9051)
    assert s.for_network(Network.IPV6) == Proxy("127.0.0.1", 9050)
    cleared = ProxySettings.from_options(["127.0.0.1:9050", "0"], None, True)
    assert cleared.proxies == {} and cleared.name_proxy is None
    only_v6 = ProxySettings.from_options(["127.0.0.1:9050", "=ipv4"], None, True)
    assert set(only_v6.proxies) == {Network.IPV6, Network.TORV3, Network.CJDNS}
    assert only_v6.name_proxy is None  # "=ipv4" cleared the name proxy too, as in Core


def test_onion_option() -> None:
    s = ProxySettings.from_options(["127.0.0.1:9050"], "127.0.0.1:9150", True)
    assert s.for_network(Network.TORV3) == Proxy("127.0.0.1", 9150)
    assert s.for_network(Network.IPV4) == Proxy("127.0.0.1", 9050)
    off = ProxySettings.from_options(["127.0.0.1:9050"], "0", True)
    assert off.for_network(Network.TORV3) is None and off.onion_disabled
    assert off.for_network(Network.IPV4) is not None
    only = ProxySettings.from_options([], "unix:/run/tor/socks", True)
    assert only.for_network(Network.TORV3) == Proxy.unix("/run/tor/socks")
    assert only.name_proxy is None
    unchanged = ProxySettings.from_options(["127.0.0.1:9050"], "", True)
    assert unchanged.for_network(Network.TORV3) == Proxy("127.0.0.1", 9050)


@pytest.mark.parametrize(
    ("proxy", "onion", "message"),
    [
        (["127.0.0.1:9050="], None, "ends with '='"),
        (
            ["127.0.0.1:9050=i2p"],
            None,
            "Unrecognized network in -proxy='127.0.0.1:9050=i2p': 'i2p'",
        ),
        (["127.0.0.1:9050=tor"], None, "Unrecognized network"),
        (["300.0.0.1"], None, "Invalid -proxy address or hostname: '300.0.0.1'"),
        (["127.0.0.1:0=ipv4"], None, "Invalid port specified in -proxy"),
        ([], "127.0.0.1:9050=onion", "Invalid port specified in -onion"),
        ([], "0.0.0.0", "Invalid -onion address or hostname: '0.0.0.0'"),
    ],
)
def test_proxy_options_rejected(proxy: list[str], onion: str | None, message: str) -> None:
    with pytest.raises(ProxyConfigError, match=re.escape(message)):
        ProxySettings.from_options(proxy, onion, True)


# --- reachable networks ---------------------------------------------------------------------


def test_reachable_default_has_no_onion_i2p_cjdns() -> None:
    assert ProxySettings().reachable_networks([]) == ALL_DEFAULT


def test_reachable_onion_with_proxy_or_onion_option() -> None:
    with_proxy = ProxySettings.from_options(["127.0.0.1:9050"], None, True)
    assert with_proxy.reachable_networks([]) == ALL_DEFAULT | {Network.TORV3}
    with_onion = ProxySettings.from_options([], "127.0.0.1:9050", True)
    assert Network.TORV3 in with_onion.reachable_networks([])
    ipv4_only_proxy = ProxySettings.from_options(["127.0.0.1:9050=ipv4"], None, True)
    assert Network.TORV3 not in ipv4_only_proxy.reachable_networks([])
    disabled = ProxySettings.from_options(["127.0.0.1:9050"], "0", True)
    assert Network.TORV3 not in disabled.reachable_networks([])


def test_reachable_onlynet_restricts() -> None:
    s = ProxySettings.from_options(["127.0.0.1:9050"], None, True)
    assert s.reachable_networks(["ipv4"]) == {Network.IPV4}
    assert s.reachable_networks(["IPv4", "ipv6"]) == {Network.IPV4, Network.IPV6}
    assert s.reachable_networks(["onion"]) == {Network.TORV3}
    assert s.reachable_networks(["ipv4"], cjdns_reachable=True, i2p_sam=True) == {Network.IPV4}


def test_reachable_cjdns_and_i2p_need_their_flags() -> None:
    s = ProxySettings()
    assert s.reachable_networks([], cjdns_reachable=True) == ALL_DEFAULT | {Network.CJDNS}
    assert s.reachable_networks([], i2p_sam=True) == ALL_DEFAULT | {Network.I2P}
    assert s.reachable_networks(["cjdns"], cjdns_reachable=True) == {Network.CJDNS}
    assert s.reachable_networks(["i2p"], i2p_sam=True) == {Network.I2P}


def test_reachable_onion_without_proxy_but_listenonion() -> None:
    assert ProxySettings().reachable_networks(["onion", "ipv4"], listen_onion=True) == {
        Network.IPV4
    }


@pytest.mark.parametrize(
    ("settings", "onlynet", "message"),
    [
        (ProxySettings(), ["tor"], "Unknown network specified in -onlynet: 'tor'"),
        (ProxySettings(), ["ipv4", "internal"], "Unknown network specified in -onlynet"),
        (ProxySettings(), ["cjdns"], "-cjdnsreachable is not provided"),
        (ProxySettings(), ["i2p"], "-i2psam is not provided"),
        (ProxySettings(), ["onion"], "none of -proxy, -onion or -listenonion is given"),
        (
            ProxySettings.from_options(["127.0.0.1:9050"], "0", True),
            ["onion"],
            "explicitly forbidden: -onion=0",
        ),
    ],
)
def test_reachable_errors(settings: ProxySettings, onlynet: list[str], message: str) -> None:
    with pytest.raises(ProxyConfigError, match=re.escape(message)):
        settings.reachable_networks(onlynet)


# --- stream isolation ------------------------------------------------------------------------


def test_stream_isolation_credentials_format_and_determinism() -> None:
    gen = StreamIsolationGenerator(random.Random(42))
    first, second = gen.generate(), gen.generate()
    assert re.fullmatch(r"[0-9a-f]{16}-0", first.username)
    assert first.username == first.password and second.username == second.password
    assert second.username == first.username[:-1] + "1"
    assert gen.counter == 2
    again = StreamIsolationGenerator(random.Random(42))
    assert again.generate() == first
    other = StreamIsolationGenerator(random.Random(43))
    assert other.prefix != gen.prefix
    assert isinstance(first, tuple) and first == ProxyCredentials(first[0], first[1])


# --- error kinds -----------------------------------------------------------------------------


def test_socks5_reply_table_has_core_strings_and_tor_codes() -> None:
    assert socks5_reply_error(0x01) == ("general-failure", "general failure")
    assert socks5_reply_error(0x05) == ("connection-refused", "connection refused")
    assert socks5_reply_error(0x07)[1] == "protocol error"
    assert socks5_reply_error(0xF7) == (
        "onion-intro-timeout",
        "onion service introduction timed out",
    )
    assert socks5_reply_error(0x99) == ("unknown-reply", "unknown (0x99)")
    assert set(SOCKS5_REPLIES) == set(range(1, 9)) | set(range(0xF0, 0xF8))
    kinds = [kind for kind, _ in SOCKS5_REPLIES.values()]
    assert len(set(kinds)) == len(kinds) and set(kinds) <= PROXY_ERROR_KINDS


# --- loopback helpers ----------------------------------------------------------------------------


class FakeSocks5:
    """A tiny SOCKS5 server that records what clients send and never connects anywhere.

    ``mode``: "ok" (handshake, then echo with an "echo:" prefix), "silent" (never
    answers), "garbage" (answers with HTTP), "close" (closes after the greeting),
    "reject-auth" (refuses user/password), or "reply" (answers CONNECT with ``code``).
    """

    def __init__(self, mode: str = "ok", code: int = 0) -> None:
        self.mode = mode
        self.code = code
        self.connections = 0
        self.greetings: list[bytes] = []
        self.auths: list[tuple[str, str]] = []
        self.requests: list[tuple[int, str, int]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> FakeSocks5:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def start_unix(self, path: str) -> FakeSocks5:
        self.server = await asyncio.start_unix_server(self._handle, path)
        return self

    def proxy(self, randomize: bool = False) -> Proxy:
        return Proxy("127.0.0.1", self.port, randomize)

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "silent":
            await reader.read()  # until the client gives up
            return
        if self.mode == "garbage":
            await reader.read(3)
            writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            await writer.drain()
            await reader.read()
            return
        _ver, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        self.greetings.append(methods)
        if self.mode == "close":
            return
        if 2 in methods:
            writer.write(b"\x05\x02")
            await reader.readexactly(1)
            user = await reader.readexactly((await reader.readexactly(1))[0])
            password = await reader.readexactly((await reader.readexactly(1))[0])
            self.auths.append((user.decode(), password.decode()))
            if self.mode == "reject-auth":
                writer.write(b"\x01\x01")
                await writer.drain()
                return
            writer.write(b"\x01\x00")
        else:
            writer.write(b"\x05\x00")
        head = await reader.readexactly(4)
        atyp = head[3]
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.requests.append((atyp, host, port))
        if self.mode == "reply":
            writer.write(bytes([5, self.code, 0, 1, 0, 0, 0, 0, 0, 0]))
            await writer.drain()
            return
        writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01\x20\x8d")
        while data := await reader.read(65536):
            writer.write(b"echo:" + data)
            await writer.drain()


# --- pproxy: a real SOCKS5 server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pproxy_port() -> Iterator[int]:
    with pproxy_server() as port:
        yield port


class EchoServer:
    """Plain asyncio server on 127.0.0.1: greets, then echoes; records peers."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> EchoServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[:2])
        writer.write(b"hello;")
        try:
            while data := await reader.read(65536):
                writer.write(data[::-1])
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.parametrize("randomize", [False, True])
async def test_sockman_through_pproxy_exchanges_bytes(pproxy_port: int, randomize: bool) -> None:
    echo = await EchoServer().start()
    ev = Recorder()
    sm = SockMan(ev, stream_isolation=StreamIsolationGenerator(random.Random(1)))
    try:
        proxy = Proxy("127.0.0.1", pproxy_port, randomize)
        conn = await sm.connect(Service.parse(f"127.0.0.1:{echo.port}", 0), 2.0, proxy=proxy)
        sm.send(conn, b"abc")
        await wait_until(lambda: bytes(ev.data.get(conn, b"")) == b"hello;cba")
        ends = sm.endpoints(conn)
        assert ends is not None
        local, remote = ends
        assert remote == Service.parse(f"127.0.0.1:{pproxy_port}", 0)  # the socket's far end
        assert len(echo.peers) == 1
        # The destination's peer is pproxy's outgoing socket, not our socket.
        assert echo.peers[0][1] != local.port
        assert ev.errors == [] and ev.eof == []
    finally:
        await sm.stop()
        await echo.close()


async def test_connect_via_proxy_returns_nonblocking_socket(pproxy_port: int) -> None:
    echo = await EchoServer().start()
    try:
        sock = await connect_via_proxy(
            Proxy("127.0.0.1", pproxy_port), "127.0.0.1", echo.port, timeout=2.0, credentials=None
        )
        try:
            assert sock.getblocking() is False
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"xy")
            assert await asyncio.wait_for(reader.readexactly(8), 2) == b"hello;yx"
            writer.close()
        finally:
            sock.close()
    finally:
        await echo.close()


async def test_pproxy_closed_destination_is_eof_after_success(pproxy_port: int) -> None:
    """pproxy answers "succeeded" before dialling the destination, so a refused
    destination shows up as EOF on an established connection, not as a SOCKS reply
    code; reply codes are tested with FakeSocks5 below."""
    ev = Recorder()
    sm = SockMan(ev)
    try:
        closed = free_port()
        conn = await sm.connect(
            f"127.0.0.1:{closed}", 2.0, proxy=Proxy("127.0.0.1", pproxy_port, False)
        )
        await wait_until(lambda: conn in ev.eof or any(c == conn for c, _ in ev.errors))
        assert ev.data.get(conn) is None
    finally:
        await sm.stop()


# --- FakeSocks5: credentials, destinations, failures -----------------------------------------


async def test_randomized_credentials_are_core_format_and_fresh_each_time() -> None:
    fake = await FakeSocks5().start()
    ev = Recorder()
    sm = SockMan(ev, stream_isolation=StreamIsolationGenerator(random.Random(7)))
    expected = StreamIsolationGenerator(random.Random(7))
    try:
        for _ in range(2):
            conn = await sm.connect("127.0.0.1:8333", 2.0, proxy=fake.proxy(randomize=True))
            sm.send(conn, b"x")
            await wait_until(lambda conn=conn: bytes(ev.data.get(conn, b"")) == b"echo:x")
        assert fake.greetings == [b"\x00\x02", b"\x00\x02"]  # NOAUTH and USER_PASS, as Core
        assert fake.auths == [tuple(expected.generate()), tuple(expected.generate())]
        assert fake.auths[0] != fake.auths[1]
        for user, password in fake.auths:
            assert user == password and re.fullmatch(r"[0-9a-f]{16}-\d+", user)
    finally:
        await sm.stop()
        await fake.close()


async def test_no_randomize_offers_only_noauth_and_explicit_credentials_win() -> None:
    fake = await FakeSocks5().start()
    sm = SockMan(Recorder())
    try:
        await sm.connect("127.0.0.1:1", 2.0, proxy=fake.proxy(randomize=False))
        await sm.connect(
            "127.0.0.1:2", 2.0, proxy=fake.proxy(randomize=True), credentials=("alice", "pw")
        )
        assert fake.greetings == [b"\x00", b"\x00\x02"]
        assert fake.auths == [("alice", "pw")]
        assert fake.requests == [(3, "127.0.0.1", 1), (3, "127.0.0.1", 2)]  # Core: DOMAINNAME
    finally:
        await sm.stop()
        await fake.close()


async def test_onion_goes_to_proxy_unresolved(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[object] = []
    real = socket.getaddrinfo

    def spy(host: object, *args: object, **kwargs: object) -> object:
        looked_up.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    fake = await FakeSocks5().start()
    ev = Recorder()
    sm = SockMan(ev)
    try:
        conn = await sm.connect(Service.parse(f"{ONION}:8333", 0), 2.0, proxy=fake.proxy())
        sm.send(conn, b"ping")
        await wait_until(lambda: bytes(ev.data.get(conn, b"")) == b"echo:ping")
        await sm.connect(f"{I2P}:0", 2.0, proxy=fake.proxy())
        await sm.connect("seed.example.org:8333", 2.0, proxy=fake.proxy())
        await sm.connect(Service.parse("[2001:db8::1]:8333", 0), 2.0, proxy=fake.proxy())
        assert fake.requests == [
            (3, ONION, 8333),
            (3, I2P, 0),
            (3, "seed.example.org", 8333),
            (3, "2001:db8::1", 8333),  # Core sends IP literals as DOMAINNAME too
        ]
        assert not any(isinstance(h, str) and not h.startswith("127.") for h in looked_up)
        ends = sm.endpoints(conn)
        assert ends is not None and ends[1].port == fake.port
    finally:
        await sm.stop()
        await fake.close()


async def test_dial_map_applies_only_to_direct_connections() -> None:
    fake = await FakeSocks5().start()
    sm = SockMan(Recorder(), dial_map=lambda service: None)
    virtual = Service.parse("11.0.0.1:8333", 0)
    try:
        with pytest.raises(ConnectError, match="dial map"):
            await sm.connect(virtual, 1.0)
        await sm.connect(virtual, 2.0, proxy=fake.proxy())
        assert fake.requests == [(3, "11.0.0.1", 8333)]
    finally:
        await sm.stop()
        await fake.close()


async def test_direct_names_need_a_proxy() -> None:
    # (a dial map keeps tests/conftest.py's loopback guard, which expects a Service, out)
    mapped = SockMan(Recorder(), dial_map=lambda service: ("127.0.0.1", 1))
    with pytest.raises(ConnectError, match="a host name needs a proxy"):
        await mapped.connect("seed.example.org:8333", 1.0)
    sm = SockMan(Recorder())
    with pytest.raises(ConnectError, match="onion needs a proxy"):
        await sm.connect(Service.parse(f"{ONION}:8333", 0), 1.0)
    with pytest.raises(ConnectError, match="host:port"):
        await sm.connect("seed.example.org", 1.0, proxy=Proxy("127.0.0.1", free_port()))
    assert len(sm) == 0


async def test_unix_socket_proxy(tmp_path: Path) -> None:
    path = str(tmp_path / "socks")
    fake = await FakeSocks5().start_unix(path)
    ev = Recorder()
    sm = SockMan(ev)
    try:
        proxy = parse_proxy(f"unix:{path}", False)
        conn = await sm.connect(f"{ONION}:8333", 2.0, proxy=proxy)
        sm.send(conn, b"u")
        await wait_until(lambda: bytes(ev.data.get(conn, b"")) == b"echo:u")
        assert fake.requests == [(3, ONION, 8333)]
    finally:
        await sm.stop()
        await fake.close()
    with pytest.raises(ProxyError) as ei:
        await connect_via_proxy(Proxy.unix(str(tmp_path / "none")), "a.example", 1, timeout=1.0)
    assert ei.value.kind == "refused" and ei.value.proxy_failed


async def test_proxy_refused_is_quick_and_marked_proxy_failure() -> None:
    port = free_port()  # nothing listens here
    sm = SockMan(Recorder())
    t0 = time.monotonic()
    with pytest.raises(ProxyError) as ei:
        await sm.connect("127.0.0.1:8333", 2.0, proxy=Proxy("127.0.0.1", port))
    assert time.monotonic() - t0 < 1.5
    e = ei.value
    assert (e.kind, e.proxy_failed, e.reply_code) == ("refused", True, None)
    assert isinstance(e, ConnectError) and "refused" in str(e)
    assert len(sm) == 0


async def test_silent_proxy_times_out_within_timeout() -> None:
    fake = await FakeSocks5("silent").start()
    sm = SockMan(Recorder())
    try:
        t0 = time.monotonic()
        with pytest.raises(ProxyError) as ei:
            await sm.connect("127.0.0.1:8333", 0.3, proxy=fake.proxy())
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 1.5
        assert ei.value.kind == "timeout" and not ei.value.proxy_failed
        assert "SOCKS5 handshake" in ei.value.message
        await wait_until(lambda: fake.greetings == [] and fake.connections == 1)
    finally:
        await sm.stop()
        await fake.close()


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("garbage", "protocol"), ("close", "closed"), ("reject-auth", "auth-failed")],
)
async def test_bad_proxy_answers(mode: str, kind: str) -> None:
    fake = await FakeSocks5(mode).start()
    try:
        with pytest.raises(ProxyError) as ei:
            await connect_via_proxy(
                fake.proxy(), "127.0.0.1", 8333, timeout=2.0, credentials=("u", "p")
            )
        assert ei.value.kind == kind and not ei.value.proxy_failed
    finally:
        await fake.close()


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        (0x01, "general-failure", "general failure"),
        (0x02, "connection-not-allowed", "connection not allowed"),
        (0x04, "host-unreachable", "host unreachable"),
        (0x05, "connection-refused", "connection refused"),
        (0x07, "command-not-supported", "protocol error"),
        (0xF2, "onion-intro-failed", "onion service introduction failed"),
        (0xF6, "onion-invalid-address", "onion service invalid address"),
        (0x42, "unknown-reply", "unknown (0x42)"),
    ],
)
async def test_socks_reply_codes(code: int, kind: str, message: str) -> None:
    fake = await FakeSocks5("reply", code).start()
    sm = SockMan(Recorder())
    try:
        with pytest.raises(ProxyError) as ei:
            await sm.connect(f"{ONION}:8333", 2.0, proxy=fake.proxy())
        e = ei.value
        assert (e.kind, e.message, e.reply_code, e.proxy_failed) == (kind, message, code, False)
        assert fake.requests == [(3, ONION, 8333)]
        assert len(sm) == 0
    finally:
        await sm.stop()
        await fake.close()


@pytest.mark.parametrize("mode", ["garbage", "reply", "close", "silent"])
async def test_failed_proxy_connect_makes_exactly_one_connection(mode: str) -> None:
    fake = await FakeSocks5(mode, 0x05).start()
    sm = SockMan(Recorder())
    try:
        with pytest.raises(ProxyError):
            await sm.connect("127.0.0.1:8333", 0.3, proxy=fake.proxy(randomize=True))
        await asyncio.sleep(0.2)  # nothing retries in the background
        assert fake.connections == 1
    finally:
        await sm.stop()
        await fake.close()


@pytest.mark.parametrize(
    ("host", "port", "credentials", "kind"),
    [
        ("a" * 256, 8333, None, "invalid-destination"),
        ("a..b", 8333, None, "invalid-destination"),
        ("", 8333, None, "invalid-destination"),
        ("127.0.0.1", 70000, None, "invalid-destination"),
        ("127.0.0.1", 8333, ("", "p"), "invalid-credentials"),
        ("127.0.0.1", 8333, ("u", "p" * 256), "invalid-credentials"),
        ("127.0.0.1", 8333, ("ü", "p"), "invalid-credentials"),
    ],
)
async def test_bad_destination_or_credentials_open_nothing(
    host: str, port: int, credentials: tuple[str, str] | None, kind: str
) -> None:
    fake = await FakeSocks5().start()
    try:
        with pytest.raises(ProxyError) as ei:
            await connect_via_proxy(fake.proxy(), host, port, timeout=1.0, credentials=credentials)
        assert ei.value.kind == kind
        await asyncio.sleep(0.05)
        assert fake.connections == 0
    finally:
        await fake.close()


def test_i2psam_is_the_proxy_of_i2p_and_of_nothing_else() -> None:
    """Core -i2psam: SetProxy(NET_I2P, Proxy{addr}) with port 7656 by default and
    randomize off; -proxy never covers I2P (SAM is spoken to it, not SOCKS5)."""
    s = ProxySettings.from_options(["127.0.0.1:9050"], None, True, i2psam="127.0.0.1")
    assert s.i2p_sam == Proxy("127.0.0.1", 7656, False)
    assert s.for_network(Network.I2P) == Proxy("127.0.0.1", 7656, False)
    assert ProxySettings.from_options(["127.0.0.1:9050"]).for_network(Network.I2P) is None
    assert Network.I2P in s.reachable_networks([], i2p_sam=True)
    for bad, message in [
        ("def..def:23456", "Invalid -i2psam address or hostname: 'def..def:23456'"),
        ("192.0.0.1:def", "Invalid port specified in -i2psam: '192.0.0.1:def'"),
    ]:
        with pytest.raises(ProxyConfigError, match=re.escape(message)):
            ProxySettings.from_options([], None, True, i2psam=bad)
