"""Native message payloads: round trips, exact layouts, every decode error."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerkeeper.netaddr import NetAddr, Network, Service
from peerkeeper.protocols.native_messages import (
    MAX_ENVELOPE_SIZE,
    MAX_POINTS,
    NATIVE_MESSAGES,
    Ack,
    Advertise,
    Bootstrap,
    Envelope,
    Identity,
    Nack,
    NackReason,
    NativeDecodeError,
    Ping,
    Pong,
    SwapAck,
    SwapRequest,
    decode_native,
)

ipv4 = st.binary(min_size=4, max_size=4).map(lambda b: NetAddr(Network.IPV4, b))
ipv6 = (
    st.binary(min_size=16, max_size=16)
    .filter(
        lambda b: (
            not b.startswith(b"\x00" * 10 + b"\xff\xff")
            and not b.startswith(b"\xfd\x87\xd8\x7e\xeb\x43")
            and not b.startswith(b"\xfd\x6b\x88\xc0\x87\x24")
        )
    )
    .map(lambda b: NetAddr(Network.IPV6, b))
)
onion = st.binary(min_size=32, max_size=32).map(lambda b: NetAddr(Network.TORV3, b))
points = st.builds(Service, st.one_of(ipv4, ipv6, onion), st.integers(0, 65535))
point_lists = st.lists(points, max_size=MAX_POINTS).map(tuple)

P1 = Service(NetAddr.parse("11.1.0.1"), 9732)


@given(
    st.one_of(
        st.builds(
            Identity,
            st.binary(min_size=32, max_size=32),
            st.binary(min_size=24, max_size=24),
            st.integers(0, 65535),
            st.booleans(),
            st.binary(min_size=64, max_size=64),
        ),
        st.just(Ack()),
        st.just(Bootstrap()),
        st.builds(Nack, st.sampled_from(list(NackReason)), point_lists),
        st.builds(Advertise, point_lists),
        st.builds(SwapRequest, points, st.binary(min_size=16, max_size=16)),
        st.builds(SwapAck, points, st.binary(min_size=16, max_size=16)),
        st.builds(Ping, st.integers(0, 2**64 - 1)),
        st.builds(Pong, st.integers(0, 2**64 - 1)),
        st.builds(Envelope, st.binary(max_size=2000)),
    )
)
def test_round_trip(msg: object) -> None:
    assert decode_native(msg.command, msg.encode()) == msg  # type: ignore[attr-defined]


def test_identity_layout() -> None:
    msg = Identity(b"\x01" * 32, b"\x02" * 24, 9732, True, b"\x03" * 64)
    assert msg.encode() == b"\x01" * 32 + b"\x02" * 24 + b"\x26\x04" + b"\x01" + b"\x03" * 64
    # Unknown flag bits are ignored.
    raw = bytearray(msg.encode())
    raw[58] = 0xFE
    assert decode_native("identity", bytes(raw)).private is False  # type: ignore[union-attr]
    session = bytes(range(32))
    assert Identity.signed_data(session, b"\x01" * 32, b"\x02" * 24, 9732, False) == (
        b"peerkeeper/native/identity/v1" + session + b"\x01" * 32 + b"\x02" * 24 + b"\x26\x04\x00"
    )


def test_nack_layout() -> None:
    msg = Nack(NackReason.TOO_MANY_CONNECTIONS, (P1,))
    assert msg.encode() == b"\x01" + b"\x01" + b"\x01\x04\x0b\x01\x00\x01" + b"\x26\x04"
    # An unknown reason code decodes as its number.
    assert decode_native("nack", b"\x63\x00") == Nack(99, ())


def test_truncations_fail_cleanly() -> None:
    for msg in (
        Identity(b"\x01" * 32, b"\x02" * 24, 1, False, b"\x03" * 64),
        Nack(NackReason.ALREADY_CONNECTED, (P1, P1)),
        SwapRequest(P1, b"\x05" * 16),
        Ping(7),
    ):
        raw = msg.encode()
        for cut in range(len(raw)):
            with pytest.raises(NativeDecodeError):
                decode_native(msg.command, raw[:cut])


def test_decode_errors() -> None:
    with pytest.raises(NativeDecodeError, match="trailing"):
        decode_native("ping", struct.pack("<Q", 1) + b"\x00")
    with pytest.raises(NativeDecodeError, match="unknown message"):
        decode_native("version", b"")
    with pytest.raises(NativeDecodeError, match="exceeds limit 100"):
        decode_native("advertise", b"\x65" + Advertise((P1,)).encode()[1:] * 101)
    # A lying count costs nothing: refused before any point is read.
    with pytest.raises(NativeDecodeError, match="exceeds limit"):
        decode_native("advertise", b"\xfe\x00\x00\x00\x01" + b"\x01\x04\x0b")
    with pytest.raises(NativeDecodeError, match="unknown network id"):
        decode_native("advertise", b"\x01" + b"\x63\x01\x00\x00\x01")
    with pytest.raises(NativeDecodeError):
        decode_native(
            "advertise", b"\x01" + b"\x01\x05\x0b\x01\x00\x01\x00\x00\x01"
        )  # v4 in 5 bytes
    with pytest.raises(NativeDecodeError):
        decode_native("ack", b"\x00")


def test_encode_validation() -> None:
    with pytest.raises(ValueError):
        Advertise((P1,) * (MAX_POINTS + 1)).encode()
    with pytest.raises(ValueError):
        Identity(b"\x01" * 31, b"\x02" * 24, 1, False, b"\x03" * 64).encode()
    with pytest.raises(ValueError):
        Identity(b"\x01" * 32, b"\x02" * 24, 70000, False, b"\x03" * 64).encode()
    with pytest.raises(ValueError):
        SwapAck(P1, b"\x00" * 15).encode()
    with pytest.raises(ValueError):
        Envelope(b"\x00" * (MAX_ENVELOPE_SIZE + 1)).encode()


def test_registry_commands_fit_bip324_types() -> None:
    for command in NATIVE_MESSAGES:
        assert command.isascii() and 0 < len(command) <= 12
