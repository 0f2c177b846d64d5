"""Tests for peerkeeper.bitcoin.uploadtarget, in simulated time.

Rules from Bitcoin Core src/net.cpp (RecordBytesSent, GetMaxOutboundTimeLeftInCycle_,
OutboundTargetReached, GetOutboundTargetBytesLeft), src/rpc/net.cpp (getnettotals
"uploadtarget"), src/init.cpp (-maxuploadtarget, ByteUnit::M) and the ParseByteUnits
vectors of src/test/util_tests.cpp (``util_ParseByteUnits``).
"""

from __future__ import annotations

import pytest

from peerkeeper.bitcoin.uploadtarget import (
    DEFAULT_MAX_UPLOAD_TARGET,
    HISTORICAL_BLOCK_AGE,
    MAX_BLOCK_SERIALIZED_SIZE,
    MAX_UPLOAD_TIMEFRAME,
    UploadTarget,
    parse_byte_units,
    parse_upload_target,
)

T0 = 1_700_000_000  # a realistic UNIX time; Core treats cycle start 0 as "none yet"
MiB = 1 << 20
GiB = 1 << 30


def test_constants() -> None:
    assert MAX_UPLOAD_TIMEFRAME == 86400
    assert HISTORICAL_BLOCK_AGE == 7 * 24 * 3600
    assert MAX_BLOCK_SERIALIZED_SIZE == 4_000_000
    assert parse_upload_target(DEFAULT_MAX_UPLOAD_TARGET) == 0


# --- ParseByteUnits (util_tests.cpp util_ParseByteUnits) ----------------------------------


@pytest.mark.parametrize(
    ("s", "mult", "expected"),
    [
        ("1", 1, 1),
        ("0", 1, 0),
        ("1k", 1, 1000),
        ("1K", 1, 1 << 10),
        ("2m", 1, 2_000_000),
        ("2M", 1, 2 * MiB),
        ("3g", 1, 3_000_000_000),
        ("3G", 1, 3 * GiB),
        ("4t", 1, 4_000_000_000_000),
        ("4T", 1, 4 << 40),
        ("5", 1 << 10, 5 << 10),  # default multiplier
        ("020M", 1, 20 * MiB),  # zero padding
    ],
)
def test_parse_byte_units_core_vectors(s: str, mult: int, expected: int) -> None:
    assert parse_byte_units(s, mult) == expected


@pytest.mark.parametrize(
    "s",
    [
        "",
        "foo",
        "123m ",
        " 123m",
        "-123m",
        "+123m",
        "0.5T",
        "18446744073709551615g",
        "1x",
        "M",
        "18446744073709551616",
        "1\u0661",  # non-ASCII digit
        "1kk",
    ],
)
def test_parse_byte_units_core_rejects(s: str) -> None:
    assert parse_byte_units(s, 1) is None


def test_parse_byte_units_overflow_edge() -> None:
    assert parse_byte_units("18446744073709551615", 1) == (1 << 64) - 1
    assert parse_byte_units("16777215T", 1) == ((1 << 24) - 1) << 40
    assert parse_byte_units("16777216T", 1) is None  # 2**64 overflows


@pytest.mark.parametrize(
    ("s", "expected"),
    [
        ("0", 0),
        ("0M", 0),
        ("5000", 5000 * MiB),  # no suffix: ByteUnit::M = 2**20
        ("5000m", 5_000_000_000),
        ("5000M", 5000 * MiB),
        ("1G", GiB),
        ("144k", 144_000),
        ("1T", 1 << 40),
    ],
)
def test_parse_upload_target(s: str, expected: int) -> None:
    assert parse_upload_target(s) == expected


@pytest.mark.parametrize("s", ["", "abc", "-1", "1.5G", "5000 ", "17592186044416"])
def test_parse_upload_target_errors(s: str) -> None:
    with pytest.raises(ValueError) as ei:
        parse_upload_target(s)
    assert str(ei.value) == f"Unable to parse -maxuploadtarget: '{s}'"


# --- UploadTarget ------------------------------------------------------------------------


def test_bad_constructor_and_record_inputs() -> None:
    with pytest.raises(ValueError):
        UploadTarget(-1)
    with pytest.raises(ValueError):
        UploadTarget(1 << 64)
    ut = UploadTarget(1000)
    ut.record_bytes_sent(10, T0)
    with pytest.raises(ValueError):
        ut.record_bytes_sent(-5, T0)
    assert ut.total_bytes_sent == 10  # nothing lost or changed
    assert ut.bytes_sent_in_cycle == 10


def test_unlimited_target() -> None:
    ut = UploadTarget(0)
    ut.record_bytes_sent(10 * GiB, T0)
    assert ut.total_bytes_sent == 10 * GiB
    assert not ut.target_reached(False, T0)
    assert not ut.target_reached(True, T0)
    assert ut.bytes_left_in_cycle(T0) == 0
    assert ut.time_left_in_cycle(T0) == 0
    assert ut.rpc(T0) == {
        "timeframe": 86400,
        "target": 0,
        "target_reached": False,
        "serve_historical_blocks": True,
        "bytes_left_in_cycle": 0,
        "time_left_in_cycle": 0,
    }


def test_fresh_target_before_any_send() -> None:
    ut = UploadTarget(500 * MiB)
    assert ut.cycle_start == 0
    assert ut.time_left_in_cycle(T0) == MAX_UPLOAD_TIMEFRAME
    assert ut.bytes_left_in_cycle() == 500 * MiB
    assert not ut.target_reached(False, T0)


def test_cycle_starts_on_first_send_and_counts_down() -> None:
    ut = UploadTarget(1_000_000)
    ut.record_bytes_sent(100, T0)
    assert ut.cycle_start == T0
    assert ut.time_left_in_cycle(T0) == 86400
    assert ut.time_left_in_cycle(T0 + 3600) == 86400 - 3600
    assert ut.time_left_in_cycle(T0 + 3600.9) == 86400 - 3600  # seconds, truncated
    assert ut.time_left_in_cycle(T0 + 86400) == 0
    assert ut.time_left_in_cycle(T0 + 90000) == 0
    assert ut.bytes_left_in_cycle() == 1_000_000 - 100


def test_target_reached_and_cycle_reset_after_24h() -> None:
    ut = UploadTarget(1000)
    ut.record_bytes_sent(999, T0)
    assert not ut.target_reached(False, T0)
    assert ut.bytes_left_in_cycle() == 1
    ut.record_bytes_sent(1, T0 + 10)
    assert ut.target_reached(False, T0 + 10)
    assert ut.bytes_left_in_cycle() == 0
    ut.record_bytes_sent(500, T0 + 20)  # over the target: still counted
    assert ut.bytes_sent_in_cycle == 1500
    assert ut.bytes_left_in_cycle() == 0

    # Exactly at start + 24 h the cycle has not expired yet (Core uses a strict '<').
    ut.record_bytes_sent(1, T0 + 86400)
    assert ut.cycle_start == T0
    assert ut.bytes_sent_in_cycle == 1501

    # Without any send, the old cycle's state stays (only RecordBytesSent rolls it).
    assert ut.target_reached(False, T0 + 200_000)
    assert ut.bytes_left_in_cycle(T0 + 200_000) == 0

    # First send after expiry: new cycle at that time, count restarts with this send.
    ut.record_bytes_sent(7, T0 + 86401)
    assert ut.cycle_start == T0 + 86401
    assert ut.bytes_sent_in_cycle == 7
    assert ut.total_bytes_sent == 999 + 1 + 500 + 1 + 7
    assert not ut.target_reached(False, T0 + 86401)
    assert ut.bytes_left_in_cycle() == 993
    assert ut.time_left_in_cycle(T0 + 86401) == 86400


def test_historical_block_buffer_rule() -> None:
    limit = 200 * MAX_BLOCK_SERIALIZED_SIZE  # 800 MB
    ut = UploadTarget(limit)
    ut.record_bytes_sent(1, T0)
    # 24 h left: buffer = 144 blocks = 576 MB; limit - buffer = 224 MB.
    assert ut.time_left_in_cycle(T0) // 600 == 144
    assert not ut.target_reached(True, T0)
    ut.record_bytes_sent(56 * MAX_BLOCK_SERIALIZED_SIZE - 2, T0)  # 1 byte under
    assert ut.bytes_sent_in_cycle == 56 * MAX_BLOCK_SERIALIZED_SIZE - 1
    assert not ut.target_reached(True, T0)
    ut.record_bytes_sent(1, T0)
    assert ut.target_reached(True, T0)
    assert not ut.target_reached(False, T0)  # plain target far away
    assert ut.rpc(T0)["serve_historical_blocks"] is False
    # Later in the cycle the buffer shrinks: 12 h left -> 72 blocks, limit - buffer = 512 MB.
    assert not ut.target_reached(True, T0 + 43200)
    # 599 s left -> buffer 0: historical limit equals the plain limit.
    assert not ut.target_reached(True, T0 + 86400 - 599)
    # Integer division: 600 s left -> one block of buffer.
    ut2 = UploadTarget(MAX_BLOCK_SERIALIZED_SIZE)
    ut2.record_bytes_sent(0, T0)
    assert ut2.target_reached(True, T0 + 86400 - 600)  # buffer >= limit
    assert not ut2.target_reached(True, T0 + 86400 - 599)


def test_historical_rule_when_buffer_exceeds_limit() -> None:
    ut = UploadTarget(100 * MAX_BLOCK_SERIALIZED_SIZE)  # smaller than one day's blocks
    assert ut.target_reached(True, T0)  # fresh: 86400 s left -> 144 blocks >= 100
    assert not ut.target_reached(False, T0)


def test_no_cycle_with_tiny_clock_like_core() -> None:
    # Core's cycle start 0 means "none": with now <= 86400 no cycle ever starts.
    ut = UploadTarget(1000)
    ut.record_bytes_sent(400, 50)
    assert ut.cycle_start == 0
    assert ut.time_left_in_cycle(50) == MAX_UPLOAD_TIMEFRAME
    ut.record_bytes_sent(400, 86401)
    assert ut.cycle_start == 86401
    assert ut.bytes_sent_in_cycle == 400


def test_rpc_object() -> None:
    ut = UploadTarget(5000 * MiB)
    ut.record_bytes_sent(1000, T0)
    got = ut.rpc(T0 + 100)
    assert list(got) == [
        "timeframe",
        "target",
        "target_reached",
        "serve_historical_blocks",
        "bytes_left_in_cycle",
        "time_left_in_cycle",
    ]
    assert got == {
        "timeframe": 86400,
        "target": 5000 * MiB,
        "target_reached": False,
        "serve_historical_blocks": True,
        "bytes_left_in_cycle": 5000 * MiB - 1000,
        "time_left_in_cycle": 86300,
    }
    assert ut.target == 5000 * MiB
    assert ut.timeframe == 86400
