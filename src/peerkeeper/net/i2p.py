"""I2P's SAM 3.1 as Bitcoin Core speaks it (src/i2p.cpp), without sockets or files:
I2P-style Base64, destinations and their ``.b32.i2p`` addresses, SAM replies, and the
request lines Core sends.

* :func:`decode_i2p_base64` / :func:`encode_i2p_base64`: Base64 with ``-`` and ``~``
  for ``+`` and ``/`` (Core ``SwapBase64``, ``DecodeI2PBase64``).
* :func:`dest_bin_to_addr`: a destination's address, ``base32(sha256(dest)).b32.i2p``
  (Core ``DestBinToAddr``); :func:`my_destination` cuts our destination out of the
  private key (Core ``Session::MyDestination``, with Core's error texts).
* :class:`SamReply`: one reply line as keys and values (Core ``Session::Reply``); a
  missing key raises :class:`I2PError` saying which request it answered.
* The requests: :data:`HELLO`, :data:`DEST_GENERATE`, :func:`session_create_transient`,
  :func:`session_create_persistent`, :func:`stream_accept`, :func:`stream_connect`,
  :func:`naming_lookup`; what their answers mean: :func:`check_stream_connect`,
  :func:`check_stream_accept`, :func:`accepted_peer` (Core ``Session::Connect``,
  ``StreamAccept``, ``Accept``).
* :class:`LineReader`: reply lines cut from the bytes of a SAM socket, at most
  :data:`MAX_MSG_SIZE` bytes each (Core ``Sock::RecvUntilTerminator``); what follows the
  last line is the peer's and is handed on with the socket.
* :class:`AcceptBackoff`: the accept loop's wait after a failure, 1 s longer each time up
  to 5 min (Core ``CConnman::ThreadI2PAcceptIncoming``).

The asyncio side, which opens the sockets and keeps the session, is
:mod:`peerkeeper.io.i2psam`.

SAM 3.1 has no ports: every I2P address is used with port 0
(:data:`peerkeeper.net.netaddr.I2P_SAM31_PORT`),
and Core refuses to dial any other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from peerkeeper.net.netaddr import AddrError, NetAddr

#: Core's bound on one SAM reply line, in bytes (src/i2p.h ``MAX_MSG_SIZE``).
MAX_MSG_SIZE = 65_536
#: The file in the network's datadir that keeps the persistent session's key.
PRIVATE_KEY_FILE = "i2p_private_key"
#: Destination layout (I2P common structures): 387 bytes plus the certificate length
#: found, big-endian, at bytes 385-386.
DEST_LEN_BASE = 387
CERT_LEN_POS = 385

#: Core ``CConnman::MAX_UNUSED_I2P_SESSIONS_SIZE`` (src/net.h): transient sessions
#: kept for reuse after a failed connect.
MAX_UNUSED_I2P_SESSIONS_SIZE = 10
#: Seconds Core waits for a SAM reply line (``recv_timeout``, src/i2p.cpp): the router may
#: query the I2P network first (NAMING LOOKUP), which can take minutes.
REPLY_TIMEOUT = 180.0
#: Core ``MAX_WAIT_FOR_IO`` (src/util/sock.h), seconds: how long an accepted stream may take
#: to finish its peer's destination line once its first byte came.
MAX_WAIT_FOR_IO = 1.0
#: The accept loop's back-off (Core ``ThreadI2PAcceptIncoming``): ``err_wait_begin`` and
#: ``err_wait_cap``, seconds; one second more after each failure.
ACCEPT_WAIT_BEGIN = 1.0
ACCEPT_WAIT_CAP = 300.0

HELLO = "HELLO VERSION MIN=3.1 MAX=3.1"
#: Signature type 7 (EdDSA_SHA512_Ed25519), by number: i2pd < 2.24.0 lacks the name.
DEST_GENERATE = "DEST GENERATE SIGNATURE_TYPE=7"


class I2PError(Exception):
    """A SAM reply or a key Core would refuse; the text is Core's.

    Attributes:
        disconnect: the session is unusable and must be destroyed now (Core calls
            ``Disconnect()``: an ``INVALID_ID`` result, or ``RESULT=I2P_ERROR`` where an
            accepted peer's destination was expected).
        proxy_error: the failure is the router's, not the destination's (Core's
            ``proxy_error`` out-parameter of ``Session::Connect``: ``ConnectNode`` then
            counts no addrman attempt). False only for ``CANT_REACH_PEER`` and
            ``TIMEOUT``.
    """

    def __init__(self, message: str, *, disconnect: bool = False, proxy_error: bool = True):
        super().__init__(message)
        self.disconnect = disconnect
        self.proxy_error = proxy_error


_TO_STD = str.maketrans("-~+/", "+/-~")


def swap_base64(text: str) -> str:
    """Core ``SwapBase64``: standard <-> I2P Base64 (``+/`` <-> ``-~``), both ways."""
    return text.translate(_TO_STD)


def decode_i2p_base64(text: str) -> bytes:
    """Core ``DecodeI2PBase64``; raises :class:`I2PError` ``Cannot decode Base64: "..."``."""
    try:
        return base64.b64decode(swap_base64(text), validate=True)
    except (binascii.Error, ValueError):
        raise I2PError(f'Cannot decode Base64: "{text}"') from None


def encode_i2p_base64(data: bytes) -> str:
    """Standard Base64 of ``data`` with I2P's two characters (padding kept, as Core)."""
    return swap_base64(base64.b64encode(data).decode("ascii"))


def dest_bin_to_addr(dest: bytes) -> NetAddr:
    """Core ``DestBinToAddr``: the ``.b32.i2p`` address of a binary destination."""
    digest = hashlib.sha256(dest).digest()
    text = base64.b32encode(digest).decode("ascii").rstrip("=").lower() + ".b32.i2p"
    try:
        return NetAddr.parse(text)
    except AddrError:  # cannot happen for a 32-byte hash; Core checks anyway
        raise I2PError(f'Cannot parse I2P address: "{text}"') from None


def dest_b64_to_addr(dest: str) -> NetAddr:
    """Core ``DestB64ToAddr``: the address of an I2P-Base64 destination (what a SAM
    bridge sends for an accepted peer)."""
    return dest_bin_to_addr(decode_i2p_base64(dest))


def my_destination(private_key: bytes) -> bytes:
    """Core ``Session::MyDestination``: our destination, the first 387 bytes of the
    private key plus its certificate's length. Raises :class:`I2PError` with Core's
    text for a key too short for either."""
    if len(private_key) < CERT_LEN_POS + 2:
        raise I2PError(f"The private key is too short ({len(private_key)} < {CERT_LEN_POS + 2})")
    cert_len = int.from_bytes(private_key[CERT_LEN_POS : CERT_LEN_POS + 2], "big")
    dest_len = DEST_LEN_BASE + cert_len
    if dest_len > len(private_key):
        raise I2PError(
            f"Certificate length ({cert_len}) designates that the private key should be "
            f"{dest_len} bytes, but it is only {len(private_key)} bytes"
        )
    return private_key[:dest_len]


@dataclass(slots=True)
class SamReply:
    """One SAM reply line (Core ``Session::Reply``): ``request`` is what it answers
    (``SESSION CREATE ...`` without its key, as Core logs it), ``full`` the line,
    ``keys`` each space-separated word: ``KEY=VALUE`` -> value, a bare word -> None."""

    request: str
    full: str
    keys: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, request: str, line: str) -> SamReply:
        """Split ``line`` (without its ``\\n``) as Core does; the first of two equal keys wins."""
        shown = "SESSION CREATE ..." if request.startswith("SESSION CREATE") else request
        reply = cls(shown, line)
        for word in line.split(" "):
            key, eq, value = word.partition("=")
            reply.keys.setdefault(key, value if eq else None)
        return reply

    def get(self, key: str) -> str:
        """``key``'s value; :class:`I2PError` ``Missing KEY= in the reply to "..."``."""
        value = self.keys.get(key)
        if value is None:
            raise I2PError(f'Missing {key}= in the reply to "{self.request}"')
        return value

    def check_ok(self) -> SamReply:
        """Core's ``check_result_ok``: ``RESULT=OK`` or :class:`I2PError`."""
        if self.get("RESULT") != "OK":
            raise I2PError(f'Reply to "{self.request}": had a RESULT not equal to OK.')
        return self


def session_create_transient(session_id: str) -> str:
    """A session whose destination the router makes (outbound-only; Core's quantity 1)."""
    return (
        f"SESSION CREATE STYLE=STREAM ID={session_id} DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=1 outbound.quantity=1"
    )


def session_create_persistent(session_id: str, private_key: bytes) -> str:
    """A session with our kept destination (accepting inbound; Core's quantity 3)."""
    return (
        f"SESSION CREATE STYLE=STREAM ID={session_id} "
        f"DESTINATION={encode_i2p_base64(private_key)} "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=3 outbound.quantity=3"
    )


def stream_accept(session_id: str) -> str:
    return f"STREAM ACCEPT ID={session_id} SILENT=false"


def stream_connect(session_id: str, destination: str) -> str:
    return f"STREAM CONNECT ID={session_id} DESTINATION={destination} SILENT=false"


def naming_lookup(addr: NetAddr) -> str:
    return f"NAMING LOOKUP NAME={addr}"


def new_session_id(random_bytes: bytes) -> str:
    """A session id: the first 10 hex digits of fresh randomness (Core takes
    ``GetRandHash().GetHex().substr(0, 10)``: "full is overkill, too verbose in the logs").
    ``random_bytes`` must hold at least 5 bytes."""
    if len(random_bytes) < 5:
        raise ValueError("a session id needs 5 random bytes")
    return random_bytes[:5].hex()


def check_stream_connect(reply: SamReply) -> None:
    """What Core's ``Session::Connect`` makes of the ``STREAM CONNECT`` reply.

    Returns for ``RESULT=OK`` (the socket now carries the peer's bytes). Raises
    :class:`I2PError`: ``INVALID_ID`` -> "Invalid session id" with ``disconnect``;
    ``CANT_REACH_PEER`` / ``TIMEOUT`` -> the quoted reply with ``proxy_error`` False
    (the destination's fault); any other result -> the quoted reply; no ``RESULT=`` ->
    "Missing RESULT= in the reply to ...".
    """
    result = reply.get("RESULT")
    if result == "OK":
        return
    if result == "INVALID_ID":
        raise I2PError("Invalid session id", disconnect=True)
    raise I2PError(f'"{reply.full}"', proxy_error=result not in ("CANT_REACH_PEER", "TIMEOUT"))


def check_stream_accept(reply: SamReply) -> None:
    """What Core's ``Session::StreamAccept`` makes of the ``STREAM ACCEPT`` reply:
    returns for ``RESULT=OK``; else :class:`I2PError` with the quoted reply, and
    ``disconnect`` for ``INVALID_ID`` (the session is re-created on next use)."""
    result = reply.get("RESULT")
    if result == "OK":
        return
    raise I2PError(f'"{reply.full}"', disconnect=result == "INVALID_ID")


def accepted_peer(line: str) -> NetAddr:
    """The address of the peer a ``STREAM ACCEPT`` socket announced with its first line,
    the peer's Base64 destination (Core ``Session::Accept``; its port is
    :data:`~peerkeeper.net.netaddr.I2P_SAM31_PORT`).

    Raises :class:`I2PError`: a line that is no destination; with ``disconnect`` and
    Core's text "unexpected reply that hints the session is unusable: ..." when the
    router sent ``RESULT=I2P_ERROR`` instead (e.g. "Session was closed").
    """
    try:
        return dest_b64_to_addr(line)
    except I2PError as e:
        if "RESULT=I2P_ERROR" in line:
            raise I2PError(
                f"unexpected reply that hints the session is unusable: {line}", disconnect=True
            ) from None
        raise e


class LineReader:
    """Reply lines cut from a SAM socket's bytes (Core ``Sock::RecvUntilTerminator`` with
    terminator ``\\n`` and limit :data:`MAX_MSG_SIZE`).

    :meth:`feed` the bytes read; :meth:`line` gives the next complete line without its
    ``\\n`` (decoded as Latin-1, byte for byte) or None. :attr:`rest` is what came after
    the last line taken: once the socket carries a stream, those are the peer's bytes.

    Raises :class:`I2PError` "Received too many bytes without a terminator (65536)" when
    :data:`MAX_MSG_SIZE` bytes come without a line end (a line may hold 65,535 bytes).
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def line(self) -> str | None:
        # Core reads at most MAX_MSG_SIZE bytes, the terminator included: a line of
        # MAX_MSG_SIZE bytes or more before its newline is refused.
        end = self._buf.find(b"\n", 0, MAX_MSG_SIZE)
        if end < 0:
            if len(self._buf) >= MAX_MSG_SIZE:
                raise I2PError(f"Received too many bytes without a terminator ({MAX_MSG_SIZE})")
            return None
        text = self._buf[:end].decode("latin-1")
        del self._buf[: end + 1]
        return text

    @property
    def rest(self) -> bytes:
        return bytes(self._buf)


class AcceptBackoff:
    """The accept loop's wait after a failure (Core ``ThreadI2PAcceptIncoming``'s
    ``SleepOnFailure``): :data:`ACCEPT_WAIT_BEGIN` seconds, one more after each failure,
    at most :data:`ACCEPT_WAIT_CAP`; back to the start after an accepted connection."""

    __slots__ = ("wait",)

    def __init__(self) -> None:
        self.wait = ACCEPT_WAIT_BEGIN

    def failed(self) -> float:
        """The seconds to sleep now (then the next wait grows by one)."""
        wait = self.wait
        if self.wait < ACCEPT_WAIT_CAP:
            self.wait += 1.0
        return wait

    def accepted(self) -> None:
        self.wait = ACCEPT_WAIT_BEGIN
