"""BitcoinPeer, the sans-IO handshake / ping / addr state machine, in simulated time."""

from __future__ import annotations

import logging
import random

import pytest

from peerkeeper.bitcoin.actions import (
    Action,
    Disconnect,
    HandshakeComplete,
    LearnedAddresses,
    Misbehaving,
    Send,
    VersionReceived,
)
from peerkeeper.bitcoin.peer import PERMISSION_ADDR, BitcoinPeer, PeerConfig
from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import Service
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
    out = old.on_message(their_version(version=31799), T0)
    # Core SetServices happens before the checks; the connection is not a success
    assert out[0] == VersionReceived(9, False)
    assert isinstance(out[1], Disconnect) and "obsolete" in out[1].reason
    noservices = make_peer()
    out = noservices.on_message(their_version(services=0), T0)
    assert out[0] == VersionReceived(0, False)
    assert isinstance(out[1], Disconnect) and "expected services" in out[1].reason
    inbound_old = make_peer(ConnectionType.INBOUND)
    out = inbound_old.on_message(their_version(version=31799), T0)
    assert not any(isinstance(a, VersionReceived) for a in out)  # inbound: no addrman update


def test_outbound_version_reports_services_and_success_feelers_too() -> None:
    for conn_type in (
        ConnectionType.OUTBOUND_FULL_RELAY,
        ConnectionType.BLOCK_RELAY,
        ConnectionType.FEELER,
        ConnectionType.MANUAL,
    ):
        out = make_peer(conn_type).on_message(their_version(), T0)
        assert VersionReceived(9, True) in out, conn_type
    feeler = make_peer(ConnectionType.FEELER).on_message(their_version(), T0)
    assert feeler.index(VersionReceived(9, True)) < len(feeler) - 1
    assert isinstance(feeler[-1], Disconnect)
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
    source = FakeAddrSource([entry("5.6.7.8:8333"), entry("[2a01:4f8::1]:8333")])
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


# -- address relay (Core PushAddress / MaybeSendAddr / ProcessAddrs relay) ---------------

ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333"
OUR_SERVICES = 1 | 8 | 1024


def routable(i: int, time: int = int(T0) - 100) -> AddrEntry:
    """A distinct valid, routable IPv4 entry per i."""
    return entry(f"23.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:8333", time=time)


def relay_peer(
    conn_type: ConnectionType = ConnectionType.OUTBOUND_FULL_RELAY,
    *,
    local: AddrEntry | None = None,
    listening: bool = False,
    permissions: int = 0,
    in_ibd: bool = False,
    seed: int = 1,
    source: FakeAddrSource | None = None,
) -> BitcoinPeer:
    def local_address() -> AddrEntry | None:
        return local

    return BitcoinPeer(
        conn_type=conn_type,
        addr=Service.parse("1.2.3.4:8333", 8333),
        local_nonce=42,
        config=PeerConfig(services=OUR_SERVICES),
        now=T0,
        rng=random.Random(seed),
        addr_source=source or FakeAddrSource([]),
        permissions=permissions,
        local_address=local_address if (listening or local is not None) else None,
        in_ibd=in_ibd,
    )


def connect(peer: BitcoinPeer, *, addrv2: bool = False, now: float = T0) -> list[Action]:
    """Complete the handshake in either direction; returns every action."""
    out = peer.start(now)
    out += peer.on_message(their_version(), now)
    if addrv2:
        out += peer.on_message(SendAddrV2(), now)
    peer.last_send = now
    out += peer.on_message(Verack(), now)
    return out


def tick_at(peer: BitcoinPeer, now: float) -> list[Message]:
    """Tick with the link alive (traffic both ways, no ping outstanding); addr messages out."""
    peer.last_send = peer.last_recv = now
    peer.ping.nonce_sent = 0
    peer.ping.start = now
    return [m for m in sent(peer.tick(now)) if isinstance(m, (Addr, AddrV2))]


def flush(peer: BitcoinPeer) -> tuple[float, list[Message]]:
    """Tick at the peer's next wakeup; returns (time, addr messages)."""
    now = peer.next_wakeup()
    return now, tick_at(peer, now)


def test_push_address_queue_cap_with_random_replacement() -> None:
    peer = relay_peer()
    connect(peer)
    for i in range(1500):
        peer.push_address(routable(i), T0 + 1)
    assert len(peer.addrs_to_send) == 1000
    queued = {e.service for e in peer.addrs_to_send}
    assert len(queued) == 1000
    late = sum(1 for i in range(1000, 1500) if routable(i).service in queued)
    assert 200 <= late <= 500  # later pushes replaced random earlier ones
    assert sum(1 for i in range(1000) if routable(i).service in queued) == 1000 - late
    _, msgs = flush(peer)
    assert len(msgs) == 1 and isinstance(msgs[0], Addr) and len(msgs[0].entries) == 1000
    assert peer.addrs_to_send == []


def test_flush_waits_for_the_timer_and_marks_known() -> None:
    peer = relay_peer()
    connect(peer)  # the first flush (empty queue) ran at the handshake
    assert peer.next_addr_send > T0
    base_wakeup = peer.next_wakeup()
    peer.push_address(routable(1), T0)
    assert peer.next_wakeup() == pytest.approx(min(base_wakeup, peer.next_addr_send + 0.001))
    assert tick_at(peer, peer.next_addr_send) == []  # not yet: Core needs now > deadline
    now, msgs = flush(peer)
    assert msgs == [Addr([routable(1)])]
    assert now > T0
    # Already sent: known now, so neither queued nor sent again.
    peer.push_address(routable(1), now)
    assert peer.addrs_to_send == []
    # An empty queue does not wake the peer; a non-empty one does, at the deadline.
    idle_wakeup = peer.next_wakeup()
    peer.next_addr_send = now + 1
    assert peer.next_wakeup() == idle_wakeup > now + 1
    peer.push_address(routable(2), now)
    assert peer.next_wakeup() == pytest.approx(now + 1.001)


def test_stale_deadline_is_redrawn_when_the_queue_fills() -> None:
    peer = relay_peer()
    connect(peer)
    later = T0 + 10_000
    assert peer.next_addr_send < later
    peer.push_address(routable(1), later)
    assert peer.next_addr_send > later  # a fresh exp(30 s) wait, not an instant send
    assert tick_at(peer, later) == []


def test_address_from_a_peer_is_never_sent_back_to_it() -> None:
    peer = relay_peer()
    connect(peer)
    peer.on_message(Addr([routable(5), routable(6)]), T0 + 1)  # clears getaddr outstanding
    for i in (5, 6, 7):
        peer.push_address(routable(i), T0 + 2)
    assert peer.addrs_to_send == [routable(7)]
    _, msgs = flush(peer)
    assert msgs == [Addr([routable(7)])]


def test_known_filter_applies_again_at_flush_time() -> None:
    peer = relay_peer()
    connect(peer)
    peer.push_address(routable(8), T0 + 1)  # queued first...
    peer.on_message(Addr([routable(8)]), T0 + 2)  # ...then the peer tells us about it
    _, msgs = flush(peer)
    assert msgs == []
    assert peer.addrs_to_send == []


def test_v1_peer_never_gets_addrv2_only_addresses() -> None:
    onion = entry(ONION)
    v1 = relay_peer()
    connect(v1)
    assert not v1.is_addr_compatible(onion)
    v1.push_address(onion, T0 + 1)
    v1.push_address(routable(1), T0 + 1)
    assert v1.addrs_to_send == [routable(1)]
    _, msgs = flush(v1)
    assert msgs == [Addr([routable(1)])]
    v2 = relay_peer()
    connect(v2, addrv2=True)
    assert v2.is_addr_compatible(onion)
    v2.push_address(onion, T0 + 1)
    _, msgs = flush(v2)
    assert msgs == [AddrV2([onion])]


def test_invalid_addresses_are_not_queued() -> None:
    peer = relay_peer()
    connect(peer)
    peer.push_address(entry("[2001:db8::1]:8333"), T0 + 1)  # RFC3849: not valid
    peer.push_address(entry("0.0.0.0:8333"), T0 + 1)
    assert peer.addrs_to_send == []


def test_flush_interval_is_exponential_with_mean_30s() -> None:
    peer = relay_peer(seed=11)
    connect(peer)
    waits: list[float] = []
    for i in range(2000):
        now = peer.next_addr_send + 0.001
        peer.push_address(routable(i), peer.next_addr_send)  # deadline not elapsed: no redraw
        msgs = tick_at(peer, now)
        assert len(msgs) == 1
        waits.append(peer.next_addr_send - now)
    mean = sum(waits) / len(waits)
    assert 24.0 <= mean <= 36.0
    assert 0.30 <= sum(w > 30 for w in waits) / len(waits) <= 0.44


def test_self_announcement_after_handshake_then_every_24h() -> None:
    ours = AddrEntry(0, 0, Service.parse("81.2.3.4:8333", 8333))
    peer = relay_peer(local=ours)
    out = connect(peer, now=T0)
    addr_msgs = [m for m in sent(out) if isinstance(m, Addr)]
    stamped = AddrEntry(int(T0), OUR_SERVICES, ours.service)
    assert addr_msgs == [Addr([stamped])]  # alone, with our services and the current time
    kinds = [type(a.message) if isinstance(a, Send) else type(a) for a in out]
    assert kinds.index(HandshakeComplete) < kinds.index(Addr)  # sent right after verack
    due = peer.next_local_addr_send
    assert due > T0
    assert peer.next_wakeup() <= due + 0.001
    # Nothing more until the 24 h timer: the queue stays empty.
    assert tick_at(peer, T0 + 3600) == []
    assert peer.addrs_to_send == []
    # A known address is forgotten when we re-announce (Core resets m_addr_known).
    peer.on_message(Addr([routable(3)]), T0 + 3600)
    peer.push_address(routable(3), T0 + 3600)
    assert peer.addrs_to_send == []
    now = due + 0.01
    assert tick_at(peer, now) == []  # pushed, waiting for the flush timer
    assert peer.next_local_addr_send > now
    again = AddrEntry(int(now), OUR_SERVICES, ours.service)
    assert peer.addrs_to_send == [again]
    peer.push_address(routable(3), now)
    assert peer.addrs_to_send == [again, routable(3)]  # the filter was reset
    _, msgs = flush(peer)
    assert msgs == [Addr([again, routable(3)])]


def test_mean_self_announcement_interval_is_24h() -> None:
    ours = AddrEntry(0, 0, Service.parse("81.2.3.4:8333", 8333))
    waits: list[float] = []
    for seed in range(300):
        peer = relay_peer(local=ours, seed=seed)
        connect(peer)
        waits.append(peer.next_local_addr_send - T0)
    mean = sum(waits) / len(waits)
    assert 0.8 * 86400 <= mean <= 1.2 * 86400


def test_inbound_self_announces_when_relay_starts_then_answers_getaddr() -> None:
    ours = AddrEntry(0, 0, Service.parse("81.2.3.4:8333", 8333))
    peer = relay_peer(
        ConnectionType.INBOUND, local=ours, source=FakeAddrSource([routable(1), routable(2)])
    )
    out = connect(peer)
    assert [m for m in sent(out) if isinstance(m, Addr)] == []  # no addr relay yet
    reply = sent(peer.on_message(GetAddr(), T0 + 1))
    assert reply[0] == Addr([AddrEntry(int(T0 + 1), OUR_SERVICES, ours.service)])
    assert isinstance(reply[1], Addr) and len(reply[1].entries) == 2


def test_getaddr_reply_skips_what_the_peer_told_us() -> None:
    source = FakeAddrSource([routable(1), routable(2)])
    peer = relay_peer(ConnectionType.INBOUND, source=source)
    connect(peer)
    out = peer.on_message(Addr([routable(1)]), T0 + 1)  # relay starts, first flush: empty
    assert sent(out) == []
    assert sent(peer.on_message(GetAddr(), T0 + 1)) == []  # queued behind the flush timer
    _, msgs = flush(peer)
    assert msgs == [Addr([routable(2)])]


def test_no_self_announcement_in_ibd_or_without_local_address() -> None:
    ours = AddrEntry(0, 0, Service.parse("81.2.3.4:8333", 8333))
    ibd = relay_peer(local=ours, in_ibd=True)
    assert [m for m in sent(connect(ibd)) if isinstance(m, Addr)] == []
    assert ibd.next_local_addr_send == 0.0
    ibd.in_ibd = False  # the owner's chain caught up
    assert ibd.next_wakeup() <= 0.01
    assert tick_at(ibd, T0 + 5) == [Addr([AddrEntry(int(T0 + 5), OUR_SERVICES, ours.service)])]
    none = relay_peer(listening=True)  # listening, but no routable local address
    assert [m for m in sent(connect(none)) if isinstance(m, Addr)] == []
    assert none.next_local_addr_send > T0  # the timer still advances, as in Core
    quiet = relay_peer()  # not listening: no self-announcement timer at all
    connect(quiet)
    assert quiet.next_local_addr_send == 0.0


def test_v1_peer_gets_no_onion_self_announcement() -> None:
    onion = entry(ONION)
    v1 = relay_peer(local=onion)
    assert [m for m in sent(connect(v1)) if isinstance(m, (Addr, AddrV2))] == []
    v2 = relay_peer(local=onion)
    msgs = [m for m in sent(connect(v2, addrv2=True)) if isinstance(m, (Addr, AddrV2))]
    assert msgs == [AddrV2([AddrEntry(int(T0), OUR_SERVICES, onion.service)])]


@pytest.mark.parametrize("conn_type", [ConnectionType.BLOCK_RELAY, ConnectionType.FEELER])
def test_block_relay_only_and_feelers_never_get_addr(conn_type: ConnectionType) -> None:
    ours = AddrEntry(0, 0, Service.parse("81.2.3.4:8333", 8333))
    peer = relay_peer(conn_type, local=ours)
    out = connect(peer)
    assert [m for m in sent(out) if isinstance(m, (Addr, AddrV2))] == []
    assert not peer.addr_relay_enabled and peer.addr_known is None
    peer.push_address(routable(1), T0 + 1)
    assert peer.addrs_to_send == []
    if not peer.disconnected:
        assert tick_at(peer, T0 + 2 * 86400) == []
    assert peer.next_local_addr_send == 0.0


def test_inbound_without_addr_messages_gets_nothing_pushed() -> None:
    peer = relay_peer(ConnectionType.INBOUND)
    connect(peer)
    peer.push_address(routable(1), T0 + 1)
    assert peer.addrs_to_send == [] and not peer.addr_relay_enabled


def learned(actions: list[Action]) -> LearnedAddresses:
    found = [a for a in actions if isinstance(a, LearnedAddresses)]
    assert len(found) == 1
    return found[0]


def test_relay_field_rules() -> None:
    peer = relay_peer()
    connect(peer)
    now = T0 + 1
    fresh = int(now) - 60
    # Reply to our getaddr (still outstanding): stored, never relayed.
    got = learned(peer.on_message(Addr([routable(1, fresh)]), now))
    assert got.entries == (routable(1, fresh),) and got.relay == ()
    # The reply had fewer than 1000 entries: getaddr no longer outstanding.
    entries = [
        routable(2, fresh),
        routable(3, int(now) - 601),  # too old
        entry("10.0.0.1:8333", time=fresh),  # not routable
        routable(4, int(now) + 3600),  # from the future: set to now - 5 days
        entry(ONION, time=fresh),  # routable, other network: relayed (reachability is ours)
        routable(5, int(now) - 599),
    ]
    got = learned(peer.on_message(Addr(entries), now))
    assert len(got.entries) == 6
    assert {e.service for e in got.relay} == {
        routable(2).service,
        entry(ONION).service,
        routable(5).service,
    }
    # Relayed entries are known to the sender: never queued back to it.
    for e in got.relay:
        peer.push_address(e, now)
    assert peer.addrs_to_send == []
    # More than 10 entries: none relayed.
    big = [routable(100 + i, fresh) for i in range(11)]
    got = learned(peer.on_message(Addr(big), now))
    assert len(got.entries) == 11 and got.relay == ()
    ten = [routable(200 + i, fresh) for i in range(10)]
    assert len(learned(peer.on_message(Addr(ten), now + 600)).relay) == 0  # all 10 min old
    ten = [routable(300 + i, int(now) + 590) for i in range(10)]
    assert len(learned(peer.on_message(Addr(ten), now + 600)).relay) == 10


def test_relay_field_waits_for_the_getaddr_reply_of_1000() -> None:
    peer = relay_peer()
    connect(peer)
    fresh = int(T0)
    full = [routable(i, fresh) for i in range(1000)]
    got = learned(peer.on_message(Addr(full), T0 + 1))
    assert got.relay == ()
    assert peer.getaddr_sent  # a full reply may have a sequel
    assert learned(peer.on_message(Addr([routable(5000, fresh)]), T0 + 2)).relay == ()
    assert not peer.getaddr_sent
    peer.addr_token_bucket = 10.0  # the reply used up the extra 1000 tokens
    assert len(learned(peer.on_message(Addr([routable(5001, fresh)]), T0 + 3)).relay) == 1


def test_addr_permission_bypasses_the_token_bucket() -> None:
    flood = [routable(i) for i in range(500)]
    for permissions, expected, limited in ((0, 1, 499), (PERMISSION_ADDR, 500, 0)):
        peer = relay_peer(permissions=permissions)
        connect(peer)
        peer.addr_token_bucket = 0.0
        got = learned(peer.on_message(Addr(flood), T0 + 10))
        assert len(got.entries) == expected
        assert peer.addr_rate_limited == limited
    # Other permission bits do not lift the limit.
    other = relay_peer(permissions=(1 << 4) | (1 << 6))
    connect(other)
    other.addr_token_bucket = 0.0
    assert len(learned(other.on_message(Addr(flood), T0 + 10)).entries) == 1


def test_addr_rate_limit_switched_off_for_simulation_studies() -> None:
    """PeerConfig.addr_rate_limit=False (a simulation switch; Core has none) takes every
    address of a flood, as the addr permission does."""
    flood = [routable(i) for i in range(500)]
    peer = relay_peer()
    peer.config = PeerConfig(services=OUR_SERVICES, addr_rate_limit=False)
    connect(peer)
    peer.addr_token_bucket = 0.0
    assert len(learned(peer.on_message(Addr(flood), T0 + 10)).entries) == 500
    assert peer.addr_rate_limited == 0


def test_tx_inv_from_block_relay_only_or_feeler_disconnects() -> None:
    """Core RejectIncomingTxs: a block-relay-only peer announcing a transaction is cut off;
    a block announcement is fine, and full-relay peers may announce transactions."""
    for conn_type in (ConnectionType.BLOCK_RELAY,):  # (a feeler is gone after version)
        peer = make_peer(conn_type)
        handshake(peer)
        assert peer.on_message(Inv([(2, bytes(32))]), T0 + 1) == []
        out = peer.on_message(Inv([(2, bytes(32)), (5, bytes(31) + b"\x01")]), T0 + 1)
        assert len(out) == 1 and isinstance(out[0], Disconnect)
        assert "inv sent in violation of protocol" in out[0].reason
        assert out[0].reason.startswith("transaction (01" + "00" * 31)
    full = make_peer(ConnectionType.OUTBOUND_FULL_RELAY)
    handshake(full)
    assert full.on_message(Inv([(1, bytes(32))]), T0 + 1) == []


# -- feefilter (Core's FEEFILTER handler) and time offsets (node/timeoffsets.cpp) ----------


def test_feefilter_is_kept_when_in_money_range_with_tx_relay() -> None:
    from peerkeeper.bitcoin.peer import MAX_MONEY
    from peerkeeper.wire.messages import FeeFilter

    peer = make_peer()
    assert peer.on_message(FeeFilter(5_000), T0) == []  # before version: ignored
    assert peer.fee_filter_received == 0
    peer.on_message(their_version(), T0)
    assert peer.tx_relay
    peer.on_message(FeeFilter(5_000), T0)  # before verack: ignored
    assert peer.fee_filter_received == 0
    peer.on_message(Verack(), T0)
    assert peer.on_message(FeeFilter(1_000), T0) == []
    assert peer.fee_filter_received == 1_000
    for bad in (-1, MAX_MONEY + 1, -(2**63)):
        assert peer.on_message(FeeFilter(bad), T0) == []  # outside MoneyRange: ignored
        assert peer.fee_filter_received == 1_000
    peer.on_message(FeeFilter(MAX_MONEY), T0)
    assert peer.fee_filter_received == MAX_MONEY
    peer.on_message(FeeFilter(0), T0)
    assert peer.fee_filter_received == 0


@pytest.mark.parametrize(
    ("conn_type", "relay"),
    [
        (ConnectionType.BLOCK_RELAY, True),  # no TxRelay for block-relay-only
        (ConnectionType.INBOUND, False),  # fRelay=0 and we offer no NODE_BLOOM
    ],
)
def test_feefilter_without_tx_relay_is_not_kept(conn_type: ConnectionType, relay: bool) -> None:
    from peerkeeper.wire.messages import FeeFilter

    peer = make_peer(conn_type)
    peer.on_message(their_version(relay=relay), T0)
    peer.on_message(Verack(), T0)
    assert not peer.tx_relay
    peer.on_message(FeeFilter(1_000), T0)
    assert peer.fee_filter_received == 0


def test_feefilter_decodes_core_bytes() -> None:
    from peerkeeper.wire.messages import FeeFilter, decode_message

    # Core: CAmount (int64) little-endian; 1000 sat/kvB.
    assert decode_message("feefilter", bytes.fromhex("e803000000000000")) == FeeFilter(1000)
    assert decode_message("feefilter", b"\xff" * 8) == FeeFilter(-1)


def test_time_offsets_median_like_core() -> None:
    from peerkeeper.bitcoin.peer import TimeOffsets

    offsets = TimeOffsets()
    for value in (10, -3, 7, 100):
        offsets.add(value)
    assert offsets.median() == 0  # fewer than 5 samples
    offsets.add(-50)
    assert offsets.median() == 7  # sorted -50, -3, 7, 10, 100
    offsets.add(8)
    assert offsets.median() == 8  # even count: sorted[n // 2], the upper middle
    many = TimeOffsets(list(range(1000, 1100)))
    assert len(many) == TimeOffsets.MAX_SIZE == 50  # the oldest 50 were dropped
    assert many.median() == 1075


def test_outbound_time_offsets_ignore_inbound_and_peers_without_version() -> None:
    from peerkeeper.bitcoin.peer import outbound_time_offsets

    peers = []
    for i, offset in enumerate((-20, 30, 5, 600, -7, 12)):
        peer = make_peer(ConnectionType.OUTBOUND_FULL_RELAY)
        peer.on_message(their_version(timestamp=int(T0) + offset), T0 + i * 0.1)
        peers.append(peer)
    inbound = make_peer(ConnectionType.INBOUND)
    inbound.on_message(their_version(timestamp=int(T0) + 10_000), T0)
    waiting = make_peer(ConnectionType.MANUAL)  # no version yet
    assert inbound.their.time_offset == 10_000
    samples = outbound_time_offsets([inbound, *peers, waiting])
    assert len(samples) == 6
    assert samples.median() == 12  # sorted -20, -7, 5, 12, 30, 600
    assert outbound_time_offsets(peers[:4]).median() == 0  # four samples: Core says 0


def test_due_addresses_follow_the_answer_to_each_message() -> None:
    """Core runs SendMessages after each ProcessMessages: when a clock jump made the
    addr timer due, the pong to the first ping is followed by the addr message, and
    only then the pong to the second ping (p2p_addr_relay's send_addr_msg relies on it)."""
    peer = relay_peer()
    connect(peer)
    peer.push_address(routable(1), T0)
    assert peer.addrs_to_send
    later = peer.next_addr_send + 600
    peer.last_send = peer.last_recv = later
    first = sent(peer.on_message(Ping(1), later))
    second = sent(peer.on_message(Ping(2), later))
    assert first == [Pong(1), Addr([routable(1)])]
    assert second == [Pong(2)]


def test_a_second_version_is_ignored_with_cores_line(caplog: pytest.LogCaptureFixture) -> None:
    peer = make_peer()
    handshake(peer)
    with caplog.at_level(logging.DEBUG, logger="peerkeeper.net"):
        assert peer.on_message(their_version(), T0 + 1) == []
    assert "redundant version message from peer=-1" in [r.getMessage() for r in caplog.records]
    assert not peer.disconnected


def test_an_oversized_getheaders_locator_disconnects_without_misbehaving() -> None:
    """Core's GETHEADERS handler: locator size > MAX_LOCATOR_SZ -> fDisconnect, no
    Misbehaving (src/net_processing.cpp)."""
    peer = make_peer(ConnectionType.INBOUND)
    handshake(peer)
    out = peer.on_decode_error("getheaders", LimitExceeded("getheaders locator = 102"), T0 + 1)
    assert len(out) == 1 and isinstance(out[0], Disconnect)
    assert not any(isinstance(a, Misbehaving) for a in out)
