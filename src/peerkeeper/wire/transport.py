"""One interface for the v1 and the BIP324 v2 transport. Sans-IO.

Follows Bitcoin Core ``src/net.h`` ``class Transport``: the connection owner feeds
received bytes, takes complete messages, hands messages to send and takes the bytes
to write, without knowing which protocol runs underneath. Core's methods map as::

    ReceivedBytes            receive_data(data)
    ReceivedMessageComplete  next_message() is not None
    GetReceivedMessage       next_message()
    SetMessageToSend         send(command, payload)
    GetBytesToSend           data_to_send()
    MarkBytesSent            (data_to_send() hands bytes out and forgets them)
    ShouldReconnectV1        should_reconnect_v1()
    GetInfo                  transport_type, session_id

A :class:`~peerkeeper.wire.v2.V2Transport` responder whose peer turns out to speak v1
keeps its inner :class:`~peerkeeper.wire.v1.V1Transport` and delegates to it (Core's
``V2Transport::m_v1_fallback``), so callers never test which class they hold.

Differences from Core, both from being sans-IO: ``send`` never refuses (Core's
``SetMessageToSend`` returns false until the previous message left; here messages are
queued, in order, and before the BIP324 handshake completes they wait for it), and it
returns the message's size on the wire for the per-message byte counters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from peerkeeper.wire.messages import Message
from peerkeeper.wire.v1 import RawMessage

if TYPE_CHECKING:
    from peerkeeper.wire.v1 import V1Transport
    from peerkeeper.wire.v2 import V2Transport

__all__ = ["Transport"]


class Transport(Protocol):
    """What the connection owner uses of a transport (Core ``Transport``, src/net.h).

    Errors: :meth:`next_message` raises :class:`~peerkeeper.wire.v1.TransportError`
    when the byte stream is broken (and on every later call); :meth:`send` raises
    ``ValueError`` for a command that is not 1..12 ASCII bytes or a payload above the
    transport's message limit. Nothing else raises for any input.
    """

    @property
    def transport_type(self) -> str:
        """``"v1"``, ``"v2"`` or ``"detecting"`` (getpeerinfo ``transport_protocol_type``)."""
        ...

    @property
    def session_id(self) -> bytes | None:
        """The 32-byte BIP324 session id once ``transport_type == "v2"``, else ``None``."""
        ...

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as messages."""
        ...

    def partial_bytes(self) -> int:
        """Buffered bytes of the message still arriving at the head of the buffer.

        ``buffered - partial_bytes()`` is what complete, unprocessed messages hold
        (Core ``nProcessQueueSize``).
        """
        ...

    def wants_bytes(self) -> int:
        """A lower bound on the bytes needed before a message may be ready (0: maybe now)."""
        ...

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes the socket delivered (Core ``ReceivedBytes``)."""
        ...

    def next_message(self) -> RawMessage | None:
        """The next complete message, or ``None`` when more bytes are needed.

        A message Core would reject (bad checksum, invalid type) is returned with
        ``rejected`` set so its bytes are counted under ``*other*``; it must not be
        processed.
        """
        ...

    def send(self, command: str, payload: bytes) -> int:
        """Frame a message and queue it for :meth:`data_to_send`.

        Returns its size on the wire in bytes (v1: 24-byte header + payload; v2: the
        encrypted packet, 20 + 1 or 13 + payload), which Core counts per message type
        (``mapSendBytesPerMsgType``).
        """
        ...

    def send_message(self, msg: Message) -> int:
        """``send(msg.command, msg.encode())``."""
        ...

    def data_to_send(self) -> bytes:
        """Return, and forget, every byte waiting to be written (Core ``GetBytesToSend``
        followed by ``MarkBytesSent``): handshake bytes and queued messages alike."""
        ...

    def should_reconnect_v1(self) -> bool:
        """Core ``ShouldReconnectV1``: a v2 attempt the peer refused; retry it as v1."""
        ...

    def settled(self) -> Transport:
        """The transport that carries the connection from now on: this one, or, for a
        BIP324 responder that found a v1 peer and has nothing left to hand out, its
        inner v1 transport (Core keeps ``m_v1_fallback`` inside ``V2Transport``; in
        Python the owner may keep only the inner one and free the v2 state, about half
        a kilobyte per v1 peer)."""
        ...


if TYPE_CHECKING:  # both transports implement the interface (checked by mypy)

    def _v1_is_a_transport(t: V1Transport) -> Transport:
        return t

    def _v2_is_a_transport(t: V2Transport) -> Transport:
        return t
