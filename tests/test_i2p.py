"""The SAM 3.1 pieces of peerkeeper.net.i2p: I2P Base64, destinations and addresses,
Core's damaged_private_key vectors (src/test/i2p_tests.cpp), reply parsing and the
request lines Core sends (src/i2p.cpp)."""

from __future__ import annotations

import hashlib

import pytest

from peerkeeper.net.i2p import (
    DEST_GENERATE,
    HELLO,
    I2PError,
    SamReply,
    decode_i2p_base64,
    dest_b64_to_addr,
    dest_bin_to_addr,
    encode_i2p_base64,
    my_destination,
    naming_lookup,
    session_create_persistent,
    session_create_transient,
    stream_accept,
    stream_connect,
    swap_base64,
)
from peerkeeper.net.netaddr import Network


def test_i2p_base64_swaps_the_two_characters_both_ways() -> None:
    data = bytes([0xFB, 0xEF, 0xFF]) * 5
    std = "++//" * 5
    assert swap_base64(std) == "--~~" * 5 and swap_base64(swap_base64(std)) == std
    assert encode_i2p_base64(data) == "--~~" * 5
    assert decode_i2p_base64("--~~" * 5) == data
    with pytest.raises(I2PError, match='Cannot decode Base64: "not base64!"'):
        decode_i2p_base64("not base64!")


def test_a_destination_is_known_by_the_base32_of_its_hash() -> None:
    dest = bytes(range(256)) + bytes(131)  # 387 bytes, certificate length 0
    addr = dest_bin_to_addr(dest)
    assert addr.get_network() is Network.I2P
    assert str(addr).endswith(".b32.i2p") and len(str(addr)) == 52 + len(".b32.i2p")
    assert addr.to_bip155() == (5, hashlib.sha256(dest).digest())
    assert dest_b64_to_addr(encode_i2p_base64(dest)) == addr


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (b"", "The private key is too short (0 < 387)"),
        (b"abcd", "The private key is too short (4 < 387)"),
        (bytes(386), "The private key is too short (386 < 387)"),
        (
            bytes(385) + b"\0\1",
            "Certificate length (1) designates that the private key should be 388 bytes, "
            "but it is only 387 bytes",
        ),
        (
            bytes(385) + b"\0\5" + b"abcd",
            "Certificate length (5) designates that the private key should be 392 bytes, "
            "but it is only 391 bytes",
        ),
    ],
)
def test_damaged_private_keys_fail_with_cores_text(key: bytes, error: str) -> None:
    with pytest.raises(I2PError) as info:
        my_destination(key)
    assert str(info.value) == error


def test_our_destination_is_cut_out_of_the_key_with_its_certificate() -> None:
    key = bytes(385) + b"\0\3" + b"xyz" + b"private part"
    assert my_destination(key) == key[:390]


def test_replies_parse_as_core_and_name_the_request_when_a_key_is_missing() -> None:
    r = SamReply.parse("HELLO VERSION MIN=3.1 MAX=3.1", "HELLO REPLY RESULT=OK VERSION=3.1")
    assert r.get("RESULT") == "OK" and r.get("VERSION") == "3.1"
    assert r.keys["HELLO"] is None and r.check_ok() is r
    bad = SamReply.parse(
        "SESSION CREATE STYLE=STREAM ID=x DESTINATION=SECRET", "SESSION STATUS RESULT=DUPLICATED_ID"
    )
    assert bad.request == "SESSION CREATE ..."  # never the private key in a log
    with pytest.raises(I2PError, match="had a RESULT not equal to OK"):
        bad.check_ok()
    with pytest.raises(I2PError, match='Missing VALUE= in the reply to "NAMING LOOKUP NAME=x"'):
        SamReply.parse("NAMING LOOKUP NAME=x", "NAMING REPLY RESULT=KEY_NOT_FOUND").get("VALUE")
    dup = SamReply.parse("x", "A=1 A=2 B")
    assert dup.keys == {"A": "1", "B": None}
    with pytest.raises(I2PError):
        dup.get("B")  # a bare word has no value


def test_request_lines_are_cores() -> None:
    addr = dest_bin_to_addr(bytes(387))
    assert HELLO == "HELLO VERSION MIN=3.1 MAX=3.1"
    assert DEST_GENERATE == "DEST GENERATE SIGNATURE_TYPE=7"
    assert session_create_transient("abc") == (
        "SESSION CREATE STYLE=STREAM ID=abc DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=1 outbound.quantity=1"
    )
    assert session_create_persistent("abc", b"\xfb\xef\xff") == (
        "SESSION CREATE STYLE=STREAM ID=abc DESTINATION=--~~ "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=3 outbound.quantity=3"
    )
    assert stream_accept("abc") == "STREAM ACCEPT ID=abc SILENT=false"
    assert stream_connect("abc", "DEST") == "STREAM CONNECT ID=abc DESTINATION=DEST SILENT=false"
    assert naming_lookup(addr) == f"NAMING LOOKUP NAME={addr}"
