"""Node configuration: a dataclass with Bitcoin Core's option names, and a bitcoin.conf reader.

Options mirror Core's (src/init.cpp ``SetupServerArgs``): ``chain``, ``datadir``,
``bind``, ``port``, ``listen``, ``v2transport`` (BIP324, default on), ``asmap`` (file for AS-based netgroups), ``connect``, ``addnode``, ``maxconnections``,
``rpcbind``, ``rpcport``, ``rpcuser``, ``rpcpassword``, ``maxsendbuffer`` and
``maxreceivebuffer`` (kilobytes, x1000 as in Core), ``peertimeout``, ``timeout``
(milliseconds), ``networkactive``, ``debug`` (log categories); the connection
policy's ``seednode``, ``dnsseed``, ``forcednsseed``, ``fixedseeds``,
``fixedseedsfile``, ``onlynet``, ``inboundrelaypercent``, ``whitelist``,
``whitebind``, ``whitelistrelay``, ``whitelistforcerelay``, ``proxy``, ``onion``,
``proxyrandomize``, ``cjdnsreachable``, ``i2psam``, ``i2pacceptincoming``,
``listenonion``, ``torcontrol``,
``torpassword``, ``maxuploadtarget``, ``externalip``; and
peerkeeper's own ``dnsserver``. Defaults follow Core;
ports default to the chain's (src/chainparamsbase.cpp, src/kernel/chainparams.cpp).

Two sets of defaults: a library's (``Config()``: no RPC server, no listening socket,
no data directory, so the node keeps its address book and bans in memory) and the
daemon's (``daemon=True``, set by ``peerkeeper node`` and ``peerkeeperd``: Core's
``-server`` on, ``-listen`` by Core's soft rules, ``~/.peerkeeper``). Whatever is set
explicitly wins in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from peerkeeper.daemon.confparse import ConfLineError, chain_in_file, conf_items
from peerkeeper.net.chains import Chain, get_chain
from peerkeeper.net.netaddr import Network, parse_network
from peerkeeper.net.netbase import HostLookup, ProxyConfigError, ProxySettings
from peerkeeper.net.torcontrol import DEFAULT_TOR_CONTROL

if TYPE_CHECKING:
    from peerkeeper.net.netaddr import Service

__all__ = ["DEFAULT_DATADIR", "Config", "ConfigError", "read_conf_file"]


#: Core's MAX_SUBVERSION_LENGTH (src/net.h) and SAFE_CHARS_UA_COMMENT (src/util/strencodings.cpp).
MAX_SUBVERSION_LENGTH = 256
#: Core ``SAFE_CHARS_UA_COMMENT`` (src/util/strencodings.cpp): no "/", ":" or brackets,
#: which would break the ``/name:version(comments)/`` user agent apart.
_SAFE_UA_COMMENT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + " .,;-_?@"
)


#: The daemon's data directory when none is given (Core: ``~/.bitcoin``).
DEFAULT_DATADIR = Path.home() / ".peerkeeper"


class ConfigError(ValueError):
    """A configuration value or file is invalid; the message names the option."""


@dataclass(slots=True)
class Config:
    """Everything a :class:`~peerkeeper.daemon.node.Node` needs (Core option names, Core defaults)."""

    chain: str = "main"
    #: The data directory; None keeps everything in memory (a library's default).
    datadir: Path | None = None
    bind: list[str] = field(default_factory=list)
    port: int | None = None
    listen: bool | None = None
    connect: list[str] = field(default_factory=list)
    addnode: list[str] = field(default_factory=list)
    maxconnections: int = 200
    rpcbind: str = "127.0.0.1"
    rpcport: int | None = None
    rpcuser: str | None = None
    rpcpassword: str | None = None
    #: ``-rpcthreads``, ``-rpcworkqueue``, ``-rpcservertimeout`` (src/httpserver.h defaults).
    rpcthreads: int = 16
    rpcworkqueue: int = 64
    rpcservertimeout: int = 30
    #: ``-server``: the JSON-RPC server; None: on for the daemon, off for a library.
    server: bool | None = None
    maxsendbuffer: int = 1000
    maxreceivebuffer: int = 5000
    peertimeout: int = 60
    timeout: int = 5000
    networkactive: bool = True
    services: int = 0
    v2transport: bool = True
    asmap: Path | None = None
    debug: list[str] = field(default_factory=list)
    # -- connection policy (src/init.cpp) --
    seednode: list[str] = field(default_factory=list)
    dnsseed: bool | None = None
    forcednsseed: bool = False
    fixedseeds: bool = True
    fixedseedsfile: Path | None = None
    onlynet: list[str] = field(default_factory=list)
    inboundrelaypercent: int = 50
    whitelist: list[str] = field(default_factory=list)
    whitebind: list[str] = field(default_factory=list)
    whitelistrelay: bool = True
    whitelistforcerelay: bool = False
    proxy: list[str] = field(default_factory=list)
    onion: str | None = None
    proxyrandomize: bool = True
    cjdnsreachable: bool = False
    #: ``-i2psam``: the I2P SAM bridge host[:port] (port 7656 by default) through which
    #: I2P peers are dialled and accepted (SAM 3.1, Core's src/i2p.cpp).
    i2psam: str | None = None
    #: ``-i2pacceptincoming``: accept inbound I2P connections through ``-i2psam`` with a
    #: persistent session (Core's default 1; None: on when listening).
    i2pacceptincoming: bool | None = None
    #: ``-listenonion``: publish an onion service through Tor's control port (Core's
    #: default 1 when listening; None: on for a listening daemon, off for a library).
    listenonion: bool | None = None
    #: ``-torcontrol``: Tor's control port, ``host[:port]`` (Core's 127.0.0.1:9051).
    torcontrol: str = DEFAULT_TOR_CONTROL
    #: ``-torpassword``: the control port's password (HASHEDPASSWORD authentication).
    torpassword: str = ""
    #: ``-test=OPTION`` (regtest only): ``addrman`` makes the address table's key
    #: Core's deterministic test key (src/init.cpp ``TEST_OPTIONS_DOC``).
    test: list[str] = field(default_factory=list)
    maxuploadtarget: str = "0"
    externalip: list[str] = field(default_factory=list)
    #: peerkeeper's own (not Core's): DNS servers ("host[:port]") for DNS seeding
    #: instead of the system's resolver configuration.
    dnsserver: list[str] = field(default_factory=list)
    #: ``-bantime``: seconds a ban lasts when setban gives no time (Core's default 24 h).
    bantime: int = 86400
    #: ``-uacomment``: comments in our user agent, ``/peerkeeper:0.1.0(a; b)/``.
    uacomment: list[str] = field(default_factory=list)
    #: peerkeeper's own: ``-web=HOST:PORT`` serves /metrics, /events and the dashboard
    #: (read-only, no authentication: loopback unless a routable HOST is given).
    web: str | None = None
    #: peerkeeper's own: ``-eventlog=FILE`` writes the event stream as JSON lines,
    #: rotated at 10 MiB (5 old files kept).
    eventlog: Path | None = None
    #: peerkeeper's own: ``-dialmap=FILE`` maps virtual addresses to the loopback
    #: endpoints of a lab network (:mod:`peerkeeper.io.dialmap`); others are not dialled.
    dialmap: Path | None = None
    #: Core's daemon defaults (RPC server on, listening on by Core's soft rules), as
    #: ``peerkeeper node`` and ``peerkeeperd`` run; False: a library's (both off).
    daemon: bool = False

    def web_endpoint(self) -> tuple[str, int] | None:
        """``-web`` as ``(host, port)``; None when off. A port alone means 127.0.0.1.

        :raises ConfigError: not ``HOST:PORT`` (an IPv6 host in brackets).
        """
        if self.web is None:
            return None
        if self.web.isdigit():
            return "127.0.0.1", int(self.web)  # a port alone: loopback
        host, sep, port = self.web.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"-web={self.web}: expected HOST:PORT, e.g. 127.0.0.1:8335")
        return host, int(port)

    def subversion(self, name: str, version: str) -> str:
        """Core ``FormatSubVersion`` (src/clientversion.cpp): ``/name:version(c1; c2)/``."""
        comments = f"({'; '.join(self.uacomment)})" if self.uacomment else ""
        return f"/{name}:{version}{comments}/"

    @property
    def chain_params(self) -> Chain:
        """The :class:`~peerkeeper.net.chains.Chain` for ``chain`` (ConfigError if unknown)."""
        try:
            return get_chain(self.chain)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    @property
    def p2p_port(self) -> int:
        """``port`` or the chain's default P2P port."""
        return self.port if self.port is not None else self.chain_params.default_port

    @property
    def rpc_port(self) -> int:
        """``rpcport`` or the chain's default RPC port."""
        return self.rpcport if self.rpcport is not None else self.chain_params.rpc_port

    @property
    def chain_datadir(self) -> Path:
        """Where this chain's files live: ``datadir`` for main, ``datadir/<chain>`` otherwise (as Core).

        :raises ConfigError: no ``datadir`` (an in-memory node has no files).
        """
        if self.datadir is None:
            raise ConfigError("no datadir: this node keeps its state in memory")
        return self.datadir if self.chain == "main" else self.datadir / self.chain

    @property
    def in_memory(self) -> bool:
        """No data directory: the address book and bans live in memory only."""
        return self.datadir is None

    @property
    def rpc_server(self) -> bool:
        """``-server``, else on for the daemon and off for a library."""
        return self.daemon if self.server is None else self.server

    @property
    def noconnect(self) -> bool:
        """``-connect=0`` (or ``-noconnect``): no automatic outbound connections at all."""
        return self.connect == ["0"]

    @property
    def specified_outgoing(self) -> list[str]:
        """The ``-connect`` peers (none for ``-connect=0``; src/init.cpp ``m_specified_outgoing``)."""
        return [] if self.noconnect else list(self.connect)

    @property
    def use_addrman_outgoing(self) -> bool:
        """Core ``m_use_addrman_outgoing``: automatic outbound unless ``-connect`` is given at
        all (src/init.cpp) or ``-maxconnections=0``."""
        return not self.connect and self.maxconnections > 0

    @property
    def listening(self) -> bool:
        """``-listen``, else Core's soft-set order (src/init.cpp ``InitParameterInteraction``):
        ``-bind``/``-whitebind`` turn it on; then ``-connect`` (any, ``-connect=0`` too),
        ``-maxconnections=0`` or ``-proxy`` turn it off; default on."""
        if self.listen is not None:
            return self.listen
        if self.bind or self.whitebind:
            return True
        if not self.daemon:
            return False  # a library listens only when asked
        return not (self.connect or self.maxconnections <= 0 or self._proxy_set)

    @property
    def listen_onion(self) -> bool:
        """``-listenonion``, else Core's soft-set (src/init.cpp ``InitParameterInteraction``):
        off when not listening; and off for a library, which serves nothing unasked."""
        if self.listenonion is not None:
            return self.listenonion
        return self.daemon and self.listening

    @property
    def i2p_accept_incoming(self) -> bool:
        """``-i2pacceptincoming``, else Core's soft-set (src/init.cpp
        ``InitParameterInteraction``: ``-listen=0`` -> ``-i2pacceptincoming=0``)."""
        if self.i2pacceptincoming is not None:
            return self.i2pacceptincoming
        return self.listening

    @property
    def _proxy_set(self) -> bool:
        return bool(self.proxy) and self.proxy != ["0"]

    @property
    def dns_seeding(self) -> bool:
        """``-dnsseed``, else Core's soft-sets: off with ``-connect`` / ``-maxconnections=0``,
        and off when ``-onlynet`` excludes both IPv4 and IPv6 (src/init.cpp)."""
        if self.dnsseed is not None:
            return self.dnsseed
        if self.connect or self.maxconnections <= 0:
            return False
        nets = {parse_network(n) for n in self.onlynet}
        return not nets or bool(nets & {Network.IPV4, Network.IPV6})

    def validate(self) -> None:
        """Check ranges; raises :class:`ConfigError` naming the bad option."""
        self.chain_params  # noqa: B018 - raises for an unknown chain
        if self.maxconnections < 0:
            raise ConfigError("-maxconnections must be >= 0")
        for name in ("port", "rpcport"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise ConfigError(f"-{name} must be between 0 and 65535")
        if self.rpcservertimeout <= 0:
            raise ConfigError("-rpcservertimeout must be positive")
        if self.rpc_server and self.datadir is None and not (self.rpcuser and self.rpcpassword):
            raise ConfigError(
                "-server needs a datadir (for the RPC cookie) or -rpcuser and -rpcpassword"
            )
        if self.maxsendbuffer <= 0 or self.maxreceivebuffer <= 0:
            raise ConfigError("-maxsendbuffer and -maxreceivebuffer must be positive")
        if self.peertimeout <= 0:
            raise ConfigError("peertimeout must be a positive integer.")  # Core init.cpp
        if self.bantime < 0:
            raise ConfigError("-bantime must not be negative")
        if self.forcednsseed and not self.dns_seeding:
            # Core AppInitParameterInteraction (src/init.cpp); -connect soft-sets -dnsseed=0.
            raise ConfigError("Cannot set -forcednsseed to true when setting -dnsseed to false.")
        if not 0 <= self.inboundrelaypercent <= 100:
            raise ConfigError("-inboundrelaypercent must be between 0 and 100")
        self.web_endpoint()
        from peerkeeper.bitcoin.uploadtarget import parse_upload_target
        from peerkeeper.net.netpermissions import Permissions

        try:
            Permissions.from_options(
                whitelist=self.whitelist, whitebind=self.whitebind, cjdns=self.cjdnsreachable
            )
            parse_upload_target(self.maxuploadtarget)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        for net in self.onlynet:
            if parse_network(net) is Network.UNROUTABLE:  # Core ParseNetwork (src/netbase.cpp)
                raise ConfigError(f"Unknown network specified in -onlynet: '{net}'")
        self.proxy_settings()
        if self.test and self.chain != "regtest":
            raise ConfigError("-test=<option> can only be used with regtest")  # Core init.cpp
        for option in self.test:
            if option not in ("addrman", "bip94", "reindex_after_failure_noninteractive_yes"):
                raise ConfigError(f'Unrecognised option "{option}" provided in -test=<option>.')
        for comment in self.uacomment:
            # Core AppInitMain: SAFE_CHARS_UA_COMMENT (src/util/strencodings.cpp).
            if any(c not in _SAFE_UA_COMMENT for c in comment):
                raise ConfigError(f"User Agent comment ({comment}) contains unsafe characters.")
        length = len(self.subversion("peerkeeper", "0.1.0"))
        if length > MAX_SUBVERSION_LENGTH:
            raise ConfigError(
                f"Total length of network version string ({length}) exceeds maximum length "
                f"({MAX_SUBVERSION_LENGTH}). Reduce the number or size of uacomments."
            )
        self.binds()

    def proxy_settings(
        self, lookup: HostLookup | None = None
    ) -> tuple[ProxySettings, set[Network]]:
        """The proxies (``-proxy``, ``-onion``, ``-proxyrandomize``, ``-i2psam``) and the
        reachable networks (``-onlynet``, ``-cjdnsreachable``, ``-listenonion``), as
        Core's ``AppInitMain`` sets them (src/init.cpp). ``lookup`` resolves proxies
        given by host name (the node passes :func:`peerkeeper.io.dns.lookup_host`);
        without it names are kept, for a syntax check.

        Raises :class:`ConfigError` with Core's texts ("Invalid -proxy address or
        hostname: '...'", "Outbound connections restricted to ...", ...).
        """
        try:
            proxies = ProxySettings.from_options(
                self.proxy, self.onion, self.proxyrandomize, i2psam=self.i2psam, lookup=lookup
            )
            reachable = proxies.reachable_networks(
                self.onlynet,
                cjdns_reachable=self.cjdnsreachable,
                i2p_sam=proxies.i2p_sam is not None,
                listen_onion=self.listen_onion,
            )
        except ProxyConfigError as e:
            raise ConfigError(str(e)) from None
        return proxies, reachable

    def binds(self) -> tuple[list[Service], list[Service], list[Service], bool]:
        """The listening addresses (Core ``AppInitMain``, src/init.cpp): ``-bind``
        addresses (default port ``-port``), ``-bind=ADDR[:PORT]=onion`` addresses
        (default port ``-port`` + 1: connections accepted there count as Tor inbound),
        ``-whitebind`` addresses, and whether the onion list is Core's default
        (127.0.0.1:port+1, added when no ``-bind`` of either kind is given).

        Raises :class:`ConfigError` with Core's texts: ``Cannot resolve -bind address``,
        ``Duplicate binding configuration for address ...`` (``CheckBindingConflicts``).
        """
        from peerkeeper.net.netaddr import AddrError, Service

        port = self.p2p_port
        regular: list[Service] = []
        onion: list[Service] = []
        for value in self.bind:
            address, eq, network_type = value.rpartition("=")
            try:
                if not eq:
                    regular.append(Service.parse(value, port))
                    continue
                if network_type == "onion":
                    onion.append(Service.parse(address, port + 1))
                    continue
            except AddrError:
                pass
            raise ConfigError(f"Cannot resolve -bind address: '{value}'")  # ResolveErrMsg
        white: list[Service] = []
        for value in self.whitebind:
            try:
                white.append(Service.parse(value.rpartition("@")[2], port))
            except AddrError:
                raise ConfigError(f"Cannot resolve -whitebind address: '{value}'") from None
        default_onion = not regular and not onion
        if default_onion:
            onion = [Service.parse("127.0.0.1", port + 1)]
        seen: set[Service] = set()
        for svc in (*white, *regular, *onion):
            if svc in seen:
                raise ConfigError(
                    f"Duplicate binding configuration for address {svc}. Please check your "
                    "-bind, -bind=...=onion and -whitebind settings."
                )
            seen.add(svc)
        return regular, onion, white, default_onion


#: Config fields that are lists (repeatable options), booleans, integers and paths:
#: how a bitcoin.conf value or a bitcoind argument is read.
LIST_KEYS = {
    "bind",
    "connect",
    "addnode",
    "debug",
    "seednode",
    "onlynet",
    "whitelist",
    "whitebind",
    "proxy",
    "externalip",
    "dnsserver",
    "uacomment",
    "test",
}
BOOL_KEYS = {
    "listen",
    "server",
    "networkactive",
    "v2transport",
    "dnsseed",
    "forcednsseed",
    "fixedseeds",
    "whitelistrelay",
    "whitelistforcerelay",
    "proxyrandomize",
    "cjdnsreachable",
    "listenonion",
    "i2pacceptincoming",
}
PATH_KEYS = {"asmap", "fixedseedsfile", "eventlog", "dialmap"}
INT_KEYS = {
    "rpcthreads",
    "rpcworkqueue",
    "rpcservertimeout",
    "bantime",
    "inboundrelaypercent",
    "port",
    "maxconnections",
    "rpcport",
    "maxsendbuffer",
    "maxreceivebuffer",
    "peertimeout",
    "timeout",
}


def read_conf_file(path: Path, chain: str | None = None) -> dict[str, object]:
    """Read a bitcoin.conf-style file: ``key=value`` lines, ``#`` comments, ``[chain]`` sections.

    ``chain`` is the chain chosen on the command line; when None, the file's own
    top section decides (``chain=``, ``regtest=1``, ...), as Core does.

    Returns option values keyed by Config field name (lists for repeatable
    options). Settings in a ``[main]``/``[regtest]``/... section apply only to that
    chain, as in Core (src/common/args.cpp). Unknown keys are ignored; bad values
    raise :class:`ConfigError` with the line number.
    """
    known = {f.name for f in fields(Config)}
    values: dict[str, object] = {}
    lines = path.read_text().splitlines()
    if chain is None:
        chain = chain_in_file(lines)
        values["chain"] = chain
    try:
        items = list(conf_items(lines, chain))
    except ConfLineError as e:
        raise ConfigError(f"{path}:{e}") from None
    for lineno, key, value in items:
        if key in ("regtest", "testnet4", "signet", "testnet", "chain"):
            continue  # chain selection: handled by _chain_in_file / the command line
        if key not in known:
            continue
        try:
            if key in LIST_KEYS:
                lst = values.setdefault(key, [])
                assert isinstance(lst, list)
                lst.append(value)
            elif key in BOOL_KEYS:
                values[key] = value not in ("0", "false", "")
            elif key in INT_KEYS:
                values[key] = int(value)
            elif key in PATH_KEYS:
                values[key] = Path(value).expanduser()
            else:
                values[key] = value
        except ValueError:
            raise ConfigError(f"{path}:{lineno}: bad value for {key}: {value!r}") from None
    return values
