"""The BIP324 v2 (encrypted) transport, with Core's v1 fallback. Sans-IO.

Behaviour follows Bitcoin Core ``src/net.h`` / ``src/net.cpp`` ``class V2Transport``
and BIP324 ("Overall handshake pseudocode", "Transport layer specification", "v2
message type encoding", "Detecting v1 peers"); the cipher is
:class:`~peerkeeper.wire.bip324_cipher.BIP324Cipher`.

Receive states (Core ``RecvState``)::

    start(responder)  start(initiator)
         |                  |
         v                  v
    KEY_MAYBE_V1 -------> KEY -> GARB_GARBTERM -> VERSION -> APP
         |
         \\-------> V1

* ``KEY_MAYBE_V1`` (responder only): the first 16 bytes are compared with
  ``magic || "version\\0\\0\\0\\0\\0"`` (``V1_PREFIX_LEN``). A full match switches to an
  internal :class:`~peerkeeper.wire.v1.V1Transport`, into which the buffered bytes are
  replayed; the first mismatching byte means v2, and our key and garbage are queued.
* ``KEY``: the peer's 64-byte ElligatorSwift key. A responder whose peer sent bytes 4..16
  equal to ``"version\\0\\0\\0\\0\\0"`` under another magic is disconnected ("V1 peer with
  wrong MessageStart"). With the key, the ciphers are initialised and our garbage
  terminator and version packet (garbage as AAD) are queued.
* ``GARB_GARBTERM``: garbage until the peer's 16-byte terminator; none within
  ``MAX_GARBAGE_LEN + 16`` = 4111 bytes is fatal.
* ``VERSION``: packets are decrypted (the first one, decoy or not, authenticates the
  garbage as AAD); the first non-decoy is the version packet (contents ignored).
* ``APP``: application packets; decoys (ignore bit) are skipped.

Packet limits: the 3-byte length is decrypted as soon as it arrives (in
:meth:`V2Transport.receive_data`); above ``MAX_CONTENTS_LEN`` = 1 + 12 +
``MAX_PROTOCOL_MESSAGE_LENGTH`` (4,000,013) the transport fails at once and keeps
nothing more of the stream. A failed Poly1305 tag is fatal.

Message types (Core ``V2_MESSAGE_IDS``, BIP324 "v2 message type encoding", BIP434 for
``feature``): a first contents byte 1..28 or 37 is a short id; 29..36 are reserved and,
as in Core, give a message of type ``""`` that the layer above ignores as unknown; 38
and above, an empty packet, or a malformed 12-byte type after a 0 byte are rejected like
v1's invalid commands (``RawMessage.rejected == "command"``, the connection stays).

Interface: :class:`~peerkeeper.wire.transport.Transport`, as
:class:`~peerkeeper.wire.v1.V1Transport`. After a fallback to v1 every call is
delegated to the inner v1 transport (Core ``V2Transport::m_v1_fallback``), so the
owner keeps this object for the whole connection.

* ``receive_data(bytes)`` buffers what the socket delivered and advances the handshake;
  it never raises: a fatal problem is remembered and raised by the next
  ``next_message()``. After it, call ``next_message()`` until ``None`` and then
  ``data_to_send()``.
* ``next_message() -> RawMessage | None``; raises :class:`~peerkeeper.wire.v1.TransportError`
  for anything fatal, on this and every later call. Nothing else escapes for any input.
* Output is h2-style: key, garbage, terminator and version packet are produced by the
  state machine into one outbound buffer, and ``send(command, payload)`` appends the
  encrypted packet (or, after a fallback, the v1 frame) to that same buffer and returns
  its wire size. ``data_to_send()`` returns and empties it; it is the only source of
  bytes to write, so call it after every ``receive_data`` / ``next_message`` / ``send``.
* Before the key exchange completes (responder still detecting, or either side without
  the peer's key) application messages are queued and sent, in order, right after our
  version packet (or v1-framed once v1 is detected). Core keeps them in
  ``CNode::vSendMsg`` and ``SetMessageToSend`` refuses until ``SendState::READY``; the
  queue here holds only what our own side sent.

Deviations from Core, all from being sans-IO: bytes count as sent once handed out by
``data_to_send()`` (Core counts them in ``MarkBytesSent``), which is what
:meth:`V2Transport.should_reconnect_v1` looks at; packets are decrypted when
``next_message()`` asks (Core decrypts in ``ReceivedBytes`` and then stalls in
``APP_READY``), except their length, checked on arrival.
"""

from __future__ import annotations

import contextlib
import enum

from peerkeeper.wire.bip324_cipher import BIP324Cipher, DecryptionError
from peerkeeper.wire.ellswift import (
    ELLSWIFT_SIZE,
    EllSwiftError,
    RandomSource,
    ellswift_create,
    generate_key,
    randbytes,
)
from peerkeeper.wire.messages import ALL_NET_MESSAGE_TYPES, MAX_PROTOCOL_MESSAGE_LENGTH, Message
from peerkeeper.wire.v1 import RawMessage, TransportError, V1Transport, frame_v1

__all__ = [
    "MAX_CONTENTS_LEN",
    "MAX_GARBAGE_LEN",
    "V2_MESSAGE_IDS",
    "V2Transport",
]

#: Longest garbage a peer may send before its terminator (Core ``V2Transport::MAX_GARBAGE_LEN``).
MAX_GARBAGE_LEN = 4095
#: Core's ``MAX_SIZE`` (src/serialize.h), bounding ``MAX_CONTENTS_LEN`` with the message limit.
MAX_SIZE = 0x02000000
_MESSAGE_TYPE_SIZE = 12
#: Largest packet contents accepted: 0x00, 12-byte type, payload (Core ``MAX_CONTENTS_LEN``).
MAX_CONTENTS_LEN = 1 + _MESSAGE_TYPE_SIZE + min(MAX_SIZE, MAX_PROTOCOL_MESSAGE_LENGTH)
V1_PREFIX_LEN = 16
_V1_VERSION_COMMAND = b"version\x00\x00\x00\x00\x00"
_TERM_LEN = BIP324Cipher.GARBAGE_TERMINATOR_LEN
_EXPANSION = BIP324Cipher.EXPANSION
_BODY_EXTRA = _EXPANSION - BIP324Cipher.LENGTH_LEN  # header byte + Poly1305 tag

#: Short message ids, index = id (Core ``V2_MESSAGE_IDS``, src/net.cpp; BIP324 and
#: BIP434). Index 0 means "12-byte type follows"; 29..36 are reserved ("").
V2_MESSAGE_IDS: tuple[str, ...] = (
    "",
    "addr",
    "block",
    "blocktxn",
    "cmpctblock",
    "feefilter",
    "filteradd",
    "filterclear",
    "filterload",
    "getblocks",
    "getblocktxn",
    "getdata",
    "getheaders",
    "headers",
    "inv",
    "mempool",
    "merkleblock",
    "notfound",
    "ping",
    "pong",
    "sendcmpct",
    "tx",
    "getcfilters",
    "cfilter",
    "getcfheaders",
    "cfheaders",
    "getcfcheckpt",
    "cfcheckpt",
    "addrv2",
    *([""] * 8),  # 29..36: unimplemented (BIP 183 proposals)
    "feature",  # 37: BIP434
)
# Every short id names one of Core's message types.
assert set(V2_MESSAGE_IDS) - {""} <= set(ALL_NET_MESSAGE_TYPES)
_SHORT_IDS: dict[str, bytes] = {
    name: bytes((0, i)) for i, name in enumerate(V2_MESSAGE_IDS) if name and i > 0
}


class _Recv(enum.Enum):
    KEY_MAYBE_V1 = "KEY_MAYBE_V1"
    KEY = "KEY"
    GARB_GARBTERM = "GARB_GARBTERM"
    VERSION = "VERSION"
    APP = "APP"
    V1 = "V1"


class _Send(enum.Enum):
    MAYBE_V1 = "MAYBE_V1"
    AWAITING_KEY = "AWAITING_KEY"
    READY = "READY"
    V1 = "V1"


def _command_bytes(command: str) -> bytes:
    try:
        raw = command.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"command {command!r} is not ASCII") from None
    if len(raw) > _MESSAGE_TYPE_SIZE:
        raise ValueError(f"command {command!r} longer than {_MESSAGE_TYPE_SIZE} bytes")
    return raw


def _message_type(plain: bytes, start: int) -> tuple[str | None, int]:
    """Core ``V2Transport::GetMessageType`` on the contents at ``plain[start:]``.

    Returns (message type, or None if invalid; offset of the payload in ``plain``).
    """
    if len(plain) <= start:
        return None, start
    first = plain[start]
    if first != 0:
        if first < len(V2_MESSAGE_IDS):
            return V2_MESSAGE_IDS[first], start + 1
        return None, start + 1
    if len(plain) < start + 1 + _MESSAGE_TYPE_SIZE:
        return None, start + 1
    raw = plain[start + 1 : start + 1 + _MESSAGE_TYPE_SIZE]
    name, _, pad = raw.partition(b"\x00")
    # Bytes before the first NUL in ' '..0x7F, all after it NUL (note: 0x7F allowed, as Core).
    if pad.strip(b"\x00") or any(c < 0x20 or c > 0x7F for c in name):
        return None, start + 1
    return name.decode("ascii"), start + 1 + _MESSAGE_TYPE_SIZE


class V2Transport:
    """Sans-IO BIP324 transport for one connection (Core ``V2Transport``).

    ``V2Transport(magic, *, initiating, rng, privkey=None, ellswift=None, garbage=None,
    max_message=MAX_PROTOCOL_MESSAGE_LENGTH, allow_v1=True)``. ``rng`` (``os.urandom``-like callable or
    an object with ``randbytes``; may be ``None`` when the other three are given)
    supplies the ephemeral key, the ElligatorSwift encoding entropy and the garbage
    (uniform length 0..4095, random bytes) for what is not passed in. An initiator's key
    and garbage are in :meth:`data_to_send` right away; a responder sends nothing until
    it has seen that the peer is not speaking v1, unless ``allow_v1`` is False (no
    fallback: the native protocol, where every connection is encrypted; a v1
    ``version`` then fails as "V1 peer with wrong MessageStart"). See the module docstring for the
    states, limits and the send/receive contract.
    """

    __slots__ = (
        "magic",
        "max_message",
        "_initiating",
        "_cipher_obj",
        "_garbage",
        "_rng",
        "_key_args",
        "_recv_state",
        "_send_state",
        "_buf",
        "_pos",
        "_recv_len",
        "_recv_aad",
        "_garb_scanned",
        "_v1",
        "_out",
        "_queue",
        "_handed_out",
        "_broken",
        "_max_contents",
        "invalid_commands",
        "decoys_received",
    )

    def __init__(
        self,
        magic: bytes,
        *,
        initiating: bool,
        rng: RandomSource | None,
        privkey: bytes | None = None,
        ellswift: bytes | None = None,
        garbage: bytes | None = None,
        max_message: int = MAX_PROTOCOL_MESSAGE_LENGTH,
        allow_v1: bool = True,
    ) -> None:
        if len(magic) != 4:
            raise ValueError("magic must be 4 bytes")
        if privkey is None and ellswift is not None:
            raise ValueError("ellswift given without its privkey")
        if (privkey is None or ellswift is None or garbage is None) and rng is None:
            raise ValueError("rng is needed to generate a key, its encoding or garbage")
        if ellswift is not None and len(ellswift) != ELLSWIFT_SIZE:
            raise ValueError("ellswift must be 64 bytes")
        if garbage is not None and len(garbage) > MAX_GARBAGE_LEN:
            raise ValueError(f"garbage longer than {MAX_GARBAGE_LEN} bytes")
        self._rng = rng
        self._key_args = (privkey, ellswift, garbage)
        self._cipher_obj: BIP324Cipher | None = None
        self._garbage: bytes | None = None
        self.magic = bytes(magic)
        self.max_message = max_message
        self._max_contents = 1 + _MESSAGE_TYPE_SIZE + min(MAX_SIZE, max_message)
        self._initiating = initiating
        if initiating:
            self._make_keys()  # an initiator sends its key at once; a responder waits (v1?)
        self._buf = bytearray()
        self._pos = 0
        self._recv_len: int | None = None
        self._recv_aad = b""
        self._garb_scanned = 0
        self._v1: V1Transport | None = None
        self._out: list[bytes] = []  # chunks, joined once by data_to_send()
        self._queue: list[tuple[str, bytes]] = []
        self._handed_out = 0
        self._broken: str | None = None
        #: Application packets dropped for an invalid message type (Core ``reject_message``).
        self.invalid_commands = 0
        #: Decoy packets (ignore bit set) received and skipped.
        self.decoys_received = 0
        if initiating or not allow_v1:
            # A responder that never falls back (the native protocol) skips v1 detection
            # and sends its key at once, like an initiator.
            self._recv_state = _Recv.KEY
            self._send_state = _Send.AWAITING_KEY
            self._start_sending_handshake()
        else:
            self._recv_state = _Recv.KEY_MAYBE_V1
            self._send_state = _Send.MAYBE_V1

    # -- keys (made on first use: a responder only constructed holds none) ----------------

    def _make_keys(self) -> BIP324Cipher:
        if self._cipher_obj is None:
            privkey, ellswift, garbage = self._key_args
            rng = self._rng
            if privkey is None:
                assert rng is not None
                privkey, ellswift = generate_key(rng)
            elif ellswift is None:
                assert rng is not None
                ellswift = ellswift_create(privkey, randbytes(rng, 32))
            if garbage is None:
                assert rng is not None
                # Uniform in 0..4095 (4096 divides 65536), as Core's GenerateRandomGarbage.
                n = int.from_bytes(randbytes(rng, 2), "little") % (MAX_GARBAGE_LEN + 1)
                garbage = randbytes(rng, n)
            self._cipher_obj = BIP324Cipher(privkey, ellswift, self.magic)
            self._garbage = bytes(garbage)
            self._key_args = (None, None, None)
        return self._cipher_obj

    @property
    def _cipher(self) -> BIP324Cipher:
        return self._make_keys()

    @property
    def _send_garbage(self) -> bytes:
        self._make_keys()
        assert self._garbage is not None
        return self._garbage

    @_send_garbage.setter
    def _send_garbage(self, value: bytes) -> None:
        self._garbage = value

    # -- introspection ---------------------------------------------------------------

    @property
    def initiating(self) -> bool:
        """True on the side that opened the connection."""
        return self._initiating

    @property
    def our_ellswift(self) -> bytes:
        """Our 64-byte ElligatorSwift public key (the first bytes we send in v2)."""
        return self._cipher.our_pubkey

    @property
    def state(self) -> str:
        """The receive state's name, as Core's ``RecvState`` (for logs and tests)."""
        return self._recv_state.value

    @property
    def transport_type(self) -> str:
        """``"v1"``, ``"v2"`` or ``"detecting"`` (Core ``V2Transport::GetInfo``).

        ``"v2"`` only once the peer's version packet has been authenticated.
        """
        if self._recv_state is _Recv.V1:
            return "v1"
        if self._recv_state is _Recv.APP:
            return "v2"
        return "detecting"

    @property
    def session_id(self) -> bytes | None:
        """The 32-byte BIP324 session id once ``transport_type == "v2"``, else ``None``."""
        if self._recv_state is _Recv.APP:
            return self._cipher.session_id
        return None

    @property
    def error(self) -> str | None:
        """Why the stream broke (raised by ``next_message``), or ``None``."""
        if self._v1 is not None:
            return None
        return self._broken

    @property
    def checksum_errors(self) -> int:
        """v1 checksum failures (only after a fallback to v1; v2 has no checksums)."""
        return self._v1.checksum_errors if self._v1 is not None else 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        if self._v1 is not None:
            return self._v1.buffered
        return len(self._buf) - self._pos

    def partial_bytes(self) -> int:
        """Buffered bytes of the packet at the head of the buffer, up to its size.

        As :meth:`V1Transport.partial_bytes`: ``buffered - partial_bytes()`` is what is
        held of complete, unprocessed messages. Before the application phase everything
        buffered counts as partial (the handshake is processed as it arrives).
        """
        if self._v1 is not None:
            return self._v1.partial_bytes()
        have = len(self._buf) - self._pos
        if self._recv_state is not _Recv.APP:
            return have
        if self._recv_len is None:
            return min(have, BIP324Cipher.LENGTH_LEN)
        return min(have, self._recv_len + _BODY_EXTRA)

    def wants_bytes(self) -> int:
        """A lower bound on the bytes still needed to make progress (0 if a message may be ready)."""
        if self._v1 is not None:
            return self._v1.wants_bytes()
        have = len(self._buf) - self._pos
        st = self._recv_state
        if st is _Recv.KEY_MAYBE_V1:
            return max(0, V1_PREFIX_LEN - have)
        if st is _Recv.KEY:
            return max(0, ELLSWIFT_SIZE - have)
        if st is _Recv.GARB_GARBTERM:
            return max(1, _TERM_LEN - have)
        if self._recv_len is None:
            return max(0, BIP324Cipher.LENGTH_LEN - have)
        return max(0, self._recv_len + _BODY_EXTRA - have)

    def settled(self) -> V1Transport | V2Transport:
        """Its inner v1 transport once a v1 peer was detected and nothing is left here
        to hand out (queued bytes go first), else itself (see ``Transport.settled``)."""
        v1 = self._v1
        if v1 is None or self._out or self._queue:
            return self
        return v1

    def should_reconnect_v1(self) -> bool:
        """Core ``V2Transport::ShouldReconnectV1``: retry this peer with v1?

        True only for an initiator still waiting for the peer's key with nothing at all
        received, after at least a v1 header's worth (24 bytes) of our key and garbage
        was handed out: a v1-only peer would have disconnected us on reading that.
        """
        if not self._initiating or self._recv_state is not _Recv.KEY:
            return False
        if len(self._buf) - self._pos:
            return False
        return self._handed_out >= 24

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the socket and advance the handshake. Never raises."""
        if self._v1 is not None:
            self._v1.receive_data(data)
            return
        if self._broken is not None:
            return  # the stream is dead; keep nothing more of it
        buf = self._buf
        if self._pos and self._pos == len(buf):
            buf.clear()
            self._pos = 0
        buf += data
        # A fatal problem is remembered in self._broken and raised by next_message().
        with contextlib.suppress(TransportError):
            self._advance(deliver=False)
        if self._v1 is None:
            self._compact()

    def next_message(self) -> RawMessage | None:
        """Return the next complete message, or ``None`` if more bytes are needed.

        Raises :class:`TransportError` when the stream is broken (and on every later
        call). Decoys are skipped; rejected messages are returned with ``rejected`` set.
        """
        if self._v1 is not None:
            return self._v1.next_message()
        if self._broken is not None:
            raise TransportError(self._broken)
        msg = self._advance(deliver=True)
        if self._v1 is not None:
            return self._v1.next_message()
        self._compact()
        return msg

    def _fail(self, reason: str) -> TransportError:
        self._broken = f"V2 transport error: {reason}"
        self._buf = bytearray()
        self._pos = 0
        self._recv_len = None
        return TransportError(self._broken)

    def _compact(self) -> None:
        buf = self._buf
        pos = self._pos
        if pos == len(buf):
            buf.clear()
            self._pos = 0
        elif pos >= 1 << 20 or pos * 2 > len(buf):
            del buf[:pos]
            self._pos = 0

    def _advance(self, *, deliver: bool) -> RawMessage | None:
        """Run the receive state machine over the buffer.

        With ``deliver`` False (from ``receive_data``) it stops in ``APP`` once the head
        packet's length is known; with ``deliver`` True it returns the first
        application message, or ``None`` when more bytes are needed.
        """
        buf = self._buf
        while True:
            st = self._recv_state
            pos = self._pos
            avail = len(buf) - pos
            if st is _Recv.APP or st is _Recv.VERSION:
                length = self._recv_len
                if length is None:
                    if avail < BIP324Cipher.LENGTH_LEN:
                        return None
                    length = self._cipher.decrypt_length(buf[pos : pos + BIP324Cipher.LENGTH_LEN])
                    pos += BIP324Cipher.LENGTH_LEN
                    avail -= BIP324Cipher.LENGTH_LEN
                    self._pos = pos
                    if length > self._max_contents:
                        raise self._fail(f"packet too large ({length} bytes)")
                    self._recv_len = length
                if not deliver and st is _Recv.APP:
                    return None
                need = length + _BODY_EXTRA
                if avail < need:
                    return None
                try:
                    with memoryview(buf)[pos : pos + need] as chunk:
                        plain = self._cipher.decrypt_with_header(chunk, self._recv_aad)
                except DecryptionError:
                    raise self._fail(f"packet decryption failure ({length} bytes)") from None
                self._pos = pos + need
                self._recv_len = None
                self._recv_aad = b""
                if plain[0] & BIP324Cipher.IGNORE_BIT:
                    self.decoys_received += 1
                    continue
                if st is _Recv.VERSION:
                    # The version packet's contents are ignored (reserved for extensions).
                    self._recv_state = _Recv.APP
                    continue
                return self._make_message(plain)
            if st is _Recv.GARB_GARBTERM:
                window = min(avail, MAX_GARBAGE_LEN + _TERM_LEN)
                start = pos + max(0, self._garb_scanned - (_TERM_LEN - 1))
                term = self._cipher.recv_garbage_terminator
                i = buf.find(term, start, pos + window)
                if i >= 0:
                    self._recv_aad = bytes(buf[pos:i])
                    self._pos = i + _TERM_LEN
                    self._recv_state = _Recv.VERSION
                    continue
                if window == MAX_GARBAGE_LEN + _TERM_LEN:
                    raise self._fail("missing garbage terminator")
                self._garb_scanned = window
                return None
            if st is _Recv.KEY:
                if (
                    not self._initiating
                    and avail >= V1_PREFIX_LEN
                    and buf[pos + 4 : pos + V1_PREFIX_LEN] == _V1_VERSION_COMMAND
                ):
                    magic = bytes(buf[pos : pos + 4]).hex()
                    raise self._fail(f"V1 peer with wrong MessageStart {magic}")
                if avail < ELLSWIFT_SIZE:
                    return None
                self._pos = pos + ELLSWIFT_SIZE
                try:
                    self._cipher.initialize(bytes(buf[pos : pos + ELLSWIFT_SIZE]), self._initiating)
                except EllSwiftError as e:  # pragma: no cover - keys checked, any 64 bytes decode
                    raise self._fail(f"key exchange failed: {e}") from None
                self._recv_state = _Recv.GARB_GARBTERM
                self._garb_scanned = 0
                self._become_ready()
                continue
            if st is _Recv.KEY_MAYBE_V1:
                prefix = self.magic + _V1_VERSION_COMMAND
                n = min(avail, V1_PREFIX_LEN)
                if buf[pos : pos + n] != prefix[:n]:
                    # Mismatch: a v2 peer. Keep the bytes, start sending our key.
                    self._recv_state = _Recv.KEY
                    self._send_state = _Send.AWAITING_KEY
                    self._start_sending_handshake()
                    continue
                if n == V1_PREFIX_LEN:
                    self._fall_back_to_v1()
                return None
            return None  # _Recv.V1: handled by the callers

    def _make_message(self, plain: bytes) -> RawMessage:
        """A message from a decrypted packet ``header byte || contents``."""
        wire_size = len(plain) - BIP324Cipher.HEADER_LEN + _EXPANSION
        command, offset = _message_type(plain, BIP324Cipher.HEADER_LEN)
        payload = plain[offset:]
        if command is None:
            self.invalid_commands += 1
            name = plain[2 : 2 + _MESSAGE_TYPE_SIZE] if plain[1:2] == b"\x00" else b""
            shown = name.rstrip(b"\x00").decode("ascii", "replace")
            return RawMessage(shown, payload, wire_size, "command")
        return RawMessage(command, payload, wire_size)

    def _fall_back_to_v1(self) -> None:
        v1 = V1Transport(self.magic, self.max_message)
        v1.receive_data(self._buf[self._pos :])
        self._v1 = v1
        self._buf = bytearray()
        self._pos = 0
        self._recv_state = _Recv.V1
        self._send_state = _Send.V1
        for command, payload in self._queue:
            self._out.append(frame_v1(self.magic, command, payload))
        self._queue.clear()

    # -- sending ---------------------------------------------------------------------

    def _start_sending_handshake(self) -> None:
        self._out += (self._cipher.our_pubkey, self._send_garbage)

    def _become_ready(self) -> None:
        """Keys known: queue terminator, version packet (garbage as AAD), pending messages."""
        cipher = self._cipher
        self._send_state = _Send.READY
        self._out.append(cipher.send_garbage_terminator)
        self._out.append(cipher.encrypt(b"", self._send_garbage, False))
        self._send_garbage = b""
        for command, payload in self._queue:
            self._out += self._encrypt_message(command, payload)
        self._queue.clear()

    def _encrypt_message(self, command: str, payload: bytes) -> tuple[bytes, bytes]:
        """The packet for a message, as (encrypted length, rest): Core ``SetMessageToSend``."""
        short = _SHORT_IDS.get(command)
        if short is not None:
            plaintext = short + payload
        else:
            raw = _command_bytes(command)
            plaintext = b"\x00\x00" + raw + bytes(_MESSAGE_TYPE_SIZE - len(raw)) + payload
        return self._cipher.encrypt_parts(plaintext, b"")

    def data_to_send(self) -> bytes:
        """Return, and forget, every byte waiting to be written to the socket."""
        if not self._out:
            return b""
        data = b"".join(self._out)  # no copy when there is a single chunk
        self._out.clear()
        self._handed_out += len(data)
        return data

    def send(self, command: str, payload: bytes) -> int:
        """Queue ``payload`` under ``command`` for :meth:`data_to_send`.

        Returns the message's size on the wire in bytes: the encrypted packet
        (3-byte length, header byte, a 1-byte short id or 0x00 + 12-byte type, payload,
        16-byte tag), or the v1 frame (24-byte header + payload) after a fallback to v1.
        Before the handshake completes the message waits and is encrypted then; its
        v2 size is returned even if a responder still detecting then finds a v1 peer
        (owners send nothing to an inbound peer before its version). Short ids are used where BIP324/Core define one.
        Raises ``ValueError`` for a command longer than 12 bytes or not ASCII, or a
        payload above ``max_message``.
        """
        v1 = self._v1
        if v1 is not None:
            frame = frame_v1(v1.magic, command, payload)
            self._out.append(frame)
            return len(frame)
        _command_bytes(command)
        if len(payload) > self.max_message:
            raise ValueError(f"payload of {len(payload)} bytes above {self.max_message}")
        if self._send_state is _Send.READY:
            self._out += self._encrypt_message(command, payload)
        else:
            self._queue.append((command, bytes(payload)))
        short = command in _SHORT_IDS
        return _EXPANSION + (1 if short else 1 + _MESSAGE_TYPE_SIZE) + len(payload)

    def send_message(self, msg: Message) -> int:
        """Encode ``msg`` and :meth:`send` it; returns its wire size in bytes."""
        return self.send(msg.command, msg.encode())
