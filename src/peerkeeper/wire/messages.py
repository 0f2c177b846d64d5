"""Bitcoin P2P messages: one dataclass per message, a registry by command name.

Every message class has a class attribute ``command`` (the wire name), an
``encode() -> bytes`` method producing the payload, and a ``decode(payload)``
classmethod. :func:`decode_message` looks the command up in :data:`MESSAGE_TYPES`
and returns an :class:`UnknownMessage` for any other command (including BIP434's
``feature`` until it is implemented).

Layouts and limits follow Bitcoin Core: ``src/protocol.h`` (message types,
``ServiceFlags``, ``CAddress``, ``CInv``), ``src/net_processing.cpp``
(``MAX_INV_SZ``, ``MAX_ADDR_TO_SEND``, ``MAX_LOCATOR_SZ``, the version message
reading in ``ProcessMessage``), ``src/net.h`` (``MAX_SUBVERSION_LENGTH``,
``MAX_PROTOCOL_MESSAGE_LENGTH``), ``src/headerssync.h`` / ``src/validation.h``
(``MAX_HEADERS_RESULTS``); ``tx`` and ``block`` are walked by
:mod:`peerkeeper.wire.primitives` (src/primitives/transaction.h, block.h), never
validated. A payload that is short, oversized or non-canonical
raises :class:`~peerkeeper.wire.codec.DecodeError`; one that is well-formed but
breaks a limit Core punishes raises :class:`~peerkeeper.wire.codec.LimitExceeded`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from itertools import starmap
from typing import NamedTuple

from peerkeeper.net.netaddr import (
    IPV4_IN_IPV6_PREFIX,
    MAX_ADDRV2_SIZE,
    AddrError,
    NetAddr,
    Network,
    Service,
    trusted_netaddr,
    trusted_service,
)
from peerkeeper.wire import corelog
from peerkeeper.wire.codec import (
    DecodeError,
    LimitExceeded,
    Reader,
    ser_compact_size,
    ser_var_str,
    sha256d,
)
from peerkeeper.wire.primitives import BlockHeader, TxInfo, parse_block_prefix, parse_tx

__all__ = [
    "PROTOCOL_VERSION",
    "MIN_PEER_PROTO_VERSION",
    "MAX_PROTOCOL_MESSAGE_LENGTH",
    "MAX_ADDR_TO_SEND",
    "MAX_INV_SZ",
    "MAX_SUBVERSION_LENGTH",
    "MAX_HEADERS_RESULTS",
    "MAX_LOCATOR_SZ",
    "ServiceFlags",
    "services_names",
    "AddrEntry",
    "InvItem",
    "BlockHeader",
    "TxInfo",
    "Message",
    "Version",
    "Verack",
    "Ping",
    "Pong",
    "Addr",
    "AddrV2",
    "GetAddr",
    "SendAddrV2",
    "WtxidRelay",
    "SendHeaders",
    "FeeFilter",
    "SendCmpct",
    "Inv",
    "GetData",
    "NotFound",
    "GetHeaders",
    "Headers",
    "Mempool",
    "Tx",
    "Block",
    "UnknownMessage",
    "MESSAGE_TYPES",
    "ALL_NET_MESSAGE_TYPES",
    "NET_MESSAGE_TYPE_OTHER",
    "decode_message",
]

#: The protocol version we speak (src/node/protocol_version.h: 70016 = WTXID_RELAY;
#: Core 31's 70017 only adds BIP434 ``feature``, which we treat as unknown).
PROTOCOL_VERSION = 70016
#: Peers older than this are disconnected (src/node/protocol_version.h).
MIN_PEER_PROTO_VERSION = 31800
#: Largest payload a v1 header may declare (src/net.h).
MAX_PROTOCOL_MESSAGE_LENGTH = 4_000_000
#: Most addresses in one addr/addrv2 message (src/net_processing.cpp).
MAX_ADDR_TO_SEND = 1000
#: Most entries in one inv/getdata/notfound message (src/net_processing.cpp).
MAX_INV_SZ = 50_000
#: Longest user agent accepted in version (src/net.h).
MAX_SUBVERSION_LENGTH = 256
#: Most headers in one headers message (src/headerssync.h / validation.h).
MAX_HEADERS_RESULTS = 2000
#: Most hashes in a block locator (src/net_processing.cpp).
MAX_LOCATOR_SZ = 101


class ServiceFlags(enum.IntFlag):
    """Service bits advertised in version and addr messages (src/protocol.h)."""

    NODE_NONE = 0
    NODE_NETWORK = 1 << 0
    NODE_BLOOM = 1 << 2
    NODE_WITNESS = 1 << 3
    NODE_COMPACT_FILTERS = 1 << 6
    NODE_NETWORK_LIMITED = 1 << 10
    NODE_P2P_V2 = 1 << 11


def services_names(services: int) -> list[str]:
    """Names of the set service bits as Core's ``GetServicesNames`` (src/rpc/util.cpp).

    Known bits give their name without the ``NODE_`` prefix (``NETWORK``,
    ``WITNESS``, ...); unknown bits give ``UNKNOWN[2^n]``.
    """
    names: list[str] = []
    for bit in range(64):
        mask = 1 << bit
        if services & mask:
            try:
                flag = ServiceFlags(mask)
                assert flag.name is not None
                names.append(flag.name.removeprefix("NODE_"))
            except ValueError:
                names.append(f"UNKNOWN[2^{bit}]")
    return names


_ZERO_V1 = bytes(16)
_V1_ENTRY = struct.Struct("<IQ16s2s")  # time, services, ip, port (big-endian, kept raw)
_INV_ENTRY = struct.Struct("<I32s")
_HEADER = struct.Struct("<i32s32sIII")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_BE16 = struct.Struct(">H")
_VERSION_FIXED = struct.Struct("<iQqQ16s2sQ16s2sQ")
_VERSION_TAIL = struct.Struct("<iB")


class AddrEntry(NamedTuple):
    """One gossiped address: ``time`` (unix seconds, uint32), ``services`` (bits), ``service``.

    Core's ``CAddress`` (src/protocol.h).
    """

    time: int
    services: int
    service: Service


class InvItem(NamedTuple):
    """One inventory vector: ``type`` (uint32, MSG_TX=1, MSG_BLOCK=2, ...) and 32-byte ``hash``.

    Core's ``CInv`` (src/protocol.h).
    """

    type: int
    hash: bytes


class Message:
    """Base of all messages: ``command`` (str), ``encode() -> bytes``."""

    __slots__ = ()
    command: str

    def encode(self) -> bytes:
        """Serialize the payload (without the transport's header)."""
        raise NotImplementedError


def _service_v1(ip16: bytes, port_be: bytes) -> Service:
    return trusted_service(NetAddr.from_v1_bytes(ip16), port_be[0] << 8 | port_be[1])


_tuple_new = tuple.__new__
_IPV4 = Network.IPV4
_IPV4_MAPPED = IPV4_IN_IPV6_PREFIX


def _v1_ip(service: Service) -> bytes:
    raw = service.addr.to_v1_bytes()
    return _ZERO_V1 if raw is None else raw


# -- handshake ---------------------------------------------------------------------------


@dataclass(slots=True)
class Version(Message):
    """``version``: the first message of a connection (src/net_processing.cpp ``PushNodeVersion``).

    Fields after ``addr_recv`` are optional on the wire; when absent they take
    Core's defaults (nonce 1, empty user agent, height -1, relay true).
    ``user_agent`` is limited to ``MAX_SUBVERSION_LENGTH`` bytes (DecodeError beyond).
    """

    command = "version"
    version: int = PROTOCOL_VERSION
    services: int = 0
    timestamp: int = 0
    addr_recv_services: int = 0
    addr_recv: Service = field(default_factory=lambda: Service(NetAddr(Network.IPV6, _ZERO_V1), 0))
    addr_from_services: int = 0
    addr_from: Service = field(default_factory=lambda: Service(NetAddr(Network.IPV6, _ZERO_V1), 0))
    nonce: int = 1
    user_agent: str = ""
    start_height: int = -1
    relay: bool = True

    def encode(self) -> bytes:
        return b"".join(
            (
                struct.pack(
                    "<iQqQ", self.version, self.services, self.timestamp, self.addr_recv_services
                ),
                _v1_ip(self.addr_recv),
                _BE16.pack(self.addr_recv.port),
                struct.pack("<Q", self.addr_from_services),
                _v1_ip(self.addr_from),
                _BE16.pack(self.addr_from.port),
                struct.pack("<Q", self.nonce),
                ser_var_str(self.user_agent),
                struct.pack("<i?", self.start_height, self.relay),
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> Version:
        if len(payload) >= _VERSION_FIXED.size:
            # The common case: every field present; one unpack for the fixed part.
            (
                version,
                services,
                timestamp,
                recv_services,
                recv_ip,
                recv_port,
                from_services,
                from_ip,
                from_port,
                nonce,
            ) = _VERSION_FIXED.unpack_from(payload)
            msg = cls(
                version,
                services,
                timestamp,
                recv_services,
                _service_v1(recv_ip, recv_port),
                from_services,
                _service_v1(from_ip, from_port),
                nonce,
            )
            ua_len = payload[80] if len(payload) > 80 else 0xFF
            if ua_len < 0xFD and len(payload) >= 81 + ua_len + 5:
                # Full message with a one-byte user agent length (always <= 252, under
                # MAX_SUBVERSION_LENGTH): no Reader needed.
                end = 81 + ua_len
                msg.user_agent = payload[81:end].decode("utf-8", "surrogateescape")
                msg.start_height, relay = _VERSION_TAIL.unpack_from(payload, end)
                msg.relay = relay != 0
                return msg
            r = Reader(payload)
            r.skip(_VERSION_FIXED.size)
        else:
            r = Reader(payload)
            msg = cls(
                version=r.i32(),
                services=r.u64(),
                timestamp=r.i64(),
                addr_recv_services=r.u64(),
                addr_recv=_service_v1(r.read(16), r.read(2)),
            )
            if not r.empty():
                msg.addr_from_services = r.u64()
                msg.addr_from = _service_v1(r.read(16), r.read(2))
                msg.nonce = r.u64()
        if not r.empty():
            msg.user_agent = r.var_str(MAX_SUBVERSION_LENGTH)
        if not r.empty():
            msg.start_height = r.i32()
        if not r.empty():
            msg.relay = r.bool()
        return msg


class _Empty(Message):
    """A message with an empty payload; any payload bytes are ignored, as Core does."""

    __slots__ = ()

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes) -> _Empty:
        return cls()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Verack(_Empty):
    """``verack``: acknowledges the peer's version (empty payload)."""

    __slots__ = ()
    command = "verack"


class GetAddr(_Empty):
    """``getaddr``: asks an (inbound) peer for addresses (empty payload)."""

    __slots__ = ()
    command = "getaddr"


class SendAddrV2(_Empty):
    """``sendaddrv2`` (BIP155): send addrv2 instead of addr; only between version and verack."""

    __slots__ = ()
    command = "sendaddrv2"


class WtxidRelay(_Empty):
    """``wtxidrelay`` (BIP339): announce transactions by wtxid; only between version and verack."""

    __slots__ = ()
    command = "wtxidrelay"


class SendHeaders(_Empty):
    """``sendheaders`` (BIP130): announce new blocks with headers (empty payload)."""

    __slots__ = ()
    command = "sendheaders"


class Mempool(_Empty):
    """``mempool`` (BIP35): request the peer's mempool inventory (empty payload)."""

    __slots__ = ()
    command = "mempool"


# -- keepalive ---------------------------------------------------------------------------


@dataclass(slots=True)
class Ping(Message):
    """``ping`` (BIP31): 8-byte nonce; ``None`` for the empty pre-BIP31 form."""

    command = "ping"
    nonce: int | None = None

    def encode(self) -> bytes:
        return b"" if self.nonce is None else struct.pack("<Q", self.nonce)

    @classmethod
    def decode(cls, payload: bytes) -> Ping:
        if not payload:
            return cls(None)
        if len(payload) < 8:
            raise DecodeError("ping: short nonce")
        return cls(_U64.unpack_from(payload)[0])


@dataclass(slots=True)
class Pong(Message):
    """``pong`` (BIP31): echoes a ping's 8-byte nonce."""

    command = "pong"
    nonce: int = 0

    def encode(self) -> bytes:
        return struct.pack("<Q", self.nonce)

    @classmethod
    def decode(cls, payload: bytes) -> Pong:
        if len(payload) < 8:
            raise DecodeError("pong: short nonce")
        return cls(_U64.unpack_from(payload)[0])


@dataclass(slots=True)
class FeeFilter(Message):
    """``feefilter`` (BIP133): minimum fee rate, satoshis per kvB (int64)."""

    command = "feefilter"
    feerate: int = 0

    def encode(self) -> bytes:
        return struct.pack("<q", self.feerate)

    @classmethod
    def decode(cls, payload: bytes) -> FeeFilter:
        return cls(Reader(payload).i64())


@dataclass(slots=True)
class SendCmpct(Message):
    """``sendcmpct`` (BIP152): ``announce`` (uint8, 0 or 1) and ``version`` (uint64)."""

    command = "sendcmpct"
    announce: int = 0
    version: int = 2

    def encode(self) -> bytes:
        return struct.pack("<BQ", self.announce, self.version)

    @classmethod
    def decode(cls, payload: bytes) -> SendCmpct:
        r = Reader(payload)
        return cls(r.u8(), r.u64())


# -- addresses ---------------------------------------------------------------------------


def _check_count(command: str, n: int, limit: int) -> None:
    if n > limit:
        raise LimitExceeded(corelog.MESSAGE_SIZE % (command, n))


@dataclass(slots=True)
class Addr(Message):
    """``addr``: up to ``MAX_ADDR_TO_SEND`` entries in the v1 (16-byte IP) form.

    Encoding skips entries whose network cannot be written in 16 bytes (Tor v3,
    I2P), as Core does. Decoding more than 1000 entries raises LimitExceeded
    (Core: ``Misbehaving``, src/net_processing.cpp ``ProcessAddrs``).
    """

    command = "addr"
    entries: list[AddrEntry] = field(default_factory=list)

    def encode(self) -> bytes:
        parts: list[bytes] = []
        append = parts.append
        pack = _V1_ENTRY.pack
        port_pack = _BE16.pack
        for time, services, service in self.entries:
            addr = service.addr
            if addr.network is _IPV4:
                ip = _IPV4_MAPPED + addr.addr
            else:
                ip_or_none = addr.to_v1_bytes()
                if ip_or_none is None:
                    continue
                ip = ip_or_none
            append(pack(time, services, ip, port_pack(service.port)))
        return ser_compact_size(len(parts)) + b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> Addr:
        r = Reader(payload)
        n = r.compact_size()
        _check_count("addr", n, MAX_ADDR_TO_SEND)
        raw = r.read(n * _V1_ENTRY.size)
        from_v1 = NetAddr.from_v1_bytes
        mapped = _IPV4_MAPPED
        ipv4 = _IPV4
        entries = [
            _tuple_new(
                AddrEntry,
                (
                    t,
                    s,
                    trusted_service(
                        trusted_netaddr(ipv4, ip[12:]) if ip[:12] == mapped else from_v1(ip),
                        port[0] << 8 | port[1],
                    ),
                ),
            )
            for t, s, ip, port in _V1_ENTRY.iter_unpack(raw)
        ]
        return cls(entries)


@dataclass(slots=True)
class AddrV2(Message):
    """``addrv2`` (BIP155): up to ``MAX_ADDR_TO_SEND`` entries with network ids.

    Entry: time (uint32), services (CompactSize), network id (uint8), address
    (CompactSize-prefixed, at most ``MAX_ADDRV2_SIZE`` = 512 bytes), port (uint16
    big-endian). Entries with an unknown network id are skipped, not fatal
    (BIP155); a known id with the wrong address length raises DecodeError, as
    Core's ``CNetAddr::UnserializeV2Stream`` does.
    """

    command = "addrv2"
    entries: list[AddrEntry] = field(default_factory=list)

    def encode(self) -> bytes:
        parts = [ser_compact_size(len(self.entries))]
        append = parts.append
        for time, services, service in self.entries:
            net_id, raw = service.addr.to_bip155()
            append(_U32.pack(time))
            append(ser_compact_size(services))
            append(bytes((net_id, len(raw))))
            append(raw)
            append(_BE16.pack(service.port))
        return b"".join(parts)

    @classmethod
    def decode(cls, payload: bytes) -> AddrV2:
        r = Reader(payload)
        n = r.compact_size()
        _check_count("addrv2", n, MAX_ADDR_TO_SEND)
        entries: list[AddrEntry] = []
        append = entries.append
        from_bip155 = NetAddr.from_bip155
        data = payload
        pos = r.pos
        end = len(data)
        # Fields are parsed inline (no Reader call per field): this loop runs for every
        # gossiped address. Each step checks the remaining length before reading.
        try:
            for _ in range(n):
                if pos + 6 > end:
                    raise DecodeError("addrv2: short entry")
                time = _U32.unpack_from(data, pos)[0]
                first = data[pos + 4]
                pos += 5
                if first < 0xFD:
                    services = first
                else:
                    services, pos = _compact_size_at(data, pos, first)
                if pos + 2 > end:
                    raise DecodeError("addrv2: short entry")
                net_id = data[pos]
                size = data[pos + 1]
                pos += 2
                if size >= 0xFD:
                    size, pos = _compact_size_at(data, pos, size)
                if size > MAX_ADDRV2_SIZE:
                    raise DecodeError(f"Address too long: {size} > {MAX_ADDRV2_SIZE}")
                stop = pos + size
                if stop + 2 > end:
                    raise DecodeError("addrv2: short entry")
                raw = data[pos:stop]
                port = data[stop] << 8 | data[stop + 1]
                pos = stop + 2
                addr = from_bip155(net_id, raw)
                if addr is not None:
                    append(_tuple_new(AddrEntry, (time, services, trusted_service(addr, port))))
        except AddrError as e:
            raise DecodeError(str(e)) from None
        return cls(entries)


def _compact_size_at(data: bytes, pos: int, first: int) -> tuple[int, int]:
    """Finish a CompactSize whose first byte (>= 0xFD) was at ``pos - 1``; returns (value, new pos)."""
    r = Reader(data)
    r.skip(pos - 1)
    value = r.compact_size(0xFFFFFFFFFFFFFFFF)
    return value, r.pos


# -- inventory and headers ------------------------------------------------------------


@dataclass(slots=True)
class Inv(Message):
    """``inv``: up to ``MAX_INV_SZ`` inventory vectors (more: LimitExceeded, Core misbehaviour)."""

    command = "inv"
    max_items = MAX_INV_SZ
    items: list[tuple[int, bytes]] = field(default_factory=list)

    def encode(self) -> bytes:
        return ser_compact_size(len(self.items)) + b"".join(starmap(_INV_ENTRY.pack, self.items))

    @classmethod
    def decode(cls, payload: bytes) -> Inv:
        r = Reader(payload)
        n = r.compact_size()
        _check_count(cls.command, n, cls.max_items)
        # Items decode to plain (type, hash) tuples: equal to InvItem, at C speed.
        return cls(list(_INV_ENTRY.iter_unpack(r.read(n * 36))))


@dataclass(slots=True)
class GetData(Inv):
    """``getdata``: request objects by inventory vector (same layout and limit as inv)."""

    command = "getdata"


@dataclass(slots=True)
class NotFound(Inv):
    """``notfound``: objects we asked for that the peer does not have (layout of inv).

    No count limit beyond the payload size: Core ignores an oversized notfound
    rather than punishing it (src/net_processing.cpp ``NOTFOUND`` handler).
    """

    command = "notfound"
    max_items = MAX_PROTOCOL_MESSAGE_LENGTH // 36


@dataclass(slots=True)
class GetHeaders(Message):
    """``getheaders``: protocol version, block locator (at most ``MAX_LOCATOR_SZ``), stop hash."""

    command = "getheaders"
    version: int = PROTOCOL_VERSION
    locator: list[bytes] = field(default_factory=list)
    hash_stop: bytes = bytes(32)

    def encode(self) -> bytes:
        return b"".join(
            (
                _U32.pack(self.version),
                ser_compact_size(len(self.locator)),
                *self.locator,
                self.hash_stop,
            )
        )

    @classmethod
    def decode(cls, payload: bytes) -> GetHeaders:
        r = Reader(payload)
        version = r.u32()
        n = r.compact_size()
        _check_count("getheaders locator", n, MAX_LOCATOR_SZ)
        locator = [r.read(32) for _ in range(n)]
        return cls(version, locator, r.read(32))


@dataclass(slots=True)
class Headers(Message):
    """``headers``: up to ``MAX_HEADERS_RESULTS`` headers, each followed by a tx count (0)."""

    command = "headers"
    headers: list[BlockHeader] = field(default_factory=list)

    def encode(self) -> bytes:
        pack = _HEADER.pack
        return ser_compact_size(len(self.headers)) + b"".join(
            [pack(*h) + b"\x00" for h in self.headers]
        )

    @classmethod
    def decode(cls, payload: bytes) -> Headers:
        r = Reader(payload)
        n = r.compact_size()
        _check_count("headers", n, MAX_HEADERS_RESULTS)
        raw = r.read(n * 81)
        if raw[80::81].count(0) != n:
            # A tx count that is not a one-byte zero: take the general path.
            return cls._decode_slow(payload)
        unpack = _HEADER.unpack_from
        return cls([BlockHeader(*unpack(raw, off)) for off in range(0, len(raw), 81)])

    @classmethod
    def _decode_slow(cls, payload: bytes) -> Headers:
        r = Reader(payload)
        n = r.compact_size()
        headers = []
        for _ in range(n):
            headers.append(BlockHeader(*_HEADER.unpack(r.read(80))))
            r.compact_size()  # Core ignores the tx count ("assume it is 0")
        return cls(headers)


# -- transactions and blocks ----------------------------------------------------------


@dataclass(slots=True, repr=False)
class Tx(Message):
    """``tx``: one transaction, kept as received (``raw``, bytes) and walked, not validated.

    ``Tx(raw)`` parses at once (:func:`~peerkeeper.wire.primitives.parse_tx`, Core's
    ``UnserializeTransaction`` with witness, src/primitives/transaction.h) into
    ``info`` (:class:`~peerkeeper.wire.primitives.TxInfo`); ``txid``, ``wtxid``
    (32 bytes each, internal byte order), ``has_witness`` and ``size`` (bytes) read
    from it. Truncated or malformed ("Superfluous witness record", "Unknown
    transaction optional data"), it raises :class:`~peerkeeper.wire.codec.DecodeError`;
    bytes after the transaction are dropped from ``raw``, as Core's deserializer leaves
    them unread. ``encode()`` returns ``raw``.
    """

    command = "tx"
    raw: bytes
    info: TxInfo = field(init=False)

    def __post_init__(self) -> None:
        raw = self.raw
        info, end = parse_tx(raw)
        if end != len(raw):
            # Core's ``vRecv >> TX_WITH_WITNESS(ptx)`` leaves the rest unread.
            self.raw = raw[:end]
        self.info = info

    @property
    def txid(self) -> bytes:
        """sha256d of the serialization without witness (32 bytes, internal order)."""
        return self.info.txid

    @property
    def wtxid(self) -> bytes:
        """sha256d of the full serialization; the txid when there is no witness."""
        return self.info.wtxid

    @property
    def has_witness(self) -> bool:
        """Some input carries a non-empty witness stack (BIP144)."""
        return self.info.has_witness

    @property
    def size(self) -> int:
        """Bytes of the serialized transaction (the payload)."""
        return len(self.raw)

    def encode(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, payload: bytes) -> Tx:
        return cls(bytes(payload))

    def __repr__(self) -> str:
        return f"Tx(txid={self.info.txid_hex}, wtxid={self.info.wtxid_hex}, size={self.size})"


@dataclass(slots=True, repr=False)
class Block(Message):
    """``block``: one block, kept as received (``raw``, bytes) and walked, not validated.

    ``Block(raw)`` parses at once (:func:`~peerkeeper.wire.primitives.parse_block`,
    src/primitives/block.h ``CBlock``, transactions with witness) into ``header``
    (:class:`~peerkeeper.wire.primitives.BlockHeader`), ``txs`` (one
    :class:`~peerkeeper.wire.primitives.TxInfo` each, in block order) and their
    ``txids`` and ``wtxids`` (32 bytes each, internal byte order). ``hash`` is the
    block hash. Neither the merkle root nor the proof of work is checked. Truncated
    or malformed bytes raise :class:`~peerkeeper.wire.codec.DecodeError`; bytes after
    the last transaction are dropped from ``raw`` (Core leaves them unread).
    ``encode()`` returns ``raw``.
    """

    command = "block"
    raw: bytes
    header: BlockHeader = field(init=False)
    txs: list[TxInfo] = field(init=False)
    txids: list[bytes] = field(init=False)
    wtxids: list[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self.header, self.txs, end = parse_block_prefix(self.raw)
        if end != len(self.raw):
            self.raw = self.raw[:end]  # Core leaves the rest unread, as for a tx
        self.txids = [info.txid for info in self.txs]
        self.wtxids = [info.wtxid for info in self.txs]

    @property
    def hash(self) -> bytes:
        """The block hash: sha256d of the 80-byte header (32 bytes, internal order)."""
        return sha256d(memoryview(self.raw)[:80])

    def encode(self) -> bytes:
        return self.raw

    @classmethod
    def decode(cls, payload: bytes) -> Block:
        return cls(bytes(payload))

    def __repr__(self) -> str:
        return f"Block(hash={self.hash[::-1].hex()}, n_tx={len(self.txs)}, size={len(self.raw)})"


@dataclass(slots=True)
class UnknownMessage(Message):
    """Any command without a class here: the raw ``command`` and ``payload``."""

    command: str
    payload: bytes = b""

    def encode(self) -> bytes:
        return self.payload


#: Command name -> message class.
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.command: cls
    for cls in (
        Version,
        Verack,
        Ping,
        Pong,
        Addr,
        AddrV2,
        GetAddr,
        SendAddrV2,
        WtxidRelay,
        SendHeaders,
        FeeFilter,
        SendCmpct,
        Inv,
        GetData,
        NotFound,
        GetHeaders,
        Headers,
        Mempool,
        Tx,
        Block,
    )
}


#: Every message type Core knows, in Core's order (src/protocol.h ``ALL_NET_MESSAGE_TYPES``,
#: Core master with BIP434, the reference tree in ../shared/reference). Core's per-message
#: byte counters (src/net.cpp ``mapRecvBytesPerMsgType``, ``mapSendBytesPerMsgType``) have
#: one key for each of these plus :data:`NET_MESSAGE_TYPE_OTHER`; v1 framing
#: pre-decodes their command fields; every BIP324 short id names one of them. It is wider
#: than :data:`MESSAGE_TYPES`, which holds only the types we decode.
ALL_NET_MESSAGE_TYPES: tuple[str, ...] = (
    "version",
    "verack",
    "addr",
    "addrv2",
    "sendaddrv2",
    "inv",
    "getdata",
    "merkleblock",
    "getblocks",
    "getheaders",
    "tx",
    "headers",
    "block",
    "getaddr",
    "mempool",
    "ping",
    "pong",
    "notfound",
    "filterload",
    "filteradd",
    "filterclear",
    "sendheaders",
    "feefilter",
    "sendcmpct",
    "cmpctblock",
    "getblocktxn",
    "blocktxn",
    "getcfilters",
    "cfilter",
    "getcfheaders",
    "cfheaders",
    "getcfcheckpt",
    "cfcheckpt",
    "wtxidrelay",
    "sendtxrcncl",
    "feature",
)
#: Core's counter key for every other message type, and for rejected messages
#: (src/net.h ``NET_MESSAGE_TYPE_OTHER``).
NET_MESSAGE_TYPE_OTHER = "*other*"

assert set(MESSAGE_TYPES) <= set(ALL_NET_MESSAGE_TYPES)


def decode_message(command: str, payload: bytes) -> Message:
    """Decode ``payload`` of message ``command`` into its typed message.

    Unknown commands give :class:`UnknownMessage`. Raises
    :class:`~peerkeeper.wire.codec.DecodeError` (or its subclass ``LimitExceeded``)
    for a malformed payload; never any other exception for bad bytes.
    """
    cls = MESSAGE_TYPES.get(command)
    if cls is None:
        return UnknownMessage(command, payload)
    try:
        return cls.decode(payload)  # type: ignore[attr-defined, no-any-return]
    except DecodeError:
        raise
    except (ValueError, struct.error, AddrError) as e:  # defensive: keep the one error type
        raise DecodeError(f"{command}: {e}") from None
