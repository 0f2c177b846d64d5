"""Native protocol message payloads (protocols/native_messages.py).

Round trips of every message (hypothesis), exact byte layouts computed by hand, every
decode error (truncation at each byte, trailing bytes, point counts over the Octez limit
of 100 refused before any point is read, unknown command, unknown network id, bad
lengths), reserved identity flags, forward-compatible nack reasons, the identity's
signed data, and the encoder's validation.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerkeeper.native.messages import (
    MAX_ENVELOPE_SIZE,
    MAX_POINTS,
    NATIVE_MAGIC,
    NATIVE_MESSAGES,
    PEER_ID_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    STAMP_SIZE,
    Ack,
    Advertise,
    Bootstrap,
    Envelope,
    Identity,
    Nack,
    NackReason,
    NativeDecodeError,
    NativeLimitExceeded,
    NativeMessage,
    Ping,
    Pong,
    SwapAck,
    SwapRequest,
    decode_native,
    decode_point,
    encode_point,
)
from peerkeeper.net.netaddr import (
    INTERNAL_IN_IPV6_PREFIX,
    IPV4_IN_IPV6_PREFIX,
    TORV2_IN_IPV6_PREFIX,
    NetAddr,
    Network,
    Service,
)
from peerkeeper.wire.codec import DecodeError, LimitExceeded, Reader

# -- strategies --------------------------------------------------------------------------

ipv4 = st.binary(min_size=4, max_size=4).map(lambda b: NetAddr(Network.IPV4, b))
# IPv6 payloads that BIP155 decoding keeps as IPv6 (the IPv4-mapped and TORv2 prefixes
# are dropped by Core, the internal prefix becomes an INTERNAL address).
ipv6 = (
    st.binary(min_size=16, max_size=16)
    .filter(
        lambda b: (
            not b.startswith(IPV4_IN_IPV6_PREFIX)
            and not b.startswith(TORV2_IN_IPV6_PREFIX)
            and not b.startswith(INTERNAL_IN_IPV6_PREFIX)
        )
    )
    .map(lambda b: NetAddr(Network.IPV6, b))
)
onion = st.binary(min_size=32, max_size=32).map(lambda b: NetAddr(Network.TORV3, b))
i2p = st.binary(min_size=32, max_size=32).map(lambda b: NetAddr(Network.I2P, b))
cjdns = st.binary(min_size=15, max_size=15).map(lambda b: NetAddr(Network.CJDNS, b"\xfc" + b))
ports = st.integers(0, 65535)
points = st.builds(Service, st.one_of(ipv4, ipv6, onion, i2p, cjdns), ports)
point_lists = st.lists(points, max_size=MAX_POINTS).map(tuple)
peer_ids = st.binary(min_size=PEER_ID_SIZE, max_size=PEER_ID_SIZE)
nonces = st.integers(0, 2**64 - 1)
identities = st.builds(
    Identity,
    st.binary(min_size=PUBLIC_KEY_SIZE, max_size=PUBLIC_KEY_SIZE),
    st.binary(min_size=STAMP_SIZE, max_size=STAMP_SIZE),
    ports,
    st.booleans(),
    st.binary(min_size=SIGNATURE_SIZE, max_size=SIGNATURE_SIZE),
)
nack_reasons = st.one_of(st.sampled_from(list(NackReason)), st.integers(0, 255))
messages: st.SearchStrategy[NativeMessage] = st.one_of(
    identities,
    st.just(Ack()),
    st.just(Bootstrap()),
    st.builds(Nack, nack_reasons, point_lists),
    st.builds(Advertise, point_lists),
    st.builds(SwapRequest, points, peer_ids),
    st.builds(SwapAck, points, peer_ids),
    st.builds(Ping, nonces),
    st.builds(Pong, nonces),
    st.builds(Envelope, st.binary(max_size=4096)),
)

# -- fixtures ----------------------------------------------------------------------------

V4 = Service(NetAddr.parse("1.2.3.4"), 8333)
V4_BYTES = b"\x01" + b"\x04" + b"\x01\x02\x03\x04" + b"\x20\x8d"
V6 = Service(NetAddr.parse("2001:db8::1"), 443)
V6_BYTES = b"\x02" + b"\x10" + b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01" + b"\x01\xbb"
PK = bytes(range(32))
STAMP = bytes(range(0x40, 0x58))
SIG = b"\xaa" * 64
SESSION = bytes(range(0x80, 0xA0))
IDENT = Identity(PK, STAMP, 9732, True, SIG)

SAMPLES: list[NativeMessage] = [
    IDENT,
    Ack(),
    Bootstrap(),
    Nack(NackReason.ALREADY_CONNECTED, (V4, V6)),
    Advertise((V6, V4)),
    SwapRequest(V4, b"\x05" * 16),
    SwapAck(V6, b"\x06" * 16),
    Ping(7),
    Pong(2**64 - 1),
    Envelope(b"hello"),
]


# -- round trips -------------------------------------------------------------------------


@given(messages)
def test_round_trip_every_message(msg: NativeMessage) -> None:
    raw = msg.encode()
    assert decode_native(msg.command, raw) == msg
    assert type(msg).decode(raw) == msg
    # Any buffer type is accepted and gives the same message.
    assert decode_native(msg.command, memoryview(bytearray(raw))) == msg


@given(points)
def test_point_round_trip(point: Service) -> None:
    raw = encode_point(point)
    r = Reader(raw + b"rest")
    assert decode_point(r) == point
    assert r.read_rest() == b"rest"


def test_internal_address_point_round_trips_as_internal() -> None:
    point = Service(NetAddr.internal("seed.example"), 0)
    raw = encode_point(point)
    assert raw[0] == 2 and raw[2:8] == INTERNAL_IN_IPV6_PREFIX  # written as BIP155 IPv6
    assert decode_point(Reader(raw)) == point


def test_round_trip_with_max_points() -> None:
    many = tuple(Service(NetAddr(Network.IPV4, bytes((10, 0, 0, i))), i) for i in range(100))
    assert decode_native("advertise", Advertise(many).encode()) == Advertise(many)
    assert decode_native("nack", Nack(NackReason.MYSELF, many).encode()) == Nack(
        NackReason.MYSELF, many
    )


def test_envelope_at_the_limit_round_trips() -> None:
    msg = Envelope(b"\x01" * MAX_ENVELOPE_SIZE)
    assert decode_native("envelope", msg.encode()) == msg


@given(st.sampled_from(sorted(NATIVE_MESSAGES)), st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_fail_cleanly(command: str, payload: bytes) -> None:
    try:
        msg = decode_native(command, payload)
    except NativeDecodeError:
        return
    assert msg.command == command
    assert decode_native(command, msg.encode()) == msg


# -- exact layouts -----------------------------------------------------------------------


def test_identity_layout() -> None:
    expected = PK + STAMP + b"\x26\x04" + b"\x01" + SIG
    assert len(expected) == 123
    assert IDENT.encode() == expected
    public = Identity(PK, STAMP, 0, False, SIG)
    assert public.encode() == PK + STAMP + b"\x00\x00" + b"\x00" + SIG


def test_nack_layout() -> None:
    msg = Nack(NackReason.TOO_MANY_CONNECTIONS, (V4, V6))
    assert msg.encode() == b"\x01" + b"\x02" + V4_BYTES + V6_BYTES
    assert Nack(NackReason.NO_MOTIVE).encode() == b"\x00\x00"


def test_other_layouts() -> None:
    assert encode_point(V4) == V4_BYTES
    assert encode_point(V6) == V6_BYTES
    assert Advertise(()).encode() == b"\x00"
    assert Advertise((V4,)).encode() == b"\x01" + V4_BYTES
    assert SwapRequest(V4, b"\x05" * 16).encode() == V4_BYTES + b"\x05" * 16
    assert SwapAck(V6, b"\x06" * 16).encode() == V6_BYTES + b"\x06" * 16
    assert Ping(0x0102030405060708).encode() == bytes.fromhex("0807060504030201")
    assert Pong(1).encode() == b"\x01" + b"\x00" * 7
    assert Ack().encode() == b"" and Bootstrap().encode() == b""
    assert Envelope(b"abc").encode() == b"abc"
    onion = Service(NetAddr(Network.TORV3, b"\x11" * 32), 9735)
    assert encode_point(onion) == b"\x04\x20" + b"\x11" * 32 + b"\x26\x07"


def test_signed_data_layout() -> None:
    data = Identity.signed_data(SESSION, PK, STAMP, 9732, True)
    assert data == b"peerkeeper/native/identity/v1" + SESSION + PK + STAMP + b"\x26\x04\x01"
    assert Identity.signed_data(SESSION, PK, STAMP, 0, False).endswith(b"\x00\x00\x00")
    # Bound to the session: another session id signs different bytes.
    assert Identity.signed_data(b"\x00" * 32, PK, STAMP, 9732, True) != data


@pytest.mark.parametrize(
    ("session", "pk", "stamp", "port"),
    [
        (b"\x00" * 31, PK, STAMP, 1),
        (b"\x00" * 33, PK, STAMP, 1),
        (SESSION, PK[:31], STAMP, 1),
        (SESSION, PK, STAMP + b"\x00", 1),
        (SESSION, PK, STAMP, 65536),
        (SESSION, PK, STAMP, -1),
    ],
)
def test_signed_data_rejects_bad_sizes(session: bytes, pk: bytes, stamp: bytes, port: int) -> None:
    with pytest.raises(ValueError):
        Identity.signed_data(session, pk, stamp, port, False)


# -- identity flags and nack reasons -----------------------------------------------------


def test_unknown_identity_flag_bits_are_ignored() -> None:
    raw = bytearray(IDENT.encode())
    flags_at = PUBLIC_KEY_SIZE + STAMP_SIZE + 2
    raw[flags_at] = 0xFE  # every bit but "private"
    decoded = decode_native("identity", bytes(raw))
    assert isinstance(decoded, Identity)
    assert decoded.private is False
    assert decoded.signature == SIG and decoded.listen_port == 9732
    raw[flags_at] = 0xFF
    decoded = decode_native("identity", bytes(raw))
    assert isinstance(decoded, Identity) and decoded.private is True
    # Re-encoding writes only bit 0.
    assert decoded.encode()[flags_at] == 0x01


def test_nack_reasons() -> None:
    assert [int(r) for r in NackReason] == [0, 1, 2, 3, 4, 5, 6]
    known = decode_native("nack", b"\x06\x00")
    assert isinstance(known, Nack) and known.reason is NackReason.GREYLISTED
    unknown = decode_native("nack", b"\xc8\x00")  # 200: from a newer peer
    assert unknown == Nack(200, ())
    assert isinstance(unknown, Nack) and type(unknown.reason) is int
    assert unknown.encode() == b"\xc8\x00"


# -- decode errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        IDENT,
        Nack(NackReason.ALREADY_CONNECTED, (V4, V6)),
        Advertise((V6, V4)),
        SwapRequest(V4, b"\x05" * 16),
        SwapAck(Service(NetAddr(Network.TORV3, b"\x22" * 32), 1), b"\x06" * 16),
        Ping(7),
        Pong(8),
    ],
    ids=lambda m: m.command,
)
def test_truncated_at_every_byte(msg: NativeMessage) -> None:
    raw = msg.encode()
    for cut in range(len(raw)):
        with pytest.raises(NativeDecodeError, match=f"^{msg.command}: "):
            decode_native(msg.command, raw[:cut])


@pytest.mark.parametrize(
    "msg", [m for m in SAMPLES if m.command != "envelope"], ids=lambda m: m.command
)
def test_trailing_byte(msg: NativeMessage) -> None:
    with pytest.raises(NativeDecodeError, match="1 trailing bytes"):
        decode_native(msg.command, msg.encode() + b"\x00")


def test_envelope_takes_every_byte() -> None:
    assert decode_native("envelope", b"") == Envelope(b"")
    assert decode_native("envelope", b"\x00\x01") == Envelope(b"\x00\x01")


def test_envelope_above_limit() -> None:
    with pytest.raises(NativeLimitExceeded, match="exceeds limit 4000000"):
        decode_native("envelope", bytes(MAX_ENVELOPE_SIZE + 1))


@pytest.mark.parametrize(("command", "prefix"), [("advertise", b""), ("nack", b"\x00")])
def test_count_above_max_points(command: str, prefix: bytes) -> None:
    payload = prefix + b"\x65" + V4_BYTES * 101  # 101 well-formed points
    with pytest.raises(NativeLimitExceeded, match="point count 101 exceeds limit 100"):
        decode_native(command, payload)


@pytest.mark.parametrize(
    "count",
    [
        b"\xff" + (2**32).to_bytes(8, "little"),  # 2^32
        b"\xfe" + (2**32 - 1).to_bytes(4, "little"),
        b"\xff" + (2**64 - 1).to_bytes(8, "little"),
        b"\xfd" + (253).to_bytes(2, "little"),
    ],
)
def test_lying_count_is_refused_before_reading_points(count: bytes) -> None:
    # 3 bytes of "points" follow: a short read would be the error if points were read.
    for command, prefix in (("advertise", b""), ("nack", b"\x01")):
        with pytest.raises(NativeLimitExceeded, match="exceeds limit 100") as info:
            decode_native(command, prefix + count + b"\x01\x04\x0b")
        assert isinstance(info.value, LimitExceeded)


def test_non_canonical_count() -> None:
    with pytest.raises(NativeDecodeError, match="non-canonical"):
        decode_native("advertise", b"\xfd\x01\x00" + V4_BYTES)


@pytest.mark.parametrize("command", ["", "version", "Ping", "identity\x00", "x" * 13])
def test_unknown_command(command: str) -> None:
    with pytest.raises(NativeDecodeError, match="unknown message"):
        decode_native(command, b"")


@pytest.mark.parametrize("net_id", [0, 3, 7, 99, 255])
def test_unknown_network_id(net_id: int) -> None:
    point = bytes((net_id,)) + b"\x04\x01\x02\x03\x04\x00\x01"
    with pytest.raises(NativeDecodeError, match=f"unknown network id {net_id}"):
        decode_native("advertise", b"\x01" + point)
    with pytest.raises(NativeDecodeError, match=f"swaprequest: unknown network id {net_id}"):
        decode_native("swaprequest", point + b"\x00" * 16)


@pytest.mark.parametrize(
    "point",
    [
        b"\x01\x05\x01\x02\x03\x04\x05\x00\x01",  # IPv4 in 5 bytes
        b"\x02\x04\x01\x02\x03\x04\x00\x01",  # IPv6 in 4 bytes
        b"\x04\x10" + b"\x00" * 16 + b"\x00\x01",  # Tor v3 in 16 bytes
    ],
)
def test_wrong_address_length(point: bytes) -> None:
    with pytest.raises(NativeDecodeError, match="bad address for network id"):
        decode_native("advertise", b"\x01" + point)


def test_address_length_above_512_refused_before_reading() -> None:
    payload = b"\x01" + b"\x04" + b"\xfd" + (513).to_bytes(2, "little") + b"\x00" * 3
    with pytest.raises(NativeDecodeError, match="exceeds limit 512"):
        decode_native("advertise", payload)


def test_ipv4_mapped_ipv6_point_is_refused() -> None:
    point = b"\x02\x10" + IPV4_IN_IPV6_PREFIX + b"\x01\x02\x03\x04" + b"\x00\x01"
    with pytest.raises(NativeDecodeError, match="unknown network id 2"):
        decode_native("advertise", b"\x01" + point)


def test_decode_point_errors_on_a_bare_reader() -> None:
    with pytest.raises(DecodeError):
        decode_point(Reader(V4_BYTES[:-1]))
    with pytest.raises(NativeDecodeError, match="unknown network id 9"):
        decode_point(Reader(b"\x09\x00\x00\x00"))


def test_decode_errors_are_value_errors() -> None:
    assert issubclass(NativeDecodeError, DecodeError)
    assert issubclass(NativeDecodeError, ValueError)
    assert issubclass(NativeLimitExceeded, NativeDecodeError)
    assert issubclass(NativeLimitExceeded, LimitExceeded)


# -- encode validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        Advertise((V4,) * (MAX_POINTS + 1)),
        Nack(NackReason.NO_MOTIVE, (V4,) * (MAX_POINTS + 1)),
        Nack(256),
        Nack(-1),
        Identity(PK[:31], STAMP, 1, False, SIG),
        Identity(PK + b"\x00", STAMP, 1, False, SIG),
        Identity(PK, STAMP[:23], 1, False, SIG),
        Identity(PK, STAMP, 1, False, SIG[:63]),
        Identity(PK, STAMP, 65536, False, SIG),
        Identity(PK, STAMP, -1, False, SIG),
        SwapRequest(V4, b"\x00" * 15),
        SwapAck(V4, b"\x00" * 17),
        Ping(2**64),
        Pong(-1),
        Envelope(bytes(MAX_ENVELOPE_SIZE + 1)),
    ],
    ids=lambda m: m.command,
)
def test_encode_validation(msg: NativeMessage) -> None:
    with pytest.raises(ValueError):
        msg.encode()


# -- registry and constants --------------------------------------------------------------


def test_registry() -> None:
    assert set(NATIVE_MESSAGES) == {
        "identity",
        "ack",
        "nack",
        "bootstrap",
        "advertise",
        "swaprequest",
        "swapack",
        "ping",
        "pong",
        "envelope",
    }
    for command, cls in NATIVE_MESSAGES.items():
        assert cls.command == command
        # Fits a BIP324 message type: printable ASCII, at most 12 bytes.
        assert command.isascii() and command.isprintable() and 0 < len(command) <= 12


def test_constants() -> None:
    assert NATIVE_MAGIC == b"pkn\x01"
    assert bytes.fromhex("f9beb4d9") != NATIVE_MAGIC  # Bitcoin mainnet
    assert MAX_POINTS == 100
    assert MAX_ENVELOPE_SIZE == 4_000_000
    assert (PEER_ID_SIZE, PUBLIC_KEY_SIZE, STAMP_SIZE, SIGNATURE_SIZE) == (16, 32, 24, 64)


def test_messages_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Ping(1).nonce = 2  # type: ignore[misc]
    assert Ping(1) != Pong(1)
    assert Ack() != Bootstrap()
    assert SwapRequest(V4, b"\x00" * 16) != SwapAck(V4, b"\x00" * 16)
    assert hash(Nack(NackReason.MYSELF, (V4,))) == hash(Nack(NackReason.MYSELF, (V4,)))


def test_ping_layout_is_little_endian() -> None:
    assert decode_native("ping", struct.pack("<Q", 5)) == Ping(5)
