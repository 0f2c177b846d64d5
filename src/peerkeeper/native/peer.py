"""The native protocol's peer state machine: identity handshake, then messages. Sans-IO.

Every native connection runs over our BIP324 transport
(:class:`~peerkeeper.wire.v2.V2Transport` with :data:`NATIVE_MAGIC` and no v1
fallback), so it is encrypted and has a 32-byte session id both ends share. On top:

1. When the transport is ready, each side sends ``identity``: its Ed25519 public key,
   its proof-of-work stamp, its listening port, its private flag, and a signature over
   :meth:`Identity.signed_data` — which contains the BIP324 session id, so an identity
   seen in one session cannot be replayed in another and a man in the middle (who has
   two sessions with two different ids) cannot relay it (Octez binds its nonces to the
   handshake transcript for the same reason, ``p2p_socket.ml``).
2. The receiver checks the stamp (:func:`~peerkeeper.native.identity.check_proof_of_work`,
   Octez ``Not_enough_proof_of_work``) and the signature; a failure is a
   :class:`Greylist` action (Octez greylists on failed authentication). It then emits
   :class:`Authenticated`; the owner asks the pool and calls :meth:`NativePeer.accept`
   or :meth:`NativePeer.reject` (``nack(reason, points)``, Octez ``Nack``).
3. The connection runs when both sides have acked (:class:`Established`); a ``nack``
   received gives :class:`Rejected` and the connection ends.
4. Then: ``ping`` is answered with ``pong`` here; ``bootstrap``, ``advertise``,
   ``swaprequest``, ``swapack`` and ``envelope`` are handed up as :class:`Received`.

Timers are sans-IO too, as in :class:`~peerkeeper.bitcoin.peer.BitcoinPeer`:
:meth:`NativePeer.next_wakeup` says when :meth:`NativePeer.tick` next has work, and
``tick(now)`` runs it. Until both sides acked, the only timer is the handshake
deadline (``now`` at construction + ``authentication_timeout``; Octez wraps the whole
authentication in ``authentication_timeout``, ``p2p_connect_handler.ml``). Once
running, a ``ping`` goes out ``ping_interval`` after the connection started and after
each ping; a ping unanswered for ``ping_timeout`` closes the connection (Core
``PING_INTERVAL`` / ``TIMEOUT_INTERVAL``, src/net_processing.cpp, src/net.h: Octez has
no keep-alive of its own in ``p2p_socket.ml`` beyond its read timeouts).

Anything undecodable, out of order or repeated (a second identity, a message before
the handshake ends) is a :class:`Greylist` action with the reason (Octez greylists the
peer and its address on a decoding error, ``p2p_conn.ml``).
"""

from __future__ import annotations

from dataclasses import dataclass

from peerkeeper.native.identity import (
    Identity,
    PeerId,
    check_proof_of_work,
    verify_signature,
)
from peerkeeper.native.messages import (
    NATIVE_MAGIC,
    Ack,
    Nack,
    NackReason,
    NativeDecodeError,
    NativeMessage,
    Ping,
    Pong,
    decode_native,
)
from peerkeeper.native.messages import Identity as IdentityMessage
from peerkeeper.net.netaddr import Service
from peerkeeper.wire.actions import Disconnect
from peerkeeper.wire.ellswift import RandomSource, randbytes
from peerkeeper.wire.v1 import TransportError
from peerkeeper.wire.v2 import V2Transport

__all__ = [
    "AUTHENTICATION_TIMEOUT",
    "MAX_NATIVE_MESSAGE",
    "PING_INTERVAL",
    "PING_TIMEOUT",
    "Authenticated",
    "Disconnect",
    "Established",
    "Greylist",
    "NativeAction",
    "NativePeer",
    "Received",
    "Rejected",
]

#: Largest native message payload (bytes): the envelope limit plus its framing.
MAX_NATIVE_MESSAGE = 4_000_100
#: Seconds from the socket to both acks before the connection is dropped (Octez
#: ``P2p_limits.authentication_timeout`` default 5 s, ``src/lib_p2p_services/p2p_limits.ml``).
AUTHENTICATION_TIMEOUT = 5.0
#: Seconds between pings on a running connection (Core ``PING_INTERVAL`` 2 min,
#: src/net_processing.cpp).
PING_INTERVAL = 120.0
#: Seconds a ping may stay unanswered before the connection is closed (Core
#: ``TIMEOUT_INTERVAL`` 20 min, src/net.h).
PING_TIMEOUT = 1200.0


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The remote proved ``peer_id``; the owner must call accept() or reject()."""

    peer_id: PeerId
    public_key: bytes
    listen_port: int
    private: bool


@dataclass(frozen=True, slots=True)
class Established:
    """Both sides acked: the connection runs."""

    peer_id: PeerId


@dataclass(frozen=True, slots=True)
class Rejected:
    """The remote nacked us with ``reason`` and alternative ``points``."""

    reason: int
    points: tuple[Service, ...]


@dataclass(frozen=True, slots=True)
class Received:
    """An application-level message after the handshake."""

    message: NativeMessage


@dataclass(frozen=True, slots=True)
class Greylist:
    """The remote misbehaved (bad identity, bad message): greylist it and close."""

    reason: str


NativeAction = Authenticated | Established | Rejected | Received | Disconnect | Greylist


class NativePeer:
    """One native connection, either side (sans-IO).

    ``NativePeer(identity, *, inbound, listen_port, private, difficulty, rng, now,
    authentication_timeout=5.0, ping_interval=120.0, ping_timeout=1200.0)``.
    Feed socket bytes with :meth:`receive_data` (returns actions); write what
    :meth:`data_to_send` returns. ``difficulty`` is the proof of work (bits) a remote
    identity must carry. ``rng`` (``os.urandom``-like ``rng(n) -> bytes``, or an object
    with ``randbytes``, e.g. ``random.SystemRandom()``) gives the BIP324 key material,
    its garbage and the ping nonces: outside simulations it must be a cryptographic
    source. ``now`` (seconds) is when the socket opened: the handshake deadline runs
    from it. All durations are seconds. States: ``handshake`` -> ``authenticated`` ->
    ``acked`` -> ``running``; ``closed`` after any fatal action. Timers:
    :meth:`next_wakeup` / :meth:`tick`.
    """

    def __init__(
        self,
        identity: Identity,
        *,
        inbound: bool,
        listen_port: int,
        private: bool,
        difficulty: float,
        rng: RandomSource,
        now: float,
        authentication_timeout: float = AUTHENTICATION_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self.identity = identity
        self.inbound = inbound
        self.listen_port = listen_port
        self.private = private
        self.difficulty = difficulty
        self.transport = V2Transport(
            NATIVE_MAGIC,
            initiating=not inbound,
            rng=rng,
            max_message=MAX_NATIVE_MESSAGE,
            allow_v1=False,
        )
        self.state = "handshake"
        self.remote: Authenticated | None = None
        self._sent_identity = False
        self._we_acked = False
        self._they_acked = False
        self.rng = rng
        self.connected_at = now
        #: When the handshake must be over (seconds); ``inf`` once running.
        self.handshake_deadline = now + authentication_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.ping_nonce: int | None = None
        self.ping_sent_at: float | None = None
        #: When the next automatic ping is due (seconds); ``inf`` until running.
        self.next_ping = float("inf")
        self.last_pong: float | None = None
        self.bytes_received = 0

    @property
    def peer_id(self) -> PeerId | None:
        """The remote's peer id once authenticated."""
        return self.remote.peer_id if self.remote is not None else None

    @property
    def session_id(self) -> bytes | None:
        """The BIP324 session id (32 bytes) once the transport is ready."""
        return self.transport.session_id

    def data_to_send(self) -> bytes:
        """Every byte waiting to be written (handshake, packets)."""
        return self.transport.data_to_send()

    def send(self, message: NativeMessage) -> None:
        """Queue ``message`` (encrypted by the transport)."""
        self.transport.send(message.command, message.encode())

    def _fatal(self, action: Disconnect | Greylist) -> list[NativeAction]:
        self.state = "closed"
        return [action]

    def receive_data(self, data: bytes, now: float) -> list[NativeAction]:
        """Process bytes from the socket; returns the actions in order. Never raises."""
        if self.state == "closed":
            return []
        self.bytes_received += len(data)
        self.transport.receive_data(data)
        return self._drain(now)

    def _drain(self, now: float) -> list[NativeAction]:
        """Process buffered messages; stops after :class:`Authenticated` so that the
        owner decides (accept/reject) before anything later is looked at."""
        actions: list[NativeAction] = []
        while self.state not in ("closed", "authenticated"):
            if not self._sent_identity and self.transport.session_id is not None:
                self._send_identity()
            try:
                raw = self.transport.next_message()
            except TransportError as e:
                actions += self._fatal(Greylist(str(e)))
                break
            if not self._sent_identity and self.transport.session_id is not None:
                self._send_identity()
            if raw is None:
                break
            if raw.rejected:
                actions += self._fatal(Greylist(f"invalid message type {raw.command!r}"))
                break
            try:
                message = decode_native(raw.command, raw.payload)
            except NativeDecodeError as e:
                actions += self._fatal(Greylist(f"undecodable {raw.command}: {e}"))
                break
            actions += self._handle(message, now)
        return actions

    def _send_identity(self) -> None:
        session_id = self.transport.session_id
        assert session_id is not None
        ident = self.identity
        signed = IdentityMessage.signed_data(
            session_id, ident.public_key, ident.stamp, self.listen_port, self.private
        )
        self.send(
            IdentityMessage(
                ident.public_key, ident.stamp, self.listen_port, self.private, ident.sign(signed)
            )
        )
        self._sent_identity = True

    def _handle(self, message: NativeMessage, now: float) -> list[NativeAction]:
        if isinstance(message, IdentityMessage):
            if self.state != "handshake":
                return self._fatal(Greylist("identity sent twice"))
            return self._check_identity(message)
        if self.state == "handshake":
            return self._fatal(Greylist(f"{message.command} before identity"))
        if isinstance(message, Nack):
            if self.state == "running":
                return self._fatal(Greylist("nack after the handshake"))
            self.state = "closed"
            return [Rejected(int(message.reason), tuple(message.points))]
        if isinstance(message, Ack):
            if self._they_acked or self.state == "running":
                return self._fatal(Greylist("ack sent twice"))
            self._they_acked = True
            return self._maybe_established(now)
        if self.state != "running":
            return self._fatal(Greylist(f"{message.command} before the handshake ended"))
        if isinstance(message, Ping):
            self.send(Pong(message.nonce))
            return []
        if isinstance(message, Pong):
            if self.ping_nonce is not None and message.nonce == self.ping_nonce:
                self.ping_nonce = None
                self.last_pong = now
            return []
        return [Received(message)]

    def _check_identity(self, message: IdentityMessage) -> list[NativeAction]:
        session_id = self.transport.session_id
        assert session_id is not None  # messages only arrive once the transport is ready
        if not check_proof_of_work(message.public_key, message.stamp, self.difficulty):
            return self._fatal(Greylist("not enough proof of work"))
        signed = IdentityMessage.signed_data(
            session_id,
            message.public_key,
            message.stamp,
            message.listen_port,
            message.private,
        )
        if not verify_signature(message.public_key, message.signature, signed):
            return self._fatal(Greylist("invalid identity signature"))
        self.remote = Authenticated(
            PeerId.of_public_key(message.public_key),
            message.public_key,
            message.listen_port,
            message.private,
        )
        self.state = "authenticated"
        return [self.remote]

    def _maybe_established(self, now: float) -> list[NativeAction]:
        if self._we_acked and self._they_acked:
            self.state = "running"
            self.handshake_deadline = float("inf")
            self.next_ping = now + self.ping_interval
            assert self.remote is not None
            return [Established(self.remote.peer_id)]
        return []

    def accept(self, now: float) -> list[NativeAction]:
        """Send ``ack`` (the pool accepted the remote), then process what arrived
        meanwhile; returns the actions (:class:`Established`, a remote nack, ...).
        ``now`` (seconds) starts the ping schedule if this ack completes the handshake.
        Raises RuntimeError unless the state is ``authenticated``."""
        if self.state != "authenticated" or self._we_acked:
            raise RuntimeError(f"accept() in state {self.state}")
        self.send(Ack())
        self._we_acked = True
        self.state = "acked"
        return self._maybe_established(now) + self._drain(now)

    def reject(self, reason: NackReason, points: tuple[Service, ...] = ()) -> None:
        """Send ``nack(reason, points)``; the owner closes after flushing it."""
        if self.state == "closed":
            return
        self.send(Nack(reason, points))
        self.state = "closed"

    def start_ping(self, nonce: int, now: float) -> None:
        """Send a ``ping`` with ``nonce`` now (only when running and none outstanding);
        the next automatic ping is then ``ping_interval`` seconds after ``now``."""
        if self.state == "running" and self.ping_nonce is None:
            self.ping_nonce = nonce
            self.ping_sent_at = now
            self.next_ping = now + self.ping_interval
            self.send(Ping(nonce))

    # -- timers ---------------------------------------------------------------------------

    def next_wakeup(self) -> float:
        """The earliest time (seconds, the ``now`` scale) at which :meth:`tick` has work.

        Before both acks: the handshake deadline (Octez ``authentication_timeout``,
        ``p2p_connect_handler.ml``). Running: the ping timeout of an outstanding ping,
        else the next ping (Core ``MaybeSendPing`` / ``InactivityCheck``,
        src/net_processing.cpp, src/net.cpp). ``inf`` once closed. Re-read it after
        every call into the peer (bytes in, :meth:`accept`, :meth:`start_ping`, tick).
        """
        if self.state == "closed":
            return float("inf")
        if self.state != "running":
            return self.handshake_deadline
        if self.ping_nonce is not None and self.ping_sent_at is not None:
            return self.ping_sent_at + self.ping_timeout
        return self.next_ping

    def tick(self, now: float) -> list[NativeAction]:
        """Run what is due at ``now`` (seconds); returns the actions. Never raises.

        A handshake still unfinished at its deadline gives ``Disconnect("handshake
        timeout")``; a ping unanswered ``ping_timeout`` seconds after it was sent gives
        ``Disconnect("ping timeout")``; otherwise a due ping is queued (a nonce of 8
        bytes from ``rng``; write :meth:`data_to_send` afterwards) and nothing is
        returned. Deadlines are inclusive: at exactly :meth:`next_wakeup` the work runs.
        """
        if self.state == "closed":
            return []
        if self.state != "running":
            if now >= self.handshake_deadline:
                return self._fatal(Disconnect("handshake timeout"))
            return []
        if self.ping_nonce is not None and self.ping_sent_at is not None:
            if now >= self.ping_sent_at + self.ping_timeout:
                return self._fatal(Disconnect("ping timeout"))
            return []
        if now >= self.next_ping:
            self.start_ping(int.from_bytes(randbytes(self.rng, 8), "little"), now)
        return []
