"""Tor's control protocol as Bitcoin Core speaks it: replies, mappings, and the
controller's state machine (src/torcontrol.cpp), without sockets, files or clocks.

* :class:`ReplyReader` cuts the control connection's bytes into :class:`TorReply`
  objects (Core ``TorControlConnection::ProcessBuffer``): lines ``CODE SEP DATA``,
  a reply ending at the first line whose separator is a space; asynchronous replies
  (code 600 and up) are set apart; lines over :data:`MAX_LINE_LENGTH` bytes or replies
  over :data:`MAX_LINE_COUNT` lines raise :class:`TorControlError`.
* :func:`split_tor_reply_line` and :func:`parse_tor_reply_mapping` are Core's
  ``SplitTorReplyLine`` / ``ParseTorReplyMapping``, escapes included.
* :class:`TorControlCore` is ``TorController``'s callbacks in order: ``PROTOCOLINFO 1``;
  authentication by ``-torpassword`` (HASHEDPASSWORD), else NULL, else SAFECOOKIE (the
  HMAC-SHA256 challenge); then ``GETINFO net/listeners/socks`` when no ``-onion``
  proxy is set, and ``ADD_ONION`` with the cached key (or ``NEW:ED25519-V3``), PoW
  defenses first and without them after a 512. It returns the commands to send and
  tells its owner what it learned (:class:`OnionServiceAdded`, :class:`OnionProxy`);
  the cookie file is read through an injected function, the nonce drawn from an
  injected ``rng``.
* :class:`ReconnectBackoff`: 1 s, then x1.5 per failure, at most 600 s (Core's
  ``RECONNECT_TIMEOUT_*``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("peerkeeper.tor")

DEFAULT_TOR_CONTROL_PORT = 9051
DEFAULT_TOR_CONTROL = f"127.0.0.1:{DEFAULT_TOR_CONTROL_PORT}"
DEFAULT_TOR_SOCKS_PORT = 9050
DEFAULT_LISTEN_ONION = True
TOR_REPLY_OK = 250
TOR_REPLY_UNRECOGNIZED = 510
TOR_REPLY_SYNTAX_ERROR = 512
#: control-spec: the cookie is 32 bytes; SAFECOOKIE nonces are 32 bytes.
TOR_COOKIE_SIZE = 32
TOR_NONCE_SIZE = 32
TOR_SAFE_SERVERKEY = b"Tor safe cookie authentication server-to-controller hash"
TOR_SAFE_CLIENTKEY = b"Tor safe cookie authentication controller-to-server hash"
RECONNECT_TIMEOUT_START = 1.0
RECONNECT_TIMEOUT_EXP = 1.5
RECONNECT_TIMEOUT_MAX = 600.0
#: Core's sanity limits on what the control port may send (no limit in the spec).
MAX_LINE_LENGTH = 100_000
MAX_LINE_COUNT = 1000
#: The file in the network's datadir that keeps the onion service key.
PRIVATE_KEY_FILE = "onion_v3_private_key"


class TorControlError(Exception):
    """The control connection sent something Core refuses (an over-long line, too
    many lines in one reply); the connection is to be dropped."""


@dataclass(slots=True)
class TorReply:
    """One reply: its status ``code`` (0 when the line's code was not a number, as
    Core's ``ToIntegral(...).value_or(0)``) and each line's data, separators removed."""

    code: int = 0
    lines: list[str] = field(default_factory=list)


class ReplyReader:
    """Bytes from the control port in, complete replies out (Core ``ProcessBuffer``).

    ``feed(data) -> list[TorReply]`` returns the synchronous replies completed by
    ``data``, in order; asynchronous ones (code >= 600) go to :attr:`events`. Raises
    :class:`TorControlError` for a line longer than :data:`MAX_LINE_LENGTH` bytes or a
    reply of more than :data:`MAX_LINE_COUNT` lines.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._reply = TorReply()
        self.events: list[TorReply] = []

    def feed(self, data: bytes) -> list[TorReply]:
        self._buf += data
        out: list[TorReply] = []
        buf = self._buf
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                if len(buf) - start > MAX_LINE_LENGTH:
                    raise TorControlError(f"Control port line exceeded {MAX_LINE_LENGTH} bytes")
                break
            if nl - start > MAX_LINE_LENGTH:
                raise TorControlError(f"Control port line exceeded {MAX_LINE_LENGTH} bytes")
            raw = bytes(buf[start:nl])
            start = nl + 1
            line = raw[:-1] if raw.endswith(b"\r") else raw  # util::LineReader drops \r\n
            self._line(line.decode("utf-8", "replace"), out)
        del buf[:start]
        return out

    def _line(self, line: str, out: list[TorReply]) -> None:
        reply = self._reply
        if len(reply.lines) == MAX_LINE_COUNT:
            raise TorControlError(
                f"Control port reply exceeded {MAX_LINE_COUNT} lines, disconnecting"
            )
        if len(line) < 4:
            return  # Core skips short lines
        code = line[:3]
        reply.code = int(code) if code.isdigit() and code.isascii() else 0
        reply.lines.append(line[4:])
        if line[3] == " ":
            (self.events if reply.code >= 600 else out).append(reply)
            self._reply = TorReply()


def split_tor_reply_line(s: str) -> tuple[str, str]:
    """Core ``SplitTorReplyLine``: ``"AUTH METHODS=..."`` -> ``("AUTH", "METHODS=...")``
    (only the first space is a separator)."""
    head, sep, rest = s.partition(" ")
    return head, rest if sep else ""


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(value: str) -> str:
    """control-spec 2.1.1 as Core reads it: ``\\n \\t \\r``, octal up to three digits
    (the first 0-3 for three), any other escaped character as itself."""
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1  # an odd trailing backslash cannot happen: the quote would be missing
        ch = value[i]
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
            i += 1
        elif "0" <= ch <= "7":
            j = 1
            while j < 3 and i + j < n and "0" <= value[i + j] <= "7":
                j += 1
            if j == 3 and ch > "3":
                j -= 1
            out.append(chr(int(value[i : i + j], 8)))
            i += j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_tor_reply_mapping(s: str) -> dict[str, str]:
    """Core ``ParseTorReplyMapping``: ``'METHODS=COOKIE,SAFECOOKIE COOKIEFILE="..."'`` ->
    ``{"METHODS": "COOKIE,SAFECOOKIE", "COOKIEFILE": "..."}``; quoted values are
    unescaped; a bare word ends the mapping (OptArguments); an unterminated quote or a
    key without ``=`` at the end of the line gives ``{}``."""
    mapping: dict[str, str] = {}
    ptr = 0
    n = len(s)
    while ptr < n:
        start = ptr
        while ptr < n and s[ptr] != "=" and s[ptr] != " ":
            ptr += 1
        if ptr == n:
            return {}
        if s[ptr] == " ":
            break
        key = s[start:ptr]
        ptr += 1  # '='
        if ptr < n and s[ptr] == '"':
            ptr += 1
            start = ptr
            escape_next = False
            while ptr < n and (escape_next or s[ptr] != '"'):
                escape_next = s[ptr] == "\\" and not escape_next
                ptr += 1
            if ptr == n:
                return {}
            value = _unescape(s[start:ptr])
            ptr += 1  # closing '"'
        else:
            start = ptr
            while ptr < n and s[ptr] != " ":
                ptr += 1
            value = s[start:ptr]
        if ptr < n and s[ptr] == " ":
            ptr += 1
        mapping[key] = value
    return mapping


def compute_response(key: bytes, cookie: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    """SAFECOOKIE: HMAC-SHA256 keyed by ``key`` of ``cookie | client_nonce |
    server_nonce`` (Core ``ComputeResponse``; control-spec 3.24)."""
    return hmac.new(key, cookie + client_nonce + server_nonce, hashlib.sha256).digest()


def make_add_onion_cmd(private_key: str, target: str, enable_pow: bool, port: int) -> str:
    """Core ``MakeAddOnionCmd``: the virtual port is always the chain's default port
    (``port``), so a node's own ``-port`` cannot decloak it."""
    pow_flag = " PoWDefensesEnabled=1" if enable_pow else ""
    return f"ADD_ONION {private_key}{pow_flag} Port={port},{target}"


def parse_socks_listeners(lines: list[str]) -> str:
    """The SOCKS listener from a ``GETINFO net/listeners/socks`` reply (Core
    ``get_socks_cb``): the first ``127.0.0.1:`` one, else the last one listed, else ``""``."""
    location = ""
    for line in lines:
        if not line.startswith("net/listeners/socks="):
            continue
        for port in line[len("net/listeners/socks=") :].split(" "):
            if not port:
                continue
            if len(port) >= 2 and port[0] in "\"'" and port[-1] == port[0]:
                port = port[1:-1]
                if not port:
                    continue
            location = port
            if port.startswith("127.0.0.1:"):
                break
    return location


# -- what the controller tells its owner --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnionServiceAdded:
    """Tor answered ADD_ONION: advertise ``service_id``.onion on the chain's default
    port, and keep ``private_key`` in :data:`PRIVATE_KEY_FILE` (Core writes it each time)."""

    service_id: str
    private_key: str


@dataclass(frozen=True, slots=True)
class OnionProxy:
    """Use ``location`` (``host:port``; Core falls back to ``127.0.0.1:9050``) as the
    SOCKS5 proxy for onion peers, with stream isolation, and make onion reachable
    unless ``-onlynet`` excludes it."""

    location: str


Outcome = OnionServiceAdded | OnionProxy
_Handler = Callable[[TorReply], None]


class TorControlCore:
    """Core's ``TorController`` callbacks, for one control connection at a time.

    ``TorControlCore(target, port, *, password="", private_key="", onion_proxy_set=False,
    read_cookie, rng)``: ``target`` is the onion bind (``"127.0.0.1:8334"``), ``port``
    the chain's default port (the onion service's virtual port), ``password`` is
    ``-torpassword``, ``private_key`` the cached key (from :data:`PRIVATE_KEY_FILE`),
    ``onion_proxy_set`` whether ``-onion`` is given (then Tor's SOCKS port is not asked
    for). ``read_cookie(path)`` returns the file's first 33 bytes or ``None``;
    ``rng(n)`` returns ``n`` random bytes.

    Drive it with :meth:`connected` (returns the first command), then :meth:`received`
    for every reply (returns the commands to send next); :meth:`disconnected` forgets
    the pending replies. :attr:`outcomes` collects what the owner must act on; read
    it with :meth:`poll_outcomes`.
    """

    def __init__(
        self,
        target: str,
        port: int,
        *,
        password: str = "",
        private_key: str = "",
        onion_proxy_set: bool = False,
        read_cookie: Callable[[str], bytes | None],
        rng: Callable[[int], bytes],
    ) -> None:
        self.target = target
        self.port = port
        self.password = password
        self.private_key = private_key
        self.onion_proxy_set = onion_proxy_set
        self.read_cookie = read_cookie
        self.rng = rng
        self.service_id = ""
        self._handlers: deque[_Handler] = deque()
        self._out: list[str] = []
        self._outcomes: list[Outcome] = []
        self._cookie = b""
        self._client_nonce = b""

    # -- driving ----------------------------------------------------------------------------

    def connected(self) -> list[str]:
        """The control connection is up: ask how to authenticate (``PROTOCOLINFO 1``)."""
        self._handlers.clear()
        self._command("PROTOCOLINFO 1", self._protocolinfo_cb)
        return self._take()

    def received(self, reply: TorReply) -> list[str]:
        """A synchronous reply: run the handler waiting for it; returns the next commands."""
        if self._handlers:
            self._handlers.popleft()(reply)
        else:
            log.debug("Received unexpected sync reply %i", reply.code)
        return self._take()

    def disconnected(self) -> None:
        """The connection is gone: no reply is coming for what was sent, and the onion
        service is no longer advertised (Core ``disconnected_cb``)."""
        self._handlers.clear()
        self.service_id = ""

    def poll_outcomes(self) -> list[Outcome]:
        """What was learned since the last call, in order."""
        out, self._outcomes = self._outcomes, []
        return out

    def _command(self, cmd: str, handler: _Handler) -> None:
        self._out.append(cmd)
        self._handlers.append(handler)

    def _take(self) -> list[str]:
        out, self._out = self._out, []
        return out

    # -- Core's callbacks ---------------------------------------------------------------------

    def _protocolinfo_cb(self, reply: TorReply) -> None:
        if reply.code != TOR_REPLY_OK:
            log.warning("tor: Requesting protocol info failed")
            return
        methods: set[str] = set()
        cookiefile = ""
        for s in reply.lines:
            kind, rest = split_tor_reply_line(s)
            if kind == "AUTH":
                m = parse_tor_reply_mapping(rest)
                if "METHODS" in m:
                    methods = set(m["METHODS"].split(","))
                if "COOKIEFILE" in m:
                    cookiefile = m["COOKIEFILE"]
            elif kind == "VERSION":
                m = parse_tor_reply_mapping(rest)
                if "Tor" in m:
                    log.debug("Connected to Tor version %s", m["Tor"])
        for method in sorted(methods):
            log.debug("Supported authentication method: %s", method)
        if self.password:
            if "HASHEDPASSWORD" in methods:
                log.debug("Using HASHEDPASSWORD authentication")
                quoted = self.password.replace('"', '\\"')
                self._command(f'AUTHENTICATE "{quoted}"', self._auth_cb)
            else:
                log.warning(
                    "tor: Password provided with -torpassword, but HASHEDPASSWORD "
                    "authentication is not available"
                )
        elif "NULL" in methods:
            log.debug("Using NULL authentication")
            self._command("AUTHENTICATE", self._auth_cb)
        elif "SAFECOOKIE" in methods:
            log.debug(
                "Using SAFECOOKIE authentication, reading cookie authentication from %s",
                cookiefile,
            )
            cookie = self.read_cookie(cookiefile)
            if cookie is not None and len(cookie) == TOR_COOKIE_SIZE:
                self._cookie = cookie
                self._client_nonce = self.rng(TOR_NONCE_SIZE)
                self._command(
                    f"AUTHCHALLENGE SAFECOOKIE {self._client_nonce.hex()}", self._authchallenge_cb
                )
            elif cookie is not None:
                log.warning(
                    "tor: Authentication cookie %s is not exactly %i bytes, as is required "
                    "by the spec",
                    cookiefile,
                    TOR_COOKIE_SIZE,
                )
            else:
                log.warning(
                    "tor: Authentication cookie %s could not be opened (check permissions)",
                    cookiefile,
                )
        elif "HASHEDPASSWORD" in methods:
            log.warning(
                "tor: The only supported authentication mechanism left is password, but no "
                "password provided with -torpassword"
            )
        else:
            log.warning("tor: No supported authentication method")

    def _authchallenge_cb(self, reply: TorReply) -> None:
        if reply.code != TOR_REPLY_OK:
            log.warning("tor: SAFECOOKIE authentication challenge failed")
            return
        log.debug("SAFECOOKIE authentication challenge successful")
        if not reply.lines:
            log.warning("tor: AUTHCHALLENGE reply was empty")
            return
        kind, rest = split_tor_reply_line(reply.lines[0])
        if kind != "AUTHCHALLENGE":
            log.warning("tor: Invalid reply to AUTHCHALLENGE")
            return
        m = parse_tor_reply_mapping(rest)
        if not m:
            log.warning("tor: Error parsing AUTHCHALLENGE parameters: %s", rest)
            return
        server_hash = _parse_hex(m.get("SERVERHASH", ""))
        server_nonce = _parse_hex(m.get("SERVERNONCE", ""))
        if len(server_nonce) != TOR_NONCE_SIZE:
            log.warning("tor: ServerNonce is not 32 bytes, as required by spec")
            return
        expected = compute_response(
            TOR_SAFE_SERVERKEY, self._cookie, self._client_nonce, server_nonce
        )
        if not hmac.compare_digest(expected, server_hash):
            log.warning(
                "tor: ServerHash %s does not match expected ServerHash %s",
                server_hash.hex(),
                expected.hex(),
            )
            return
        client_hash = compute_response(
            TOR_SAFE_CLIENTKEY, self._cookie, self._client_nonce, server_nonce
        )
        self._command(f"AUTHENTICATE {client_hash.hex()}", self._auth_cb)

    def _auth_cb(self, reply: TorReply) -> None:
        if reply.code != TOR_REPLY_OK:
            log.warning("tor: Authentication failed")
            return
        log.debug("Authentication successful")
        if not self.onion_proxy_set:
            self._command("GETINFO net/listeners/socks", self._get_socks_cb)
        if not self.private_key:
            self.private_key = "NEW:ED25519-V3"  # explicitly request the key type
        self._add_onion(enable_pow=True)

    def _add_onion(self, *, enable_pow: bool) -> None:
        cmd = make_add_onion_cmd(self.private_key, self.target, enable_pow, self.port)
        self._command(cmd, lambda reply: self._add_onion_cb(reply, enable_pow))

    def _add_onion_cb(self, reply: TorReply, pow_was_enabled: bool) -> None:
        if reply.code == TOR_REPLY_OK:
            log.debug(
                "ADD_ONION successful (PoW defenses %s)",
                "enabled" if pow_was_enabled else "disabled",
            )
            for s in reply.lines:
                m = parse_tor_reply_mapping(s)
                if "ServiceID" in m:
                    self.service_id = m["ServiceID"]
                if "PrivateKey" in m:
                    self.private_key = m["PrivateKey"]
            if not self.service_id:
                log.warning("tor: Error parsing ADD_ONION parameters:")
                for s in reply.lines:
                    log.warning("    %s", s)
                return
            self._outcomes.append(OnionServiceAdded(self.service_id, self.private_key))
        elif reply.code == TOR_REPLY_UNRECOGNIZED:
            log.warning(
                "tor: Add onion failed with unrecognized command (You probably need to upgrade Tor)"
            )
        elif pow_was_enabled and reply.code == TOR_REPLY_SYNTAX_ERROR:
            log.debug("ADD_ONION failed with PoW defenses, retrying without")
            self._add_onion(enable_pow=False)
        else:
            log.warning("tor: Add onion failed; error code %d", reply.code)

    def _get_socks_cb(self, reply: TorReply) -> None:
        location = ""
        if reply.code == TOR_REPLY_OK:
            location = parse_socks_listeners(reply.lines)
            if location:
                log.debug("Get SOCKS port command yielded %s", location)
            else:
                log.warning("tor: Get SOCKS port command returned nothing")
        elif reply.code == TOR_REPLY_UNRECOGNIZED:
            log.warning(
                "tor: Get SOCKS port command failed with unrecognized command (You "
                "probably should upgrade Tor)"
            )
        else:
            log.warning("tor: Get SOCKS port command failed; error code %d", reply.code)
        self._outcomes.append(OnionProxy(location or f"127.0.0.1:{DEFAULT_TOR_SOCKS_PORT}"))


_HEX = "0123456789abcdefABCDEF"
_SPACE = " \f\n\r\t\v"


def _parse_hex(text: str) -> bytes:
    """Core ``ParseHex``: pairs of hex digits, spaces between them skipped; anything
    else (or an odd digit out) gives ``b""``."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACE:
            i += 1
            continue
        if i + 1 >= n or text[i] not in _HEX or text[i + 1] not in _HEX:
            return b""
        out.append(int(text[i : i + 2], 16))
        i += 2
    return bytes(out)


class ReconnectBackoff:
    """Core's reconnect timeout: :data:`RECONNECT_TIMEOUT_START` seconds, times
    :data:`RECONNECT_TIMEOUT_EXP` after each failed connect, at most
    :data:`RECONNECT_TIMEOUT_MAX`; back to the start once connected."""

    def __init__(self) -> None:
        self.timeout = RECONNECT_TIMEOUT_START

    def failed(self) -> float:
        """A connect failed: the seconds to wait before the next one (then grows)."""
        wait = self.timeout
        self.timeout = min(self.timeout * RECONNECT_TIMEOUT_EXP, RECONNECT_TIMEOUT_MAX)
        return wait

    def connected(self) -> None:
        self.timeout = RECONNECT_TIMEOUT_START
