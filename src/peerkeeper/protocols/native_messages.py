"""The native protocol's messages: dataclasses and their payload codec. Sans-IO.

Each message is one BIP324 packet of our :class:`~peerkeeper.wire.v2.V2Transport`,
under :data:`NATIVE_MAGIC`, with the message's ``command`` as its type. Payloads:

* a **point**: BIP155 network id (u8), CompactSize address length (at most 512),
  address bytes, port (u16 big-endian) — the addrv2 address encoding plus a port;
* ``identity``: public key (32) || stamp (24) || listening port (u16 BE, 0 = none) ||
  flags (u8, bit 0 = private node; other bits ignored) || Ed25519 signature (64) over
  :meth:`Identity.signed_data`;
* ``ack``, ``bootstrap``: empty;
* ``nack``: reason (u8, :class:`NackReason`; unknown codes kept) || CompactSize count
  || points;
* ``advertise``: CompactSize count || points;
* ``swaprequest`` / ``swapack``: point || peer id (16);
* ``ping`` / ``pong``: nonce (u64 little-endian);
* ``envelope``: the application's bytes, opaque here (at most
  :data:`MAX_ENVELOPE_SIZE`).

Point lists carry at most :data:`MAX_POINTS` = 100 (Octez: the Nack list has
``max_length:100``, "Never send more than 100 points, you would be greylisted",
tezos/tezos-mirror ``src/lib_p2p/p2p_socket.ml`` / ``p2p_connect_handler.ml``); the
count is checked before any point is read. Any malformed payload raises
:class:`NativeDecodeError`.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from peerkeeper.netaddr import AddrError, NetAddr, Service
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size

__all__ = [
    "MAX_ENVELOPE_SIZE",
    "MAX_POINTS",
    "NATIVE_MAGIC",
    "NATIVE_MESSAGES",
    "Ack",
    "Advertise",
    "Bootstrap",
    "Envelope",
    "Identity",
    "Nack",
    "NackReason",
    "NativeDecodeError",
    "NativeMessage",
    "Ping",
    "Pong",
    "SwapAck",
    "SwapRequest",
    "decode_native",
    "decode_point",
    "encode_point",
]

#: Network magic of the native protocol (bytes "pkn\\x01"; BIP324 keys its ciphers with it,
#: so a Bitcoin node and a native node never complete a handshake).
NATIVE_MAGIC = b"pkn\x01"
#: Most points in one nack or advertise (Octez).
MAX_POINTS = 100
#: Largest application envelope, in bytes.
MAX_ENVELOPE_SIZE = 4_000_000
PEER_ID_SIZE = 16
PUBLIC_KEY_SIZE = 32
STAMP_SIZE = 24
SIGNATURE_SIZE = 64
_MAX_ADDR_LEN = 512
_IDENTITY_TAG = b"peerkeeper/native/identity/v1"


class NativeDecodeError(DecodeError):
    """A native message payload that cannot be decoded (the text says why)."""


class NackReason(enum.IntEnum):
    """Why a connection is refused (Octez ``P2p_rejection`` motives, plus ours)."""

    NO_MOTIVE = 0
    TOO_MANY_CONNECTIONS = 1
    ALREADY_CONNECTED = 2
    UNEXPECTED_PEER_ID = 3
    PRIVATE_MODE = 4
    MYSELF = 5
    GREYLISTED = 6


def encode_point(point: Service) -> bytes:
    """A point: BIP155 network id, CompactSize length, address, port (u16 BE)."""
    net_id, raw = point.addr.to_bip155()
    if not 0 <= point.port <= 0xFFFF:
        raise ValueError("port out of range")
    return bytes([net_id]) + ser_compact_size(len(raw)) + raw + struct.pack(">H", point.port)


def decode_point(r: Reader) -> Service:
    """Read a point; raises NativeDecodeError/DecodeError."""
    net_id = r.u8()
    raw = r.var_bytes(_MAX_ADDR_LEN)
    port = r.u16be()
    try:
        addr = NetAddr.from_bip155(net_id, raw)
    except (AddrError, ValueError) as e:
        raise NativeDecodeError(f"bad address for network {net_id}: {e}") from None
    if addr is None:
        raise NativeDecodeError(f"unknown network id {net_id}")
    return Service(addr, port)


def _encode_points(points: tuple[Service, ...]) -> bytes:
    if len(points) > MAX_POINTS:
        raise ValueError(f"{len(points)} points, at most {MAX_POINTS}")
    return ser_compact_size(len(points)) + b"".join(encode_point(p) for p in points)


def _decode_points(r: Reader) -> tuple[Service, ...]:
    n = r.compact_size(MAX_POINTS)  # checked before reading: a lying count costs nothing
    return tuple(decode_point(r) for _ in range(n))


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


@dataclass(frozen=True, slots=True)
class Identity:
    """``identity``: the sender's key, stamp, listening port, private flag, signature."""

    command: ClassVar[str] = "identity"
    public_key: bytes
    stamp: bytes
    listen_port: int
    private: bool
    signature: bytes

    @staticmethod
    def signed_data(
        session_id: bytes, public_key: bytes, stamp: bytes, listen_port: int, private: bool
    ) -> bytes:
        """What the signature covers: a tag, the BIP324 session id (32), key, stamp,
        port (u16 BE) and flags (u8)."""
        return (
            _IDENTITY_TAG
            + session_id
            + public_key
            + stamp
            + struct.pack(">HB", listen_port, 1 if private else 0)
        )

    def encode(self) -> bytes:
        """The payload; raises ValueError for wrong sizes or a bad port."""
        _check_len("public_key", self.public_key, PUBLIC_KEY_SIZE)
        _check_len("stamp", self.stamp, STAMP_SIZE)
        _check_len("signature", self.signature, SIGNATURE_SIZE)
        if not 0 <= self.listen_port <= 0xFFFF:
            raise ValueError("port out of range")
        return (
            self.public_key
            + self.stamp
            + struct.pack(">HB", self.listen_port, 1 if self.private else 0)
            + self.signature
        )

    @classmethod
    def decode(cls, r: Reader) -> Identity:
        pk = r.read(PUBLIC_KEY_SIZE)
        stamp = r.read(STAMP_SIZE)
        port = r.u16be()
        flags = r.u8()
        sig = r.read(SIGNATURE_SIZE)
        return cls(pk, stamp, port, bool(flags & 1), sig)


@dataclass(frozen=True, slots=True)
class Ack:
    """``ack``: the sender accepts the connection."""

    command: ClassVar[str] = "ack"

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> Ack:
        return cls()


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """``bootstrap``: please advertise known points (Octez ``Bootstrap``)."""

    command: ClassVar[str] = "bootstrap"

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader) -> Bootstrap:
        return cls()


@dataclass(frozen=True, slots=True)
class Nack:
    """``nack``: refused for ``reason``; ``points`` to try instead (Octez ``Nack``)."""

    command: ClassVar[str] = "nack"
    reason: int
    points: tuple[Service, ...] = ()

    def encode(self) -> bytes:
        if not 0 <= int(self.reason) <= 255:
            raise ValueError("reason must fit in a byte")
        return bytes([int(self.reason)]) + _encode_points(tuple(self.points))

    @classmethod
    def decode(cls, r: Reader) -> Nack:
        code = r.u8()
        reason: int = NackReason(code) if code in NackReason._value2member_map_ else code
        return cls(reason, _decode_points(r))


@dataclass(frozen=True, slots=True)
class Advertise:
    """``advertise``: known points (Octez ``Advertise``)."""

    command: ClassVar[str] = "advertise"
    points: tuple[Service, ...]

    def encode(self) -> bytes:
        return _encode_points(tuple(self.points))

    @classmethod
    def decode(cls, r: Reader) -> Advertise:
        return cls(_decode_points(r))


@dataclass(frozen=True, slots=True)
class _PointAndPeer:
    """Payload ``point || peer id (16)``, shared by the two swap messages."""

    point: Service
    peer_id: bytes

    def encode(self) -> bytes:
        _check_len("peer_id", self.peer_id, PEER_ID_SIZE)
        return encode_point(self.point) + self.peer_id

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(decode_point(r), r.read(PEER_ID_SIZE))


@dataclass(frozen=True, slots=True)
class SwapRequest(_PointAndPeer):
    """``swaprequest``: "connect to this point and drop one of yours" (Octez)."""

    command: ClassVar[str] = "swaprequest"


@dataclass(frozen=True, slots=True)
class SwapAck(_PointAndPeer):
    """``swapack``: the point the receiver of a swap request gives in exchange."""

    command: ClassVar[str] = "swapack"


@dataclass(frozen=True, slots=True)
class _Nonce:
    """Payload ``nonce (u64 little-endian)``, shared by ping and pong."""

    nonce: int

    def encode(self) -> bytes:
        return struct.pack("<Q", self.nonce)

    @classmethod
    def decode(cls, r: Reader) -> Self:
        return cls(r.u64())


@dataclass(frozen=True, slots=True)
class Ping(_Nonce):
    """``ping`` with a 64-bit nonce."""

    command: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Pong(_Nonce):
    """``pong`` echoing a ping's nonce."""

    command: ClassVar[str] = "pong"


@dataclass(frozen=True, slots=True)
class Envelope:
    """``envelope``: application bytes, carried opaquely (the dispatch layer's)."""

    command: ClassVar[str] = "envelope"
    payload: bytes

    def encode(self) -> bytes:
        if len(self.payload) > MAX_ENVELOPE_SIZE:
            raise ValueError(f"envelope above {MAX_ENVELOPE_SIZE} bytes")
        return bytes(self.payload)

    @classmethod
    def decode(cls, r: Reader) -> Envelope:
        if r.remaining() > MAX_ENVELOPE_SIZE:
            raise NativeDecodeError(f"envelope above {MAX_ENVELOPE_SIZE} bytes")
        return cls(r.read_rest())


NativeMessage = (
    Identity | Ack | Bootstrap | Nack | Advertise | SwapRequest | SwapAck | Ping | Pong | Envelope
)
#: command -> message class.
NATIVE_MESSAGES: dict[str, type[NativeMessage]] = {
    cls.command: cls
    for cls in (
        Identity,
        Ack,
        Bootstrap,
        Nack,
        Advertise,
        SwapRequest,
        SwapAck,
        Ping,
        Pong,
        Envelope,
    )
}


def decode_native(command: str, payload: bytes) -> NativeMessage:
    """Decode one message; raises :class:`NativeDecodeError` for an unknown command, a
    truncated payload, trailing bytes, too many points or a bad address."""
    cls = NATIVE_MESSAGES.get(command)
    if cls is None:
        raise NativeDecodeError(f"unknown message {command!r}")
    r = Reader(payload)
    try:
        msg = cls.decode(r)
    except NativeDecodeError:
        raise
    except DecodeError as e:
        raise NativeDecodeError(f"{command}: {e}") from None
    if not r.empty():
        raise NativeDecodeError(f"{command}: {r.remaining()} trailing bytes")
    return msg
