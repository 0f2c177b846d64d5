"""The SAM 3.1 pieces of peerkeeper.net.i2p: I2P Base64, destinations and addresses,
Core's damaged_private_key vectors (src/test/i2p_tests.cpp), reply parsing, the
request lines Core sends and what their replies mean (src/i2p.cpp), the reply-line
reader and the accept loop's back-off (src/net.cpp)."""

from __future__ import annotations

import hashlib

import pytest

from peerkeeper.net.i2p import (
    ACCEPT_WAIT_CAP,
    DEST_GENERATE,
    HELLO,
    MAX_MSG_SIZE,
    AcceptBackoff,
    I2PError,
    LineReader,
    SamReply,
    accepted_peer,
    check_stream_accept,
    check_stream_connect,
    decode_i2p_base64,
    dest_b64_to_addr,
    dest_bin_to_addr,
    encode_i2p_base64,
    my_destination,
    naming_lookup,
    new_session_id,
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


def _reply(line: str, request: str = "STREAM CONNECT ID=s DESTINATION=d SILENT=false") -> SamReply:
    return SamReply.parse(request, line)


@pytest.mark.parametrize(
    ("line", "text", "disconnect", "proxy_error"),
    [
        ("STREAM STATUS RESULT=INVALID_ID", "Invalid session id", True, True),
        (
            "STREAM STATUS RESULT=CANT_REACH_PEER",
            '"STREAM STATUS RESULT=CANT_REACH_PEER"',
            False,
            False,
        ),
        ("STREAM STATUS RESULT=TIMEOUT", '"STREAM STATUS RESULT=TIMEOUT"', False, False),
        (
            "STREAM STATUS RESULT=I2P_ERROR MESSAGE=x",
            '"STREAM STATUS RESULT=I2P_ERROR MESSAGE=x"',
            False,
            True,
        ),
        (
            "STREAM STATUS",
            'Missing RESULT= in the reply to "STREAM CONNECT ID=s DESTINATION=d SILENT=false"',
            False,
            True,
        ),
    ],
)
def test_stream_connect_failures_say_whose_fault_as_core(
    line: str, text: str, disconnect: bool, proxy_error: bool
) -> None:
    """Core Session::Connect: INVALID_ID destroys the session; CANT_REACH_PEER and TIMEOUT
    are the destination's fault (ConnectNode then counts an addrman attempt)."""
    check_stream_connect(_reply("STREAM STATUS RESULT=OK"))
    with pytest.raises(I2PError) as info:
        check_stream_connect(_reply(line))
    assert str(info.value) == text
    assert (info.value.disconnect, info.value.proxy_error) == (disconnect, proxy_error)


def test_stream_accept_failures_destroy_the_session_only_for_an_invalid_id() -> None:
    check_stream_accept(_reply("STREAM STATUS RESULT=OK", "STREAM ACCEPT ID=s SILENT=false"))
    for line, disconnect in [
        ("STREAM STATUS RESULT=INVALID_ID", True),
        ("STREAM STATUS RESULT=ALREADY_ACCEPTING", False),
    ]:
        with pytest.raises(I2PError) as info:
            check_stream_accept(_reply(line, "STREAM ACCEPT ID=s SILENT=false"))
        assert str(info.value) == f'"{line}"' and info.value.disconnect is disconnect


def test_an_accepted_peer_is_known_by_its_destination_and_an_error_ends_the_session() -> None:
    dest = bytes(range(256)) + bytes(131)
    assert accepted_peer(encode_i2p_base64(dest)) == dest_bin_to_addr(dest)
    with pytest.raises(I2PError) as info:
        accepted_peer("not a destination!")
    assert not info.value.disconnect and "Cannot decode Base64" in str(info.value)
    line = 'STREAM STATUS RESULT=I2P_ERROR MESSAGE="Session was closed"'
    with pytest.raises(I2PError) as info:
        accepted_peer(line)
    assert info.value.disconnect
    assert str(info.value) == f"unexpected reply that hints the session is unusable: {line}"


def test_reply_lines_are_cut_at_newlines_and_the_rest_is_the_streams() -> None:
    r = LineReader()
    r.feed(b"HELLO REPLY RES")
    assert r.line() is None
    r.feed(b"ULT=OK VERSION=3.1\nSTREAM STATUS RESULT=OK\n\x00\x01peer bytes")
    assert r.line() == "HELLO REPLY RESULT=OK VERSION=3.1"
    assert r.line() == "STREAM STATUS RESULT=OK"
    assert r.line() is None and r.rest == b"\x00\x01peer bytes"
    r2 = LineReader()
    r2.feed(b"\xff\n")
    assert r2.line() == "\xff"  # byte for byte, never a decode error


def test_a_flood_without_a_newline_is_refused_at_cores_limit() -> None:
    """Core's RecvUntilTerminator reads at most MAX_MSG_SIZE bytes, the newline included:
    a 65,535-byte line passes, 65,536 bytes without a newline are refused, and the
    message always names the limit, however the bytes came."""
    ok = LineReader()
    ok.feed(b"x" * (MAX_MSG_SIZE - 1) + b"\nrest")
    assert ok.line() == "x" * (MAX_MSG_SIZE - 1) and ok.rest == b"rest"
    r = LineReader()
    r.feed(b"x" * (MAX_MSG_SIZE - 1))
    assert r.line() is None  # one byte below the limit: still waiting
    r.feed(b"x" * 5000)
    with pytest.raises(I2PError) as info:
        r.line()
    assert str(info.value) == "Received too many bytes without a terminator (65536)"
    long_line = LineReader()
    long_line.feed(b"y" * MAX_MSG_SIZE + b"\n")
    with pytest.raises(I2PError, match=r"without a terminator \(65536\)"):
        long_line.line()


def test_the_accept_loop_waits_one_second_longer_after_each_failure_up_to_five_minutes() -> None:
    b = AcceptBackoff()
    assert [b.failed() for _ in range(3)] == [1.0, 2.0, 3.0]
    for _ in range(400):
        b.failed()
    assert b.failed() == ACCEPT_WAIT_CAP == 300.0
    b.accepted()
    assert b.failed() == 1.0


def test_session_ids_are_ten_hex_digits() -> None:
    assert new_session_id(bytes.fromhex("0123456789ff")) == "0123456789"
    with pytest.raises(ValueError):
        new_session_id(b"1234")
