"""The wire format: CompactSize, messages, v1 framing; real Core bytes; python-bitcoinlib cross-checks."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.codec import DecodeError, LimitExceeded, Reader, checksum, ser_compact_size
from peerkeeper.wire.messages import (
    MAX_ADDR_TO_SEND,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    Addr,
    AddrEntry,
    AddrV2,
    BlockHeader,
    FeeFilter,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvItem,
    Message,
    NotFound,
    Ping,
    Pong,
    SendCmpct,
    UnknownMessage,
    Verack,
    Version,
    decode_message,
    services_names,
)
from peerkeeper.wire.v1 import (
    HEADER_SIZE,
    TransportError,
    V1Transport,
    frame_v1,
    is_valid_command,
)

DATA = Path(__file__).parent / "data"
REGTEST = bytes.fromhex("fabfb5da")
MAIN = bytes.fromhex("f9beb4d9")


# -- CompactSize and the reader -----------------------------------------------------------


def framed(t: V1Transport, msg: Message) -> bytes:
    """The bytes of one v1 message, through the transport's send queue."""
    size = t.send_message(msg)
    data = t.data_to_send()
    assert size == len(data) == HEADER_SIZE + len(msg.encode())
    return data


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fdfd00"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00000100"),
        (0xFFFFFFFF, "feffffffff"),
        (0x100000000, "ff0000000001000000"),
    ],
)
def test_compact_size_canonical(n: int, encoded: str) -> None:
    assert ser_compact_size(n).hex() == encoded
    assert Reader(bytes.fromhex(encoded)).compact_size(limit=2**64) == n


@pytest.mark.parametrize(
    "encoded", ["fd0000", "fdfc00", "feffff0000", "ff00000000ffffffff".replace("ff00", "ff00", 1)]
)
def test_compact_size_non_canonical_rejected(encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    if raw[0] == 0xFF:
        raw = b"\xff" + struct.pack("<Q", 0xFFFFFFFF)
    with pytest.raises(DecodeError, match="non-canonical"):
        Reader(raw).compact_size(limit=2**64)


def test_compact_size_range_check() -> None:
    with pytest.raises(DecodeError, match="exceeds limit"):
        Reader(ser_compact_size(0x02000001)).compact_size()


def test_reader_short_reads_raise_decode_error() -> None:
    for method in ("u8", "u16be", "i32", "u32", "i64", "u64", "compact_size", "var_bytes"):
        with pytest.raises(DecodeError):
            getattr(Reader(b""), method)()
    # A lying length prefix is caught before anything is allocated.
    with pytest.raises(DecodeError, match="short read"):
        Reader(ser_compact_size(1_000_000) + b"abc").var_bytes()


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_compact_size_roundtrip(n: int) -> None:
    raw = ser_compact_size(n)
    r = Reader(raw)
    assert r.compact_size(limit=2**64) == n
    assert r.empty()


# -- real bytes from Bitcoin Core 31 ----------------------------------------------------------


def _load(name: str) -> dict[str, object]:
    return json.loads((DATA / name).read_text())  # type: ignore[no-any-return]


def _frames(blob: bytes) -> list[tuple[str, bytes]]:
    t = V1Transport(REGTEST)
    t.receive_data(blob)
    out = []
    while (raw := t.next_message()) is not None:
        assert raw.rejected is None
        out.append((raw.command, raw.payload))
    assert t.buffered == 0
    return out


@pytest.mark.parametrize("name", ["core_inbound_v1.json", "core_outbound_v1.json"])
def test_core_transcripts_decode_and_reencode_byte_for_byte(name: str) -> None:
    d = _load(name)
    for direction in ("sent_by_core", "sent_by_us"):
        blob = bytes.fromhex(str(d[direction]))
        frames = _frames(blob)
        assert frames
        rebuilt = b""
        t = V1Transport(REGTEST)
        for command, payload in frames:
            msg = decode_message(command, payload)
            assert not isinstance(msg, UnknownMessage), command
            assert msg.encode() == payload, command
            rebuilt += framed(t, msg)
        assert rebuilt == blob
    listed = d["core_messages"]
    assert isinstance(listed, list)
    assert [(m["command"], bytes.fromhex(m["payload"])) for m in listed] == _frames(
        bytes.fromhex(str(d["sent_by_core"]))
    )


def test_core_version_fields() -> None:
    d = _load("core_inbound_v1.json")
    command, payload = _frames(bytes.fromhex(str(d["sent_by_core"])))[0]
    v = Version.decode(payload)
    assert command == "version"
    assert v.version == 70017
    assert v.user_agent == "/Satoshi:31.99.0/"
    assert services_names(v.services) == ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"]
    assert v.relay is True


def test_core_addrv2_reply_holds_the_addresses_added_to_core() -> None:
    d = _load("core_inbound_v1.json")
    frames = dict(_frames(bytes.fromhex(str(d["sent_by_core"]))))
    msg = AddrV2.decode(frames["addrv2"])
    got = {(str(e.service.addr), e.service.port) for e in msg.entries}
    added = d["addresses_added_to_core"]
    assert isinstance(added, list)
    wanted = {(a["address"], a["port"]) for a in added}
    assert got and got <= wanted


# -- messages ----------------------------------------------------------------------------


def _svc(s: str) -> Service:
    return Service.parse(s, 8333)


def test_addr_v1_skips_torv3_and_roundtrips() -> None:
    onion = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333"
    entries = [
        AddrEntry(1_700_000_000, 9, _svc("1.2.3.4:8333")),
        AddrEntry(1_700_000_001, 1, _svc(onion)),
    ]
    raw = Addr(entries).encode()
    back = Addr.decode(raw)
    assert back.entries == entries[:1]
    both = AddrV2.decode(AddrV2(entries).encode())
    assert both.entries == entries


def test_addr_limit_is_misbehaviour() -> None:
    entry = AddrEntry(1, 1, _svc("1.2.3.4:8333"))
    ok = Addr([entry] * MAX_ADDR_TO_SEND).encode()
    assert len(Addr.decode(ok).entries) == MAX_ADDR_TO_SEND
    with pytest.raises(LimitExceeded, match="addr message size = 1001"):
        Addr.decode(Addr([entry] * (MAX_ADDR_TO_SEND + 1)).encode())
    with pytest.raises(LimitExceeded):
        AddrV2.decode(AddrV2([entry] * (MAX_ADDR_TO_SEND + 1)).encode())


def test_addrv2_unknown_network_skipped_bad_length_rejected() -> None:
    def entry(net_id: int, addr: bytes) -> bytes:
        return struct.pack("<I", 1) + b"\x01" + bytes([net_id, len(addr)]) + addr + b"\x20\x8d"

    good = entry(1, bytes([1, 2, 3, 4]))
    unknown = entry(99, b"\x00" * 7)
    msg = AddrV2.decode(b"\x02" + unknown + good)
    assert [str(e.service) for e in msg.entries] == ["1.2.3.4:8333"]
    with pytest.raises(DecodeError):
        AddrV2.decode(b"\x01" + entry(1, bytes(5)))  # IPv4 with 5 bytes
    with pytest.raises(DecodeError):
        AddrV2.decode(
            b"\x01" + struct.pack("<I", 1) + b"\x01\x01\xfd\x01\x02" + bytes(513)
        )  # > 512 bytes


def test_version_user_agent_limit() -> None:
    ok = Version(user_agent="x" * 256).encode()
    assert Version.decode(ok).user_agent == "x" * 256
    with pytest.raises(DecodeError):
        Version.decode(Version(user_agent="x" * 257).encode())


def test_version_optional_tail_defaults_like_core() -> None:
    full = Version(
        version=70016,
        services=1,
        timestamp=5,
        nonce=7,
        user_agent="/a/",
        start_height=3,
        relay=False,
    ).encode()
    short = Version.decode(full[:46])  # version, services, time, addr_recv only
    assert (short.nonce, short.user_agent, short.start_height, short.relay) == (1, "", -1, True)
    with pytest.raises(DecodeError):
        Version.decode(full[:40])


def test_inv_headers_getheaders_limits() -> None:
    with pytest.raises(LimitExceeded):
        Inv.decode(ser_compact_size(50_001) + bytes(36) * 50_001)
    with pytest.raises(LimitExceeded):
        Headers.decode(ser_compact_size(2001) + bytes(81) * 2001)
    with pytest.raises(LimitExceeded):
        GetHeaders.decode(struct.pack("<I", 70016) + ser_compact_size(102) + bytes(32 * 103))
    # A lying count is refused without allocating: the payload is short.
    with pytest.raises(DecodeError):
        Inv.decode(ser_compact_size(50_000) + bytes(36))


def test_headers_with_nonzero_tx_count_uses_slow_path() -> None:
    h = BlockHeader(1, bytes(32), bytes(range(32)), 2, 3, 4)
    raw = b"\x01" + h.serialize() + b"\x05"
    assert Headers.decode(raw).headers == [h]


def test_empty_messages_and_unknown() -> None:
    assert decode_message("verack", b"") == Verack()
    assert decode_message("getaddr", b"") == GetAddr()
    unknown = decode_message("feature", b"\x01\x02")
    assert isinstance(unknown, UnknownMessage)
    assert (unknown.command, unknown.encode()) == ("feature", b"\x01\x02")
    assert decode_message("ping", b"") == Ping(None)
    with pytest.raises(DecodeError):
        decode_message("pong", b"\x01\x02")
    with pytest.raises(DecodeError):
        decode_message("sendcmpct", b"\x01")


# -- cross-check with python-bitcoinlib (an independent implementation) ------------------


def test_bitcoinlib_version_matches() -> None:
    from bitcoin.messages import msg_version

    theirs = msg_version(protover=70016)
    theirs.nVersion = 70016
    theirs.nServices = 9
    theirs.nTime = 1_700_000_000
    theirs.addrTo.ip, theirs.addrTo.port, theirs.addrTo.nServices = "1.2.3.4", 8333, 1
    theirs.addrFrom.ip, theirs.addrFrom.port, theirs.addrFrom.nServices = "5.6.7.8", 18444, 9
    theirs.nNonce = 0x1122334455667788
    theirs.strSubVer = b"/bitcoinlib/"
    theirs.nStartingHeight = 42
    theirs.fRelay = False
    ours = Version(
        version=70016,
        services=9,
        timestamp=1_700_000_000,
        addr_recv_services=1,
        addr_recv=_svc("1.2.3.4:8333"),
        addr_from_services=9,
        addr_from=_svc("5.6.7.8:18444"),
        nonce=0x1122334455667788,
        user_agent="/bitcoinlib/",
        start_height=42,
        relay=False,
    )
    core_bytes = theirs.to_bytes()
    assert framed(V1Transport(MAIN), ours) == core_bytes
    assert Version.decode(core_bytes[HEADER_SIZE:]) == ours


def test_bitcoinlib_addr_inv_ping_getheaders_match() -> None:
    from bitcoin.messages import msg_addr, msg_getheaders, msg_inv, msg_ping
    from bitcoin.net import CAddress, CBlockLocator, CInv

    t = V1Transport(MAIN)
    a = msg_addr(protover=70016)
    for i in range(3):
        ca = CAddress(protover=70016)
        ca.nTime, ca.nServices, ca.ip, ca.port = 1_700_000_000 + i, 1033, f"10.0.0.{i}", 8333 + i
        a.addrs.append(ca)
    six = CAddress(protover=70016)
    six.nTime, six.nServices, six.ip, six.port = 5, 9, "2001:db8::1", 1
    a.addrs.append(six)
    ours_addr = Addr(
        [AddrEntry(1_700_000_000 + i, 1033, _svc(f"10.0.0.{i}:{8333 + i}")) for i in range(3)]
        + [AddrEntry(5, 9, _svc("[2001:db8::1]:1"))]
    )
    assert framed(t, ours_addr) == a.to_bytes()

    inv = msg_inv(protover=70016)
    for i in range(5):
        ci = CInv()
        ci.type, ci.hash = i % 3 + 1, bytes([i]) * 32
        inv.inv.append(ci)
    assert framed(t, Inv([InvItem(i % 3 + 1, bytes([i]) * 32) for i in range(5)])) == inv.to_bytes()

    assert framed(t, Ping(0xDEADBEEF)) == msg_ping(protover=70016, nonce=0xDEADBEEF).to_bytes()

    gh = msg_getheaders(protover=70016)
    gh.locator = CBlockLocator(protover=70016)
    gh.locator.nVersion = 70016
    gh.locator.vHave = [bytes([7]) * 32, bytes([8]) * 32]
    gh.hashstop = bytes([9]) * 32
    ours_gh = GetHeaders(70016, [bytes([7]) * 32, bytes([8]) * 32], bytes([9]) * 32)
    assert framed(t, ours_gh) == gh.to_bytes()
    assert GetHeaders.decode(gh.to_bytes()[HEADER_SIZE:]) == ours_gh


# -- property tests: every decoder takes any bytes ------------------------------------------


@settings(max_examples=300)
@given(
    st.sampled_from(
        sorted(
            [
                "version",
                "ping",
                "pong",
                "addr",
                "addrv2",
                "inv",
                "getdata",
                "notfound",
                "getheaders",
                "headers",
                "feefilter",
                "sendcmpct",
                "verack",
                "xyz",
            ]
        )
    ),
    st.binary(max_size=600),
)
def test_decoders_raise_only_decode_error(command: str, payload: bytes) -> None:
    try:
        msg = decode_message(command, payload)
    except DecodeError:
        return
    msg.encode()  # whatever decoded must re-encode


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**64 - 1),
            st.binary(min_size=4, max_size=4),
            st.integers(0, 65535),
        ),
        max_size=50,
    )
)
def test_addrv2_roundtrip(items: list[tuple[int, int, bytes, int]]) -> None:
    entries = [
        AddrEntry(t, s, Service(NetAddr.from_bip155(1, ip) or NetAddr.parse("1.1.1.1"), p))
        for t, s, ip, p in items
    ]
    assert AddrV2.decode(AddrV2(entries).encode()).entries == entries


@given(st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1))
def test_fixed_roundtrips(nonce: int, fee: int) -> None:
    assert Ping.decode(Ping(nonce).encode()) == Ping(nonce)
    assert Pong.decode(Pong(nonce).encode()) == Pong(nonce)
    assert FeeFilter.decode(FeeFilter(fee).encode()) == FeeFilter(fee)
    assert SendCmpct.decode(SendCmpct(1, nonce).encode()) == SendCmpct(1, nonce)
    assert GetData.decode(GetData([InvItem(1, bytes(32))]).encode()).items == [
        InvItem(1, bytes(32))
    ]


# -- v1 framing ------------------------------------------------------------------------------


def test_v1_split_anywhere() -> None:
    t = V1Transport(REGTEST)
    blob = framed(t, Ping(1)) + framed(t, Verack()) + framed(t, Inv([InvItem(1, bytes(32))] * 100))
    for cut in range(0, len(blob), 7):
        r = V1Transport(REGTEST)
        got = []
        for i in range(0, len(blob), max(cut, 1)):
            r.receive_data(blob[i : i + max(cut, 1)])
            while (m := r.next_message()) is not None:
                got.append(m.command)
        assert got == ["ping", "verack", "inv"]
        assert r.buffered == 0


def test_v1_wrong_magic_is_fatal() -> None:
    r = V1Transport(REGTEST)
    r.receive_data(framed(V1Transport(MAIN), Ping(1)))
    with pytest.raises(TransportError, match="Wrong MessageStart f9beb4d9"):
        r.next_message()
    with pytest.raises(TransportError):
        r.next_message()  # stays broken


def test_v1_oversize_header_refused_before_payload() -> None:
    r = V1Transport(REGTEST)
    header = struct.pack("<4s12sI4s", REGTEST, b"block", MAX_PROTOCOL_MESSAGE_LENGTH + 1, b"\0" * 4)
    r.receive_data(header)  # no payload bytes at all: refused on the header alone
    with pytest.raises(TransportError, match="Size too large"):
        r.next_message()
    ok = V1Transport(REGTEST)
    ok.receive_data(
        struct.pack("<4s12sI4s", REGTEST, b"block", MAX_PROTOCOL_MESSAGE_LENGTH, b"\0" * 4)
    )
    assert ok.next_message() is None
    assert ok.wants_bytes() == MAX_PROTOCOL_MESSAGE_LENGTH


def test_v1_bad_checksum_dropped_and_counted() -> None:
    t = V1Transport(REGTEST)
    good = framed(t, Ping(5))
    bad = bytearray(good)
    bad[-1] ^= 1
    r = V1Transport(REGTEST)
    r.receive_data(bytes(bad) + good)
    first = r.next_message()
    assert first is not None and first.rejected == "checksum"
    second = r.next_message()
    assert second is not None and second.rejected is None and second.payload == Ping(5).encode()
    assert r.checksum_errors == 1


def test_v1_invalid_command_dropped() -> None:
    assert is_valid_command(b"version\0\0\0\0\0")
    assert not is_valid_command(b"ver\0sion\0\0\0\0")
    assert not is_valid_command(b"ver\x01ion\0\0\0\0\0")
    r = V1Transport(REGTEST)
    r.receive_data(struct.pack("<4s12sI4s", REGTEST, b"a\0b", 0, checksum(b"")))
    m = r.next_message()
    assert m is not None and m.rejected == "command"
    assert r.invalid_commands == 1


def test_v1_truncated_message_waits_and_holds_only_what_arrived() -> None:
    t = V1Transport(REGTEST)
    blob = framed(t, Inv([InvItem(1, bytes(32))] * 10))
    r = V1Transport(REGTEST)
    r.receive_data(blob[:-1])
    assert r.next_message() is None
    assert r.buffered == len(blob) - 1 - HEADER_SIZE
    r.receive_data(blob[-1:])
    assert r.next_message() is not None


def test_v1_large_message_in_small_chunks_is_linear() -> None:
    payload = bytes(1_000_000)
    blob = frame_v1(REGTEST, "block", payload)
    r = V1Transport(REGTEST)
    stream = io.BytesIO(blob)
    while chunk := stream.read(65536):
        r.receive_data(chunk)
    m = r.next_message()
    assert m is not None and m.payload == payload and m.wire_size == len(blob)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(
        st.sampled_from([0, 8, 65_535, 65_536, 70_001, 300_000]), min_size=1, max_size=5
    ),
    cuts=st.lists(st.integers(1, 200_000), min_size=1, max_size=40),
    bad=st.integers(0, 4),
    pull_every=st.integers(1, 4),
)
def test_v1_large_bodies_collected_in_chunks_keep_every_byte_and_the_count(
    sizes: list[int], cuts: list[int], bad: int, pull_every: int
) -> None:
    """Bodies from 64 KiB up are collected chunk by chunk: whatever the reads, and
    however many reads come before messages are taken out (a send-paused peer's bytes
    wait), every message comes out whole and in order, a wrong checksum is still
    caught, and ``buffered`` / ``partial_bytes()`` count what is held."""
    payloads = [bytes([i + 1]) * n for i, n in enumerate(sizes)]
    frames = [frame_v1(REGTEST, "block", p) for p in payloads]
    if bad < len(frames):  # corrupt one checksum
        f = bytearray(frames[bad])
        f[20] ^= 0xFF
        frames[bad] = bytes(f)
    blob = b"".join(frames)
    r = V1Transport(REGTEST)
    got = []
    pos = 0
    i = 0
    while pos < len(blob):
        n = cuts[i % len(cuts)]
        i += 1
        r.receive_data(blob[pos : pos + n])
        pos += n
        assert r.buffered <= pos
        if i % pull_every == 0 or pos >= len(blob):
            while (m := r.next_message()) is not None:
                got.append(m)
        assert r.partial_bytes() <= r.buffered
    assert r.buffered == 0
    assert [m.payload for m in got] == payloads
    assert [m.rejected for m in got] == [
        "checksum" if k == bad else None for k in range(len(sizes))
    ]
    assert r.checksum_errors == (1 if bad < len(sizes) else 0)


def test_v1_bytes_past_a_large_body_over_several_reads_are_the_next_messages() -> None:
    body = b"x" * 70_000
    blob = frame_v1(REGTEST, "block", body) + frame_v1(REGTEST, "ping", bytes(8)) * 2
    r = V1Transport(REGTEST)
    r.receive_data(blob[:1000])
    assert r.next_message() is None
    for a, b in ((1000, 70_024), (70_024, 70_040), (70_040, len(blob))):
        r.receive_data(blob[a:b])  # three reads before the next call
    got = []
    while (m := r.next_message()) is not None:
        got.append((m.command, len(m.payload), m.rejected))
    assert got == [("block", 70_000, None), ("ping", 8, None), ("ping", 8, None)]
    assert r.buffered == 0


def test_notfound_has_no_count_limit_like_core() -> None:
    assert len(NotFound.decode(ser_compact_size(60_000) + bytes(36 * 60_000)).items) == 60_000
    with pytest.raises(LimitExceeded):
        GetData.decode(ser_compact_size(50_001) + bytes(36 * 50_001))


def test_all_net_message_types_is_cores_list() -> None:
    """src/protocol.h ``ALL_NET_MESSAGE_TYPES`` (Core master, with BIP434 ``feature``)."""
    from peerkeeper.wire.messages import ALL_NET_MESSAGE_TYPES, MESSAGE_TYPES

    assert (
        tuple(
            [
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
            ]
        )
        == ALL_NET_MESSAGE_TYPES
    )
    assert set(MESSAGE_TYPES) < set(ALL_NET_MESSAGE_TYPES)


@pytest.mark.parametrize("command", ["tx", "block", "cmpctblock", "feature", "sendtxrcncl"])
def test_v1_known_commands_outside_the_decoders_keep_their_name(command: str) -> None:
    r = V1Transport(REGTEST)
    r.receive_data(frame_v1(REGTEST, command, b"\x01\x02"))
    m = r.next_message()
    assert m is not None and (m.command, m.rejected, m.wire_size) == (command, None, 26)
