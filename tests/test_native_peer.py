"""The native peer state machine, sans-IO: two peers wired back to back in memory."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from peerkeeper.native.identity import Identity, PeerId
from peerkeeper.native.messages import (
    Ack,
    Advertise,
    Envelope,
    Nack,
    NackReason,
    Ping,
    Pong,
)
from peerkeeper.native.messages import Identity as IdentityMessage
from peerkeeper.native.peer import (
    AUTHENTICATION_TIMEOUT,
    PING_INTERVAL,
    PING_TIMEOUT,
    Authenticated,
    Disconnect,
    Established,
    Greylist,
    NativeAction,
    NativePeer,
    Received,
    Rejected,
)
from peerkeeper.net.netaddr import NetAddr, Service

DIFF = 4.0
A = Identity.generate(DIFF, random.Random(1))
B = Identity.generate(DIFF, random.Random(2))
C = Identity.generate(DIFF, random.Random(3))
#: Each peer gets its own seeded rng (its BIP324 keys, so every session id differs).
_SEEDS = itertools.count(100)


def pair(
    a: Identity = A, b: Identity = B, difficulty: float = DIFF
) -> tuple[NativePeer, NativePeer]:
    out = NativePeer(
        a,
        inbound=False,
        listen_port=9732,
        private=False,
        difficulty=difficulty,
        rng=random.Random(next(_SEEDS)),
        now=0.0,
    )
    inn = NativePeer(
        b,
        inbound=True,
        listen_port=0,
        private=True,
        difficulty=difficulty,
        rng=random.Random(next(_SEEDS)),
        now=0.0,
    )
    return out, inn


def pump(
    x: NativePeer, y: NativePeer, now: float = 0.0
) -> tuple[list[NativeAction], list[NativeAction]]:
    """Move bytes both ways until quiet (at ``now``); the actions each side produced."""
    ax: list[NativeAction] = []
    ay: list[NativeAction] = []
    for _ in range(20):
        dx, dy = x.data_to_send(), y.data_to_send()
        if not dx and not dy:
            break
        if dx:
            ay += y.receive_data(dx, now)
        if dy:
            ax += x.receive_data(dy, now)
    return ax, ay


def test_handshake_ack_both_ways() -> None:
    out, inn = pair()
    ax, ay = pump(out, inn)
    assert ax == [Authenticated(B.peer_id, B.public_key, 0, True)]
    assert ay == [Authenticated(A.peer_id, A.public_key, 9732, False)]
    assert out.session_id == inn.session_id is not None
    assert out.accept(0.0) == []
    assert inn.accept(0.0) == []
    ax, ay = pump(out, inn)
    assert ax == [Established(B.peer_id)] and ay == [Established(A.peer_id)]
    assert out.state == inn.state == "running"
    # Messages after the handshake go up; pings are answered here.
    out.send(Envelope(b"app"))
    out.start_ping(42, 1.0)
    ax, ay = pump(out, inn)
    assert ay == [Received(Envelope(b"app"))]
    assert out.ping_nonce is None and out.last_pong == 0.0


def test_nack_carries_points() -> None:
    out, inn = pair()
    pump(out, inn)
    pts = (Service(NetAddr.parse("11.1.0.1"), 9732),)
    inn.reject(NackReason.TOO_MANY_CONNECTIONS, pts)
    out.accept(0.0)
    ax, _ = pump(out, inn)
    assert ax == [Rejected(NackReason.TOO_MANY_CONNECTIONS, pts)]
    assert out.state == inn.state == "closed"


def test_stamp_below_difficulty_is_greylisted() -> None:
    out, inn = pair(difficulty=DIFF)
    inn.difficulty = 40.0  # A's stamp has ~4 bits, not 40
    _, ay = pump(out, inn)
    assert ay == [Greylist("not enough proof of work")]
    assert inn.state == "closed"


def _inject_identity(
    sender: NativePeer, receiver: NativePeer, make: Callable[[bytes], IdentityMessage]
) -> list[NativeAction]:
    """Run the transport handshake, then have ``sender`` send ``make(session_id)``."""
    sender._sent_identity = True  # suppress the real identity
    for _ in range(10):
        d1, d2 = sender.data_to_send(), receiver.data_to_send()
        if d1:
            receiver.receive_data(d1, 0.0)
        if d2:
            sender.receive_data(d2, 0.0)
        if sender.session_id is not None and receiver.session_id is not None:
            break
    assert sender.session_id is not None
    sender.send(make(sender.session_id))
    return receiver.receive_data(sender.data_to_send(), 0.0)


def _signed(ident: Identity, session: bytes, port: int = 0) -> IdentityMessage:
    data = IdentityMessage.signed_data(session, ident.public_key, ident.stamp, port, False)
    return IdentityMessage(ident.public_key, ident.stamp, port, False, ident.sign(data))


def test_forged_signature() -> None:
    out, inn = pair()

    def forged(session: bytes) -> IdentityMessage:
        return IdentityMessage(A.public_key, A.stamp, 0, False, bytes(64))

    assert _inject_identity(out, inn, forged) == [Greylist("invalid identity signature")]


def test_identity_signed_by_another_key() -> None:
    out, inn = pair()

    def stolen(session: bytes) -> IdentityMessage:
        # C's key and stamp, signed by A: the signature does not verify under C's key.
        data = IdentityMessage.signed_data(session, C.public_key, C.stamp, 0, False)
        return IdentityMessage(C.public_key, C.stamp, 0, False, A.sign(data))

    assert _inject_identity(out, inn, stolen) == [Greylist("invalid identity signature")]


def test_replayed_identity_from_another_session() -> None:
    # Record A's identity message in one session...
    out1, inn1 = pair()
    pump(out1, inn1)
    assert out1.session_id is not None
    recorded = _signed(A, out1.session_id, 9732)
    # ...and replay it in another: the session id differs, so the signature fails.
    out2, inn2 = pair(a=C)
    acts = _inject_identity(out2, inn2, lambda s: recorded)
    assert acts == [Greylist("invalid identity signature")]


def test_man_in_the_middle_cannot_relay_identity() -> None:
    """M sits between A and B with two sessions; relaying A's identity to B fails."""
    a_side, m_in = pair(a=A, b=C)  # A -> M
    m_out, b_side = pair(a=C, b=B)  # M -> B
    ax, _ = pump(a_side, m_in)
    # M forwards the identity A sent on session 1 into session 2.
    assert a_side.session_id is not None and m_out is not None
    relayed = _signed(A, a_side.session_id, 9732)
    acts = _inject_identity(m_out, b_side, lambda s: relayed)
    assert acts == [Greylist("invalid identity signature")]


def test_messages_out_of_order_are_greylisted() -> None:
    out, inn = pair()
    out._sent_identity = True
    acts: list[NativeAction] = []
    for _ in range(10):
        d1, d2 = out.data_to_send(), inn.data_to_send()
        if d1:
            acts += inn.receive_data(d1, 0.0)
        if d2:
            out.receive_data(d2, 0.0)
        if out.session_id is not None and inn.session_id is not None:
            break
    out.send(Advertise(()))
    acts += inn.receive_data(out.data_to_send(), 0.0)
    assert acts == [Greylist("advertise before identity")]


def test_double_identity_and_early_messages() -> None:
    out, inn = pair()
    pump(out, inn)
    out.send(Ping(1))  # before out acked
    pump(out, inn)
    assert inn.accept(0.0) == [Greylist("ping before the handshake ended")]
    out, inn = pair()
    pump(out, inn)
    out.send(_signed(A, out.session_id or b"", 9732))
    pump(out, inn)
    assert inn.accept(0.0) == [Greylist("identity sent twice")]
    out, inn = pair()
    pump(out, inn)
    out.accept(0.0)
    out.send(Ack())
    pump(out, inn)
    assert inn.accept(0.0) == [Established(A.peer_id), Greylist("ack sent twice")]


def test_nothing_is_processed_until_the_owner_decides() -> None:
    out, inn = pair()
    _, ay = pump(out, inn)
    assert ay == [Authenticated(A.peer_id, A.public_key, 9732, False)]
    out.accept(0.0)
    out.send(Nack(NackReason.NO_MOTIVE))  # not legal after its ack, but queued behind it
    _, ay = pump(out, inn)
    assert ay == [] and inn.state == "authenticated"
    inn.reject(NackReason.TOO_MANY_CONNECTIONS)
    assert inn.state == "closed"


def test_undecodable_and_unknown_messages() -> None:
    for command, payload, reason in (
        ("advertise", b"\xfd\x65\x00", "undecodable advertise"),  # 101 points
        ("nosuchthing", b"", "undecodable nosuchthing"),
        ("ping", b"\x01", "undecodable ping"),
    ):
        out, inn = pair()
        pump(out, inn)
        out.accept(0.0)
        inn.accept(0.0)
        pump(out, inn)
        out.transport.send(command, payload)
        _, ay = pump(out, inn)
        assert len(ay) == 1 and isinstance(ay[0], Greylist)
        assert ay[0].reason.startswith(reason), ay[0].reason
        assert inn.state == "closed"


def test_v1_bytes_are_not_accepted() -> None:
    _, inn = pair()
    acts = inn.receive_data(b"pkn\x01version\x00\x00\x00\x00\x00" + bytes(8), 0.0)
    assert len(acts) == 1 and isinstance(acts[0], Greylist)
    assert "V1 peer" in acts[0].reason


def test_nack_after_running_is_a_violation() -> None:
    out, inn = pair()
    pump(out, inn)
    out.accept(0.0)
    inn.accept(0.0)
    pump(out, inn)
    inn.send(Nack(NackReason.NO_MOTIVE))
    ax, _ = pump(out, inn)
    assert ax == [Greylist("nack after the handshake")]


def test_peer_id_is_hash_of_key() -> None:
    out, inn = pair()
    pump(out, inn)
    assert inn.peer_id == PeerId.of_public_key(A.public_key) == A.peer_id


# -- timers, in simulated time ------------------------------------------------------------


def timed_pair(now: float, **kw: float) -> tuple[NativePeer, NativePeer]:
    """Two peers whose sockets opened at ``now`` (seconds), timer settings in ``kw``."""
    out = NativePeer(
        A,
        inbound=False,
        listen_port=9732,
        private=False,
        difficulty=DIFF,
        rng=random.Random(next(_SEEDS)),
        now=now,
        **kw,
    )
    inn = NativePeer(
        B,
        inbound=True,
        listen_port=0,
        private=False,
        difficulty=DIFF,
        rng=random.Random(next(_SEEDS)),
        now=now,
        **kw,
    )
    return out, inn


def running_pair(now: float) -> tuple[NativePeer, NativePeer]:
    """Two peers that connected and both acked at ``now``."""
    out, inn = timed_pair(now)
    pump(out, inn, now)
    out.accept(now)
    inn.accept(now)
    ax, ay = pump(out, inn, now)
    assert ax == [Established(B.peer_id)] and ay == [Established(A.peer_id)]
    return out, inn


def test_handshake_deadline_fires_at_the_exact_time() -> None:
    out, inn = timed_pair(100.0)
    assert AUTHENTICATION_TIMEOUT == 5.0  # Octez p2p_limits.ml
    assert out.next_wakeup() == inn.next_wakeup() == 105.0
    pump(out, inn, 101.0)  # authenticated, but nobody acks
    assert inn.state == "authenticated" and inn.next_wakeup() == 105.0
    assert inn.tick(104.999) == [] and inn.state == "authenticated"
    assert inn.tick(105.0) == [Disconnect("handshake timeout")]
    assert inn.state == "closed" and inn.next_wakeup() == float("inf")
    assert inn.tick(200.0) == []  # fires once
    # A custom timeout, and a peer that never even finished the transport handshake.
    lone = NativePeer(
        A,
        inbound=True,
        listen_port=0,
        private=False,
        difficulty=DIFF,
        rng=random.Random(7),
        now=50.0,
        authentication_timeout=0.5,
    )
    assert lone.next_wakeup() == 50.5
    assert lone.tick(50.49) == []
    assert lone.tick(50.5) == [Disconnect("handshake timeout")]


def test_finished_handshake_cancels_the_deadline() -> None:
    out, inn = running_pair(10.0)
    for peer in (out, inn):
        assert peer.tick(15.0) == []  # the old deadline: nothing
        assert peer.state == "running"
        assert peer.next_wakeup() == 10.0 + PING_INTERVAL


def test_ping_sent_at_interval_and_pong_resets_it() -> None:
    out, inn = running_pair(10.0)
    due = 10.0 + PING_INTERVAL
    assert out.tick(due - 0.001) == [] and out.data_to_send() == b""
    assert out.tick(due) == []
    nonce = out.ping_nonce
    assert nonce is not None and out.ping_sent_at == due
    wire = out.data_to_send()
    assert wire  # the ping is queued for the socket
    # While it is outstanding the next wakeup is its timeout, and no second ping goes.
    assert out.next_wakeup() == due + PING_TIMEOUT
    assert out.tick(due + PING_INTERVAL) == [] and out.data_to_send() == b""
    # The pong (answered inside the remote peer) clears it; the next ping is an
    # interval after the previous one was sent.
    assert inn.receive_data(wire, due + 0.2) == []
    assert out.receive_data(inn.data_to_send(), due + 0.5) == []
    assert out.ping_nonce is None and out.last_pong == due + 0.5
    assert out.next_wakeup() == due + PING_INTERVAL
    out.tick(due + PING_INTERVAL)
    assert out.ping_nonce is not None and out.ping_nonce != nonce


def test_ping_nonce_comes_from_the_injected_rng() -> None:
    drawn: list[bytes] = []
    base = random.Random(3)

    def rng(n: int) -> bytes:
        b = base.randbytes(n)
        drawn.append(b)
        return b

    out = NativePeer(
        A, inbound=False, listen_port=1, private=False, difficulty=DIFF, rng=rng, now=0.0
    )
    _, inn = timed_pair(0.0)
    pump(out, inn)
    out.accept(0.0)
    inn.accept(0.0)
    pump(out, inn)
    assert out.state == "running"
    out.tick(PING_INTERVAL)
    assert len(drawn[-1]) == 8
    assert out.ping_nonce == int.from_bytes(drawn[-1], "little")


def test_unanswered_ping_times_out_at_the_exact_time() -> None:
    out, inn = running_pair(0.0)
    out.tick(PING_INTERVAL)
    sent = out.ping_sent_at
    assert sent == PING_INTERVAL
    out.data_to_send()  # lost: no pong ever comes
    assert out.next_wakeup() == sent + PING_TIMEOUT
    assert out.tick(sent + PING_TIMEOUT - 0.001) == []
    assert out.tick(sent + PING_TIMEOUT) == [Disconnect("ping timeout")]
    assert out.state == "closed" and out.next_wakeup() == float("inf")


def test_a_wrong_pong_does_not_count() -> None:
    out, inn = running_pair(
        0.0,
    )
    out.tick(PING_INTERVAL)
    out.data_to_send()
    assert out.ping_nonce is not None
    inn.send(Pong((out.ping_nonce + 1) % 2**64))
    assert out.receive_data(inn.data_to_send(), PING_INTERVAL + 1) == []
    assert out.ping_nonce is not None
    assert out.tick(PING_INTERVAL + PING_TIMEOUT) == [Disconnect("ping timeout")]
