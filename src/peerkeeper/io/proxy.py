"""SOCKS5 proxies: ``-proxy``, ``-onion``, ``-proxyrandomize`` and reachable networks.

Bitcoin Core's proxy layer (src/netbase.cpp ``Proxy``, ``ProxyCredentials``,
``SetProxy``/``GetProxy``/``SetNameProxy``, ``ConnectThroughProxy``, ``Socks5``;
src/init.cpp ``AppInitMain`` handling of ``-proxy``, ``-onion``, ``-onlynet``,
``-cjdnsreachable``, ``-i2psam``; src/net.cpp ``CConnman::ConnectNode``):

* :class:`Proxy` — one SOCKS5 proxy (``host:port`` or ``unix:/path``) and whether it
  gets per-connection random credentials (Tor stream isolation).
* :func:`parse_proxy` — the text of ``-proxy`` / ``-onion`` to a :class:`Proxy`.
* :class:`ProxySettings` — Core's ``proxyInfo[NET_MAX]`` and ``nameProxy`` as one
  immutable value built from the options (:meth:`ProxySettings.from_options`), with
  Core's reachable-network rules (:meth:`ProxySettings.reachable_networks`).
* :class:`StreamIsolationGenerator` — Core's ``TorStreamIsolationCredentialsGenerator``
  (``"<16 hex>-<counter>"`` as both user name and password), from an injected rng.
* :func:`connect_via_proxy` — the asyncio shell: a TCP (or unix) connection to the
  proxy, then the SOCKS5 handshake by python-socks, returning a connected
  non-blocking socket; every failure is a :class:`ProxyError` with a ``kind``.

Everything but :func:`connect_via_proxy` is pure. I2P is reached through the SAM
protocol in Core (``-i2psam``, src/i2p.cpp), not SOCKS5; SAM is out of scope here,
so :meth:`ProxySettings.for_network` never returns a proxy for I2P (an explicit
SOCKS proxy for ``.b32.i2p`` names, such as i2pd's, can still be passed to
:func:`connect_via_proxy`).

Known differences from Core's own SOCKS5 client (``Socks5``, src/netbase.cpp), all
from using python-socks for the protocol: an IP-literal destination is sent with
address type IPv4/IPv6 (Core sends every destination as a DOMAINNAME string; Tor
accepts both), and the whole exchange is bounded by one ``timeout`` instead of
Core's 5 s TCP connect plus 20 s per read (:data:`SOCKS5_RECV_TIMEOUT`).
"""

from __future__ import annotations

import asyncio
import errno
import random
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from python_socks import ProxyConnectionError as _PSConnectionError
from python_socks import ProxyError as _PSProxyError
from python_socks import ProxyTimeoutError as _PSTimeoutError
from python_socks import ProxyType
from python_socks.async_.asyncio import Proxy as _PSProxy

from peerkeeper.net.netaddr import (
    AddrError,
    NetAddr,
    Network,
    Service,
    parse_network,
    split_host_port,
)

__all__ = [
    "ADDR_PREFIX_UNIX",
    "DEFAULT_PROXYRANDOMIZE",
    "DEFAULT_TOR_SOCKS_PORT",
    "MAX_UNIX_SOCKET_PATH",
    "PROXY_NETWORKS",
    "SOCKS5_RECV_TIMEOUT",
    "SOCKS5_REPLIES",
    "PROXY_ERROR_KINDS",
    "ConnectError",
    "Proxy",
    "ProxyConfigError",
    "ProxyCredentials",
    "ProxyError",
    "ProxySettings",
    "StreamIsolationGenerator",
    "connect_via_proxy",
    "parse_proxy",
    "socks5_reply_error",
]

#: Core ``DEFAULT_TOR_SOCKS_PORT`` (src/torcontrol.h): the port ``-proxy``/``-onion`` use
#: when none is given.
DEFAULT_TOR_SOCKS_PORT = 9050
#: Core ``DEFAULT_PROXYRANDOMIZE`` (src/init.cpp): ``-proxyrandomize`` is on by default.
DEFAULT_PROXYRANDOMIZE = True
#: Core ``g_socks5_recv_timeout`` (src/netbase.cpp): seconds Core waits for each SOCKS5
#: read ("ample time for negotiation for very slow proxies such as Tor"). A caller
#: dialling through Tor should allow at least ``connect_timeout + SOCKS5_RECV_TIMEOUT``.
SOCKS5_RECV_TIMEOUT = 20.0
#: Core ``ADDR_PREFIX_UNIX`` (src/netbase.h): a proxy given as ``unix:/path``.
ADDR_PREFIX_UNIX = "unix:"
#: Longest unix socket path, in bytes: Linux ``sizeof(sockaddr_un::sun_path)`` (108)
#: minus the terminating NUL (Core ``IsUnixSocketPath``, src/netbase.cpp).
MAX_UNIX_SOCKET_PATH = 107
#: The networks ``-proxy=addr=net`` may name (src/init.cpp): I2P uses SAM, not SOCKS5.
PROXY_NETWORKS: tuple[Network, ...] = (Network.IPV4, Network.IPV6, Network.TORV3, Network.CJDNS)

_MAX_SOCKS5_FIELD = 255  # one length byte (Core "Hostname too long", RFC 1929 fields)
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


class ProxyConfigError(ValueError):
    """A ``-proxy`` / ``-onion`` / ``-onlynet`` value Core would refuse at startup
    (its ``InitError``, src/init.cpp); the message names the option and the value."""


class ProxyCredentials(NamedTuple):
    """SOCKS5 user name and password (RFC 1929), Core ``ProxyCredentials`` (src/netbase.h).

    A ``tuple[str, str]``; each field is 1..255 ASCII characters when sent.
    """

    username: str
    password: str


#: SOCKS5 reply code -> (``ProxyError.kind``, Core ``Socks5ErrorString`` text), for
#: RFC 1928 codes 0x01-0x08 and Tor's extended onion-service codes 0xf0-0xf7
#: (src/netbase.cpp ``Socks5ErrorString`` and ``SOCKS5Reply``).
SOCKS5_REPLIES: Mapping[int, tuple[str, str]] = {
    0x01: ("general-failure", "general failure"),
    0x02: ("connection-not-allowed", "connection not allowed"),
    0x03: ("network-unreachable", "network unreachable"),
    0x04: ("host-unreachable", "host unreachable"),
    0x05: ("connection-refused", "connection refused"),
    0x06: ("ttl-expired", "TTL expired"),
    0x07: ("command-not-supported", "protocol error"),
    0x08: ("address-type-not-supported", "address type not supported"),
    0xF0: ("onion-descriptor-not-found", "onion service descriptor can not be found"),
    0xF1: ("onion-descriptor-invalid", "onion service descriptor is invalid"),
    0xF2: ("onion-intro-failed", "onion service introduction failed"),
    0xF3: ("onion-rendezvous-failed", "onion service rendezvous failed"),
    0xF4: ("onion-missing-client-auth", "onion service missing client authorization"),
    0xF5: ("onion-wrong-client-auth", "onion service wrong client authorization"),
    0xF6: ("onion-invalid-address", "onion service invalid address"),
    0xF7: ("onion-intro-timeout", "onion service introduction timed out"),
}

#: Every value :attr:`ProxyError.kind` takes.
#:
#: * ``refused`` / ``unreachable`` / ``connect-failed`` — the TCP (or unix) connection
#:   to the proxy itself failed (``proxy_failed`` is True);
#: * ``timeout`` — ``timeout`` seconds passed, connecting to the proxy
#:   (``proxy_failed``) or during the handshake;
#: * ``protocol`` — the proxy answered something that is not SOCKS5;
#: * ``closed`` — the proxy closed or reset the connection during the handshake;
#: * ``auth-failed`` — the proxy refused our credentials or offered no usable method;
#: * the kinds of :data:`SOCKS5_REPLIES` and ``unknown-reply`` — the proxy answered the
#:   CONNECT request with that failure code (the destination, not the proxy, failed);
#: * ``invalid-destination`` / ``invalid-credentials`` — refused before any connection.
PROXY_ERROR_KINDS: frozenset[str] = frozenset(
    {
        "refused",
        "unreachable",
        "connect-failed",
        "timeout",
        "protocol",
        "closed",
        "auth-failed",
        "unknown-reply",
        "invalid-destination",
        "invalid-credentials",
    }
    | {kind for kind, _ in SOCKS5_REPLIES.values()}
)


class ConnectError(OSError):
    """An outbound connection could not be made; ``reason`` says why (refused, timeout, ...).

    Raised by :meth:`peerkeeper.io.sockman.SockMan.connect` (which re-exports it) and, as
    :class:`ProxyError`, by :func:`connect_via_proxy`.  Defined here, the lower of the two
    modules, so that sockman imports proxy and never the other way round.
    """

    def __init__(self, service: Service | str, reason: str) -> None:
        super().__init__(f"connect to {service} failed: {reason}")
        self.reason = reason


class ProxyError(ConnectError):
    """A connection through a SOCKS5 proxy failed (a :class:`ConnectError`, so an ``OSError``).

    Attributes:
        kind: one of :data:`PROXY_ERROR_KINDS` (``"refused"``, ``"timeout"``,
            ``"protocol"``, ``"host-unreachable"``, ``"general-failure"``, ...).
        message: a human-readable reason (Core's ``Socks5ErrorString`` text for
            reply codes).
        reply_code: the SOCKS5 reply code when the proxy sent one, else None.
        proxy_failed: True when the proxy itself could not be reached (Core's
            ``proxy_connection_failed`` in ``ConnectThroughProxy``: ``ConnectNode``
            then does not count an addrman attempt against the destination).
        proxy: the proxy's text form (``Proxy.__str__``).
    """

    def __init__(
        self,
        destination: str,
        kind: str,
        message: str,
        *,
        proxy: str = "",
        reply_code: int | None = None,
        proxy_failed: bool = False,
    ) -> None:
        via = f" via proxy {proxy}" if proxy else ""
        super().__init__(destination, f"{kind}{via}: {message}")
        self.kind = kind
        self.message = message
        self.reply_code = reply_code
        self.proxy_failed = proxy_failed
        self.proxy = proxy


def socks5_reply_error(code: int) -> tuple[str, str]:
    """``(kind, message)`` for a SOCKS5 reply code (``int`` 0..255), as in :data:`SOCKS5_REPLIES`.

    Unknown codes give ``("unknown-reply", "unknown (0x..)")`` like Core's
    ``Socks5ErrorString`` default (src/netbase.cpp). Never raises.
    """
    return SOCKS5_REPLIES.get(code, ("unknown-reply", f"unknown (0x{code:02x})"))


# --- Proxy and parsing ----------------------------------------------------------------------


@dataclass(frozen=True)
class Proxy:
    """One SOCKS5 proxy, Core ``Proxy`` (src/netbase.h).

    Fields:
        host: an IPv4/IPv6 literal (no brackets), a host name (resolved when
            connecting; Core resolves it once at startup), or ``"unix:/path"`` for a
            unix socket (Core ``m_unix_socket_path``).
        port: TCP port 1..65535; 0 for a unix socket.
        randomize_credentials: Core ``m_tor_stream_isolation`` (``-proxyrandomize``):
            every connection offers fresh random credentials so Tor uses a new circuit.

    Raises:
        ProxyConfigError: empty host, a port out of range, or a unix path that is
            empty or longer than :data:`MAX_UNIX_SOCKET_PATH` bytes.
    """

    host: str
    port: int
    randomize_credentials: bool = True

    def __post_init__(self) -> None:
        if self.is_unix_socket:
            path = self.unix_path
            if not path or len(path.encode()) > MAX_UNIX_SOCKET_PATH or "\0" in path:
                raise ProxyConfigError(f"invalid unix socket path for a proxy: {self.host!r}")
            if self.port != 0:
                raise ProxyConfigError(f"a unix socket proxy has no port (got {self.port})")
            return
        if not self.host or "\0" in self.host:
            raise ProxyConfigError(f"invalid proxy host {self.host!r}")
        if not 1 <= self.port <= 0xFFFF:
            raise ProxyConfigError(f"proxy port {self.port} out of range 1..65535")

    @classmethod
    def unix(cls, path: str, randomize_credentials: bool = True) -> Proxy:
        """A proxy listening on the unix socket ``path`` (Core ``Proxy(std::string path)``)."""
        return cls(ADDR_PREFIX_UNIX + path, 0, randomize_credentials)

    @property
    def is_unix_socket(self) -> bool:
        """True for a ``unix:/path`` proxy (Core ``m_is_unix_socket``)."""
        return self.host.startswith(ADDR_PREFIX_UNIX)

    @property
    def unix_path(self) -> str:
        """The socket path of a unix proxy (without ``unix:``); ``""`` for TCP proxies."""
        return self.host[len(ADDR_PREFIX_UNIX) :] if self.is_unix_socket else ""

    def __str__(self) -> str:
        """Core ``Proxy::ToString``: ``"127.0.0.1:9050"``, ``"[::1]:9050"``, ``"unix:/path"``."""
        if self.is_unix_socket:
            return self.host
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def _is_host_name(host: str) -> bool:
    """A syntactically valid DNS name (RFC 1123 labels, not all-numeric at the end)."""
    if not host.isascii() or len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def parse_proxy(value: str, randomize_credentials: bool = True, *, option: str = "-proxy") -> Proxy:
    """Parse a proxy address: ``"host[:port]"``, ``"[v6]:port"`` or ``"unix:/path"``.

    The port defaults to :data:`DEFAULT_TOR_SOCKS_PORT` (9050), as in Core's
    ``Lookup(proxy_str, DEFAULT_TOR_SOCKS_PORT, fNameLookup)`` (src/init.cpp). The
    checks are Core's ``CheckHostPortOptions`` (a present port must be 1..65535,
    src/init.cpp) and ``Proxy::IsValid`` (the address must be valid: not 0.0.0.0,
    ::, 255.255.255.255 or 2001:db8::/32). Host names are accepted and kept (Core
    resolves them at startup when ``-dns`` is on); onion/I2P/CJDNS addresses cannot
    be proxies. ``option`` only names the option in error messages.

    Raises:
        ProxyConfigError: with Core's message ("Invalid port specified in -proxy:
            '...'" or "Invalid -proxy address or hostname: '...'").
    """
    if value.startswith(ADDR_PREFIX_UNIX):
        # Core IsUnixSocketPath (src/netbase.cpp): path + NUL must fit sun_path.
        if not hasattr(socket, "AF_UNIX"):
            raise ProxyConfigError(f"unix sockets are not supported here: {option}={value!r}")
        try:
            return Proxy.unix(value[len(ADDR_PREFIX_UNIX) :], randomize_credentials)
        except ProxyConfigError:
            raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'") from None
    if not value or "\0" in value:
        raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
    host, port, valid = split_host_port(value, DEFAULT_TOR_SOCKS_PORT)
    if not valid:
        raise ProxyConfigError(f"Invalid port specified in {option}: '{value}'")
    try:
        addr: NetAddr | None = NetAddr.parse(host)
    except AddrError:
        addr = None
    if addr is None:
        if not _is_host_name(host) or host.lower().endswith((".onion", ".i2p")):
            raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
        return Proxy(host, port, randomize_credentials)
    if not addr.is_valid() or not (addr.is_ipv4() or addr.is_ipv6()):
        raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
    return Proxy(str(NetAddr(addr.network, addr.addr)), port, randomize_credentials)


# --- settings and reachability ----------------------------------------------------------------


def _canonical_network(net: Network) -> Network:
    return Network.TORV3 if net is Network.TORV2 else net


@dataclass(frozen=True)
class ProxySettings:
    """Per-network proxies and the name proxy: Core's ``proxyInfo[NET_MAX]`` and
    ``nameProxy`` (src/netbase.cpp ``SetProxy``/``GetProxy``/``SetNameProxy``).

    Fields:
        proxies: ``{Network: Proxy}`` for IPV4, IPV6, TORV3 (onion) and CJDNS.
        name_proxy: the proxy for destinations given by host name (Core
            ``GetNameProxy``: names are then never resolved locally), or None.
        onion_disabled: ``-onion=0`` was given (Core ``-noonion``).

    Build it with :meth:`from_options`; look proxies up with :meth:`for_network`.
    """

    proxies: Mapping[Network, Proxy] = field(default_factory=dict)
    name_proxy: Proxy | None = None
    onion_disabled: bool = False

    @classmethod
    def from_options(
        cls,
        proxy: Sequence[str] = (),
        onion: str | None = None,
        proxyrandomize: bool = DEFAULT_PROXYRANDOMIZE,
    ) -> ProxySettings:
        """Build the settings from ``-proxy`` (each ``"addr"`` or ``"addr=net"``),
        ``-onion`` and ``-proxyrandomize``, as ``AppInitMain`` does (src/init.cpp).

        Each ``-proxy`` value, in order (a later one overrides an earlier one):
        ``addr`` alone sets IPv4, IPv6, onion, CJDNS and the name proxy;
        ``addr=ipv4`` / ``addr=ipv6`` set that network and the name proxy;
        ``addr=onion`` / ``addr=cjdns`` set only that network. ``addr`` ``"0"`` or
        ``""`` clears the proxy of what it names. The network name is
        case-insensitive. ``-onion=addr`` then sets or overrides the onion proxy;
        ``-onion=0`` removes it (and sets ``onion_disabled``); ``None`` or ``""``
        leaves it as ``-proxy`` set it. ``proxyrandomize`` becomes every proxy's
        ``randomize_credentials``.

        Raises:
            ProxyConfigError: a value ending in ``=``, an unknown network (``i2p``
                included: I2P uses ``-i2psam``), or an invalid address or port
                (see :func:`parse_proxy`); messages are Core's.
        """
        ipv4: Proxy | None = None
        ipv6: Proxy | None = None
        onion_proxy: Proxy | None = None
        name: Proxy | None = None
        cjdns: Proxy | None = None
        for value in proxy:
            eq = value.rfind("=")
            proxy_str = value if eq < 0 else value[:eq]
            net_str = ""
            if eq >= 0:
                if eq + 1 == len(value):
                    raise ProxyConfigError(
                        f"Invalid -proxy address or hostname, ends with '=': '{value}'"
                    )
                net_str = value[eq + 1 :].lower()
            p: Proxy | None = None
            if proxy_str not in ("", "0"):
                p = parse_proxy(proxy_str, proxyrandomize, option="-proxy")
            if net_str == "":
                ipv4 = ipv6 = name = cjdns = onion_proxy = p
            elif net_str == "ipv4":
                ipv4 = name = p
            elif net_str == "ipv6":
                ipv6 = name = p
            elif net_str == "onion":
                onion_proxy = p
            elif net_str == "cjdns":
                cjdns = p
            else:
                raise ProxyConfigError(f"Unrecognized network in -proxy='{value}': '{net_str}'")
        onion_disabled = False
        if onion:
            if onion == "0":
                onion_proxy = None
                onion_disabled = True
            else:
                onion_proxy = parse_proxy(onion, proxyrandomize, option="-onion")
        proxies = {
            net: p
            for net, p in (
                (Network.IPV4, ipv4),
                (Network.IPV6, ipv6),
                (Network.TORV3, onion_proxy),
                (Network.CJDNS, cjdns),
            )
            if p is not None
        }
        return cls(proxies=proxies, name_proxy=name, onion_disabled=onion_disabled)

    def for_network(self, net: Network) -> Proxy | None:
        """The proxy for addresses of network ``net``, or None (Core ``GetProxy``).

        ``ConnectNode`` (src/net.cpp) looks the proxy up by the destination's
        ``GetNetwork()``, so unroutable/local addresses (``Network.UNROUTABLE``) are
        dialled directly even when ``-proxy`` is set. Always None for I2P (SAM).
        """
        return self.proxies.get(_canonical_network(net))

    def reachable_networks(
        self,
        onlynet: Iterable[str] = (),
        *,
        cjdns_reachable: bool = False,
        i2p_sam: bool = False,
        listen_onion: bool = False,
    ) -> set[Network]:
        """The networks automatic outbound connections may use: Core's ``g_reachable_nets``
        after ``AppInitMain`` (src/init.cpp; class ``ReachableNets``, src/netbase.h).

        Pure. Start from every network (IPV4, IPV6, TORV3, I2P, CJDNS, UNROUTABLE,
        INTERNAL); a non-empty ``onlynet`` (names as Core ``ParseNetwork``,
        case-insensitive) keeps only those. Then CJDNS is removed unless
        ``cjdns_reachable`` (Core: ``-cjdnsreachable`` is *set*, even to 0, since
        Core tests ``IsArgSet``); TORV3 is removed unless there is an onion proxy
        (``-proxy`` or ``-onion``; Core's Tor control may add it later, which
        peerkeeper does not do); I2P is removed unless ``i2p_sam`` (``-i2psam``).

        ``listen_onion`` is ``-listenonion`` (Core default 1, but peerkeeper has no Tor
        control, so pass True only if something may supply the onion proxy later): it
        only silences the error below for ``-onlynet=onion`` without a proxy.

        Raises:
            ProxyConfigError: an unknown ``-onlynet`` network; ``-onlynet=cjdns``
                without ``cjdns_reachable``; ``-onlynet=onion`` with ``-onion=0``, or
                with no onion proxy and not ``listen_onion``; ``-onlynet=i2p`` without
                ``i2p_sam`` (Core's messages, in Core's order).
        """
        nets = list(onlynet)
        reachable: set[Network] = {
            Network.UNROUTABLE,
            Network.IPV4,
            Network.IPV6,
            Network.TORV3,
            Network.I2P,
            Network.CJDNS,
            Network.INTERNAL,
        }
        if nets:
            reachable = set()
            for name in nets:
                net = parse_network(name)
                if net is Network.UNROUTABLE:
                    raise ProxyConfigError(f"Unknown network specified in -onlynet: '{name}'")
                reachable.add(_canonical_network(net))
        if not cjdns_reachable:
            if nets and Network.CJDNS in reachable:
                raise ProxyConfigError(
                    "Outbound connections restricted to CJDNS (-onlynet=cjdns) but "
                    "-cjdnsreachable is not provided"
                )
            reachable.discard(Network.CJDNS)
        onlynet_used_with_onion = bool(nets) and Network.TORV3 in reachable
        if self.onion_disabled and onlynet_used_with_onion:
            raise ProxyConfigError(
                "Outbound connections restricted to Tor (-onlynet=onion) but the proxy for "
                "reaching the Tor network is explicitly forbidden: -onion=0"
            )
        if self.for_network(Network.TORV3) is None:
            if onlynet_used_with_onion and not listen_onion:
                raise ProxyConfigError(
                    "Outbound connections restricted to Tor (-onlynet=onion) but the proxy for "
                    "reaching the Tor network is not provided: none of -proxy, -onion or "
                    "-listenonion is given"
                )
            reachable.discard(Network.TORV3)
        if not i2p_sam:
            if nets and Network.I2P in reachable:
                raise ProxyConfigError(
                    "Outbound connections restricted to i2p (-onlynet=i2p) but "
                    "-i2psam is not provided"
                )
            reachable.discard(Network.I2P)
        return reachable


# --- stream isolation ---------------------------------------------------------------------------


class StreamIsolationGenerator:
    """Per-connection proxy credentials for Tor stream isolation (``-proxyrandomize``).

    Core ``TorStreamIsolationCredentialsGenerator`` (src/netbase.cpp): a prefix of 8
    random bytes in lowercase hex plus ``"-"``, drawn once, then a decimal counter
    from 0; user name and password are both ``"<16 hex>-<n>"``. Tor builds a
    separate circuit for each distinct credential pair, and the random prefix keeps
    two runs of the program from sharing circuits. ``rng`` is injected
    (``random.SystemRandom()`` in production, a seeded ``random.Random`` in tests).
    """

    PREFIX_BYTE_LENGTH = 8

    def __init__(self, rng: random.Random) -> None:
        self.prefix = rng.randbytes(self.PREFIX_BYTE_LENGTH).hex() + "-"
        self.counter = 0

    def generate(self) -> ProxyCredentials:
        """The next unique credentials (Core ``Generate``); advances the counter."""
        text = f"{self.prefix}{self.counter}"
        self.counter += 1
        return ProxyCredentials(text, text)


# --- the asyncio shell ----------------------------------------------------------------------------


class _ProxySocketOpener:
    """Opens the TCP or unix connection to the proxy for python-socks.

    Passed to python-socks as its ``forward`` connector (which it calls as
    ``connect(dest_host=..., dest_port=..., timeout=None)`` and expects a connected
    socket from), so that the connection to the proxy is ours: unix sockets work,
    and a failure here is known to be the proxy's (Core ``Proxy::Connect``).
    """

    def __init__(self, proxy: Proxy, destination: str) -> None:
        self.proxy = proxy
        self.destination = destination
        self.sock: socket.socket | None = None
        self.connected = False

    def _fail(self, kind: str, message: str) -> ProxyError:
        return ProxyError(self.destination, kind, message, proxy=str(self.proxy), proxy_failed=True)

    async def connect(self, *args: Any, **kwargs: Any) -> socket.socket:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        try:
            if proxy.is_unix_socket:
                family: int = socket.AF_UNIX
                address: Any = proxy.unix_path
            else:
                infos = await loop.getaddrinfo(
                    proxy.host, proxy.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
                if not infos:
                    raise self._fail("unreachable", f"cannot resolve proxy host {proxy.host}")
                family, _, _, _, address = infos[0]
        except socket.gaierror as e:
            raise self._fail("unreachable", f"cannot resolve proxy host: {e}") from None
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock = sock
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            self.sock = None
            code = e.errno or 0
            text = e.strerror or str(e) or type(e).__name__
            if code in (errno.ECONNREFUSED, errno.ENOENT):
                raise self._fail("refused", text) from None
            if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise self._fail("unreachable", text) from None
            raise self._fail("connect-failed", text) from None
        except BaseException:
            sock.close()
            self.sock = None
            raise
        self.connected = True
        return sock


_TOR_REPLY = re.compile(r"Invalid reply code: 0X([0-9A-F]{1,2})", re.IGNORECASE)
_AUTH_FAILURES = (
    "Username and password authentication failure",
    "No acceptable authentication methods were offered",
)


def _map_python_socks_error(exc: BaseException, destination: str, proxy: Proxy) -> ProxyError:
    """Turn a python-socks exception into a :class:`ProxyError` (never raises)."""
    where = str(proxy)
    if isinstance(exc, _PSTimeoutError):
        return ProxyError(destination, "timeout", str(exc), proxy=where)
    if isinstance(exc, _PSConnectionError):
        kind = "refused" if exc.errno == errno.ECONNREFUSED else "connect-failed"
        return ProxyError(destination, kind, str(exc), proxy=where, proxy_failed=True)
    if isinstance(exc, _PSProxyError):
        text = str(exc)
        code = exc.error_code
        if code is None:
            m = _TOR_REPLY.search(text)  # python-socks knows only RFC 1928 codes
            if m is not None:
                code = int(m.group(1), 16)
        if code is not None:
            kind, message = socks5_reply_error(code)
            return ProxyError(destination, kind, message, proxy=where, reply_code=code)
        if type(exc.__cause__).__name__ == "IncompleteReadError":  # EOF mid-handshake
            return ProxyError(destination, "closed", "proxy closed the connection", proxy=where)
        if any(s in text for s in _AUTH_FAILURES):
            return ProxyError(destination, "auth-failed", text, proxy=where)
        return ProxyError(destination, "protocol", text or "malformed proxy response", proxy=where)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return ProxyError(destination, "closed", text, proxy=where)
    return ProxyError(destination, "protocol", f"{type(exc).__name__}: {exc}", proxy=where)


def _validate_destination(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be sent in a SOCKS5 CONNECT, or None if it can."""
    if not 0 <= port <= 0xFFFF:
        return f"port {port} out of range"
    if not host or "\0" in host:
        return "empty or NUL-containing host"
    try:
        encoded = host.encode("idna")
    except UnicodeError as e:
        return f"host cannot be encoded: {e}"
    if len(encoded) > _MAX_SOCKS5_FIELD:
        return f"host name too long ({len(encoded)} > {_MAX_SOCKS5_FIELD} bytes)"
    return None


def _validate_credentials(credentials: tuple[str, str]) -> str | None:
    for what, value in zip(("username", "password"), credentials, strict=True):
        if not value or not value.isascii() or len(value) > _MAX_SOCKS5_FIELD:
            return f"proxy {what} must be 1..{_MAX_SOCKS5_FIELD} ASCII characters"
    return None


async def connect_via_proxy(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    timeout: float,
    credentials: tuple[str, str] | None = None,
) -> socket.socket:
    """Connect to ``host:port`` through the SOCKS5 ``proxy``; Core ``ConnectThroughProxy``
    (src/netbase.cpp).

    Opens one connection to the proxy (TCP, or a unix socket) and runs the SOCKS5
    CONNECT handshake with python-socks (RFC 1928; RFC 1929 user/password when
    ``credentials`` is given, offered alongside "no authentication" as Core does).
    ``host`` goes to the proxy unresolved: a ``.onion`` / ``.b32.i2p`` / DNS name is
    never looked up locally. Nothing is retried. Choosing credentials is the
    caller's job (see :class:`StreamIsolationGenerator`).

    Args:
        proxy: the proxy to use.
        host: destination host text (IP literal without brackets, or a name).
        port: destination port 0..65535.
        timeout: seconds for the whole exchange (connect plus handshake); never
            exceeded by more than the loop's scheduling latency.
        credentials: ``(username, password)``, each 1..255 ASCII characters, or None.

    Returns:
        A connected, non-blocking ``socket.socket`` whose bytes now go to
        ``host:port``; the caller owns it (hand it to ``loop.create_connection(sock=)``).

    Raises:
        ProxyError: ``kind`` says why (see :data:`PROXY_ERROR_KINDS`); no socket is
            left open.
    """
    why = _validate_destination(host, port)
    if why is not None:
        raise ProxyError(f"{host}:{port}", "invalid-destination", why, proxy=str(proxy))
    destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if credentials is not None:
        why = _validate_credentials(credentials)
        if why is not None:
            raise ProxyError(destination, "invalid-credentials", why, proxy=str(proxy))
    opener = _ProxySocketOpener(proxy, destination)
    username, password = credentials if credentials is not None else (None, None)
    ps_proxy = _PSProxy(
        ProxyType.SOCKS5,
        host=proxy.host,
        port=proxy.port,
        username=username,
        password=password,
        rdns=True,
        forward=cast(_PSProxy, opener),
    )
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            # python-socks' own timeout is a backstop; ours fires first and knows the phase.
            sock = await ps_proxy.connect(host, port, timeout=timeout + 1.0)
    except ProxyError:
        raise
    except TimeoutError:
        if opener.sock is not None:
            opener.sock.close()
        phase = "the SOCKS5 handshake" if opener.connected else "connecting to the proxy"
        raise ProxyError(
            destination,
            "timeout",
            f"no answer within {timeout:g} s ({phase})",
            proxy=str(proxy),
            proxy_failed=not opener.connected,
        ) from None
    except asyncio.CancelledError:
        if opener.sock is not None:
            opener.sock.close()
        raise
    except Exception as e:
        if opener.sock is not None:
            opener.sock.close()
        raise _map_python_socks_error(e, destination, proxy) from None
    sock.setblocking(False)
    return sock
