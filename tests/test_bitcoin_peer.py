"""BitcoinPeer, the sans-IO handshake / ping / addr state machine, in simulated time."""

from __future__ import annotations

import random

import pytest

from peerkeeper.connection_types import ConnectionType
from peerkeeper.netaddr import Service
from peerkeeper.protocols.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    Send,
)
from peerkeeper.protocols.bitcoin import BitcoinPeer, PeerConfig
from peerkeeper.wire.codec import DecodeError, LimitExceeded
from peerkeeper.wire.messages import (
    Addr,
    AddrEntry,
    AddrV2,
    GetAddr,
    Inv,
    Message,
    Ping,
    Pong,
    SendAddrV2,
    Verack,
    Version,
    WtxidRelay,
)

T0 = 1_800_000_000.0
NETWORK_WITNESS = 1 | 8


class FakeAddrSource:
    def __init__(self, entries: list[AddrEntry]) -> None:
        self.entries = entries
        self.calls = 0

    def get_addr(self, max_addresses: int, max_pct: int, now: float) -> list[AddrEntry]:
        self.calls += 1
        return self.entries[:max_addresses]


def entry(s: str, services: int = NETWORK_WITNESS, time: int = int(T0) - 100) -> AddrEntry:
    return AddrEntry(time, services, Service.parse(s, 8333))


def make_peer(
    conn_type: ConnectionType = ConnectionType.OUTBOUND_FULL_RELAY,
    source: FakeAddrSource | None = None,
    local_nonces: set[int] | None = None,
) -> BitcoinPeer:
    nonces = local_nonces if local_nonces is not None else set()
    return BitcoinPeer(
        conn_type=conn_type,
        addr=Service.parse("1.2.3.4:8333", 8333),
        local_nonce=42,
        config=PeerConfig(services=0, user_agent="/peerkeeper:test/"),
        now=T0,
        rng=random.Random(1),
        addr_source=source or FakeAddrSource([]),
        is_local_nonce=nonces.__contains__,
    )


def sent(actions: list[Action]) -> list[Message]:
    return [a.message for a in actions if isinstance(a, Send)]


def their_version(**kw: object) -> Version:
    fields: dict[str, object] = {
        "version": 70017,
        "services": NETWORK_WITNESS,
        "timestamp": int(T0) + 3,
        "nonce": 7,
        "user_agent": "/Satoshi:31.0.0/",
    }
    fields.update(kw)
    return Version(**fields)  # type: ignore[arg-type]


def handshake(peer: BitcoinPeer, now: float = T0) -> list[Action]:
    out = peer.start(now)
    out += peer.on_message(their_version(), now)
    peer.last_send = now
    out += peer.on_message(Verack(), now + 0.01)
    return out


def test_outbound_handshake_order_and_getaddr() -> None:
    peer = make_peer()
    start = sent(peer.start(T0))
    assert len(start) == 1 and isinstance(start[0], Version)
    v = start[0]
    assert (v.version, v.user_agent, v.nonce, v.start_height, v.timestamp) == (
        70016,
        "/peerkeeper:test/",
        42,
        0,
        int(T0),
    )
    assert str(v.addr_recv) == "1.2.3.4:8333"
    after_version = sent(peer.on_message(their_version(), T0 + 0.1))
    assert [type(m) for m in after_version] == [WtxidRelay, SendAddrV2, Verack, GetAddr]
    assert peer.their.time_offset == 3 and peer.common_version == 70016
    done = peer.on_message(Verack(), T0 + 0.2)
    assert isinstance(done[0], HandshakeComplete)
    assert isinstance(sent(done)[0], Ping)  # first ping right after the handshake, as Core


def test_inbound_answers_version_with_version() -> None:
    peer = make_peer(ConnectionType.INBOUND)
    assert peer.start(T0) == []
    out = sent(peer.on_message(their_version(), T0))
    assert [type(m) for m in out] == [Version, WtxidRelay, SendAddrV2, Verack]


def test_self_connection_detected_by_nonce() -> None:
    peer = make_peer(ConnectionType.INBOUND, local_nonces={7})
    out = peer.on_message(their_version(nonce=7), T0)
    assert isinstance(out[0], Disconnect) and "connected to self" in out[0].reason
    assert peer.on_message(Ping(1), T0) == []


def test_obsolete_version_and_missing_services() -> None:
    old = make_peer()
    assert isinstance(old.on_message(their_version(version=31799), T0)[0], Disconnect)
    noservices = make_peer()
    out = noservices.on_message(their_version(services=0), T0)
    assert isinstance(out[0], Disconnect) and "expected services" in out[0].reason
    manual = make_peer(ConnectionType.MANUAL)
    assert not any(
        isinstance(a, Disconnect) for a in manual.on_message(their_version(services=0), T0)
    )


def test_messages_before_version_are_ignored() -> None:
    peer = make_peer(ConnectionType.INBOUND)
    for msg in (Ping(1), Verack(), GetAddr(), Addr([entry("5.5.5.5:8333")])):
        assert peer.on_message(msg, T0) == []
    assert not peer.version_received


def test_negotiation_after_verack_disconnects() -> None:
    for late in (WtxidRelay(), SendAddrV2()):
        peer = make_peer()
        handshake(peer)
        out = peer.on_message(late, T0 + 1)
        assert isinstance(out[0], Disconnect) and "after verack" in out[0].reason


def test_redundant_version_and_verack_ignored() -> None:
    peer = make_peer()
    handshake(peer)
    assert peer.on_message(their_version(), T0 + 1) == []
    assert peer.on_message(Verack(), T0 + 1) == []


def test_ping_pong_and_wrong_nonce() -> None:
    peer = make_peer()
    actions = handshake(peer)
    ping = [m for m in sent(actions) if isinstance(m, Ping)][0]
    assert ping.nonce and peer.ping.nonce_sent == ping.nonce
    peer.on_message(Pong(ping.nonce + 1), T0 + 0.5)  # wrong nonce: ignored
    assert peer.ping.nonce_sent == ping.nonce and peer.ping.last_time is None
    peer.on_message(Pong(ping.nonce), T0 + 0.25)
    assert peer.ping.nonce_sent == 0 and peer.ping.last_time == pytest.approx(0.24, abs=1e-6)
    assert peer.ping.min_time == peer.ping.last_time
    # Answer the peer's ping.
    assert sent(peer.on_message(Ping(99), T0 + 1)) == [Pong(99)]


def test_ping_every_two_minutes_and_ping_timeout() -> None:
    peer = make_peer()
    handshake(peer)
    first = peer.ping.nonce_sent
    peer.on_message(Pong(first), T0 + 1)
    assert peer.next_wakeup() == pytest.approx(T0 + 0.01 + 120, abs=0.01)
    assert peer.tick(T0 + 60) == []
    again = sent(peer.tick(T0 + 121))
    assert len(again) == 1 and isinstance(again[0], Ping)
    # No pong for 20 minutes: disconnect. Keep the connection otherwise busy.
    peer.last_send = peer.last_recv = T0 + 121 + 1199
    out = peer.tick(T0 + 121 + 1201)
    assert isinstance(out[0], Disconnect) and "ping timeout" in out[0].reason


def test_requested_ping_goes_out_at_next_tick() -> None:
    peer = make_peer()
    handshake(peer)
    peer.on_message(Pong(peer.ping.nonce_sent), T0 + 1)
    peer.request_ping()
    assert peer.next_wakeup() == 0.0
    assert isinstance(sent(peer.tick(T0 + 2))[0], Ping)


def test_handshake_timeout_when_no_version() -> None:
    peer = make_peer(ConnectionType.INBOUND)
    assert peer.next_wakeup() == pytest.approx(T0 + 60, abs=0.01)
    assert peer.tick(T0 + 59) == []
    out = peer.tick(T0 + 61)
    assert isinstance(out[0], Disconnect) and "never received" in out[0].reason


def test_version_handshake_timeout_without_verack() -> None:
    peer = make_peer()
    peer.start(T0)
    peer.last_send = T0
    peer.on_message(their_version(), T0 + 1)
    out = peer.tick(T0 + 61)
    assert isinstance(out[0], Disconnect) and out[0].reason == "version handshake timeout"


def test_inactivity_timeouts() -> None:
    peer = make_peer()
    handshake(peer)
    peer.on_message(Pong(peer.ping.nonce_sent), T0 + 1)
    peer.last_send = T0 + 1
    peer.ping.start = T0 + 10_000  # keep pings out of the way
    out = peer.tick(T0 + 1 + 1201)
    assert isinstance(out[0], Disconnect) and "timeout" in out[0].reason


def test_getaddr_answered_once_for_inbound_only() -> None:
    source = FakeAddrSource([entry("5.6.7.8:8333"), entry("[2001:db8::1]:8333")])
    peer = make_peer(ConnectionType.INBOUND, source)
    peer.on_message(their_version(), T0)
    peer.on_message(Verack(), T0)
    reply = sent(peer.on_message(GetAddr(), T0))
    assert (
        isinstance(reply[0], Addr) and len(reply[0].entries) == 2
    )  # no sendaddrv2 from them: v1 addr
    assert peer.on_message(GetAddr(), T0) == []
    assert source.calls == 1
    out = make_peer(ConnectionType.OUTBOUND_FULL_RELAY, source)
    handshake(out)
    assert (
        out.on_message(GetAddr(), T0) == []
    )  # outbound peers' getaddr is ignored (fingerprinting)


def test_getaddr_reply_uses_addrv2_after_sendaddrv2() -> None:
    source = FakeAddrSource(
        [entry("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333")]
    )
    peer = make_peer(ConnectionType.INBOUND, source)
    peer.on_message(their_version(), T0)
    peer.on_message(SendAddrV2(), T0)
    peer.on_message(Verack(), T0)
    reply = sent(peer.on_message(GetAddr(), T0))
    assert isinstance(reply[0], AddrV2) and len(reply[0].entries) == 1


def test_addr_filtering_time_fix_and_rate_limit() -> None:
    peer = make_peer()
    handshake(peer)  # we sent getaddr: the bucket allows 1000 more
    entries = [entry(f"9.9.{i // 250}.{i % 250}:8333") for i in range(10)]
    entries.append(entry("8.8.8.8:8333", services=0))  # not a full node: dropped
    entries.append(entry("7.7.7.7:8333", time=50))  # time too old: fixed to now - 5 days
    out = peer.on_message(Addr(entries), T0 + 1)
    learned = [a for a in out if isinstance(a, LearnedAddresses)][0].entries
    assert len(learned) == 11
    fixed = [e for e in learned if str(e.service) == "7.7.7.7:8333"][0]
    assert fixed.time == int(T0 + 1 - 5 * 86400)
    # Unsolicited floods: the bucket refills at 0.1 per second only.
    peer.addr_token_bucket = 0.0
    flood = [entry(f"6.6.{i // 250}.{i % 250}:8333") for i in range(500)]
    out = peer.on_message(Addr(flood), T0 + 11)
    learned = [a for a in out if isinstance(a, LearnedAddresses)]
    assert len(learned[0].entries) == 1  # 10 s x 0.1/s
    assert peer.addr_rate_limited == 499


def test_block_relay_only_ignores_addr_and_sends_no_getaddr() -> None:
    peer = make_peer(ConnectionType.BLOCK_RELAY)
    peer.start(T0)
    assert GetAddr() not in sent(peer.on_message(their_version(), T0))
    peer.on_message(Verack(), T0)
    assert peer.on_message(Addr([entry("5.5.5.5:8333")]), T0) == []


def test_feeler_disconnects_after_version_and_addr_fetch_after_addr() -> None:
    feeler = make_peer(ConnectionType.FEELER)
    feeler.start(T0)
    out = feeler.on_message(their_version(), T0)
    assert isinstance(out[-1], Disconnect) and "feeler" in out[-1].reason
    fetch = make_peer(ConnectionType.ADDR_FETCH)
    handshake(fetch)
    out = fetch.on_message(Addr([entry("5.5.5.5:8333"), entry("5.5.5.6:8333")]), T0 + 1)
    assert isinstance(out[-1], Disconnect) and "addrfetch" in out[-1].reason


def test_decode_errors() -> None:
    peer = make_peer()
    handshake(peer)
    out = peer.on_decode_error("addr", LimitExceeded("addr message size = 1001"), T0 + 1)
    assert out == [Misbehaving("addr message size = 1001")]
    other = make_peer()
    handshake(other)
    assert other.on_decode_error("inv", DecodeError("short read"), T0 + 1) == []
    fresh = make_peer(ConnectionType.INBOUND)
    out = fresh.on_decode_error("version", DecodeError("size 257 exceeds limit 256"), T0)
    assert isinstance(out[0], Disconnect) and "malformed version" in out[0].reason


def test_unknown_and_unhandled_messages_are_ignored() -> None:
    peer = make_peer()
    handshake(peer)
    assert peer.on_message(Inv([]), T0 + 1) == []


def test_wakeup_never_in_the_past_when_tick_has_nothing_to_do() -> None:
    """Review finding: with -peertimeout above 20 min an unanswered ping must not spin the timer."""
    peer = BitcoinPeer(
        conn_type=ConnectionType.OUTBOUND_FULL_RELAY,
        addr=Service.parse("1.2.3.4:8333", 8333),
        local_nonce=42,
        config=PeerConfig(peer_connect_timeout=5000.0),
        now=T0,
        rng=random.Random(1),
        addr_source=FakeAddrSource([]),
    )
    handshake(peer)
    now = T0 + 1300  # the ping is 20 min old, but no inactivity check may run before 5000 s
    assert peer.tick(now) == []
    assert peer.next_wakeup() > now


def test_limit_from_manual_peer_keeps_the_state_machine_alive() -> None:
    peer = make_peer(ConnectionType.MANUAL)
    handshake(peer)
    assert peer.on_decode_error("addr", LimitExceeded("addr message size = 1001"), T0 + 1) == [
        Misbehaving("addr message size = 1001")
    ]
    assert not peer.disconnected  # the owner decides; manual peers are not punished
    assert sent(peer.on_message(Ping(5), T0 + 2)) == [Pong(5)]


def test_limits_are_checked_after_state_like_core() -> None:
    early = make_peer(ConnectionType.INBOUND)
    early.on_message(their_version(), T0)
    assert (
        early.on_decode_error("inv", LimitExceeded("inv message size = 50001"), T0) == []
    )  # before verack
    block = make_peer(ConnectionType.BLOCK_RELAY)
    handshake(block)
    assert block.on_decode_error("addr", LimitExceeded("addr message size = 1001"), T0) == []


def test_short_pong_cancels_the_ping() -> None:
    peer = make_peer()
    handshake(peer)
    assert peer.ping.nonce_sent
    peer.on_decode_error("pong", DecodeError("pong: short nonce"), T0 + 1)
    assert peer.ping.nonce_sent == 0


def test_user_agent_sanitized_like_core() -> None:
    peer = make_peer(ConnectionType.INBOUND)
    peer.on_message(their_version(user_agent="/Evil\x1b[31m:1.0/<script>é"), T0)
    assert peer.their.user_agent == "/Evil31m:1.0/script"
