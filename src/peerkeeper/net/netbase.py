"""Proxies as Core configures them (src/netbase.h, src/netbase.cpp), sans-IO.

``Proxy`` (one SOCKS5 proxy: host and port or a unix socket, stream isolation),
``ProxySettings`` (Core's per-network proxies and the name proxy: ``-proxy``,
``-proxy=...=NET``, ``-onion``; ``for_network`` is Core's ``GetProxy``), the parser of
those option values, the stream-isolation credentials generator, SOCKS5 reply codes,
and the errors a dial through a proxy reports. Connecting through a proxy is
:mod:`peerkeeper.io.proxy`'s.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from peerkeeper.net.netaddr import (
    AddrError,
    NetAddr,
    Network,
    Service,
    parse_network,
    split_host_port,
)

#: Core's HAVE_SOCKADDR_UN: unix sockets exist (every platform Python gives AF_UNIX but Windows).
_HAVE_AF_UNIX = sys.platform != "win32"

__all__ = [
    "ADDR_PREFIX_UNIX",
    "DEFAULT_I2P_SAM_PORT",
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
    "parse_proxy",
    "socks5_reply_error",
]

#: Core ``DEFAULT_TOR_SOCKS_PORT`` (src/torcontrol.h): the port ``-proxy``/``-onion`` use
#: when none is given.
DEFAULT_TOR_SOCKS_PORT = 9050
#: Core's default port for ``-i2psam`` (``Lookup(i2psam_arg, 7656, ...)``, src/init.cpp).
DEFAULT_I2P_SAM_PORT = 7656
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

    def __init__(self, service: Service | str, reason: str, *, proxy_failed: bool = False) -> None:
        super().__init__(f"connect to {service} failed: {reason}")
        self.reason = reason
        #: The proxy (SOCKS5 or the I2P SAM bridge) failed, not the destination: Core's
        #: ``ConnectNode`` then counts no addrman attempt (src/net.cpp).
        self.proxy_failed = proxy_failed


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
        super().__init__(destination, f"{kind}{via}: {message}", proxy_failed=proxy_failed)
        self.kind = kind
        self.message = message
        self.reply_code = reply_code
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
        host: an IPv4/IPv6 literal (no brackets), or ``"unix:/path"`` for a unix
            socket (Core ``m_unix_socket_path``). A host name is resolved when the
            options are read at startup, as in Core; one built here by hand is
            resolved when connecting.
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


#: Resolves a host name to its first address, or None (Core ``Lookup`` at startup;
#: the IO is :func:`peerkeeper.io.dns.lookup_host`).
HostLookup = Callable[[str], NetAddr | None]


def parse_proxy(
    value: str,
    randomize_credentials: bool = True,
    *,
    option: str = "-proxy",
    default_port: int = 0,
    lookup: HostLookup | None = None,
) -> Proxy:
    """Parse a proxy address: ``"host[:port]"``, ``"[v6]:port"`` or ``"unix:/path"``.

    The port defaults to ``default_port``, else :data:`DEFAULT_TOR_SOCKS_PORT` (9050),
    as in Core's ``Lookup(proxy_str, DEFAULT_TOR_SOCKS_PORT, fNameLookup)``
    (src/init.cpp; ``-i2psam`` uses :data:`DEFAULT_I2P_SAM_PORT`). The
    checks are Core's ``CheckHostPortOptions`` (a present port must be 1..65535,
    src/init.cpp) and ``Proxy::IsValid`` (the address must be valid: not 0.0.0.0,
    ::, 255.255.255.255 or 2001:db8::/32). A host name is resolved with ``lookup``
    (Core resolves it once, at startup: :func:`peerkeeper.io.dns.lookup_host`) and the
    proxy holds the address; without ``lookup`` the name is kept, for a syntax check.
    Onion/I2P/CJDNS addresses cannot be proxies. ``option`` only names the option in
    error messages.

    Raises:
        ProxyConfigError: with Core's message ("Invalid port specified in -proxy:
            '...'" or "Invalid -proxy address or hostname: '...'", the latter also for
            a name ``lookup`` cannot resolve).
    """
    if value.startswith(ADDR_PREFIX_UNIX):
        # Core IsUnixSocketPath (src/netbase.cpp): path + NUL must fit sun_path.
        if not _HAVE_AF_UNIX:
            raise ProxyConfigError(f"unix sockets are not supported here: {option}={value!r}")
        try:
            return Proxy.unix(value[len(ADDR_PREFIX_UNIX) :], randomize_credentials)
        except ProxyConfigError:
            raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'") from None
    if not value or "\0" in value:
        raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
    host, port, valid = split_host_port(value, default_port or DEFAULT_TOR_SOCKS_PORT)
    if not valid:
        raise ProxyConfigError(f"Invalid port specified in {option}: '{value}'")
    try:
        addr: NetAddr | None = NetAddr.parse(host)
    except AddrError:
        addr = None
    if addr is None:
        if not _is_host_name(host) or host.lower().endswith((".onion", ".i2p")):
            raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
        if lookup is None:
            return Proxy(host, port, randomize_credentials)
        addr = lookup(host)
        if addr is None:
            raise ProxyConfigError(f"Invalid {option} address or hostname: '{value}'")
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
        i2p_sam: the I2P SAM bridge (``-i2psam``), which Core keeps as the I2P entry of
            its proxy table: :meth:`for_network` answers it for I2P, and I2P peers are
            reached through SAM, not SOCKS5 (:mod:`peerkeeper.io.i2psam`).

    Build it with :meth:`from_options`; look proxies up with :meth:`for_network`.
    """

    proxies: Mapping[Network, Proxy] = field(default_factory=dict)
    name_proxy: Proxy | None = None
    onion_disabled: bool = False
    i2p_sam: Proxy | None = None

    @classmethod
    def from_options(
        cls,
        proxy: Sequence[str] = (),
        onion: str | None = None,
        proxyrandomize: bool = DEFAULT_PROXYRANDOMIZE,
        i2psam: str | None = None,
        lookup: HostLookup | None = None,
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
        ``randomize_credentials``. ``i2psam`` (``"host[:port]"``, port 7656 by default)
        is the SAM bridge (Core: "Invalid -i2psam address or hostname"). ``lookup``
        resolves proxies given by host name, as Core does at startup (see
        :func:`parse_proxy`).

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
                p = parse_proxy(proxy_str, proxyrandomize, option="-proxy", lookup=lookup)
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
                onion_proxy = parse_proxy(onion, proxyrandomize, option="-onion", lookup=lookup)
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
        sam = None
        if i2psam:
            # Core: SetProxy(NET_I2P, Proxy{addr}) with the default randomize=false.
            sam = parse_proxy(
                i2psam, False, option="-i2psam", default_port=DEFAULT_I2P_SAM_PORT, lookup=lookup
            )
        return cls(proxies=proxies, name_proxy=name, onion_disabled=onion_disabled, i2p_sam=sam)

    def for_network(self, net: Network) -> Proxy | None:
        """The proxy for addresses of network ``net``, or None (Core ``GetProxy``).

        ``ConnectNode`` (src/net.cpp) looks the proxy up by the destination's
        ``GetNetwork()``, so unroutable/local addresses (``Network.UNROUTABLE``) are
        dialled directly even when ``-proxy`` is set. For I2P it is the SAM bridge
        (``-i2psam``), which is spoken to in SAM, never SOCKS5.
        """
        if net is Network.I2P:
            return self.i2p_sam
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
        (``-proxy`` or ``-onion``; Tor's control port may add it later, see
        :mod:`peerkeeper.shell.torcontroller`); I2P is removed unless ``i2p_sam``
        (``-i2psam``).

        ``listen_onion`` is ``-listenonion`` (Core default 1 when listening): Tor's control
        port may supply the onion proxy later, so it silences the error below for
        ``-onlynet=onion`` without a proxy.

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
