"""What an application sees of the Bitcoin node: peers coming and going, messages, replies.

Pure. :class:`~peerkeeper.bitcoin.connman.ConnManCore` tells an :class:`AppSink` (the
shell's application API, :mod:`peerkeeper.shell.peerapi`) when a peer completes the
handshake, when it goes and why (a typed :class:`DisconnectReason`), and every message
a connected peer sends after it was processed as Core would. The request/reply
matching for ``node.request`` is here too: :func:`request_key` says under which key of
the dispatch layer's pending table a request waits, :func:`reply_keys` which keys a
received message answers. Core has no application API; the vocabulary follows its
``CConnman`` (``ForEachNode``, ``PushMessage``, ``FindNode``, ``GetNodeStats``,
src/net.h) and the reasons its ``DisconnectMsg`` lines give.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from peerkeeper.wire import corelog
from peerkeeper.wire.messages import (
    Addr,
    AddrV2,
    Block,
    GetAddr,
    GetData,
    GetHeaders,
    Headers,
    Message,
    NotFound,
    Ping,
    Pong,
    Tx,
)

if TYPE_CHECKING:
    from peerkeeper.bitcoin.connman import PeerConn

__all__ = [
    "APP_ONLY_COMMANDS",
    "AppSink",
    "DisconnectReason",
    "classify_disconnect",
    "reply_keys",
    "request_key",
]


#: Messages only an application reads (the node keeps no mempool and no blocks): they
#: are decoded only when it asked for them (:meth:`AppSink.wants`) or waits for one.
APP_ONLY_COMMANDS = frozenset({"tx", "block"})


class DisconnectReason(enum.Enum):
    """Why a connection ended, for applications (the text of Core's log line is kept beside it).

    * ``TIMEOUT``: Core's ``InactivityCheck`` (no message, send/receive or ping timeout,
      handshake timeout) or an addr-fetch connection's 5 minutes;
    * ``MISBEHAVING``: discouraged and disconnected (``MaybeDiscourageAndDisconnect``);
    * ``EVICTED``: an inbound peer evicted for a new one (``AttemptToEvictConnection``),
      an extra outbound peer, or no tx-relay slot;
    * ``BANNED``: ``setban`` (``DisconnectNode`` by subnet or address);
    * ``REMOTE_CLOSED``: the peer hung up, or the socket failed;
    * ``LOCAL_REQUEST``: ``disconnectnode``, ``node.disconnect``;
    * ``PROTOCOL``: the peer broke the protocol (a bad version, a transport error,
      connected to ourselves, missing services);
    * ``COMPLETED``: a feeler or addr-fetch connection that did its job;
    * ``NETWORK_INACTIVE``: ``setnetworkactive false``;
    * ``SHUTDOWN``: the node is stopping.
    """

    TIMEOUT = "timeout"
    MISBEHAVING = "misbehaving"
    EVICTED = "evicted"
    BANNED = "banned"
    REMOTE_CLOSED = "remote_closed"
    LOCAL_REQUEST = "local_request"
    PROTOCOL = "protocol"
    COMPLETED = "completed"
    NETWORK_INACTIVE = "network_inactive"
    SHUTDOWN = "shutdown"


def classify_disconnect(text: str) -> DisconnectReason:
    """The reason a peer state machine's ``Disconnect(text)`` stands for.

    Timeouts are Core's ``InactivityCheck`` lines (src/net.cpp) and the addr-fetch
    timeout; ``completed`` ends a feeler or addr-fetch connection; anything else a peer
    decides is a protocol violation (src/net_processing.cpp's ``fDisconnect`` sites).
    """
    if "timeout" in text or text.startswith(corelog.SOCKET_NO_MESSAGE.split("%", 1)[0]):
        return DisconnectReason.TIMEOUT
    if text in (corelog.FEELER_COMPLETED, corelog.ADDRFETCH_COMPLETED):
        return DisconnectReason.COMPLETED
    return DisconnectReason.PROTOCOL


class AppSink(Protocol):
    """What ConnManCore tells the application layer (all calls on the core's thread)."""

    def peer_connected(self, peer: PeerConn) -> None:
        """``peer`` completed the version handshake (Core: ``fSuccessfullyConnected``)."""

    def peer_disconnected(self, peer: PeerConn, reason: DisconnectReason, text: str) -> None:
        """A connection ended (handshake completed or not); ``text`` is the log line's reason."""

    def message(self, peer: PeerConn, msg: Message, size: int) -> None:
        """``msg`` (``size`` payload bytes) arrived from a connected ``peer`` and was
        processed as Core would."""

    def wants(self, command: str) -> bool:
        """Whether a message of ``command`` (one of :data:`APP_ONLY_COMMANDS`) should
        be decoded for the application; otherwise it stays an ``UnknownMessage``."""


#: A key in the pending-request table (after the peer id).
ReplyKey = tuple[object, ...]


def request_key(msg: Message) -> ReplyKey:
    """The key a request waits under until its reply (see :func:`reply_keys`).

    ``ping`` (with a nonce) -> its ``pong``; ``getaddr`` -> the next ``addr``/``addrv2``
    of more than one address (Core's addr-fetch rule: one is a self-announcement);
    ``getheaders`` -> the next ``headers``; ``getdata`` of one item -> that ``block``,
    ``tx`` (by txid or wtxid) or a ``notfound`` naming it.

    :raises ValueError: a message with no reply to wait for (or a ``getdata`` of other
        than one item, or a ``ping`` without a nonce).
    """
    if isinstance(msg, Ping):
        if not msg.nonce:
            raise ValueError("a ping without a nonce gets no matching pong")
        return ("pong", msg.nonce)
    if isinstance(msg, GetAddr):
        return ("addr",)
    if isinstance(msg, GetHeaders):
        return ("headers",)
    if isinstance(msg, GetData) and not isinstance(msg, NotFound):
        if len(msg.items) != 1:
            raise ValueError("request() takes a getdata of exactly one item")
        return ("getdata", bytes(msg.items[0][1]))
    raise ValueError(f"no reply to wait for after {msg.command!r}")


def reply_keys(msg: Message) -> list[ReplyKey]:
    """The pending-request keys ``msg`` answers (see :func:`request_key`); [] for most."""
    if isinstance(msg, Pong):
        return [("pong", msg.nonce)]
    if isinstance(msg, Addr | AddrV2):
        # Core's addr-fetch rule (src/net_processing.cpp): one address is a peer's
        # self-announcement, not the answer to getaddr.
        return [("addr",)] if len(msg.entries) > 1 else []
    if isinstance(msg, Headers):
        return [("headers",)]
    if isinstance(msg, Block):
        return [("getdata", msg.hash)]
    if isinstance(msg, Tx):
        keys: list[ReplyKey] = [("getdata", msg.txid)]
        if msg.wtxid != msg.txid:
            keys.append(("getdata", msg.wtxid))
        return keys
    if isinstance(msg, NotFound):
        return [("getdata", bytes(h)) for _, h in msg.items]
    return []
