"""The native peer state machine, sans-IO: two peers wired back to back in memory."""

from __future__ import annotations

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
)
from peerkeeper.native.messages import Identity as IdentityMessage
from peerkeeper.native.peer import (
    Authenticated,
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


def pair(
    a: Identity = A, b: Identity = B, difficulty: float = DIFF
) -> tuple[NativePeer, NativePeer]:
    out = NativePeer(a, inbound=False, listen_port=9732, private=False, difficulty=difficulty)
    inn = NativePeer(b, inbound=True, listen_port=0, private=True, difficulty=difficulty)
    return out, inn


def pump(x: NativePeer, y: NativePeer) -> tuple[list[NativeAction], list[NativeAction]]:
    """Move bytes both ways until quiet; the actions each side produced."""
    ax: list[NativeAction] = []
    ay: list[NativeAction] = []
    for _ in range(20):
        dx, dy = x.data_to_send(), y.data_to_send()
        if not dx and not dy:
            break
        if dx:
            ay += y.receive_data(dx, 0.0)
        if dy:
            ax += x.receive_data(dy, 0.0)
    return ax, ay


def test_handshake_ack_both_ways() -> None:
    out, inn = pair()
    ax, ay = pump(out, inn)
    assert ax == [Authenticated(B.peer_id, B.public_key, 0, True)]
    assert ay == [Authenticated(A.peer_id, A.public_key, 9732, False)]
    assert out.session_id == inn.session_id is not None
    assert out.accept() == []
    assert inn.accept() == []
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
    out.accept()
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
    assert inn.accept() == [Greylist("ping before the handshake ended")]
    out, inn = pair()
    pump(out, inn)
    out.send(_signed(A, out.session_id or b"", 9732))
    pump(out, inn)
    assert inn.accept() == [Greylist("identity sent twice")]
    out, inn = pair()
    pump(out, inn)
    out.accept()
    out.send(Ack())
    pump(out, inn)
    assert inn.accept() == [Established(A.peer_id), Greylist("ack sent twice")]


def test_nothing_is_processed_until_the_owner_decides() -> None:
    out, inn = pair()
    _, ay = pump(out, inn)
    assert ay == [Authenticated(A.peer_id, A.public_key, 9732, False)]
    out.accept()
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
        out.accept()
        inn.accept()
        pump(out, inn)
        out.transport.send_raw(command, payload)
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
    out.accept()
    inn.accept()
    pump(out, inn)
    inn.send(Nack(NackReason.NO_MOTIVE))
    ax, _ = pump(out, inn)
    assert ax == [Greylist("nack after the handshake")]


def test_peer_id_is_hash_of_key() -> None:
    out, inn = pair()
    pump(out, inn)
    assert inn.peer_id == PeerId.of_public_key(A.public_key) == A.peer_id
