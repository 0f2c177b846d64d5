"""V2Transport (BIP324), sans-IO: two transports in memory, v1 fallback, limits, Core's bytes.

Scenarios after Bitcoin Core ``src/test/net_tests.cpp`` ``v2transport_test``; a
hand-driven peer built on :class:`BIP324Cipher` produces streams a well-behaved
V2Transport never sends (decoys, odd message ids, oversized lengths, long garbage).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerkeeper.wire.bip324_cipher import BIP324Cipher
from peerkeeper.wire.ellswift import generate_key
from peerkeeper.wire.messages import Ping
from peerkeeper.wire.v1 import RawMessage, TransportError, V1Transport, frame_v1
from peerkeeper.wire.v2 import MAX_CONTENTS_LEN, MAX_GARBAGE_LEN, V2_MESSAGE_IDS, V2Transport

MAGIC = bytes.fromhex("fabfb5da")  # regtest
OTHER_MAGIC = bytes.fromhex("f9beb4d9")  # mainnet
CORE_OPENING = Path(__file__).resolve().parent / "data" / "core_outbound_v2_opening.json"
EXP = BIP324Cipher.EXPANSION


def make(initiating: bool, seed: int, garbage: bytes | None = None) -> V2Transport:
    return V2Transport(MAGIC, initiating=initiating, rng=random.Random(seed), garbage=garbage)


def pair(seed: int = 1, garbage: bytes | None = None) -> tuple[V2Transport, V2Transport]:
    return make(True, seed, garbage), make(False, seed + 1000, garbage)


def pump(a: V2Transport, b: V2Transport) -> None:
    """Move bytes both ways until neither side has anything to send."""
    while True:
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return
        b.receive_data(ab)
        a.receive_data(ba)


def drain(t: V2Transport) -> list[RawMessage]:
    out = []
    while (msg := t.next_message()) is not None:
        out.append(msg)
    return out


def handshake(seed: int = 1) -> tuple[V2Transport, V2Transport]:
    a, b = pair(seed)
    pump(a, b)
    assert drain(a) == [] and drain(b) == []
    assert a.transport_type == b.transport_type == "v2"
    return a, b


class ManualPeer:
    """A BIP324 peer driven by hand (decoys, any contents, any garbage)."""

    def __init__(self, their_ellswift: bytes, *, initiating: bool = True, seed: int = 7) -> None:
        priv, self.ellswift = generate_key(random.Random(seed))
        self.cipher = BIP324Cipher(priv, self.ellswift, MAGIC)
        self.cipher.initialize(their_ellswift, initiating)

    def opening(self, garbage: bytes, *decoys_before_version: bytes) -> bytes:
        """Key, garbage, terminator, decoys (first carries garbage AAD), version packet."""
        out = self.ellswift + garbage + self.cipher.send_garbage_terminator
        aad = garbage
        for decoy in decoys_before_version:
            out += self.cipher.encrypt(decoy, aad, True)
            aad = b""
        return out + self.cipher.encrypt(b"", aad, False)

    def packet(self, contents: bytes, ignore: bool = False) -> bytes:
        return self.cipher.encrypt(contents, b"", ignore)


def manual_to_responder(garbage: bytes = b"gb", *decoys: bytes) -> tuple[V2Transport, ManualPeer]:
    r = make(False, 99)
    m = ManualPeer(r.our_ellswift)
    r.receive_data(m.opening(garbage, *decoys))
    assert drain(r) == []
    assert r.transport_type == "v2", r.error
    return r, m


# -- normal conversations -------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1000, 1_000_000])
def test_messages_both_ways(size: int) -> None:
    a, b = handshake()
    assert a.session_id == b.session_id and a.session_id is not None and len(a.session_id) == 32
    payload = random.Random(size).randbytes(size)
    for sender, receiver in ((a, b), (b, a)):
        for command in ("block", "version", "feature", "addrv2", "tx"):
            short = command in V2_MESSAGE_IDS
            wire_size = size + (1 if short else 13) + EXP
            assert sender.send(command, payload) == wire_size  # bytes go to data_to_send()
            pump(a, b)
            (msg,) = drain(receiver)
            assert (msg.command, msg.payload, msg.rejected) == (command, payload, None)
            assert msg.wire_size == wire_size


def test_queued_before_handshake_flushed_after_version_packet() -> None:
    a, b = pair()
    a.send_message(Ping(5))  # initiator: nothing received yet
    b.send("version", b"v")  # responder: still detecting
    assert b.data_to_send() == b""  # MAYBE_V1: a responder sends nothing first
    key_and_garbage = a.data_to_send()
    assert key_and_garbage[:64] == a.our_ellswift
    b.receive_data(key_and_garbage)
    reply = b.data_to_send()
    assert reply[:64] == b.our_ellswift
    a.receive_data(reply)
    assert [(m.command, m.payload) for m in drain(a)] == [("version", b"v")]
    b.receive_data(a.data_to_send())
    assert [(m.command, m.payload) for m in drain(b)] == [("ping", Ping(5).encode())]


def test_rekey_500_messages_each_way() -> None:
    a, b = handshake(3)
    rng = random.Random(500)
    sent_ab = [rng.randbytes(rng.randrange(0, 300)) for _ in range(500)]
    sent_ba = [rng.randbytes(rng.randrange(0, 300)) for _ in range(500)]
    # One direction in one burst, the other message by message: both cross 2 rekeys.
    for p in sent_ab:
        a.send("inv", p)
    pump(a, b)
    got_ab = [m.payload for m in drain(b)]
    got_ba = []
    for p in sent_ba:
        b.send("getdata", p)
        pump(a, b)
        got_ba += [m.payload for m in drain(a)]
    assert got_ab == sent_ab and got_ba == sent_ba


def _reference_stream(
    seed: int,
) -> tuple[bytes, list[tuple[str, bytes]], bytes, list[tuple[str, bytes]]]:
    """A short conversation: what each side sent, and what the other got."""
    a, b = pair(seed, garbage=b"\x01\x02\x03")
    a.send("version", b"A" * 5)
    b.send("version", b"B" * 7)
    a_out, b_out = bytearray(), bytearray()
    got_a: list[tuple[str, bytes]] = []
    got_b: list[tuple[str, bytes]] = []

    def step() -> None:
        while True:
            ab, ba = a.data_to_send(), b.data_to_send()
            if not ab and not ba:
                return
            a_out.extend(ab)
            b_out.extend(ba)
            b.receive_data(ab)
            a.receive_data(ba)
            got_b.extend((m.command, m.payload) for m in drain(b))
            got_a.extend((m.command, m.payload) for m in drain(a))

    step()
    a.send("verack", b"")
    b.send("verack", b"")
    a.send("ping", b"12345678")
    step()
    b.send("pong", b"12345678")
    b.send("addrv2", b"\x00")
    step()
    return bytes(a_out), got_b, bytes(b_out), got_a


def test_stream_split_at_every_offset() -> None:
    a_out, got_b, b_out, got_a = _reference_stream(11)
    assert len(got_b) == 3 and len(got_a) == 4
    # Responder side: the initiator's stream cut at every offset.
    for k in range(len(a_out) + 1):
        b = make(False, 11 + 1000, garbage=b"\x01\x02\x03")
        b.send("version", b"B" * 7)
        got = []
        for piece in (a_out[:k], a_out[k:]):
            b.receive_data(piece)
            got += [(m.command, m.payload) for m in drain(b)]
        assert got == got_b, k
    # Initiator side: the responder's stream cut at every offset.
    for k in range(len(b_out) + 1):
        a = make(True, 11, garbage=b"\x01\x02\x03")
        a.send("version", b"A" * 5)
        got = []
        for piece in (b_out[:k], b_out[k:]):
            a.receive_data(piece)
            got += [(m.command, m.payload) for m in drain(a)]
        assert got == got_a, k


def test_stream_byte_by_byte_and_random_chunks() -> None:
    a_out, got_b, _, _ = _reference_stream(12)
    rng = random.Random(12)
    for chunking in ("bytes", "random", "random"):
        b = make(False, 12 + 1000, garbage=b"\x01\x02\x03")
        b.send("version", b"B" * 7)
        got, i = [], 0
        while i < len(a_out):
            n = 1 if chunking == "bytes" else rng.randrange(1, 40)
            b.receive_data(a_out[i : i + n])
            i += n
            got += [(m.command, m.payload) for m in drain(b)]
        assert got == got_b


def test_garbage_of_max_length_accepted() -> None:
    a, b = pair(5, garbage=bytes(MAX_GARBAGE_LEN))
    a.send("ping", b"x" * 8)
    pump(a, b)
    assert [m.command for m in drain(b)] == ["ping"]
    with pytest.raises(ValueError):
        make(True, 1, garbage=bytes(MAX_GARBAGE_LEN + 1))


def test_transport_type_and_session_id_only_after_version_packet() -> None:
    a, b = pair(8)
    assert a.transport_type == b.transport_type == "detecting"
    b.receive_data(a.data_to_send())
    assert b.transport_type == "detecting" and b.session_id is None
    a.receive_data(b.data_to_send())  # a has b's key, terminator and version packet
    assert a.transport_type == "v2" and a.session_id is not None
    assert b.transport_type == "detecting"
    b.receive_data(a.data_to_send())
    assert b.transport_type == "v2" and b.session_id == a.session_id


def test_decoys_are_skipped() -> None:
    r, m = manual_to_responder(b"garbage!", b"decoy-1", b"")
    r.receive_data(m.packet(b"d" * 100, ignore=True))
    r.receive_data(m.packet(b"\x12" + b"nonce123"))  # ping, short id 18
    r.receive_data(m.packet(b"", ignore=True))
    assert [(x.command, x.payload) for x in drain(r)] == [("ping", b"nonce123")]
    assert r.decoys_received == 4


def test_decoy_before_version_must_authenticate_garbage() -> None:
    r = make(False, 99)
    m = ManualPeer(r.our_ellswift)
    stream = m.ellswift + b"gg" + m.cipher.send_garbage_terminator
    stream += m.cipher.encrypt(b"", b"", True)  # decoy without the garbage as AAD
    r.receive_data(stream)
    with pytest.raises(TransportError, match="decryption failure"):
        r.next_message()


def test_message_type_ids() -> None:
    r, m = manual_to_responder()
    for i in range(1, 256):
        r.receive_data(m.packet(bytes([i]) + b"pl"))
    got = drain(r)
    assert len(got) == 255
    for i, msg in enumerate(got, start=1):
        if i <= 28 or i == 37:
            assert (msg.command, msg.payload, msg.rejected) == (V2_MESSAGE_IDS[i], b"pl", None)
        elif i <= 36:  # reserved: Core yields type "", which the layer above ignores
            assert (msg.command, msg.rejected) == ("", None)
        else:
            assert msg.rejected == "command"
        assert msg.wire_size == 3 + EXP
    assert V2_MESSAGE_IDS[37] == "feature" and V2_MESSAGE_IDS[28] == "addrv2"
    assert r.invalid_commands == 255 - 37


@pytest.mark.parametrize(
    ("contents", "command", "rejected"),
    [
        (b"\x00" + b"version".ljust(12, b"\x00") + b"p", "version", None),
        (b"\x00" + b"abcdefghijkl" + b"p", "abcdefghijkl", None),
        (b"\x00" + b"a\x7f".ljust(12, b"\x00"), "a\x7f", None),  # Core allows 0x7F
        (b"\x00" + b"ping".ljust(12, b"\x00"), "ping", None),  # long form of a short id
        (b"", "", "command"),  # empty contents
        (b"\x00" + b"version", "version", "command"),  # fewer than 12 type bytes
        (b"\x00" + b"ver\x00sion".ljust(12, b"\x00"), "ver\x00sion", "command"),
        (b"\x00" + b"ver\x1f".ljust(12, b"\x00"), "ver\x1f", "command"),
        (b"\x00" + b"ver\x80".ljust(12, b"\x00"), "ver\ufffd", "command"),
    ],
)
def test_long_message_types(contents: bytes, command: str, rejected: str | None) -> None:
    r, m = manual_to_responder()
    r.receive_data(m.packet(contents))
    (msg,) = drain(r)
    assert (msg.command, msg.rejected) == (command, rejected)
    assert msg.wire_size == len(contents) + EXP


def test_send_validates_command() -> None:
    a, _ = pair()
    with pytest.raises(ValueError):
        a.send("thirteen-char", b"")
    with pytest.raises(ValueError):
        a.send("pïng", b"")
    with pytest.raises(ValueError):
        a.send("block", bytes(4_000_001))


# -- v1 detection and fallback ----------------------------------------------------------


def test_v1_fallback_yields_messages() -> None:
    stream = frame_v1(MAGIC, "version", b"hello") + frame_v1(MAGIC, "verack", b"")
    for chunk_size in (1, 7, len(stream)):
        r = make(False, 4)
        r.send("version", b"mine")  # queued while detecting, then v1-framed
        sent = b""
        for i in range(0, len(stream), chunk_size):
            r.receive_data(stream[i : i + chunk_size])
            out = r.data_to_send()
            assert out == b"" or r.transport_type == "v1"  # no v2 key ever goes out
            sent += out
        got = drain(r)
        assert [(m.command, m.payload) for m in got] == [("version", b"hello"), ("verack", b"")]
        assert r.transport_type == "v1" and r.session_id is None
        assert not r.should_reconnect_v1()
        r.send_message(Ping(9))
        peer = V1Transport(MAGIC)
        peer.receive_data(sent + r.data_to_send())
        assert [(m.command, m.payload) for m in drain_v1(peer)] == [
            ("version", b"mine"),
            ("ping", Ping(9).encode()),
        ]


def test_v1_peer_costs_no_v2_keys_and_settles_on_the_inner_v1() -> None:
    """A responder that finds a v1 peer never draws a key (ellswift keygen is the costly
    part of a v2 handshake, ~2 KB and a scalar multiplication per connection), and once
    nothing is pending it hands the connection to its inner v1 transport."""

    def no_rng(n: int) -> bytes:
        raise AssertionError("a v1 peer must not cost a BIP324 key")

    r = V2Transport(MAGIC, initiating=False, rng=no_rng)
    assert r.settled() is r  # still detecting
    r.receive_data(frame_v1(MAGIC, "version", b"hi"))
    assert [(m.command, m.payload) for m in drain(r)] == [("version", b"hi")]
    r.send("verack", b"")
    assert r.settled() is r  # a frame waits to be handed out first
    out = r.data_to_send()
    inner = r.settled()
    assert isinstance(inner, V1Transport) and inner.transport_type == "v1"
    inner.send("pong", b"12345678")
    peer = V1Transport(MAGIC)
    peer.receive_data(out + inner.data_to_send())
    assert [m.command for m in drain_v1(peer)] == ["verack", "pong"]
    v1 = V1Transport(MAGIC)
    assert v1.settled() is v1


def drain_v1(t: V1Transport) -> list[RawMessage]:
    out = []
    while (msg := t.next_message()) is not None:
        out.append(msg)
    return out


def test_v1_prefix_partial_then_wait() -> None:
    r = make(False, 4)
    r.receive_data(MAGIC + b"versi")
    assert r.next_message() is None and r.transport_type == "detecting"
    assert r.data_to_send() == b""  # still undecided: nothing sent


def test_v1_version_with_wrong_magic_is_an_error() -> None:
    r = make(False, 4)
    r.receive_data(frame_v1(OTHER_MAGIC, "version", b"hello"))
    with pytest.raises(TransportError, match="wrong MessageStart f9beb4d9"):
        r.next_message()
    with pytest.raises(TransportError):
        r.next_message()  # stays broken


def test_initiator_never_falls_back() -> None:
    a = make(True, 4)
    a.receive_data(frame_v1(MAGIC, "version", b"x" * 100))
    assert a.transport_type == "detecting"
    assert a.next_message() is None  # the bytes are taken as a key and garbage


def test_core_opening_is_detected_as_v2() -> None:
    blob = json.loads(CORE_OPENING.read_text())
    opening = bytes.fromhex(blob["sent_by_core"])
    assert len(opening) == blob["length"] and len(opening) - 64 <= MAX_GARBAGE_LEN
    for chunk in (len(opening), 1):
        r = make(False, 21, garbage=b"xyz")
        for i in range(0, len(opening), chunk):
            r.receive_data(opening[i : i + chunk])
        assert r.next_message() is None
        assert r.state == "GARB_GARBTERM" and r.transport_type == "detecting"
        reply = r.data_to_send()
        # Our key, our garbage, our terminator, our (empty) version packet.
        assert reply[:64] == r.our_ellswift and reply[64:67] == b"xyz"
        assert len(reply) == 64 + 3 + 16 + EXP
        # Core's terminator never comes (it was for another key): past 4111 bytes, fail.
        r.receive_data(bytes(4095 + 16 - (len(opening) - 64)))
        with pytest.raises(TransportError, match="missing garbage terminator"):
            r.next_message()


# -- limits and errors ------------------------------------------------------------------


def test_garbage_too_long() -> None:
    for initiating in (False, True):
        t = make(initiating, 30)
        m = ManualPeer(t.our_ellswift, initiating=not initiating)
        garbage = b"\x5a" * (MAX_GARBAGE_LEN + 1)
        stream = m.ellswift + garbage + m.cipher.send_garbage_terminator
        t.receive_data(stream[: 64 + MAX_GARBAGE_LEN + 15])
        assert t.next_message() is None  # 4110 bytes: still waiting
        t.receive_data(stream[64 + MAX_GARBAGE_LEN + 15 :])
        with pytest.raises(TransportError, match="missing garbage terminator"):
            t.next_message()


def test_terminator_almost_matching_in_garbage() -> None:
    # Core "Send garbage that includes the first 15 garbage terminator bytes somewhere".
    r = make(False, 31)
    m = ManualPeer(r.our_ellswift)
    term = m.cipher.send_garbage_terminator
    garbage = b"a" * 100 + term[:15] + bytes([term[15] ^ 1]) + b"b" * 50 + term[:15]
    r.receive_data(m.opening(garbage))
    r.receive_data(m.packet(b"\x12" + b"nonce123"))
    assert [x.command for x in drain(r)] == ["ping"]


def test_oversize_length_rejected_before_body() -> None:
    r, m = manual_to_responder()
    packet = m.packet(bytes(MAX_CONTENTS_LEN + 1))
    r.receive_data(packet[:3])
    assert r.error is not None and "packet too large (4000014 bytes)" in r.error
    r.receive_data(packet[3:])  # nothing more is kept
    assert r.buffered == 0
    with pytest.raises(TransportError, match="packet too large"):
        r.next_message()


def test_max_size_packet_accepted() -> None:
    r, m = manual_to_responder()
    contents = b"\x00" + b"block".ljust(12, b"\x00") + bytes(4_000_000)
    assert len(contents) == MAX_CONTENTS_LEN
    packet = m.packet(contents)
    r.receive_data(packet[:1000])
    assert r.partial_bytes() == r.buffered and r.next_message() is None
    r.receive_data(packet[1000:])
    assert r.buffered - r.partial_bytes() == 0
    (msg,) = drain(r)
    assert msg.command == "block" and len(msg.payload) == 4_000_000


def test_flipped_tag_is_fatal() -> None:
    a, b = handshake(6)
    a.send("ping", b"12345678")
    data = bytearray(a.data_to_send())
    data[-1] ^= 0x01
    b.receive_data(bytes(data))
    with pytest.raises(TransportError, match="decryption failure"):
        b.next_message()
    b.receive_data(b"more")
    with pytest.raises(TransportError):
        b.next_message()


def test_flipped_ciphertext_bit_is_fatal() -> None:
    for pos in (0, 3, 10):  # in the length, the header byte, the contents
        a, b = handshake(7)
        a.send("ping", b"12345678")
        a.send("ping", b"87654321")
        data = bytearray(a.data_to_send())
        data[pos] ^= 0x10
        b.receive_data(bytes(data))
        with pytest.raises(TransportError):
            drain(b)


def test_truncated_key_then_nothing() -> None:
    a = make(True, 40)
    assert not a.should_reconnect_v1()  # nothing handed out yet
    assert len(a.data_to_send()) >= 64
    assert a.should_reconnect_v1()  # sent a key, got nothing: maybe a v1 peer
    a.receive_data(os.urandom(30))
    assert a.next_message() is None and a.transport_type == "detecting"
    assert not a.should_reconnect_v1()  # received something: not v1
    r = make(False, 41)
    r.receive_data(make(True, 42).data_to_send()[:30])
    assert r.next_message() is None and not r.should_reconnect_v1()
    assert r.wants_bytes() == 34


def test_should_reconnect_v1_false_after_handshake() -> None:
    a, _ = handshake(9)
    assert not a.should_reconnect_v1()


def test_constructor_arguments() -> None:
    priv, ell = generate_key(random.Random(1))
    t = V2Transport(MAGIC, initiating=True, rng=None, privkey=priv, ellswift=ell, garbage=b"")
    assert t.data_to_send() == ell
    with pytest.raises(ValueError):
        V2Transport(MAGIC, initiating=True, rng=None)
    with pytest.raises(ValueError):
        V2Transport(MAGIC, initiating=True, rng=os.urandom, ellswift=ell)
    with pytest.raises(ValueError):
        V2Transport(b"\x00", initiating=True, rng=os.urandom)
    # os.urandom-backed randomness, the production source.
    a = V2Transport(MAGIC, initiating=True, rng=os.urandom)
    b = V2Transport(MAGIC, initiating=False, rng=os.urandom)
    a.send("tx", b"t")
    pump(a, b)
    assert [m.command for m in drain(b)] == ["tx"]


# -- property tests ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initiating=st.booleans(),
    chunks=st.lists(st.binary(min_size=0, max_size=300), max_size=20),
    prefix=st.sampled_from([b"", MAGIC, MAGIC + b"version\x00\x00\x00\x00\x00", b"\x00" * 4]),
)
def test_random_bytes_raise_only_transport_error(
    initiating: bool, chunks: list[bytes], prefix: bytes
) -> None:
    t = make(initiating, 50)
    for chunk in [prefix, *chunks]:
        t.receive_data(chunk)
        try:
            drain(t)
        except TransportError:
            return
        t.data_to_send()
        t.should_reconnect_v1()
        assert t.partial_bytes() <= t.buffered


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600), cut=st.integers(min_value=0, max_value=600))
def test_random_bytes_after_handshake_raise_only_transport_error(data: bytes, cut: int) -> None:
    r, m = manual_to_responder()
    good = m.packet(b"\x12" + bytes(8))
    r.receive_data(good[: min(cut, len(good))] + data)
    with contextlib.suppress(TransportError):
        drain(r)


def test_rejected_long_type_keeps_contents_after_first_byte() -> None:
    r, m = manual_to_responder()
    r.receive_data(m.packet(b"\x00" + b"bad\x01".ljust(12, b"\x00") + b"pl"))
    (msg,) = drain(r)
    assert msg.rejected == "command" and msg.payload == b"bad\x01".ljust(12, b"\x00") + b"pl"


# -- one Transport interface (Core's net.h Transport) ------------------------------------


def test_v2_responder_with_a_v1_peer_is_used_like_any_transport() -> None:
    """No caller swaps objects: after the fallback the v2 object delegates to its v1."""
    from peerkeeper.wire.transport import Transport

    t: Transport = make(False, 4)
    t.receive_data(frame_v1(MAGIC, "version", b"hello"))
    assert t.transport_type == "v1" and t.session_id is None
    (msg,) = list(iter(t.next_message, None))
    assert (msg.command, msg.payload, msg.wire_size) == ("version", b"hello", 24 + 5)
    assert t.send("verack", b"") == 24
    assert t.send_message(Ping(9)) == 24 + 8
    assert t.data_to_send() == frame_v1(MAGIC, "verack", b"") + frame_v1(
        MAGIC, "ping", Ping(9).encode()
    )
    assert t.data_to_send() == b""
    t.receive_data(frame_v1(MAGIC, "tx", b"t") + frame_v1(MAGIC, "pong", b"12"))
    assert t.buffered == 2 * 24 + 3 and t.partial_bytes() == 24
    assert [m.command for m in iter(t.next_message, None)] == ["tx", "pong"]
    assert not t.should_reconnect_v1()


def test_v1_and_v2_send_return_the_wire_size_and_queue_the_bytes() -> None:
    from peerkeeper.wire.transport import Transport

    v1: Transport = V1Transport(MAGIC)
    assert v1.send("block", b"b" * 10) == 34
    assert v1.send("ping", b"p" * 8) == 32
    assert v1.data_to_send() == frame_v1(MAGIC, "block", b"b" * 10) + frame_v1(
        MAGIC, "ping", b"p" * 8
    )
    assert v1.data_to_send() == b""
    a, b = handshake()
    pair_: tuple[Transport, Transport] = (a, b)
    sizes = [pair_[0].send(c, b"x" * 7) for c in ("ping", "sendaddrv2", "feature")]
    assert sizes == [EXP + 1 + 7, EXP + 13 + 7, EXP + 1 + 7]
    pump(a, b)
    assert [(m.command, m.wire_size) for m in drain(b)] == list(
        zip(("ping", "sendaddrv2", "feature"), sizes, strict=True)
    )


def test_every_short_id_is_a_core_message_type() -> None:
    from peerkeeper.wire.messages import ALL_NET_MESSAGE_TYPES

    assert {name for name in V2_MESSAGE_IDS if name} <= set(ALL_NET_MESSAGE_TYPES)
