"""The v1 (unencrypted) transport: 24-byte headers framing each message. Sans-IO.

Header: 4-byte network magic, 12-byte NUL-padded command, 4-byte little-endian
payload length, 4-byte checksum (first 4 bytes of double-SHA256 of the payload).

Behaviour follows Bitcoin Core ``src/net.cpp`` ``V1Transport``:

* wrong magic -> fatal (``Header error: Wrong MessageStart``), disconnect;
* declared length above ``MAX_PROTOCOL_MESSAGE_LENGTH`` -> fatal before any of the
  payload is buffered (``Header error: Size too large``);
* bad checksum, or a command that is not printable ASCII NUL-padded
  (``CMessageHeader::IsMessageTypeValid``) -> the message is dropped and counted,
  the connection stays (``reject_message``).

Use (the :class:`~peerkeeper.wire.transport.Transport` interface): ``receive_data(bytes)``
to feed what the socket delivered, then call ``next_message()`` until it returns
``None``; ``send(command, payload)`` queues a framed message and returns its wire size,
``data_to_send()`` returns everything queued. The receive buffer is a ``bytearray`` consumed by offset (never ``bytes +=``),
so a large message arriving in small pieces costs linear time.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass

from peerkeeper.wire import corelog
from peerkeeper.wire.messages import ALL_NET_MESSAGE_TYPES, MAX_PROTOCOL_MESSAGE_LENGTH, Message

__all__ = [
    "HEADER_SIZE",
    "TransportError",
    "RawMessage",
    "V1Transport",
    "frame_v1",
    "is_valid_command",
]

#: Size of a v1 message header in bytes (src/protocol.h ``CMessageHeader::HEADER_SIZE``).
HEADER_SIZE = 24
_HDR = struct.Struct("<4s12sI4s")
_COMMAND_SIZE = 12
_sha256 = hashlib.sha256


#: The 12-byte command fields of every message type Core knows, pre-decoded (all valid).
_KNOWN_COMMANDS: dict[bytes, str] = {
    name.encode().ljust(12, b"\x00"): name for name in ALL_NET_MESSAGE_TYPES
}


class TransportError(Exception):
    """The byte stream is broken beyond recovery; the connection must be closed."""


@dataclass(slots=True)
class RawMessage:
    """One framed message as received.

    ``command`` (str), ``payload`` (bytes), ``wire_size`` (header + payload bytes),
    and ``rejected``: ``None`` for a good message, else why it was dropped
    (``"checksum"`` or ``"command"``). Rejected messages are returned so the
    caller can count their bytes (Core counts them under ``*other*``) but must not
    be processed. ``checksum`` is the header's checksum field when it was wrong (for
    Core's "Header error: Wrong checksum" line), else ``b""``.
    """

    command: str
    payload: bytes
    wire_size: int
    rejected: str | None = None
    checksum: bytes = b""


def is_valid_command(raw: bytes) -> bool:
    """True when a 12-byte command field is printable ASCII followed only by NULs.

    Source: src/protocol.cpp ``CMessageHeader::IsMessageTypeValid``.
    """
    name, _, pad = raw.partition(b"\x00")
    if pad.strip(b"\x00"):
        return False
    return all(0x20 <= c <= 0x7E for c in name)


@functools.lru_cache(maxsize=256)
def _command_bytes(command: str) -> bytes:
    raw = command.encode("ascii")
    if len(raw) > _COMMAND_SIZE:
        raise ValueError(f"command {command!r} longer than {_COMMAND_SIZE} bytes")
    return raw


def frame_v1(magic: bytes, command: str, payload: bytes) -> bytes:
    """One v1 message: header (``magic``, NUL-padded command, length, checksum) + payload.

    Source: src/net.cpp ``V1Transport::SetMessageToSend`` / src/protocol.h
    ``CMessageHeader``. Raises ``ValueError`` for a command longer than 12 bytes or
    not ASCII.
    """
    chk = _sha256(_sha256(payload).digest()).digest()[:4]
    return _HDR.pack(magic, _command_bytes(command), len(payload), chk) + payload


#: Declared payload size (bytes) from which a message's body is collected chunk by chunk.
_BIG_MESSAGE = 1 << 16


class V1Transport:
    """Sans-IO v1 framing for one connection.

    ``V1Transport(magic, max_message=MAX_PROTOCOL_MESSAGE_LENGTH)``; ``magic`` is
    the chain's 4-byte message start. Counters ``checksum_errors`` and
    ``invalid_commands`` count dropped messages.
    """

    __slots__ = (
        "magic",
        "max_message",
        "_buf",
        "_pos",
        "_hdr",
        "checksum_errors",
        "invalid_commands",
        "_broken",
        "_out",
        "_big",
        "_big_have",
    )

    def __init__(self, magic: bytes, max_message: int = MAX_PROTOCOL_MESSAGE_LENGTH) -> None:
        if len(magic) != 4:
            raise ValueError("magic must be 4 bytes")
        self.magic = magic
        self.max_message = max_message
        self._buf = bytearray()
        self._pos = 0
        self._hdr: tuple[bytes, int, bytes] | None = None  # command raw, length, checksum
        self.checksum_errors = 0
        self.invalid_commands = 0
        self._broken: str | None = None
        self._out: list[bytes] = []  # framed messages, joined once by data_to_send()
        # A large message's body as it arrives, chunk by chunk (joined once at its end):
        # one copy of its bytes instead of two (into the buffer, then out of it).
        self._big: list[bytes] | None = None
        self._big_have = 0

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._buf) - self._pos + self._big_have

    def partial_bytes(self) -> int:
        """Buffered bytes of the message at the head of the buffer, up to its declared size.

        After every complete message has been taken, this is the whole buffer: the
        owner subtracts it so that one large message arriving never counts as a
        backlog of unprocessed ones.
        """
        have = len(self._buf) - self._pos + self._big_have
        if self._hdr is None:
            return min(have, HEADER_SIZE)
        return min(have, self._hdr[1])

    def wants_bytes(self) -> int:
        """How many more bytes complete the message being read (0 if one is ready)."""
        have = len(self._buf) - self._pos + self._big_have
        if self._hdr is None:
            return max(0, HEADER_SIZE - have)
        return max(0, self._hdr[1] - have)

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the socket."""
        if self._big is not None:
            self._big.append(data if type(data) is bytes else bytes(data))
            self._big_have += len(data)
            return
        buf = self._buf
        if self._pos and self._pos == len(buf):
            buf.clear()
            self._pos = 0
        buf += data

    def next_message(self) -> RawMessage | None:
        """Return the next complete message, or ``None`` if more bytes are needed.

        Raises :class:`TransportError` for wrong magic or an oversized declared
        length (and on every later call: the stream cannot be resynchronised).
        """
        if self._broken is not None:
            raise TransportError(self._broken)
        if self._big is not None:
            return self._next_big()
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        hdr = self._hdr
        if hdr is None:
            if avail < HEADER_SIZE:
                return None
            magic, command_raw, length, chk = _HDR.unpack_from(buf, pos)
            if magic != self.magic:
                self._broken = f"Header error: Wrong MessageStart {magic.hex()} received"
                raise TransportError(self._broken)
            if length > self.max_message:
                name = corelog.message_type(command_raw)
                self._broken = f"Header error: Size too large ({name}, {length} bytes)"
                raise TransportError(self._broken)
            pos += HEADER_SIZE
            avail -= HEADER_SIZE
            if avail < length:
                self._hdr = (command_raw, length, chk)
                if length >= _BIG_MESSAGE:
                    self._big = [bytes(buf[pos:])] if avail else []
                    self._big_have = avail
                    buf.clear()
                    self._pos = 0
                else:
                    self._pos = pos
                return None
        else:
            command_raw, length, chk = hdr
            if avail < length:
                return None
            self._hdr = None
        end = pos + length
        if length < 4096:
            payload = bytes(buf[pos:end])  # two small copies beat a memoryview's setup
        else:
            with memoryview(buf) as view:
                payload = bytes(view[pos:end])
        if end == len(buf):
            buf.clear()
            self._pos = 0
        elif end >= 1 << 20 or end * 2 > len(buf):
            del buf[:end]
            self._pos = 0
        else:
            self._pos = end
        return self._finish(command_raw, payload, chk)

    def _next_big(self) -> RawMessage | None:
        """The large message being collected, once all of it is here."""
        assert self._big is not None and self._hdr is not None
        command_raw, length, chk = self._hdr
        have = self._big_have
        if have < length:
            return None
        chunks = self._big
        # Bytes past the body (the next messages) may fill several chunks: receive_data
        # can be called more than once between two next_message calls (a peer whose
        # sends are paused is not read from, but what already arrived is kept).
        excess = have - length
        tail: list[bytes] = []
        while excess:
            last = chunks.pop()
            if len(last) <= excess:
                tail.append(last)
                excess -= len(last)
            else:
                cut = len(last) - excess
                chunks.append(last[:cut])
                tail.append(last[cut:])
                excess = 0
        rest = b"".join(reversed(tail))
        payload = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._big = None
        self._big_have = 0
        self._hdr = None
        self._buf += rest  # empty while collecting
        return self._finish(command_raw, payload, chk)

    def _finish(self, command_raw: bytes, payload: bytes, chk: bytes) -> RawMessage:
        length = len(payload)
        rejected = None
        command = _KNOWN_COMMANDS.get(command_raw)
        if command is None:
            command = command_raw.rstrip(b"\x00").decode("ascii", "replace")
            if not is_valid_command(command_raw):
                rejected = "command"
        if _sha256(_sha256(payload).digest()).digest()[:4] != chk:
            rejected = "checksum"
        if rejected is not None:
            if rejected == "checksum":
                self.checksum_errors += 1
            else:
                self.invalid_commands += 1
        wrong = chk if rejected == "checksum" else b""
        return RawMessage(command, payload, length + HEADER_SIZE, rejected, wrong)

    #: What getpeerinfo reports (``transport_protocol_type``); v1 never detects.
    transport_type = "v1"
    #: BIP324 session id: none for v1.
    session_id: bytes | None = None

    def data_to_send(self) -> bytes:
        """Return, and forget, every framed message queued by :meth:`send`."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def should_reconnect_v1(self) -> bool:
        """Only a v2 initiator can ask to retry as v1."""
        return False

    def settled(self) -> V1Transport:
        """Itself: a v1 transport never hands over (see ``Transport.settled``)."""
        return self

    def send(self, command: str, payload: bytes) -> int:
        """Frame ``payload`` under ``command`` and queue it for :meth:`data_to_send`.

        Returns the wire size in bytes (24-byte header + payload). Raises
        ``ValueError`` for a command longer than 12 bytes or not ASCII.
        """
        frame = frame_v1(self.magic, command, payload)
        self._out.append(frame)
        return len(frame)

    def send_message(self, msg: Message) -> int:
        """Encode ``msg`` and :meth:`send` it; returns its wire size in bytes."""
        return self.send(msg.command, msg.encode())
