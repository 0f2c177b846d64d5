"""P2P permission flags, ``-whitebind`` / ``-whitelist`` parsing and how they apply.

Pure (sans-IO) port of Bitcoin Core's rules:

* src/net_permissions.h / src/net_permissions.cpp -- ``NetPermissionFlags``,
  ``NetPermissions::ToStrings`` / ``HasFlag``, ``TryParsePermissionFlags``,
  ``NetWhitebindPermissions::TryParse``, ``NetWhitelistPermissions::TryParse``;
* src/netbase.h -- ``ConnectionDirection``;
* src/net.cpp -- ``CConnman::AddWhitelistPermissionFlags`` (the implicit-permission rule
  driven by ``-whitelistrelay`` / ``-whitelistforcerelay``),
  ``CConnman::CreateNodeFromAcceptedSocket`` (inbound: listening-socket flags, then
  incoming whitelist ranges, skipped for inbound onion), ``CConnman::ConnectNode``
  (outbound: the ``out`` whitelist ranges apply to MANUAL connections only);
* src/init.cpp -- ``-whitelist`` entries go to the incoming and/or outgoing range lists
  by their direction; ``-whitebind`` entries become listening sockets with flags.

Nothing here touches sockets, clocks or global state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import AddrError, NetAddr, Service, SubNet

__all__ = [
    "DEFAULT_WHITELISTFORCERELAY",
    "DEFAULT_WHITELISTRELAY",
    "NET_PERMISSIONS_DOC",
    "ConnectionDirection",
    "NetPermissionFlags",
    "PermissionParseError",
    "Permissions",
    "WhitebindPermissions",
    "WhitelistPermissions",
    "add_implicit",
    "has_flag",
    "inbound_permissions",
    "outbound_permissions",
    "parse_permissions",
    "to_strings",
]

DEFAULT_WHITELISTRELAY = True
"""Default for ``-whitelistrelay`` (src/net_permissions.h ``DEFAULT_WHITELISTRELAY``)."""

DEFAULT_WHITELISTFORCERELAY = False
"""Default for ``-whitelistforcerelay`` (src/net_permissions.h ``DEFAULT_WHITELISTFORCERELAY``)."""

NET_PERMISSIONS_DOC: tuple[str, ...] = (
    "bloomfilter (allow requesting BIP37 filtered blocks and transactions)",
    "noban (do not ban for misbehavior; implies download)",
    "forcerelay (relay transactions that are already in the mempool; implies relay)",
    "relay (relay even in -blocksonly mode, and unlimited transaction announcements)",
    "mempool (allow requesting BIP35 mempool contents)",
    "download (allow getheaders during IBD, no disconnect after maxuploadtarget limit)",
    "addr (responses to GETADDR avoid hitting the cache and contain random records with "
    "the most up-to-date info)",
)
"""Help text for each permission (src/net_permissions.cpp ``NET_PERMISSIONS_DOC``)."""


class NetPermissionFlags(enum.IntFlag):
    """Per-connection permission bits, Core ``NetPermissionFlags`` (src/net_permissions.h).

    The values are Core's exact bits.  Some members are multi-bit on purpose:
    ``FORCERELAY`` contains ``RELAY`` and ``NOBAN`` contains ``DOWNLOAD``, so
    :func:`has_flag` of the implied flag is true.  ``IMPLICIT`` marks a whitelist or
    whitebind entry written without ``perm@``; it is replaced by the default set in
    :func:`add_implicit` and never survives onto a connection.
    """

    NONE = 0
    BLOOMFILTER = 1 << 1
    RELAY = 1 << 3
    FORCERELAY = (1 << 2) | RELAY
    DOWNLOAD = 1 << 6
    NOBAN = (1 << 4) | DOWNLOAD
    MEMPOOL = 1 << 5
    ADDR = 1 << 7
    IMPLICIT = 1 << 31
    ALL = BLOOMFILTER | FORCERELAY | RELAY | NOBAN | MEMPOOL | DOWNLOAD | ADDR


class ConnectionDirection(enum.IntFlag):
    """Which connections a ``-whitelist`` entry applies to, Core ``ConnectionDirection``
    (src/netbase.h): ``IN`` = 1, ``OUT`` = 2, ``BOTH`` = 3 (``NONE`` = 0 only while
    parsing)."""

    NONE = 0
    IN = 1 << 0
    OUT = 1 << 1
    BOTH = IN | OUT


class PermissionParseError(ValueError):
    """A ``-whitebind`` / ``-whitelist`` value Core would refuse at startup.

    ``str(error)`` is Core's (untranslated) init error text, e.g.
    ``Invalid P2P permission: 'oopsie'``.
    """


def has_flag(flags: int, f: int) -> bool:
    """Core ``NetPermissions::HasFlag`` (src/net_permissions.h): all bits of ``f`` are in
    ``flags``.  So ``has_flag(FORCERELAY, RELAY)`` is True and
    ``has_flag(RELAY, FORCERELAY)`` is False; ``has_flag(x, NONE)`` is always True."""
    return (int(flags) & int(f)) == int(f)


# Order of Core's NetPermissions::ToStrings (src/net_permissions.cpp).
_RPC_NAMES: tuple[tuple[NetPermissionFlags, str], ...] = (
    (NetPermissionFlags.BLOOMFILTER, "bloomfilter"),
    (NetPermissionFlags.NOBAN, "noban"),
    (NetPermissionFlags.FORCERELAY, "forcerelay"),
    (NetPermissionFlags.RELAY, "relay"),
    (NetPermissionFlags.MEMPOOL, "mempool"),
    (NetPermissionFlags.DOWNLOAD, "download"),
    (NetPermissionFlags.ADDR, "addr"),
)


def to_strings(flags: int) -> list[str]:
    """Names of the permissions in ``flags`` for getpeerinfo ``permissions``, Core
    ``NetPermissions::ToStrings`` (src/net_permissions.cpp).

    Order: bloomfilter, noban, forcerelay, relay, mempool, download, addr.  Tested with
    :func:`has_flag`, so ``NOBAN`` yields ``["noban", "download"]`` and ``FORCERELAY``
    yields ``["forcerelay", "relay"]``.  ``IMPLICIT`` and unknown bits are not shown.
    """
    return [name for flag, name in _RPC_NAMES if has_flag(flags, flag)]


# Permission words accepted by TryParsePermissionFlags (src/net_permissions.cpp).
_WORDS: dict[str, NetPermissionFlags] = {
    "bloomfilter": NetPermissionFlags.BLOOMFILTER,
    "bloom": NetPermissionFlags.BLOOMFILTER,
    "noban": NetPermissionFlags.NOBAN,
    "forcerelay": NetPermissionFlags.FORCERELAY,
    "mempool": NetPermissionFlags.MEMPOOL,
    "download": NetPermissionFlags.DOWNLOAD,
    "all": NetPermissionFlags.ALL,
    "relay": NetPermissionFlags.RELAY,
    "addr": NetPermissionFlags.ADDR,
}


def parse_permissions(
    s: str, *, allow_out: bool = True
) -> tuple[NetPermissionFlags, str, ConnectionDirection]:
    """Split ``"perm1,perm2@rest"`` into flags, the rest and a direction, Core
    ``TryParsePermissionFlags`` (src/net_permissions.cpp).

    * No ``@``: flags are ``IMPLICIT``, rest is all of ``s``, direction ``IN``.
    * Otherwise the text before the first ``@`` is split on ``,``; words are
      ``bloomfilter``/``bloom``, ``noban``, ``forcerelay``, ``mempool``, ``download``,
      ``all``, ``relay``, ``addr`` and the directions ``in`` and ``out``; empty words
      and duplicates are allowed (``"@x"`` and ``",@x"`` give ``NONE``).  Words are
      case-sensitive.  No direction word means ``IN``.

    Args:
        s: the option value.
        allow_out: False for ``-whitebind`` (Core passes no direction output there).

    Returns:
        ``(flags, rest, direction)``; ``rest`` is the address part, unparsed.

    Raises:
        PermissionParseError: with Core's text --
            ``Invalid P2P permission: '<word>'`` for an unknown word (first one wins);
            ``whitebind may only be used for incoming connections ("out" was passed)``
            for ``out`` when ``allow_out`` is False;
            ``Only direction was set, no permissions: '<s>'`` when a direction word is
            given but no permission.
    """
    flags = NetPermissionFlags.NONE
    direction = ConnectionDirection.NONE
    at = s.find("@")
    if at == -1:
        flags = NetPermissionFlags.IMPLICIT
        rest = s
    else:
        for word in s[:at].split(","):
            if word in _WORDS:
                flags |= _WORDS[word]
            elif word == "in":
                direction |= ConnectionDirection.IN
            elif word == "out":
                if not allow_out:
                    raise PermissionParseError(
                        'whitebind may only be used for incoming connections ("out" was passed)'
                    )
                direction |= ConnectionDirection.OUT
            elif word:
                raise PermissionParseError(f"Invalid P2P permission: '{word}'")
        rest = s[at + 1 :]
    if direction == ConnectionDirection.NONE:
        direction = ConnectionDirection.IN
    elif flags == NetPermissionFlags.NONE:
        raise PermissionParseError(f"Only direction was set, no permissions: '{s}'")
    return flags, rest, direction


@dataclass(frozen=True, slots=True)
class WhitebindPermissions:
    """One ``-whitebind=[perms@]addr:port`` entry, Core ``NetWhitebindPermissions``
    (src/net_permissions.h).

    Fields:
        flags: the parsed flags (``IMPLICIT`` if no ``@`` was given).
        service: the address and port to listen on (port != 0).
    """

    flags: NetPermissionFlags
    service: Service

    @classmethod
    def parse(cls, s: str, *, cjdns: bool = False) -> WhitebindPermissions:
        """Parse a ``-whitebind`` value, Core ``NetWhitebindPermissions::TryParse``
        (src/net_permissions.cpp) with a numeric ``Lookup(str, 0, false)``.

        Examples: ``"1.2.3.4:32"`` (implicit), ``"noban,relay@[::1]:8333"``.
        ``cjdns`` as in :meth:`peerkeeper.net.netaddr.Service.parse`.

        Raises:
            PermissionParseError: as :func:`parse_permissions` (``out`` is refused);
                ``Cannot resolve -whitebind address: '<addr>'`` if the address part
                does not parse (including empty); ``Need to specify a port with
                -whitebind: '<addr>'`` if the port is missing or 0.
        """
        flags, rest, _ = parse_permissions(s, allow_out=False)
        try:
            service = Service.parse(rest, 0, cjdns=cjdns)
        except AddrError as e:
            raise PermissionParseError(f"Cannot resolve -whitebind address: '{rest}'") from e
        if service.port == 0:
            raise PermissionParseError(f"Need to specify a port with -whitebind: '{rest}'")
        return cls(flags, service)


@dataclass(frozen=True, slots=True)
class WhitelistPermissions:
    """One ``-whitelist=[perms@]subnet`` entry, Core ``NetWhitelistPermissions``
    (src/net_permissions.h) plus the direction ``TryParse`` returns beside it.

    Fields:
        flags: the parsed flags (``IMPLICIT`` if no ``@`` was given).
        subnet: the peers it matches; a bare address is a single-host subnet.
        direction: ``IN`` (default), ``OUT`` or ``BOTH``; init.cpp puts ``IN`` entries
            in the incoming list and ``OUT`` entries in the outgoing list.
    """

    flags: NetPermissionFlags
    subnet: SubNet
    direction: ConnectionDirection = ConnectionDirection.IN

    @classmethod
    def parse(cls, s: str, *, cjdns: bool = False) -> WhitelistPermissions:
        """Parse a ``-whitelist`` value, Core ``NetWhitelistPermissions::TryParse``
        (src/net_permissions.cpp) with ``LookupSubNet`` (src/netbase.cpp).

        Examples: ``"1.2.3.4"`` (implicit, ``1.2.3.4/32``, IN),
        ``"noban@10.0.0.0/8"``, ``"in,out,bloom@2001:db8::/32"`` (BOTH).
        ``cjdns`` as in :meth:`peerkeeper.net.netaddr.SubNet.parse`.

        Raises:
            PermissionParseError: as :func:`parse_permissions`; ``Invalid netmask
                specified in -whitelist: '<subnet>'`` if the subnet part does not parse
                (including a port, e.g. ``1.2.3.4:32``).
        """
        flags, rest, direction = parse_permissions(s, allow_out=True)
        try:
            subnet = SubNet.parse(rest, cjdns=cjdns)
        except AddrError as e:
            raise PermissionParseError(f"Invalid netmask specified in -whitelist: '{rest}'") from e
        if not subnet.is_valid():
            raise PermissionParseError(f"Invalid netmask specified in -whitelist: '{rest}'")
        return cls(flags, subnet, direction)


def add_implicit(
    flags: int,
    *,
    whitelistrelay: bool = DEFAULT_WHITELISTRELAY,
    whitelistforcerelay: bool = DEFAULT_WHITELISTFORCERELAY,
) -> NetPermissionFlags:
    """Expand ``IMPLICIT``, the tail of Core ``CConnman::AddWhitelistPermissionFlags``
    (src/net.cpp).

    If ``flags`` has ``IMPLICIT``: the ``IMPLICIT`` bit is cleared and ``FORCERELAY``
    (if ``whitelistforcerelay``), ``RELAY`` (if ``whitelistrelay``), ``MEMPOOL`` and
    ``NOBAN`` (hence ``DOWNLOAD``) are added.  Otherwise ``flags`` is returned
    unchanged.  Note ``whitelistforcerelay`` alone still yields ``RELAY`` (bit of
    ``FORCERELAY``); init.cpp also soft-sets ``-whitelistrelay=1`` in that case and
    ``-whitelistrelay=0`` under ``-blocksonly`` -- those interactions are config's job.
    """
    out = NetPermissionFlags(int(flags))
    if has_flag(out, NetPermissionFlags.IMPLICIT):
        out = NetPermissionFlags(int(out) & ~int(NetPermissionFlags.IMPLICIT))
        if whitelistforcerelay:
            out |= NetPermissionFlags.FORCERELAY
        if whitelistrelay:
            out |= NetPermissionFlags.RELAY
        out |= NetPermissionFlags.MEMPOOL
        out |= NetPermissionFlags.NOBAN
    return out


def _add_whitelist_flags(
    flags: NetPermissionFlags,
    addr: NetAddr | None,
    ranges: Iterable[WhitelistPermissions],
    direction: ConnectionDirection,
    whitelistrelay: bool,
    whitelistforcerelay: bool,
) -> NetPermissionFlags:
    """Core ``CConnman::AddWhitelistPermissionFlags`` (src/net.cpp) over the entries of
    ``ranges`` whose direction includes ``direction``."""
    if addr is not None:
        for entry in ranges:
            if entry.direction & direction and entry.subnet.match(addr):
                flags |= entry.flags
    return add_implicit(
        flags, whitelistrelay=whitelistrelay, whitelistforcerelay=whitelistforcerelay
    )


def _listen_flags(bind: Service, whitebind: Iterable[WhitebindPermissions]) -> NetPermissionFlags:
    """Union of the flags of the whitebind entries whose service is ``bind``."""
    flags = NetPermissionFlags.NONE
    for wb in whitebind:
        if wb.service == bind:
            flags |= wb.flags
    return flags


def inbound_permissions(
    addr: NetAddr,
    bind: Service | None,
    whitelist: Iterable[WhitelistPermissions] = (),
    whitebind: Iterable[WhitebindPermissions] = (),
    *,
    inbound_onion: bool = False,
    whitelistrelay: bool = DEFAULT_WHITELISTRELAY,
    whitelistforcerelay: bool = DEFAULT_WHITELISTFORCERELAY,
) -> NetPermissionFlags:
    """Permissions of an accepted connection, Core ``CConnman::AcceptConnection`` +
    ``CreateNodeFromAcceptedSocket`` (src/net.cpp).

    Args:
        addr: the peer's address.
        bind: the address the *listening* socket was bound to (e.g. ``0.0.0.0:8333`` or
            a ``-whitebind`` service), or None if unknown.  Core takes the listening
            socket's flags (``ListenSocket::AddSocketPermissionFlags``), and a
            whitebind socket is bound to exactly its service, so the whitebind entries
            equal to ``bind`` contribute their flags.  Do not pass the accepted
            socket's local address when listening on a wildcard.
        whitelist: all ``-whitelist`` entries; only those with the ``IN`` direction
            are used (Core ``vWhitelistedRangeIncoming``).
        whitebind: all ``-whitebind`` entries.
        inbound_onion: the connection came in on a Tor onion bind; then the peer
            address is meaningless and whitelist ranges are not applied (the listening
            socket's flags still are).
        whitelistrelay, whitelistforcerelay: ``-whitelistrelay`` /
            ``-whitelistforcerelay`` for :func:`add_implicit`.

    Returns:
        The connection's flags; never contains ``IMPLICIT``.
    """
    flags = NetPermissionFlags.NONE if bind is None else _listen_flags(bind, whitebind)
    return _add_whitelist_flags(
        flags,
        None if inbound_onion else addr,
        whitelist,
        ConnectionDirection.IN,
        whitelistrelay,
        whitelistforcerelay,
    )


def outbound_permissions(
    addr: NetAddr,
    whitelist: Iterable[WhitelistPermissions],
    conn_type: ConnectionType,
    *,
    whitelistrelay: bool = DEFAULT_WHITELISTRELAY,
    whitelistforcerelay: bool = DEFAULT_WHITELISTFORCERELAY,
) -> NetPermissionFlags:
    """Permissions of an outbound connection, Core ``CConnman::ConnectNode`` (src/net.cpp).

    Only ``MANUAL`` connections (addnode / ``-connect`` / ``addnode onetry``) get the
    ``OUT``-direction whitelist entries matching ``addr``; every other type gets
    ``NONE``.  (An ``OUT`` entry always has an explicit ``@``, so ``IMPLICIT`` never
    arises here; it would be expanded by :func:`add_implicit` all the same.)
    """
    ranges: Iterable[WhitelistPermissions] = whitelist if conn_type is ConnectionType.MANUAL else ()
    return _add_whitelist_flags(
        NetPermissionFlags.NONE,
        addr,
        ranges,
        ConnectionDirection.OUT,
        whitelistrelay,
        whitelistforcerelay,
    )


@dataclass(frozen=True, slots=True)
class Permissions:
    """The node's permission configuration, answering per connection (Core
    ``CConnman`` members ``vWhitelistedRangeIncoming``, ``vWhitelistedRangeOutgoing``,
    the whitebind listening sockets, ``whitelist_relay``, ``whitelist_forcerelay``;
    src/net.h, src/net.cpp).

    Fields:
        whitelist: parsed ``-whitelist`` entries (either direction).
        whitebind: parsed ``-whitebind`` entries.
        whitelistrelay: ``-whitelistrelay`` (default True).
        whitelistforcerelay: ``-whitelistforcerelay`` (default False).
    """

    whitelist: tuple[WhitelistPermissions, ...] = ()
    whitebind: tuple[WhitebindPermissions, ...] = ()
    whitelistrelay: bool = DEFAULT_WHITELISTRELAY
    whitelistforcerelay: bool = DEFAULT_WHITELISTFORCERELAY

    @classmethod
    def from_options(
        cls,
        whitelist: Iterable[str] = (),
        whitebind: Iterable[str] = (),
        *,
        whitelistrelay: bool = DEFAULT_WHITELISTRELAY,
        whitelistforcerelay: bool = DEFAULT_WHITELISTFORCERELAY,
        cjdns: bool = False,
    ) -> Permissions:
        """Build from option strings like src/init.cpp (whitebind first, then
        whitelist; the first bad value stops startup).

        Raises:
            PermissionParseError: the first invalid value's Core error.
        """
        wb = tuple(WhitebindPermissions.parse(s, cjdns=cjdns) for s in whitebind)
        wl = tuple(WhitelistPermissions.parse(s, cjdns=cjdns) for s in whitelist)
        return cls(wl, wb, whitelistrelay, whitelistforcerelay)

    def inbound(
        self, addr: NetAddr, bind: Service | None, *, inbound_onion: bool = False
    ) -> NetPermissionFlags:
        """:func:`inbound_permissions` with this configuration."""
        return inbound_permissions(
            addr,
            bind,
            self.whitelist,
            self.whitebind,
            inbound_onion=inbound_onion,
            whitelistrelay=self.whitelistrelay,
            whitelistforcerelay=self.whitelistforcerelay,
        )

    def outbound(self, addr: NetAddr, conn_type: ConnectionType) -> NetPermissionFlags:
        """:func:`outbound_permissions` with this configuration."""
        return outbound_permissions(
            addr,
            self.whitelist,
            conn_type,
            whitelistrelay=self.whitelistrelay,
            whitelistforcerelay=self.whitelistforcerelay,
        )

    def listen_flags(self, bind: Service) -> NetPermissionFlags:
        """Flags of the listening socket bound to ``bind`` (Core ``Bind(addr, flags,
        ...)`` in ``CConnman::InitBinds``): the union of matching whitebind entries,
        still possibly ``IMPLICIT``; ``NONE`` for a plain ``-bind``."""
        return _listen_flags(bind, self.whitebind)
