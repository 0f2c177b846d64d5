"""The native protocol's messages: dataclasses and their payload codec. Sans-IO.

Each message travels as one BIP324 packet of our :class:`~peerkeeper.wire.v2.V2Transport`
keyed with :data:`NATIVE_MAGIC`; the packet's message type is the class's ``command``
(ASCII, at most 12 bytes) and its contents are the payload this module encodes. The
messages mirror Octez's P2P layer (tezos/tezos-mirror): the connection-time ``Ack`` /
``Nack`` of ``src/lib_p2p/p2p_socket.ml`` (module ``Ack``), the pool messages
``Bootstrap`` / ``Advertise`` / ``Swap_request`` / ``Swap_ack`` of
``src/lib_p2p/p2p_message.ml``, and the rejection motives of
``src/lib_base/p2p_rejection.ml``. Octez's cleartext ``Connection_message`` (key, stamp,
port) becomes our signed ``identity``, bound to the BIP324 session.

Payload layouts (integers big-endian unless said otherwise):

* a **point**: BIP155 network id (u8), CompactSize address length (at most 512,
  Core's ``MAX_ADDRV2_SIZE``), address bytes, port (u16 BE) — the addrv2 address
  encoding (BIP155) plus a port;
* ``identity``: public key (32) || stamp (24) || listening port (u16 BE, 0 = not
  listening) || flags (u8: bit 0 = private node; other bits are written as 0 and
  ignored when read) || Ed25519 signature (64) over :meth:`Identity.signed_data`;
* ``ack``, ``bootstrap``: empty;
* ``nack``: reason (u8, :class:`NackReason`; an unknown code is kept as its int) ||
  CompactSize count || points;
* ``advertise``: CompactSize count || points;
* ``swaprequest`` / ``swapack``: point || peer id (16);
* ``ping`` / ``pong``: nonce (u64 little-endian);
* ``envelope``: the application's bytes, opaque here (at most :data:`MAX_ENVELOPE_SIZE`).

Point lists carry at most :data:`MAX_POINTS` = 100 (Octez: the Nack list is
``Data_encoding.list ~max_length:100``, p2p_socket.ml ``Ack.encoding``, and
p2p_connect_handler.ml ``raw_authenticate`` says "Never send more than 100 points, you
would be greylisted"). The count is checked before any point is read, so a lying
count costs nothing. Every malformed payload raises :class:`NativeDecodeError` (a
:class:`~peerkeeper.wire.codec.DecodeError`, hence a ``ValueError``); a count above the
limit raises its subclass :class:`NativeLimitExceeded` (also a
:class:`~peerkeeper.wire.codec.LimitExceeded`). Encoding an invalid message raises
``ValueError``.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self, TypeVar

from peerkeeper.net.netaddr import MAX_ADDRV2_SIZE, AddrError, NetAddr, Service, trusted_service
from peerkeeper.wire.codec import DecodeError, LimitExceeded, Reader, ser_compact_size

__all__ = [
    "MAX_ENVELOPE_SIZE",
    "MAX_POINTS",
    "NATIVE_MAGIC",
    "NATIVE_MESSAGES",
    "PEER_ID_SIZE",
    "PUBLIC_KEY_SIZE",
    "SESSION_ID_SIZE",
    "SIGNATURE_SIZE",
    "STAMP_SIZE",
    "Ack",
    "Advertise",
    "Bootstrap",
    "Envelope",
    "Identity",
    "Nack",
    "NackReason",
    "NativeDecodeError",
    "NativeLimitExceeded",
    "NativeMessage",
    "Ping",
    "Pong",
    "SwapAck",
    "SwapRequest",
    "decode_native",
    "decode_point",
    "encode_point",
]

#: Network magic of the native protocol (4 bytes, ``b"pkn\\x01"``: "peerkeeper native",
#: version 1). BIP324 derives every key from the shared secret *and* the magic
#: (``"bitcoin_v2_shared_secret" || magic`` salt), so a Bitcoin node (magic
#: ``f9beb4d9`` ...) and a native node never complete a handshake with each other.
NATIVE_MAGIC = b"pkn\x01"
#: Most points in one ``nack`` or ``advertise`` (Octez, see the module docstring).
MAX_POINTS = 100
#: Largest ``envelope`` payload, in bytes (same bound as Core's
#: ``MAX_PROTOCOL_MESSAGE_LENGTH``).
MAX_ENVELOPE_SIZE = 4_000_000
#: Size of a peer id in bytes (Octez ``P2p_peer.Id``: a 16-byte hash of the public key).
PEER_ID_SIZE = 16
#: Size of an Ed25519 public key in bytes.
PUBLIC_KEY_SIZE = 32
#: Size of a proof-of-work stamp in bytes (Octez ``Crypto_box.nonce``, 24 bytes).
STAMP_SIZE = 24
#: Size of an Ed25519 signature in bytes.
SIGNATURE_SIZE = 64
#: Size of a BIP324 session id in bytes.
SESSION_ID_SIZE = 32
#: Longest address in a point (BIP155 / Core ``MAX_ADDRV2_SIZE``).
_MAX_ADDR_LEN = MAX_ADDRV2_SIZE
#: Domain-separation tag prefixed to the data an identity signature covers.
_IDENTITY_TAG = b"peerkeeper/native/identity/v1"
_FLAG_PRIVATE = 0x01
_U16BE = struct.Struct(">H")
_U64LE = struct.Struct("<Q")
_T = TypeVar("_T")


class NativeDecodeError(DecodeError):
    """A native message payload that cannot be decoded; the text says what was wrong.

    A :class:`~peerkeeper.wire.codec.DecodeError`, hence a ``ValueError``. The peer
    layer (:mod:`peerkeeper.native.peer`) greylists the sender, as Octez greylists a
    peer whose message does not decode (tm ``src/lib_p2p/p2p_conn.ml``).
    """


class NativeLimitExceeded(NativeDecodeError, LimitExceeded):
    """A well-formed count above a protocol limit (more than :data:`MAX_POINTS` points).

    Both a :class:`NativeDecodeError` and a :class:`~peerkeeper.wire.codec.LimitExceeded`.
    Octez greylists a peer sending more than 100 points (p2p_connect_handler.ml).
    """


class NackReason(enum.IntEnum):
    """Why a connection is refused: the u8 ``reason`` of a :class:`Nack`.

    Octez ``P2p_rejection.t`` (tm ``src/lib_base/p2p_rejection.ml``: ``No_motive``,
    ``Too_many_connections``, ``Already_connected``; its chain-name and version motives
    do not apply to us) plus ours for the rules of p2p_connect_handler.ml
    (``Identity_check_failure`` → UNEXPECTED_PEER_ID, private mode, ``Myself``, a
    greylisted address or peer). As in Octez (``Unknown_motive of error_code``) a code
    not listed here decodes as its plain ``int``: forward compatible.
    """

    NO_MOTIVE = 0
    TOO_MANY_CONNECTIONS = 1
    ALREADY_CONNECTED = 2
    UNEXPECTED_PEER_ID = 3
    PRIVATE_MODE = 4
    MYSELF = 5
    GREYLISTED = 6


# -- helpers -----------------------------------------------------------------------------


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, not {len(value)}")


def _check_port(port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range 0..65535")


def _decode_payload(
    command: str, payload: bytes | bytearray | memoryview, parse: Callable[[Reader], _T]
) -> _T:
    """Run ``parse`` over the whole ``payload``; normalise every error to
    :class:`NativeDecodeError` (keeping :class:`NativeLimitExceeded`) prefixed with
    ``command``; reject trailing bytes."""
    r = Reader(payload)
    try:
        value = parse(r)
    except NativeDecodeError as e:
        raise type(e)(f"{command}: {e}") from None
    except (DecodeError, AddrError) as e:
        raise NativeDecodeError(f"{command}: {e}") from None
    if not r.empty():
        raise NativeDecodeError(f"{command}: {r.remaining()} trailing bytes")
    return value


def encode_point(point: Service) -> bytes:
    """Encode a point: BIP155 network id (u8), CompactSize length, address, port (u16 BE).

    The address part is BIP155's addrv2 encoding (:meth:`NetAddr.to_bip155`; an internal
    address is written as IPv6 with Core's internal prefix). ``point`` is a valid
    :class:`~peerkeeper.net.netaddr.Service`; raises ``ValueError`` if its port is out of
    range (only possible for an object built without validation).
    """
    _check_port(point.port)
    net_id, raw = point.addr.to_bip155()
    return b"".join((bytes((net_id,)), ser_compact_size(len(raw)), raw, _U16BE.pack(point.port)))


def decode_point(r: Reader) -> Service:
    """Read one point (see :func:`encode_point`) from ``r`` and return its Service.

    The address length is checked against 512 bytes before the address is read. The
    address goes through :meth:`NetAddr.from_bip155` (Core's ``UnserializeV2Stream``).

    Raises:
        NativeDecodeError: an unknown network id (or one Core ignores: TORv2, an IPv6
            payload with the IPv4-mapped or TORv2 prefix), or a known id with the wrong
            address length.
        DecodeError: truncated data, a non-canonical or too large address length.
    """
    net_id = r.u8()
    raw = r.var_bytes(_MAX_ADDR_LEN)
    port = r.u16be()
    try:
        addr = NetAddr.from_bip155(net_id, raw)
    except AddrError as e:
        raise NativeDecodeError(f"bad address for network id {net_id}: {e}") from None
    if addr is None:
        raise NativeDecodeError(f"unknown network id {net_id}")
    return trusted_service(addr, port)


def _encode_points(points: tuple[Service, ...]) -> bytes:
    if len(points) > MAX_POINTS:
        raise ValueError(f"{len(points)} points, at most {MAX_POINTS}")
    return ser_compact_size(len(points)) + b"".join(encode_point(p) for p in points)


def _decode_points(r: Reader) -> tuple[Service, ...]:
    n = r.compact_size(2**64 - 1)
    if n > MAX_POINTS:  # before reading any point: a lying count costs nothing
        raise NativeLimitExceeded(f"point count {n} exceeds limit {MAX_POINTS}")
    return tuple(decode_point(r) for _ in range(n))


# -- messages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """``identity``: who the sender is, sent first on every connection.

    Fields: ``public_key`` (32 bytes, Ed25519), ``stamp`` (24 bytes, the proof-of-work
    stamp of :mod:`peerkeeper.native.identity`), ``listen_port`` (0..65535, 0 = not listening),
    ``private`` (a private node: do not advertise it), ``signature`` (64 bytes, Ed25519
    over :meth:`signed_data`).

    Octez's ``Connection_message`` (tm p2p_socket.ml: port, pubkey, proof-of-work stamp)
    plus its metadata's private flag; where Octez binds the session by deriving nonces
    from both connection messages, we sign the BIP324 session id.
    """

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
        """The bytes the identity signature covers.

        ``b"peerkeeper/native/identity/v1" || session_id (32) || public_key (32) ||
        stamp (24) || listen_port (u16 BE) || flags (u8)``. The BIP324 session id binds
        the identity to this one encrypted session, so a signed identity cannot be
        replayed in another. Raises ``ValueError`` for a wrong size or port.
        """
        _check_len("session_id", session_id, SESSION_ID_SIZE)
        _check_len("public_key", public_key, PUBLIC_KEY_SIZE)
        _check_len("stamp", stamp, STAMP_SIZE)
        _check_port(listen_port)
        flags = _FLAG_PRIVATE if private else 0
        return b"".join(
            (
                _IDENTITY_TAG,
                session_id,
                public_key,
                stamp,
                _U16BE.pack(listen_port),
                bytes((flags,)),
            )
        )

    def encode(self) -> bytes:
        """The 123-byte payload. Raises ``ValueError`` for a wrong key, stamp or
        signature size, or a port outside 0..65535."""
        _check_len("public_key", self.public_key, PUBLIC_KEY_SIZE)
        _check_len("stamp", self.stamp, STAMP_SIZE)
        _check_len("signature", self.signature, SIGNATURE_SIZE)
        _check_port(self.listen_port)
        flags = _FLAG_PRIVATE if self.private else 0
        return b"".join(
            (
                self.public_key,
                self.stamp,
                _U16BE.pack(self.listen_port),
                bytes((flags,)),
                self.signature,
            )
        )

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Identity:
        """Decode the payload; flag bits other than bit 0 are ignored (reserved).
        Raises :class:`NativeDecodeError` for a short or long payload."""

        def parse(r: Reader) -> Identity:
            pk = r.read(PUBLIC_KEY_SIZE)
            stamp = r.read(STAMP_SIZE)
            port = r.u16be()
            flags = r.u8()
            sig = r.read(SIGNATURE_SIZE)
            return cls(pk, stamp, port, bool(flags & _FLAG_PRIVATE), sig)

        return _decode_payload(cls.command, payload, parse)


@dataclass(frozen=True, slots=True)
class _Empty:
    """A message with an empty payload."""

    command: ClassVar[str]

    def encode(self) -> bytes:
        """The empty payload."""
        return b""

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Self:
        """Accept only an empty payload; raises :class:`NativeDecodeError` otherwise."""
        if len(payload):
            raise NativeDecodeError(f"{cls.command}: {len(payload)} trailing bytes")
        return cls()


@dataclass(frozen=True, slots=True)
class Ack(_Empty):
    """``ack``: the sender accepts the connection (Octez ``Ack.Ack``, p2p_socket.ml)."""

    command: ClassVar[str] = "ack"


@dataclass(frozen=True, slots=True)
class Bootstrap(_Empty):
    """``bootstrap``: please advertise the points you know (Octez ``Bootstrap``,
    p2p_message.ml; answered with an :class:`Advertise`)."""

    command: ClassVar[str] = "bootstrap"


@dataclass(frozen=True, slots=True)
class Nack:
    """``nack``: the connection is refused for ``reason``; ``points`` to try instead.

    Fields: ``reason`` (a :class:`NackReason`, or a plain ``int`` 0..255 for a code we
    do not know), ``points`` (at most :data:`MAX_POINTS` Services). Octez ``Ack.Nack
    {motive; potential_peers_to_connect}`` (p2p_socket.ml), whose list is
    ``list_known_points ~size:50`` (p2p_connect_handler.ml).
    """

    command: ClassVar[str] = "nack"
    reason: int
    points: tuple[Service, ...] = ()

    def encode(self) -> bytes:
        """Payload ``reason (u8) || count || points``. Raises ``ValueError`` for a reason
        outside 0..255 or more than :data:`MAX_POINTS` points."""
        reason = int(self.reason)
        if not 0 <= reason <= 0xFF:
            raise ValueError(f"nack reason {reason} does not fit in a byte")
        return bytes((reason,)) + _encode_points(tuple(self.points))

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Nack:
        """Decode the payload; an unknown reason code is kept as its int. Raises
        :class:`NativeDecodeError` (:class:`NativeLimitExceeded` for too many points)."""

        def parse(r: Reader) -> Nack:
            code = r.u8()
            reason = NackReason(code) if code in _NACK_REASONS else code
            return cls(reason, _decode_points(r))

        return _decode_payload(cls.command, payload, parse)


_NACK_REASONS = frozenset(int(m) for m in NackReason)


@dataclass(frozen=True, slots=True)
class Advertise:
    """``advertise``: points the sender knows, at most :data:`MAX_POINTS` (Octez
    ``Advertise``, p2p_message.ml)."""

    command: ClassVar[str] = "advertise"
    points: tuple[Service, ...]

    def encode(self) -> bytes:
        """Payload ``count || points``. Raises ``ValueError`` for more than
        :data:`MAX_POINTS` points."""
        return _encode_points(tuple(self.points))

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Advertise:
        """Decode the payload. Raises :class:`NativeDecodeError`
        (:class:`NativeLimitExceeded` for too many points)."""
        return _decode_payload(cls.command, payload, lambda r: cls(_decode_points(r)))


@dataclass(frozen=True, slots=True)
class _PointAndPeer:
    """Payload ``point || peer id (16)``, shared by the two swap messages."""

    command: ClassVar[str]
    point: Service
    peer_id: bytes

    def encode(self) -> bytes:
        """The payload. Raises ``ValueError`` if ``peer_id`` is not 16 bytes."""
        _check_len("peer_id", self.peer_id, PEER_ID_SIZE)
        return encode_point(self.point) + self.peer_id

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Self:
        """Decode the payload. Raises :class:`NativeDecodeError`."""
        return _decode_payload(
            cls.command, payload, lambda r: cls(decode_point(r), r.read(PEER_ID_SIZE))
        )


@dataclass(frozen=True, slots=True)
class SwapRequest(_PointAndPeer):
    """``swaprequest``: "connect to ``point`` (peer ``peer_id``) and drop one of yours".

    Octez ``Swap_request`` (p2p_message.ml; sent by p2p_maintenance.ml
    ``send_swap_request``, handled by p2p_protocol.ml ``swap_request``).
    """

    command: ClassVar[str] = "swaprequest"


@dataclass(frozen=True, slots=True)
class SwapAck(_PointAndPeer):
    """``swapack``: the point (and its peer id) the receiver of a swap request offers in
    exchange (Octez ``Swap_ack``, p2p_message.ml / p2p_protocol.ml)."""

    command: ClassVar[str] = "swapack"


@dataclass(frozen=True, slots=True)
class _Nonce:
    """Payload ``nonce (u64 little-endian)``, shared by ping and pong."""

    command: ClassVar[str]
    nonce: int

    def encode(self) -> bytes:
        """The 8-byte payload. Raises ``ValueError`` for a nonce outside 0..2**64-1."""
        if not 0 <= self.nonce <= 0xFFFF_FFFF_FFFF_FFFF:
            raise ValueError(f"nonce {self.nonce} does not fit in 64 bits")
        return _U64LE.pack(self.nonce)

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Self:
        """Decode the payload. Raises :class:`NativeDecodeError` unless it is 8 bytes."""
        return _decode_payload(cls.command, payload, lambda r: cls(r.u64()))


@dataclass(frozen=True, slots=True)
class Ping(_Nonce):
    """``ping`` with a 64-bit ``nonce`` (keep-alive; as Core's BIP31 ping)."""

    command: ClassVar[str] = "ping"


@dataclass(frozen=True, slots=True)
class Pong(_Nonce):
    """``pong`` echoing a ping's ``nonce``."""

    command: ClassVar[str] = "pong"


@dataclass(frozen=True, slots=True)
class Envelope:
    """``envelope``: ``payload``, the application's bytes, carried opaquely.

    The dispatch layer (:mod:`peerkeeper.dispatch.dispatcher`) defines what is inside (Octez's
    ``Message of 'msg``, p2p_message.ml). At most :data:`MAX_ENVELOPE_SIZE` bytes.
    """

    command: ClassVar[str] = "envelope"
    payload: bytes

    def encode(self) -> bytes:
        """The payload itself. Raises ``ValueError`` above :data:`MAX_ENVELOPE_SIZE`."""
        if len(self.payload) > MAX_ENVELOPE_SIZE:
            raise ValueError(f"envelope of {len(self.payload)} bytes, at most {MAX_ENVELOPE_SIZE}")
        return bytes(self.payload)

    @classmethod
    def decode(cls, payload: bytes | bytearray | memoryview) -> Envelope:
        """Wrap the payload. Raises :class:`NativeLimitExceeded` above
        :data:`MAX_ENVELOPE_SIZE` (checked before copying)."""
        if len(payload) > MAX_ENVELOPE_SIZE:
            raise NativeLimitExceeded(
                f"envelope: {len(payload)} bytes exceeds limit {MAX_ENVELOPE_SIZE}"
            )
        return cls(bytes(payload))


#: Any native message.
NativeMessage = (
    Identity | Ack | Bootstrap | Nack | Advertise | SwapRequest | SwapAck | Ping | Pong | Envelope
)
#: command name -> message class; every command is ASCII and at most 12 bytes (a BIP324
#: long message type).
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


def decode_native(command: str, payload: bytes | bytearray | memoryview) -> NativeMessage:
    """Decode one native message from its BIP324 message type and contents.

    Returns the message dataclass of :data:`NATIVE_MESSAGES` for ``command``.

    Raises:
        NativeDecodeError: an unknown command, a truncated payload, trailing bytes, a bad
            length, an unknown network id or malformed address in a point.
        NativeLimitExceeded: more than :data:`MAX_POINTS` points (refused before any
            point is read), or an envelope above :data:`MAX_ENVELOPE_SIZE` bytes.
    """
    cls = NATIVE_MESSAGES.get(command)
    if cls is None:
        raise NativeDecodeError(f"unknown message {command!r}")
    return cls.decode(payload)
