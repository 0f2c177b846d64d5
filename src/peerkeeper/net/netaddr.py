"""Network addresses, services and subnets: a pure port of Bitcoin Core's address classes.

This module performs no I/O (no DNS, no sockets); it only parses, classifies and
(de)serialises addresses, following Bitcoin Core byte for byte:

* :class:`NetAddr` -- Core ``CNetAddr`` (src/netaddress.h, src/netaddress.cpp): an
  address of one of the storage networks IPv4, IPv6, Tor v3, I2P, CJDNS or "internal"
  (a hashed name used by addrman to remember DNS seeds).  It provides Core's
  classification predicates (``IsRFC1918`` ... ``IsRoutable``), ``ToStringAddr``,
  the legacy 16-byte ``addr`` (v1) encoding and the BIP155 ``addrv2`` encoding.
* :meth:`NetAddr.netgroup` -- Core ``NetGroupManager::GetGroup`` without an asmap
  (src/netgroup.cpp).
* :class:`Service` -- Core ``CService`` (address + TCP port) and the numeric part of
  ``Lookup``/``SplitHostPort`` (src/netbase.cpp, src/util/strencodings.cpp).
* :class:`SubNet` -- Core ``CSubNet`` (src/netaddress.cpp) and ``LookupSubNet``
  (src/netbase.cpp).
* :func:`is_bad_port` -- Core ``IsBadPort`` (src/netbase.cpp).
* :class:`Network` -- BIP155 network ids plus Core's internal ``NET_UNROUTABLE`` /
  ``NET_INTERNAL`` kinds; :attr:`Network.rpc_name` is Core ``GetNetworkName`` and
  :func:`parse_network` is Core ``ParseNetwork`` (src/netbase.cpp).

Parsing is numeric only: where Core would call ``getaddrinfo(AI_NUMERICHOST)`` we accept
strict dotted-quad IPv4 and RFC 4291 IPv6 text (optionally with a decimal ``%scope``).
libc-specific IPv4 shorthands (``127.1``, octal ``010.0.0.1``) are rejected.

Every failure to parse or decode raises :class:`AddrError` (a ``ValueError``).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "ADDR_CJDNS_SIZE",
    "ADDR_I2P_SIZE",
    "ADDR_INTERNAL_SIZE",
    "ADDR_IPV4_SIZE",
    "ADDR_IPV6_SIZE",
    "ADDR_TORV3_SIZE",
    "CJDNS_PREFIX",
    "I2P_SAM31_PORT",
    "INTERNAL_IN_IPV6_PREFIX",
    "IPV4_IN_IPV6_PREFIX",
    "MAX_ADDRV2_SIZE",
    "TORV2_IN_IPV6_PREFIX",
    "AddrError",
    "NetAddr",
    "Network",
    "Reachability",
    "Service",
    "SubNet",
    "is_bad_port",
    "parse_network",
    "split_host_port",
]


class AddrError(ValueError):
    """Raised for any address parse or decode failure (a ``ValueError`` subclass).

    Stands in for Core's failing ``LookupHost``/``LookupSubNet`` results and for the
    ``std::ios_base::failure`` thrown by ``CNetAddr::UnserializeV2Stream``
    (src/netaddress.h, src/netbase.cpp).
    """


class Network(enum.IntEnum):
    """Address network kinds.

    Values 1..6 are the BIP155 network ids (Core ``CNetAddr::BIP155Network``,
    src/netaddress.h).  ``UNROUTABLE`` and ``INTERNAL`` mirror Core's ``NET_UNROUTABLE``
    and ``NET_INTERNAL`` (src/netaddress.h ``enum Network``); they never appear on the
    wire.  ``TORV2`` is a parse-only id: Core ignores it in addrv2 and rejects torv2
    strings.

    Note that Core's own ``enum Network`` numbers differ (``NET_ONION=3 ... NET_INTERNAL=6``);
    :attr:`core_id` gives that number, which is what :meth:`NetAddr.netgroup` emits.
    """

    UNROUTABLE = 0
    IPV4 = 1
    IPV6 = 2
    TORV2 = 3
    TORV3 = 4
    I2P = 5
    CJDNS = 6
    INTERNAL = 255

    @property
    def rpc_name(self) -> str:
        """Core ``GetNetworkName`` (src/netbase.cpp): "ipv4", "onion", ... (``str``)."""
        return _RPC_NAMES[self]

    @property
    def core_id(self) -> int:
        """This network's value in Core's ``enum Network`` (src/netaddress.h), an ``int``.

        ``UNROUTABLE=0, IPV4=1, IPV6=2, TORV2/TORV3=3 (NET_ONION), I2P=4, CJDNS=5,
        INTERNAL=6``.  Used as the first byte of :meth:`NetAddr.netgroup`.
        """
        return _CORE_IDS[self]


_RPC_NAMES: dict[Network, str] = {
    Network.UNROUTABLE: "not_publicly_routable",
    Network.IPV4: "ipv4",
    Network.IPV6: "ipv6",
    Network.TORV2: "onion",
    Network.TORV3: "onion",
    Network.I2P: "i2p",
    Network.CJDNS: "cjdns",
    Network.INTERNAL: "internal",
}

_CORE_IDS: dict[Network, int] = {
    Network.UNROUTABLE: 0,
    Network.IPV4: 1,
    Network.IPV6: 2,
    Network.TORV2: 3,
    Network.TORV3: 3,
    Network.I2P: 4,
    Network.CJDNS: 5,
    Network.INTERNAL: 6,
}

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def parse_network(name: str) -> Network:
    """Map a network name to a :class:`Network`, like Core ``ParseNetwork`` (src/netbase.cpp).

    Case-insensitive (ASCII only).  Accepts "ipv4", "ipv6", "onion", "i2p", "cjdns";
    anything else (including the removed "tor") returns ``Network.UNROUTABLE``.
    Never raises.
    """
    return _PARSE_NETWORK.get(name.translate(_ASCII_LOWER), Network.UNROUTABLE)


_PARSE_NETWORK: dict[str, Network] = {
    "ipv4": Network.IPV4,
    "ipv6": Network.IPV6,
    "onion": Network.TORV3,
    "i2p": Network.I2P,
    "cjdns": Network.CJDNS,
}


class Reachability(enum.IntEnum):
    """Core's ``Reachability`` scores used by ``CNetAddr::GetReachabilityFrom``
    (src/netaddress.cpp); higher is better."""

    UNREACHABLE = 0
    DEFAULT = 1
    TEREDO = 2
    IPV6_WEAK = 3
    IPV4 = 4
    IPV6_STRONG = 5
    PRIVATE = 6


# --- constants (src/netaddress.h) -------------------------------------------------------

#: Prefix of an IPv6 address embedding an IPv4 address (``::ffff:0:0/96``).
IPV4_IN_IPV6_PREFIX = bytes((0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF))
#: Prefix of an IPv6 address embedding a (no longer supported) TORv2 address.
TORV2_IN_IPV6_PREFIX = bytes((0xFD, 0x87, 0xD8, 0x7E, 0xEB, 0x43))
#: Prefix of an IPv6 address embedding an "internal" address: 0xFD + sha256("bitcoin")[0:5].
INTERNAL_IN_IPV6_PREFIX = bytes((0xFD, 0x6B, 0x88, 0xC0, 0x87, 0x24))
#: First byte of every CJDNS address.
CJDNS_PREFIX = 0xFC

ADDR_IPV4_SIZE = 4
ADDR_IPV6_SIZE = 16
ADDR_TORV3_SIZE = 32
ADDR_I2P_SIZE = 32
ADDR_CJDNS_SIZE = 16
ADDR_INTERNAL_SIZE = 10
#: SAM 3.1 and earlier force the port of I2P connections to 0.
I2P_SAM31_PORT = 0
#: Maximum size of an addrv2 address payload (Core ``CNetAddr::MAX_ADDRV2_SIZE``).
MAX_ADDRV2_SIZE = 512

_ADDR_SIZES: dict[Network, int] = {
    Network.IPV4: ADDR_IPV4_SIZE,
    Network.IPV6: ADDR_IPV6_SIZE,
    Network.TORV3: ADDR_TORV3_SIZE,
    Network.I2P: ADDR_I2P_SIZE,
    Network.CJDNS: ADDR_CJDNS_SIZE,
    Network.INTERNAL: ADDR_INTERNAL_SIZE,
}

_ZERO4 = bytes(4)
_ONES4 = b"\xff\xff\xff\xff"
_ZERO16 = bytes(16)
_LOOPBACK6 = bytes(15) + b"\x01"
_RFC3849 = b"\x20\x01\x0d\xb8"
_RFC3964 = b"\x20\x02"
_RFC6052 = b"\x00\x64\xff\x9b" + bytes(8)
_RFC4380 = b"\x20\x01\x00\x00"
_RFC4862 = b"\xfe\x80" + bytes(6)
_RFC6145 = bytes(8) + b"\xff\xff\x00\x00"
_ORCHID = b"\x20\x01\x00"
_HE_NET = b"\x20\x01\x04\x70"

_NET_TEREDO = -1  # Core's private NET_TEREDO extension (src/netaddress.cpp GetExtNetwork)


# --- base32 (src/util/strencodings.cpp) -------------------------------------------------

_B32_DECODE: dict[str, int] = {}
for _i, _c in enumerate("abcdefghijklmnopqrstuvwxyz234567"):
    _B32_DECODE[_c] = _i
    _B32_DECODE[_c.upper()] = _i
del _i, _c


def _encode_base32(data: bytes, pad: bool = True) -> str:
    """Core ``EncodeBase32`` (src/util/strencodings.cpp): lowercase RFC 4648 base32."""
    s = base64.b32encode(data).decode("ascii").lower()
    return s if pad else s.rstrip("=")


def _decode_base32(s: str) -> bytes | None:
    """Core ``DecodeBase32`` (src/util/strencodings.cpp), including its padding rules.

    Length must be a multiple of 8; 1, 3, 4 or 6 trailing '=' are stripped; the
    remaining characters must be base32 (either case) and leftover bits must be zero.
    Returns ``None`` on failure.
    """
    if len(s) % 8:
        return None
    if s.endswith("="):
        s = s[:-1]
    if s.endswith("=="):
        s = s[:-2]
    if s.endswith("="):
        s = s[:-1]
    if s.endswith("=="):
        s = s[:-2]
    acc = 0
    bits = 0
    max_acc = (1 << (5 + 8 - 1)) - 1
    out = bytearray()
    table = _B32_DECODE
    for ch in s:
        v = table.get(ch)
        if v is None:
            return None
        acc = ((acc << 5) | v) & max_acc
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or ((acc << (8 - bits)) & 0xFF):
        return None
    return bytes(out)


# --- Tor v3 (src/netaddress.cpp namespace torv3) -----------------------------------------

_TORV3_VERSION = b"\x03"
_TORV3_TOTAL_LEN = ADDR_TORV3_SIZE + 2 + 1


def _torv3_checksum(pubkey: bytes) -> bytes:
    """Core ``torv3::Checksum``: SHA3-256(".onion checksum" | PUBKEY | VERSION)[:2]."""
    return hashlib.sha3_256(b".onion checksum" + pubkey + _TORV3_VERSION).digest()[:2]


# --- byte-level classification helpers (src/netaddress.cpp) ------------------------------


def _ipv4_routable(a: bytes) -> bool:
    """``IsRoutable`` for an IPv4 address (IsValid and none of the unroutable ranges)."""
    b0 = a[0]
    b1 = a[1]
    if b0 == 0 or b0 == 127 or b0 == 10:  # IsLocal (also covers INADDR_ANY), RFC1918
        return False
    if a == _ONES4:  # INADDR_NONE
        return False
    if b0 == 192:
        return b1 != 168 and not (b1 == 0 and a[2] == 2)  # RFC1918, RFC5737
    if b0 == 172:
        return not 16 <= b1 <= 31  # RFC1918
    if b0 == 198:
        return b1 != 18 and b1 != 19 and not (b1 == 51 and a[2] == 100)  # RFC2544, RFC5737
    if b0 == 169:
        return b1 != 254  # RFC3927
    if b0 == 100:
        return not 64 <= b1 <= 127  # RFC6598
    if b0 == 203:
        return not (b1 == 0 and a[2] == 113)  # RFC5737
    return True


def _ipv6_routable(a: bytes) -> bool:
    """``IsRoutable`` for an IPv6 address (IsValid and none of the unroutable ranges)."""
    b0 = a[0]
    if b0 & 0xFE == 0xFC:  # RFC4193
        return False
    if b0 == 0xFE:
        return a[:8] != _RFC4862
    if b0 == 0x20:
        if a[:4] == _RFC3849:  # !IsValid
            return False
        # RFC4843, RFC7343 (ORCHID, ORCHIDv2)
        return not (a[:3] == _ORCHID and (a[3] & 0xF0) in (0x10, 0x20))
    if b0 == 0:
        return a != _ZERO16 and a != _LOOPBACK6  # !IsValid, IsLocal
    return True


def _ipv6_to_string(a: bytes, scope_id: int) -> str:
    """Core ``IPv6ToString`` (src/netaddress.cpp): RFC 5952 zero compression + ``%scope``."""
    groups = [(a[i] << 8) | a[i + 1] for i in range(0, 16, 2)]
    longest_start = 0
    longest_len = 0
    cur_start = 0
    cur_len = 0
    for i, g in enumerate(groups):
        if g != 0:
            cur_start = i + 1
            cur_len = 0
            continue
        cur_len += 1
        if cur_len > longest_len:
            longest_start = cur_start
            longest_len = cur_len
    r = ""
    for i, g in enumerate(groups):
        if longest_len >= 2 and longest_start <= i < longest_start + longest_len:
            if i == longest_start:
                r += "::"
            continue
        r += ("" if (not r or r[-1] == ":") else ":") + format(g, "x")
    if scope_id != 0:
        r += f"%{scope_id}"
    return r


def _to_integral(s: str, maximum: int) -> int | None:
    """Core ``ToIntegral<uintN_t>`` (src/util/strencodings.h): only ASCII digits, in range."""
    if not s or not s.isascii() or not s.isdigit():
        return None
    stripped = s.lstrip("0")
    if len(stripped) > 20:
        return None
    n = int(stripped) if stripped else 0
    return n if n <= maximum else None


# --- NetAddr -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class NetAddr:
    """A network address, Core ``CNetAddr`` (src/netaddress.h, src/netaddress.cpp).

    Fields:
        network: the storage network -- ``IPV4``, ``IPV6``, ``TORV3``, ``I2P``, ``CJDNS``
            or ``INTERNAL`` (Core ``m_net``).
        addr: the raw address bytes (Core ``m_addr``), big-endian: 4 (IPv4), 16 (IPv6),
            32 (Tor v3 ed25519 pubkey), 32 (I2P destination hash), 16 (CJDNS) or
            10 (internal: first 10 bytes of sha256(name)).
        scope_id: IPv6 zone index (Core ``m_scope_id``); like Core it is ignored by
            ``==``, ordering and hashing, and only shown by ``str()``.

    Equality and ordering follow Core ``operator==``/``operator<``: ``(network, addr)``.
    Core's default-constructed ``CNetAddr`` is ``NetAddr(Network.IPV6, bytes(16))``
    (``::``, not valid).

    Raises:
        AddrError: if ``network`` is not a storage network or ``addr`` has the wrong
            length for it.
    """

    network: Network
    addr: bytes
    scope_id: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if type(self.network) is not Network:
            try:
                object.__setattr__(self, "network", Network(self.network))
            except ValueError as e:
                raise AddrError(f"unknown network {self.network!r}") from e
        if type(self.addr) is not bytes:
            object.__setattr__(self, "addr", bytes(self.addr))
        size = _ADDR_SIZES.get(self.network)
        if size is None:
            raise AddrError(f"{self.network.name} is not a storage network for an address")
        if len(self.addr) != size:
            raise AddrError(
                f"{self.network.name} address must be {size} bytes, got {len(self.addr)}"
            )

    # --- constructors ---------------------------------------------------------------

    @classmethod
    def parse(cls, s: str, cjdns: bool = False) -> NetAddr:
        """Parse a numeric address or a Tor v3 / I2P name (Core ``LookupHost`` with
        ``fAllowLookup=false``, src/netbase.cpp, and ``CNetAddr::SetSpecial``,
        src/netaddress.cpp).

        Accepts "1.2.3.4", "2001:db8::1", "fe80::1%3" (decimal zone index), the
        bracketed "[2001:db8::1]", "<56 base32>.onion" (checksum and version 3 checked;
        the ".onion" suffix is case-sensitive like Core) and "<52 base32>.b32.i2p".
        IPv4-mapped IPv6 text ("::ffff:1.2.3.4") becomes ``IPV4`` like Core
        ``SetLegacyIPv6``.

        Args:
            s: the address text.
            cjdns: when True, an IPv6 result in fc00::/8 becomes a ``CJDNS`` address.
                Core parses such strings as IPv6 and flips them only when CJDNS is
                reachable (``MaybeFlipIPv6toCJDNS``, src/netbase.cpp); callers pass
                their ``-cjdnsreachable`` setting here.

        Raises:
            AddrError: empty/NUL-containing input, Tor v2 or malformed onion/i2p names,
                non-numeric hosts, addresses in Core's "internal" range
                (fd6b:88c0:8724::/48, which Core refuses to resolve) and addresses in
                the TORv2-in-IPv6 range fd87:d87e:eb43::/48 (Core turns those into the
                invalid ``::``).
        """
        if not s:
            raise AddrError("empty address")
        host = s
        if host[0] == "[" and host[-1] == "]":
            host = host[1:-1]
        addr = _lookup_intern(host)
        if cjdns:
            addr = addr.maybe_flip_to_cjdns()
        return addr

    @classmethod
    def internal(cls, name: str) -> NetAddr:
        """An "internal" address naming ``name`` (Core ``CNetAddr::SetInternal``,
        src/netaddress.cpp): ``addr`` is sha256(name as UTF-8)[0:10].

        Raises:
            AddrError: if ``name`` is empty.
        """
        if not name:
            raise AddrError("internal address name must not be empty")
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return cls(Network.INTERNAL, digest[:ADDR_INTERNAL_SIZE])

    @classmethod
    def from_v1_bytes(cls, b: bytes | bytearray | memoryview) -> NetAddr:
        """Decode the legacy 16-byte addr encoding (Core ``CNetAddr::UnserializeV1Array``
        / ``SetLegacyIPv6``, src/netaddress.h, src/netaddress.cpp).

        ``::ffff:a.b.c.d`` -> ``IPV4``; ``INTERNAL_IN_IPV6_PREFIX`` -> ``INTERNAL``;
        ``TORV2_IN_IPV6_PREFIX`` -> the invalid ``::`` (Core ignores such addresses);
        anything else -> ``IPV6``.

        Raises:
            AddrError: if ``b`` is not exactly 16 bytes.
        """
        if len(b) != ADDR_IPV6_SIZE:
            raise AddrError(f"v1 address must be 16 bytes, got {len(b)}")
        if type(b) is not bytes:
            b = bytes(b)
        if b[:12] == IPV4_IN_IPV6_PREFIX:
            return trusted_netaddr(Network.IPV4, b[12:])
        if b[:6] == TORV2_IN_IPV6_PREFIX:
            return trusted_netaddr(Network.IPV6, _ZERO16)
        if b[:6] == INTERNAL_IN_IPV6_PREFIX:
            return trusted_netaddr(Network.INTERNAL, b[6:])
        return trusted_netaddr(Network.IPV6, b)

    @classmethod
    def from_bip155(cls, net_id: int, data: bytes | bytearray | memoryview) -> NetAddr | None:
        """Decode one BIP155 (addrv2) address (Core ``CNetAddr::UnserializeV2Stream`` and
        ``SetNetFromBIP155Network``, src/netaddress.h, src/netaddress.cpp).

        Args:
            net_id: the BIP155 network id byte (0..255).
            data: the address payload (its length is the CompactSize length).

        Returns:
            The address, or ``None`` when Core would silently ignore the entry
            (unserialising it as ``!IsValid()``): unknown network id, the TORv2 id (3),
            or an IPv6 payload carrying the IPv4-mapped or TORv2 prefix.  An IPv6 payload
            with Core's internal prefix becomes an ``INTERNAL`` address.  A CJDNS payload
            without the 0xFC prefix is returned (``is_valid()`` is then False), as Core.

        Raises:
            AddrError: payload longer than ``MAX_ADDRV2_SIZE`` ("Address too long"), or
                a known id (1, 2, 4, 5, 6) with the wrong length, with Core's message.
        """
        size = len(data)
        if size > MAX_ADDRV2_SIZE:
            raise AddrError(f"Address too long: {size} > {MAX_ADDRV2_SIZE}")
        if not 0 <= net_id <= 0xFF:
            raise AddrError(f"BIP155 network id {net_id} out of range")
        if type(data) is not bytes:
            data = bytes(data)
        if net_id == 1:
            if size != ADDR_IPV4_SIZE:
                raise AddrError(
                    f"BIP155 IPv4 address with length {size} (should be {ADDR_IPV4_SIZE})"
                )
            return trusted_netaddr(Network.IPV4, data)
        if net_id == 2:
            if size != ADDR_IPV6_SIZE:
                raise AddrError(
                    f"BIP155 IPv6 address with length {size} (should be {ADDR_IPV6_SIZE})"
                )
            if data[:6] == INTERNAL_IN_IPV6_PREFIX:
                return trusted_netaddr(Network.INTERNAL, data[6:])
            if data[:12] == IPV4_IN_IPV6_PREFIX or data[:6] == TORV2_IN_IPV6_PREFIX:
                return None
            return trusted_netaddr(Network.IPV6, data)
        if net_id == 4:
            if size != ADDR_TORV3_SIZE:
                raise AddrError(
                    f"BIP155 TORv3 address with length {size} (should be {ADDR_TORV3_SIZE})"
                )
            return trusted_netaddr(Network.TORV3, data)
        if net_id == 5:
            if size != ADDR_I2P_SIZE:
                raise AddrError(
                    f"BIP155 I2P address with length {size} (should be {ADDR_I2P_SIZE})"
                )
            return trusted_netaddr(Network.I2P, data)
        if net_id == 6:
            if size != ADDR_CJDNS_SIZE:
                raise AddrError(
                    f"BIP155 CJDNS address with length {size} (should be {ADDR_CJDNS_SIZE})"
                )
            return trusted_netaddr(Network.CJDNS, data)
        # TORV2 (3) and unknown ids: ignored, like Core.
        return None

    # --- encodings ------------------------------------------------------------------

    def to_v1_bytes(self) -> bytes | None:
        """The legacy 16-byte addr encoding (Core ``CNetAddr::SerializeV1Array``,
        src/netaddress.h), as ``bytes``, or ``None`` if not ``is_addr_v1_compatible()``.

        IPv6 as-is, IPv4 as ``::ffff:a.b.c.d``, internal as
        ``INTERNAL_IN_IPV6_PREFIX + addr``.  Tor v3, I2P and CJDNS cannot be expressed
        (Core writes 16 zero bytes for them but never sends them to v1 peers, see
        ``IsAddrCompatible`` in src/net_processing.cpp); callers skip them or use
        ``bytes(16)`` where Core would.
        """
        net = self.network
        if net is Network.IPV6:
            return self.addr
        if net is Network.IPV4:
            return IPV4_IN_IPV6_PREFIX + self.addr
        if net is Network.INTERNAL:
            return INTERNAL_IN_IPV6_PREFIX + self.addr
        return None

    def to_bip155(self) -> tuple[int, bytes]:
        """``(network id, payload)`` for addrv2 (Core ``SerializeV2Stream`` and
        ``GetBIP155Network``, src/netaddress.h, src/netaddress.cpp).

        Internal addresses are written as IPv6 (id 2) with their v1 16-byte form, as
        Core does for addrman.  Never raises.
        """
        net = self.network
        if net is Network.INTERNAL:
            return (int(Network.IPV6), INTERNAL_IN_IPV6_PREFIX + self.addr)
        return (int(net), self.addr)

    def get_addr_bytes(self) -> bytes:
        """Core ``CNetAddr::GetAddrBytes`` (src/netaddress.cpp): the v1 16-byte form for
        v1-compatible addresses, else the raw ``addr`` bytes.  Used in addrman keys."""
        v1 = self.to_v1_bytes()
        return self.addr if v1 is None else v1

    # --- text -----------------------------------------------------------------------

    def __str__(self) -> str:
        """Core ``CNetAddr::ToStringAddr`` (src/netaddress.cpp).

        "1.2.3.4", RFC 5952 IPv6 ("2001:db8::1", "fe80::1%3"), "<56>.onion",
        "<52>.b32.i2p", CJDNS as IPv6 text, "<16>.internal".
        """
        net = self.network
        a = self.addr
        if net is Network.IPV4:
            return f"{a[0]}.{a[1]}.{a[2]}.{a[3]}"
        if net is Network.IPV6:
            return _ipv6_to_string(a, self.scope_id)
        if net is Network.TORV3:
            return _encode_base32(a + _torv3_checksum(a) + _TORV3_VERSION) + ".onion"
        if net is Network.I2P:
            return _encode_base32(a, pad=False) + ".b32.i2p"
        if net is Network.CJDNS:
            return _ipv6_to_string(a, 0)
        return _encode_base32(a) + ".internal"

    # --- classification (src/netaddress.h / src/netaddress.cpp) ------------------------

    def is_ipv4(self) -> bool:
        """Core ``CNetAddr::IsIPv4`` (src/netaddress.h): stored as IPv4."""
        return self.network is Network.IPV4

    def is_ipv6(self) -> bool:
        """Core ``CNetAddr::IsIPv6`` (src/netaddress.h): stored as IPv6 (not CJDNS)."""
        return self.network is Network.IPV6

    def is_tor(self) -> bool:
        """Core ``CNetAddr::IsTor`` (src/netaddress.h)."""
        return self.network is Network.TORV3

    def is_i2p(self) -> bool:
        """Core ``CNetAddr::IsI2P`` (src/netaddress.h)."""
        return self.network is Network.I2P

    def is_cjdns(self) -> bool:
        """Core ``CNetAddr::IsCJDNS`` (src/netaddress.h)."""
        return self.network is Network.CJDNS

    def is_internal(self) -> bool:
        """Core ``CNetAddr::IsInternal`` (src/netaddress.cpp)."""
        return self.network is Network.INTERNAL

    def is_privacy_net(self) -> bool:
        """Core ``CNetAddr::IsPrivacyNet`` (src/netaddress.h): Tor or I2P."""
        return self.network is Network.TORV3 or self.network is Network.I2P

    def has_cjdns_prefix(self) -> bool:
        """Core ``CNetAddr::HasCJDNSPrefix`` (src/netaddress.h): first byte is 0xFC."""
        return self.addr[0] == CJDNS_PREFIX

    def is_addr_v1_compatible(self) -> bool:
        """Core ``CNetAddr::IsAddrV1Compatible`` (src/netaddress.cpp): IPv4, IPv6, internal."""
        net = self.network
        return net is Network.IPV4 or net is Network.IPV6 or net is Network.INTERNAL

    def is_bind_any(self) -> bool:
        """Core ``CNetAddr::IsBindAny`` (src/netaddress.cpp): 0.0.0.0 or ``::``."""
        net = self.network
        if net is Network.IPV4:
            return self.addr == _ZERO4
        if net is Network.IPV6:
            return self.addr == _ZERO16
        return False

    def is_rfc1918(self) -> bool:
        """Core ``CNetAddr::IsRFC1918`` (src/netaddress.cpp): 10/8, 192.168/16, 172.16/12."""
        if self.network is not Network.IPV4:
            return False
        a = self.addr
        return a[0] == 10 or (a[0] == 192 and a[1] == 168) or (a[0] == 172 and 16 <= a[1] <= 31)

    def is_rfc2544(self) -> bool:
        """Core ``CNetAddr::IsRFC2544`` (src/netaddress.cpp): 198.18.0.0/15."""
        a = self.addr
        return self.network is Network.IPV4 and a[0] == 198 and (a[1] == 18 or a[1] == 19)

    def is_rfc3927(self) -> bool:
        """Core ``CNetAddr::IsRFC3927`` (src/netaddress.cpp): 169.254.0.0/16."""
        return self.network is Network.IPV4 and self.addr[:2] == b"\xa9\xfe"

    def is_rfc6598(self) -> bool:
        """Core ``CNetAddr::IsRFC6598`` (src/netaddress.cpp): 100.64.0.0/10."""
        a = self.addr
        return self.network is Network.IPV4 and a[0] == 100 and 64 <= a[1] <= 127

    def is_rfc5737(self) -> bool:
        """Core ``CNetAddr::IsRFC5737`` (src/netaddress.cpp): 192.0.2/24, 198.51.100/24,
        203.0.113/24."""
        return self.network is Network.IPV4 and self.addr[:3] in (
            b"\xc0\x00\x02",
            b"\xc6\x33\x64",
            b"\xcb\x00\x71",
        )

    def is_rfc3849(self) -> bool:
        """Core ``CNetAddr::IsRFC3849`` (src/netaddress.cpp): 2001:db8::/32."""
        return self.network is Network.IPV6 and self.addr[:4] == _RFC3849

    def is_rfc3964(self) -> bool:
        """Core ``CNetAddr::IsRFC3964`` (src/netaddress.cpp): 6to4, 2002::/16."""
        return self.network is Network.IPV6 and self.addr[:2] == _RFC3964

    def is_rfc6052(self) -> bool:
        """Core ``CNetAddr::IsRFC6052`` (src/netaddress.cpp): 64:ff9b::/96."""
        return self.network is Network.IPV6 and self.addr[:12] == _RFC6052

    def is_rfc4380(self) -> bool:
        """Core ``CNetAddr::IsRFC4380`` (src/netaddress.cpp): Teredo, 2001::/32."""
        return self.network is Network.IPV6 and self.addr[:4] == _RFC4380

    def is_rfc4862(self) -> bool:
        """Core ``CNetAddr::IsRFC4862`` (src/netaddress.cpp): fe80::/64."""
        return self.network is Network.IPV6 and self.addr[:8] == _RFC4862

    def is_rfc4193(self) -> bool:
        """Core ``CNetAddr::IsRFC4193`` (src/netaddress.cpp): unique local fc00::/7."""
        return self.network is Network.IPV6 and (self.addr[0] & 0xFE) == 0xFC

    def is_rfc6145(self) -> bool:
        """Core ``CNetAddr::IsRFC6145`` (src/netaddress.cpp): ::ffff:0:0:0/96."""
        return self.network is Network.IPV6 and self.addr[:12] == _RFC6145

    def is_rfc4843(self) -> bool:
        """Core ``CNetAddr::IsRFC4843`` (src/netaddress.cpp): ORCHID 2001:10::/28."""
        a = self.addr
        return self.network is Network.IPV6 and a[:3] == _ORCHID and (a[3] & 0xF0) == 0x10

    def is_rfc7343(self) -> bool:
        """Core ``CNetAddr::IsRFC7343`` (src/netaddress.cpp): ORCHIDv2 2001:20::/28."""
        a = self.addr
        return self.network is Network.IPV6 and a[:3] == _ORCHID and (a[3] & 0xF0) == 0x20

    def is_he_net(self) -> bool:
        """Core ``CNetAddr::IsHeNet`` (src/netaddress.cpp): Hurricane Electric 2001:470::/36.

        (Core's check, and so this one, compares the first 32 bits only.)
        """
        return self.network is Network.IPV6 and self.addr[:4] == _HE_NET

    def is_local(self) -> bool:
        """Core ``CNetAddr::IsLocal`` (src/netaddress.cpp): 127.0.0.0/8, 0.0.0.0/8, ::1."""
        net = self.network
        if net is Network.IPV4:
            return self.addr[0] == 127 or self.addr[0] == 0
        return net is Network.IPV6 and self.addr == _LOOPBACK6

    def is_valid(self) -> bool:
        """Core ``CNetAddr::IsValid`` (src/netaddress.cpp): could refer to a real host.

        False for ``::``, 2001:db8::/32, 0.0.0.0, 255.255.255.255, CJDNS without the
        0xFC prefix, and every internal address.
        """
        net = self.network
        a = self.addr
        if net is Network.IPV4:
            return a != _ZERO4 and a != _ONES4
        if net is Network.IPV6:
            return a != _ZERO16 and a[:4] != _RFC3849
        if net is Network.CJDNS:
            return a[0] == CJDNS_PREFIX
        return net is not Network.INTERNAL

    def is_routable(self) -> bool:
        """Core ``CNetAddr::IsRoutable`` (src/netaddress.cpp): valid and publicly routable.

        False for RFC1918, RFC2544, RFC3927, RFC4862, RFC6598, RFC5737, RFC4193,
        RFC4843, RFC7343, local and internal addresses.
        """
        net = self.network
        if net is Network.IPV4:
            return _ipv4_routable(self.addr)
        if net is Network.IPV6:
            return _ipv6_routable(self.addr)
        if net is Network.CJDNS:
            return self.addr[0] == CJDNS_PREFIX
        return net is not Network.INTERNAL

    def is_relayable(self) -> bool:
        """Core ``CNetAddr::IsRelayable`` (src/netaddress.h): IPv4/IPv6/Tor/I2P/CJDNS."""
        return self.network is not Network.INTERNAL

    def has_linked_ipv4(self) -> bool:
        """Core ``CNetAddr::HasLinkedIPv4`` (src/netaddress.cpp): routable and IPv4, or
        IPv6 embedding one (RFC6145, RFC6052, RFC3964 6to4, RFC4380 Teredo)."""
        if not self.is_routable():
            return False
        return (
            self.network is Network.IPV4
            or self.is_rfc6145()
            or self.is_rfc6052()
            or self.is_rfc3964()
            or self.is_rfc4380()
        )

    def get_linked_ipv4(self) -> int:
        """Core ``CNetAddr::GetLinkedIPv4`` (src/netaddress.cpp): the (embedded) IPv4
        address as a big-endian ``int`` (Teredo's is bit-flipped back).

        Unlike ``has_linked_ipv4`` this does not require routability, like Core.

        Raises:
            AddrError: if the address has no IPv4 form (Core asserts).
        """
        a = self.addr
        if self.network is Network.IPV4:
            return int.from_bytes(a, "big")
        if self.is_rfc6052() or self.is_rfc6145():
            return int.from_bytes(a[12:], "big")
        if self.is_rfc3964():
            return int.from_bytes(a[2:6], "big")
        if self.is_rfc4380():
            return int.from_bytes(a[12:], "big") ^ 0xFFFFFFFF
        raise AddrError(f"{self} has no linked IPv4 address")

    def get_network(self) -> Network:
        """Core ``CNetAddr::GetNetwork`` (src/netaddress.cpp): ``INTERNAL`` for internal
        addresses, ``UNROUTABLE`` if not routable, else the storage network."""
        if self.network is Network.INTERNAL:
            return Network.INTERNAL
        if not self.is_routable():
            return Network.UNROUTABLE
        return self.network

    def get_net_class(self) -> Network:
        """Core ``CNetAddr::GetNetClass`` (src/netaddress.cpp): like ``get_network`` but
        ``IPV4`` for routable IPv6 addresses that embed an IPv4 address."""
        if self.network is Network.INTERNAL:
            return Network.INTERNAL
        if not self.is_routable():
            return Network.UNROUTABLE
        if self.has_linked_ipv4():
            return Network.IPV4
        return self.network

    def netgroup(self) -> bytes:
        """Core ``NetGroupManager::GetGroup`` without an asmap (src/netgroup.cpp), as bytes.

        First byte is ``get_net_class().core_id`` (Core's ``enum Network`` value).  Then:
        local/unroutable -> nothing; internal -> the 10 address bytes; linked IPv4 ->
        the /16; Tor and I2P -> first 4 bits; CJDNS -> first 12 bits; he.net -> /36;
        other IPv6 -> /32 (partial bytes padded with 1-bits).  Never raises.
        """
        net = self.network
        a = self.addr
        if net is Network.IPV4:
            if _ipv4_routable(a):
                return bytes((1, a[0], a[1]))
            return b"\x00"
        if net is Network.IPV6:
            if not _ipv6_routable(a):
                return b"\x00"
            b0 = a[0]
            if b0 == 0x20:
                b1 = a[1]
                if b1 == 0x02:  # RFC3964 6to4
                    return bytes((1, a[2], a[3]))
                if b1 == 0x01:
                    if a[2] == 0 and a[3] == 0:  # RFC4380 Teredo
                        return bytes((1, a[12] ^ 0xFF, a[13] ^ 0xFF))
                    if a[2] == 0x04 and a[3] == 0x70:  # he.net /36
                        return b"\x02" + a[:4] + bytes((a[4] | 0x0F,))
            elif b0 == 0 and (a[:12] == _RFC6145 or a[:12] == _RFC6052):
                return bytes((1, a[12], a[13]))
            return b"\x02" + a[:4]
        if net is Network.TORV3:
            return bytes((3, a[0] | 0x0F))
        if net is Network.I2P:
            return bytes((4, a[0] | 0x0F))
        if net is Network.CJDNS:
            if a[0] != CJDNS_PREFIX:
                return b"\x00"
            return bytes((5, a[0], a[1] | 0x0F))
        return b"\x06" + a

    def get_reachability_from(self, partner: NetAddr) -> Reachability:
        """Core ``CNetAddr::GetReachabilityFrom`` (src/netaddress.cpp): how well a peer at
        ``partner`` can reach this (local) address.  Never raises."""
        if not self.is_routable() or self.is_internal():
            return Reachability.UNREACHABLE
        ours = _ext_network(self)
        theirs = _ext_network(partner)
        tunnel = self.is_rfc3964() or self.is_rfc6052() or self.is_rfc6145()
        R = Reachability
        if theirs == Network.IPV4:
            return R.IPV4 if ours == Network.IPV4 else R.DEFAULT
        if theirs == Network.IPV6:
            if ours == _NET_TEREDO:
                return R.TEREDO
            if ours == Network.IPV4:
                return R.IPV4
            if ours == Network.IPV6:
                return R.IPV6_WEAK if tunnel else R.IPV6_STRONG
            return R.DEFAULT
        if theirs == Network.TORV3:
            if ours == Network.IPV4:
                return R.IPV4
            return R.PRIVATE if ours == Network.TORV3 else R.DEFAULT
        if theirs == Network.I2P:
            return R.PRIVATE if ours == Network.I2P else R.DEFAULT
        if theirs == Network.CJDNS:
            return R.PRIVATE if ours == Network.CJDNS else R.DEFAULT
        if ours == _NET_TEREDO:
            return R.TEREDO
        if ours == Network.IPV6:
            return R.IPV6_WEAK
        if ours == Network.IPV4:
            return R.IPV4
        if ours == Network.TORV3 and theirs != _NET_TEREDO:
            return R.PRIVATE  # either from Tor, or don't care about our address
        return R.DEFAULT

    def maybe_flip_to_cjdns(self) -> NetAddr:
        """Core ``MaybeFlipIPv6toCJDNS`` (src/netbase.cpp) for a caller that has CJDNS
        reachable: an IPv6 address in fc00::/8 becomes a ``CJDNS`` one; others unchanged."""
        if self.network is Network.IPV6 and self.addr[0] == CJDNS_PREFIX:
            return NetAddr(Network.CJDNS, self.addr)
        return self


def _ext_network(addr: NetAddr) -> int:
    """Core ``GetExtNetwork`` (src/netaddress.cpp): Teredo is its own network."""
    if addr.is_rfc4380():
        return _NET_TEREDO
    return int(addr.get_network())


def _set_special(s: str) -> NetAddr | None:
    """Core ``CNetAddr::SetSpecial`` = ``SetTor`` then ``SetI2P`` (src/netaddress.cpp).

    Returns ``None`` if ``s`` is not a valid Tor v3 or I2P name.
    """
    if s.endswith(".onion"):
        raw = _decode_base32(s[:-6])
        if raw is not None and len(raw) == _TORV3_TOTAL_LEN:
            pubkey = raw[:ADDR_TORV3_SIZE]
            if raw[34:35] == _TORV3_VERSION and raw[32:34] == _torv3_checksum(pubkey):
                return NetAddr(Network.TORV3, pubkey)
        return None
    if len(s) == 52 + 8 and s[52:].lower() == ".b32.i2p":
        raw = _decode_base32(s[:52] + "====")
        if raw is not None and len(raw) == ADDR_I2P_SIZE:
            return NetAddr(Network.I2P, raw)
    return None


def _parse_numeric(host: str) -> NetAddr:
    """Numeric host parsing standing in for ``getaddrinfo(AI_NUMERICHOST)`` followed by
    ``CNetAddr(in_addr)`` / ``CNetAddr(in6_addr, scope)`` (src/netbase.cpp,
    src/netaddress.cpp).  Raises AddrError."""
    if ":" in host:
        text, sep, scope = host.partition("%")
        scope_id = 0
        if sep:
            n = _to_integral(scope, 0xFFFFFFFF)
            if n is None:
                raise AddrError(f"invalid IPv6 zone index in {host!r} (must be decimal)")
            scope_id = n
        try:
            raw = ipaddress.IPv6Address(text).packed
        except ValueError as e:
            raise AddrError(f"invalid address {host!r}") from e
        if raw[:12] == IPV4_IN_IPV6_PREFIX:
            return NetAddr(Network.IPV4, raw[12:])
        if raw[:6] == TORV2_IN_IPV6_PREFIX:
            raise AddrError(f"{host!r} is in the TORv2-in-IPv6 range, which Core ignores")
        if raw[:6] == INTERNAL_IN_IPV6_PREFIX:
            raise AddrError(f"{host!r} is in Core's internal address range")
        return NetAddr(Network.IPV6, raw, scope_id)
    try:
        raw = ipaddress.IPv4Address(host).packed
    except ValueError as e:
        raise AddrError(f"invalid address {host!r}") from e
    return NetAddr(Network.IPV4, raw)


def _lookup_intern(host: str) -> NetAddr:
    """Core ``LookupIntern`` (src/netbase.cpp) without DNS: Tor/I2P name or numeric IP;
    internal results are refused.  Raises AddrError."""
    if not host:
        raise AddrError("empty address")
    if "\0" in host:
        raise AddrError("address contains a NUL character")
    if not host.isascii():
        raise AddrError(f"invalid address {host!r}")
    special = _set_special(host)
    if special is not None:
        return special
    if host.endswith(".onion"):
        raise AddrError(f"invalid onion address {host!r} (only valid Tor v3 is supported)")
    if host.lower().endswith(".b32.i2p"):
        raise AddrError(f"invalid I2P address {host!r}")
    return _parse_numeric(host)


# --- host:port --------------------------------------------------------------------------


def split_host_port(s: str, default_port: int = 0) -> tuple[str, int, bool]:
    """Split "host:port" like Core ``SplitHostPort`` (src/util/strencodings.cpp).

    Returns ``(host, port, valid)``.  The colon is a port separator if it is the only
    one, the first character, or follows "[...]".  If the text after it is a decimal
    number in 0..65535 it becomes ``port`` and is stripped from ``host`` (``valid`` is
    False for port 0); otherwise ``host`` keeps it, ``port`` is ``default_port`` and
    ``valid`` is False.  One pair of surrounding brackets is removed from ``host``.
    Never raises.
    """
    valid = False
    port = default_port
    colon = s.rfind(":")
    have_colon = colon != -1
    bracketed = have_colon and s[0] == "[" and s[colon - 1] == "]"
    multi_colon = have_colon and colon != 0 and s.rfind(":", 0, colon) != -1
    if have_colon and (colon == 0 or bracketed or not multi_colon):
        n = _to_integral(s[colon + 1 :], 0xFFFF)
        if n is not None:
            s = s[:colon]
            port = n
            valid = n != 0
    else:
        valid = True
    if s and s[0] == "[" and s[-1] == "]":
        return s[1:-1], port, valid
    return s, port, valid


# --- Service -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Service:
    """An address and TCP port, Core ``CService`` (src/netaddress.h, src/netaddress.cpp).

    Equality/ordering as Core: ``(addr, port)``.

    Raises:
        AddrError: if ``port`` is not in 0..65535.
    """

    addr: NetAddr
    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise AddrError(f"port {self.port} out of range")

    @classmethod
    def parse(cls, s: str, default_port: int, cjdns: bool = False) -> Service:
        """Parse "host[:port]" numerically (Core ``Lookup``/``LookupNumeric`` with
        ``fAllowLookup=false``, src/netbase.cpp).

        Examples: "1.2.3.4:8333", "1.2.3.4" (``default_port``), "[2001:db8::1]:8333",
        "2001:db8::1" (no port), "<onion>.onion:8333", "<i2p>.b32.i2p:0".  An explicit
        port 0 is kept (Core's ``Lookup`` also keeps it).  ``cjdns`` as in
        :meth:`NetAddr.parse`.

        Raises:
            AddrError: empty input, NUL characters, a malformed port (the host then
                keeps the ":junk" and fails, like Core), or an unparsable host (see
                :meth:`NetAddr.parse`).
        """
        if not s:
            raise AddrError("empty address")
        if "\0" in s:
            raise AddrError("address contains a NUL character")
        host, port, _ = split_host_port(s, default_port)
        addr = _lookup_intern(host)
        if cjdns:
            addr = addr.maybe_flip_to_cjdns()
        return cls(addr, port)

    def get_key(self) -> bytes:
        """Core ``CService::GetKey`` (src/netaddress.cpp): ``get_addr_bytes()`` + big-endian
        port."""
        return self.addr.get_addr_bytes() + self.port.to_bytes(2, "big")

    def __str__(self) -> str:
        """Core ``CService::ToStringAddrPort`` (src/netaddress.cpp): "1.2.3.4:8333",
        "x.onion:8333", "x.b32.i2p:0", "x.internal:0", "[2001:db8::1]:8333" (IPv6 and
        CJDNS are bracketed)."""
        net = self.addr.network
        if net is Network.IPV6 or net is Network.CJDNS:
            return f"[{self.addr}]:{self.port}"
        return f"{self.addr}:{self.port}"


# --- SubNet ------------------------------------------------------------------------------


# -- trusted constructors for decoding hot paths ------------------------------------------
# The wire decoders build an address for every entry of a 1000-entry addr message; the
# validating dataclass __init__ costs about twice as much as filling the slots directly.
# Callers guarantee the invariants __post_init__ would check (network is a storage
# Network, addr has its exact size, port fits 16 bits).

_object_new = object.__new__
_set_network = NetAddr.__dict__["network"].__set__
_set_addr = NetAddr.__dict__["addr"].__set__
_set_scope = NetAddr.__dict__["scope_id"].__set__
_set_svc_addr = Service.__dict__["addr"].__set__
_set_svc_port = Service.__dict__["port"].__set__


def trusted_netaddr(network: Network, addr: bytes) -> NetAddr:
    """A NetAddr from parts the caller has validated (``addr`` has ``network``'s exact size).

    For wire decoders on their hot path; anyone else should call ``NetAddr(network,
    addr)``, which checks.
    """
    obj: NetAddr = _object_new(NetAddr)
    _set_network(obj, network)
    _set_addr(obj, addr)
    _set_scope(obj, 0)
    return obj


def trusted_service(addr: NetAddr, port: int) -> Service:
    """A Service from a valid NetAddr and a 16-bit port, without re-validation.

    For decoders that read the port as an unsigned 16-bit field; anyone else
    should call ``Service(addr, port)``, which checks the range.
    """
    obj: Service = _object_new(Service)
    _set_svc_addr(obj, addr)
    _set_svc_port(obj, port)
    return obj


def _mask_valid(mask: bytes) -> bool:
    """No 1-bits after a 0-bit (Core ``NetmaskBits`` loop in ``CSubNet(addr, mask)``)."""
    inv = int.from_bytes(mask, "big") ^ ((1 << (8 * len(mask))) - 1)
    return inv & (inv + 1) == 0


def _apply_mask(addr: NetAddr, mask: bytes) -> NetAddr:
    masked = bytes(x & y for x, y in zip(addr.addr, mask, strict=True))
    return NetAddr(addr.network, masked, addr.scope_id)


@dataclass(frozen=True, slots=True)
class SubNet:
    """A subnet, Core ``CSubNet`` (src/netaddress.h, src/netaddress.cpp).

    Fields:
        network: the (normalised) network address.
        netmask: mask bytes, same length as ``network.addr``.  For Tor/I2P/CJDNS
            single-host subnets it is all zeros (Core leaves its netmask zeroed) and
            matching is by equality.

    Instances are normally built by :meth:`parse`, :meth:`from_prefix`,
    :meth:`from_netmask` or :meth:`single`, which raise on inputs for which Core builds
    an invalid subnet.  A directly constructed instance may be invalid; then
    :meth:`is_valid` is False and :meth:`match` always returns False.
    """

    network: NetAddr
    netmask: bytes

    @classmethod
    def from_prefix(cls, addr: NetAddr, bits: int) -> SubNet:
        """Core ``CSubNet(const CNetAddr&, uint8_t mask)`` (src/netaddress.cpp): a CIDR
        subnet; the network is normalised (host bits cleared).

        Raises:
            AddrError: ``addr`` is not IPv4/IPv6, or ``bits`` is not in 0..32 / 0..128.
        """
        net = addr.network
        width = 8 * len(addr.addr)
        if (net is not Network.IPV4 and net is not Network.IPV6) or not 0 <= bits <= width:
            raise AddrError(f"invalid subnet {addr}/{bits}")
        mask = (((1 << bits) - 1) << (width - bits)).to_bytes(width // 8, "big")
        return cls(_apply_mask(addr, mask), mask)

    @classmethod
    def from_netmask(cls, addr: NetAddr, mask: NetAddr) -> SubNet:
        """Core ``CSubNet(const CNetAddr&, const CNetAddr& mask)`` (src/netaddress.cpp).

        Raises:
            AddrError: ``addr`` is not IPv4/IPv6, ``mask`` is of another network, or the
                mask has 1-bits after 0-bits.
        """
        net = addr.network
        if (net is not Network.IPV4 and net is not Network.IPV6) or mask.network is not net:
            raise AddrError(f"netmask {mask} does not fit address {addr}")
        if not _mask_valid(mask.addr):
            raise AddrError(f"invalid netmask {mask}")
        return cls(_apply_mask(addr, mask.addr), mask.addr)

    @classmethod
    def single(cls, addr: NetAddr) -> SubNet:
        """Core ``CSubNet(const CNetAddr&)`` (src/netaddress.cpp): a single-host subnet
        (/32, /128, or an exact Tor/I2P/CJDNS address).

        Raises:
            AddrError: for internal addresses (Core makes an invalid subnet).
        """
        net = addr.network
        if net is Network.IPV4 or net is Network.IPV6:
            return cls(addr, b"\xff" * len(addr.addr))
        if net is Network.INTERNAL:
            raise AddrError("an internal address cannot form a subnet")
        return cls(addr, bytes(len(addr.addr)))

    @classmethod
    def parse(cls, s: str, cjdns: bool = False) -> SubNet:
        """Parse a subnet like Core ``LookupSubNet`` (src/netbase.cpp).

        "1.2.3.0/24", "1.2.3.0/255.255.255.0", "2001:db8::/32", a single address
        (host subnet, including Tor/I2P names).  The part after the last '/' is a
        CIDR length if it is a plain decimal number 0..255 (no sign), else a full
        netmask address.  ``cjdns`` as in :meth:`NetAddr.parse` (a CJDNS address only
        forms single-host subnets, as in Core).

        Raises:
            AddrError: empty/NUL input, unparsable address or netmask, CIDR length out of
                range for the family, family mismatch, or a non-contiguous netmask.
        """
        if "\0" in s:
            raise AddrError("subnet contains a NUL character")
        slash = s.rfind("/")
        addr_str = s if slash == -1 else s[:slash]
        try:
            addr = NetAddr.parse(addr_str, cjdns=cjdns)
        except AddrError as e:
            raise AddrError(f"invalid subnet {s!r}: {e}") from e
        if slash == -1:
            return cls.single(addr)
        mask_str = s[slash + 1 :]
        bits = _to_integral(mask_str, 0xFF)
        if bits is not None:
            return cls.from_prefix(addr, bits)
        try:
            mask = NetAddr.parse(mask_str)
        except AddrError as e:
            raise AddrError(f"invalid netmask in subnet {s!r}: {e}") from e
        return cls.from_netmask(addr, mask)

    def is_valid(self) -> bool:
        """Core ``CSubNet::IsValid`` (src/netaddress.cpp): True iff this value is one a
        valid Core ``CSubNet`` can hold (IPv4/IPv6 with a contiguous, same-length mask and
        a normalised network; or Tor/I2P/CJDNS with a zero mask)."""
        net = self.network.network
        a = self.network.addr
        m = self.netmask
        if len(m) != len(a):
            return False
        if net is Network.IPV4 or net is Network.IPV6:
            if not _mask_valid(m):
                return False
            return all(x & y == x for x, y in zip(a, m, strict=True))
        if net is Network.INTERNAL:
            return False
        return not any(m)

    def match(self, addr: NetAddr) -> bool:
        """Core ``CSubNet::Match`` (src/netaddress.cpp): True iff the subnet is valid,
        ``addr`` is valid, of the same network, and inside the subnet.  Never raises."""
        if not self.is_valid() or not addr.is_valid():
            return False
        net = self.network
        if net.network is not addr.network:
            return False
        if net.network is Network.IPV4 or net.network is Network.IPV6:
            width = len(addr.addr)
            masked = int.from_bytes(addr.addr, "big") & int.from_bytes(self.netmask, "big")
            return masked.to_bytes(width, "big") == net.addr
        return addr == net

    def __str__(self) -> str:
        """Core ``CSubNet::ToString`` (src/netaddress.cpp): "1.2.3.0/24", "::/0"; non-IP
        subnets print just the address."""
        net = self.network.network
        if net is Network.IPV4 or net is Network.IPV6:
            cidr = 0
            for b in self.netmask:
                if b == 0:
                    break
                cidr += b.bit_count()
            return f"{self.network}/{cidr}"
        return str(self.network)


# --- bad ports (src/netbase.cpp IsBadPort) -------------------------------------------------

_BAD_PORTS: frozenset[int] = frozenset(
    (
        1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87,
        95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143,
        161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554,
        556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3306, 3389,
        3659, 4045, 5060, 5061, 5432, 5900, 6000, 6566, 6665, 6666, 6667, 6668, 6669,
        6697, 10080, 27017,
    )
)  # fmt: skip


def is_bad_port(port: int) -> bool:
    """Core ``IsBadPort`` (src/netbase.cpp): True for the 85 well-known ports of other
    services that outbound connections should avoid (tcpmux, ssh, smtp, ..., MongoDB).
    Never raises (out-of-range ints are simply not bad)."""
    return port in _BAD_PORTS
