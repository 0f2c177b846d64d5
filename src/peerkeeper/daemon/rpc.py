"""JSON-RPC over HTTP server and client, modelled on Bitcoin Core.

The server behaves like bitcoind's RPC interface:

* ``src/httpserver.cpp`` (Core's hand-written HTTP/1.1 server): request-line and
  header parsing with an 8 KiB header limit, ``Content-Length`` and chunked bodies,
  a body limit answered with ``413``, ``400`` plus disconnect for malformed input,
  keep-alive rules for HTTP/1.0 and 1.1, and an idle timeout
  (``-rpcservertimeout``, 30 s by default).
* ``src/httprpc.cpp`` (``HTTPReq_JSONRPC``, ``ExecuteHTTPRPC``, ``JSONErrorReply``):
  POST only, HTTP Basic authentication with ``401`` and
  ``WWW-Authenticate: Basic realm="jsonrpc"``, a 250 ms delay after a wrong password,
  batches, JSON-RPC 2.0 notifications answered with ``204``, and the HTTP status of
  a legacy (1.0) error reply taken from the error code (``400``, ``404`` or ``500``).
* ``src/rpc/request.cpp`` (``JSONRPCReplyObj``, ``JSONRPCRequest::parse``,
  ``GenerateAuthCookie``, ``GetAuthCookie``, ``DeleteAuthCookie``): the shape of
  1.0 and 2.0 reply objects, how request objects are checked, and the
  ``__cookie__:<hex>`` cookie file.
* ``src/rpc/server.cpp`` (``JSONRPCExec``, ``CRPCTable::execute``): ``Method not found``,
  the warmup error, and other exceptions turned into ``RPC_MISC_ERROR``.
* ``src/rpc/protocol.h``: the error codes defined below.

The client (:func:`rpc_call`, :func:`parse_cli_param`) follows ``src/bitcoin-cli.cpp``
(``CallRPC``) and ``src/rpc/client.cpp`` (``Parse``).

Only the Python standard library is used.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

__all__ = [
    "rpc_param",
    "COOKIE_USER",
    "RPC_CLIENT_INVALID_IP_OR_SUBNET",
    "RPC_CLIENT_NODE_CAPACITY_REACHED",
    "RPC_CLIENT_NODE_ALREADY_ADDED",
    "RPC_CLIENT_NODE_NOT_ADDED",
    "RPC_CLIENT_NODE_NOT_CONNECTED",
    "RPC_CLIENT_P2P_DISABLED",
    "RPC_INTERNAL_ERROR",
    "RPC_INVALID_PARAMETER",
    "RPC_INVALID_PARAMS",
    "RPC_INVALID_REQUEST",
    "RPC_IN_WARMUP",
    "RPC_METHOD_NOT_FOUND",
    "RPC_MISC_ERROR",
    "RPC_PARSE_ERROR",
    "RPC_TYPE_ERROR",
    "Handler",
    "RpcAuthError",
    "RpcError",
    "RpcHttpError",
    "RpcServer",
    "delete_cookie",
    "parse_cli_param",
    "read_cookie",
    "rpc_call",
    "write_cookie",
]

logger = logging.getLogger("peerkeeper.rpc")

# --- Error codes (src/rpc/protocol.h, enum RPCErrorCode) ----------------------------

RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700

RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_PARAMETER = -8
RPC_IN_WARMUP = -28

RPC_CLIENT_P2P_DISABLED = -9
RPC_CLIENT_NODE_ALREADY_ADDED = -23
RPC_CLIENT_NODE_NOT_ADDED = -24
RPC_CLIENT_NODE_NOT_CONNECTED = -29
RPC_CLIENT_INVALID_IP_OR_SUBNET = -30
RPC_CLIENT_NODE_CAPACITY_REACHED = -34

# --- HTTP constants (src/rpc/protocol.h HTTPStatusCode, src/httpserver.h) ------------

_HTTP_OK = 200
_HTTP_NO_CONTENT = 204
_HTTP_BAD_REQUEST = 400
_HTTP_UNAUTHORIZED = 401
_HTTP_NOT_FOUND = 404
_HTTP_BAD_METHOD = 405
_HTTP_CONTENT_TOO_LARGE = 413
_HTTP_INTERNAL_SERVER_ERROR = 500
_HTTP_SERVICE_UNAVAILABLE = 503

_REASONS = {
    100: "Continue",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content too large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

#: src/httprpc.cpp WWW_AUTH_HEADER_DATA
_WWW_AUTH_HEADER_DATA = 'Basic realm="jsonrpc"'
#: src/httpserver.h MAX_HEADERS_SIZE
_MAX_HEADERS_SIZE = 8192
#: src/httpserver.h MIN_REQUEST_LINE_LENGTH == len("GET / HTTP/1.0")
_MIN_REQUEST_LINE_LENGTH = 14
#: src/httpserver.h DEFAULT_HTTP_SERVER_TIMEOUT (seconds)
_DEFAULT_IDLE_TIMEOUT = 30.0
#: src/httprpc.cpp: UninterruptibleSleep(250ms) after a wrong password
_AUTH_FAILURE_DELAY = 0.25
#: default -rpc body limit (Core: MAX_BODY_SIZE, 32 MiB)
_DEFAULT_MAX_BODY = 32 * 1024 * 1024
#: libevent's default Content-Type, used by Core for non-JSON replies
_DEFAULT_CONTENT_TYPE = "text/html; charset=ISO-8859-1"
_KNOWN_HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "PUT"})
_READ_CHUNK = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_DIGITS = re.compile(r"[0-9]{1,20}")
_STATUS = re.compile(r"[0-9]{3}")
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{1,16}")
_HTTP_VERSION = re.compile(r"HTTP/1\.([0-9])")

# --- Cookie authentication (src/rpc/request.cpp) -------------------------------------

#: src/rpc/request.cpp COOKIEAUTH_USER
COOKIE_USER = "__cookie__"
#: src/rpc/request.cpp COOKIEAUTH_FILE
_COOKIE_FILE = ".cookie"
#: src/rpc/request.cpp GenerateAuthCookie COOKIE_SIZE (bytes of randomness)
_COOKIE_SIZE = 32

Handler: TypeAlias = Callable[[list[Any] | dict[str, Any]], Awaitable[Any]]
"""An RPC method: receives the request's ``params`` (positional list or named dict,
``[]`` when absent) and returns a JSON-serialisable result or raises :class:`RpcError`."""


class RpcError(Exception):
    """A JSON-RPC error object ``{"code": code, "message": message}``.

    Raised by a :data:`Handler` to make the server reply with this error (Core: a
    ``JSONRPCError(code, message)`` thrown from an RPC method), and raised by
    :func:`rpc_call` when the server replies with an error.

    :param code: one of the ``RPC_*`` constants of this module (src/rpc/protocol.h).
    :param message: human-readable message; ``str(exc)`` is this message.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class RpcHttpError(RpcError):
    """The server's HTTP reply was not a usable JSON-RPC reply (client side).

    Raised by :func:`rpc_call` for what bitcoin-cli reports as "server returned
    HTTP error", "no response from server", "couldn't parse reply from server"
    (src/bitcoin-cli.cpp ``CallRPC``). ``code`` is :data:`RPC_MISC_ERROR`.

    :param status: HTTP status code of the reply (0 when the reply was not HTTP).
    :param message: description.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(RPC_MISC_ERROR, message)
        self.status = status


class RpcAuthError(RpcHttpError):
    """The server answered ``401 Unauthorized``: wrong or missing credentials.

    Raised by :func:`rpc_call`; ``status`` is 401 and ``code`` is
    :data:`RPC_MISC_ERROR` (src/bitcoin-cli.cpp ``CallRPC``: "Authorization failed").
    """

    def __init__(self, message: str) -> None:
        super().__init__(_HTTP_UNAUTHORIZED, message)


def rpc_param(
    params: list[Any] | dict[str, Any], index: int, name: str, default: Any = None
) -> Any:
    """Argument ``index`` / ``name`` of a call: positional, named, or both at once (Core's
    ``transformNamedArguments``, src/rpc/server.cpp: positional values in ``"args"``
    beside named ones); ``default`` when absent."""
    if isinstance(params, dict):
        if name in params:
            return params[name]
        args = params.get("args")
        if isinstance(args, list) and len(args) > index:
            return args[index]
        return default
    return params[index] if len(params) > index else default


def write_cookie(datadir: Path) -> tuple[str, str]:
    """Create ``<datadir>/.cookie`` holding ``__cookie__:<64 hex chars>``.

    Like Core (src/rpc/request.cpp ``GenerateAuthCookie``) the cookie is written to
    ``.cookie.tmp`` and renamed over ``.cookie``; no newline is written. The
    temporary file is created with ``os.open(..., O_CREAT | O_EXCL, 0o600)`` after
    removing any stale one, so it is never readable by group or others, not even
    briefly, whatever the umask.

    :param datadir: existing directory.
    :returns: ``(user, password)`` = ``("__cookie__", <64 lowercase hex chars>)``.
    :raises OSError: if the file cannot be created, written or renamed.
    """
    password = secrets.token_hex(_COOKIE_SIZE)
    path = datadir / _COOKIE_FILE
    tmp = datadir / (_COOKIE_FILE + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # exact mode even under an odd umask like 0o200
            view = memoryview(f"{COOKIE_USER}:{password}".encode("ascii"))
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.info("Generated RPC authentication cookie %s", path)
    return COOKIE_USER, password


def delete_cookie(datadir: Path) -> None:
    """Remove ``<datadir>/.cookie`` if it exists (src/rpc/request.cpp ``DeleteAuthCookie``).

    Call it only if this process wrote the cookie (Core tracks that in
    ``g_generated_cookie``; this function is stateless). A missing file is not an
    error; other failures are logged as warnings, not raised, as in Core.

    :param datadir: directory passed to :func:`write_cookie`.
    """
    path = datadir / _COOKIE_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("Unable to remove random auth cookie file %s: %s", path, exc)


def read_cookie(datadir: Path) -> tuple[str, str]:
    """Read ``<datadir>/.cookie`` and split its first line at the first ``:``.

    Source: src/rpc/request.cpp ``GetAuthCookie`` (first line of the file) and
    src/bitcoin-cli.cpp, which sends it as ``user:password``.

    :param datadir: directory holding the cookie.
    :returns: ``(user, password)``.
    :raises FileNotFoundError: the cookie file does not exist.
    :raises ValueError: the file is not UTF-8 or its first line has no ``:``.
    :raises OSError: other read failures.
    """
    path = datadir / _COOKIE_FILE
    text = path.read_bytes().decode("utf-8")
    line = text.split("\n", 1)[0].rstrip("\r")
    user, sep, password = line.partition(":")
    if not sep:
        raise ValueError(f"malformed RPC cookie file {path}: no ':' separator")
    return user, password


# --- JSON helpers ---------------------------------------------------------------------


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _json_loads(data: bytes | str) -> Any:
    """Strict JSON: no NaN/Infinity, no numbers overflowing to infinity."""
    return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)


def _json_dumps(value: Any) -> str:
    """Compact JSON like UniValue::write(); raises on NaN and unserialisable values."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _http_status_for_error(code: int) -> int:
    """src/httprpc.cpp JSONErrorReply: HTTP status of a legacy error reply."""
    if code == RPC_INVALID_REQUEST:
        return _HTTP_BAD_REQUEST
    if code == RPC_METHOD_NOT_FOUND:
        return _HTTP_NOT_FOUND
    return _HTTP_INTERNAL_SERVER_ERROR


class _JsonRpcRequest:
    """State of one request object while it is parsed (Core: JSONRPCRequest).

    The defaults match Core: the id is JSON null (present), the version legacy 1.0.
    ``parse`` fills fields in Core's order, so that an error raised half-way is
    reported with the id and version read so far.
    """

    __slots__ = ("has_id", "id", "method", "params", "v2")

    def __init__(self) -> None:
        self.id: Any = None
        self.has_id = True
        self.v2 = False
        self.method = ""
        self.params: list[Any] | dict[str, Any] = []

    @property
    def is_notification(self) -> bool:
        """src/rpc/request.h IsNotification: no id and JSON-RPC 2.0."""
        return not self.has_id and self.v2

    def parse(self, value: Any) -> None:
        """src/rpc/request.cpp JSONRPCRequest::parse."""
        if not isinstance(value, dict):
            raise RpcError(RPC_INVALID_REQUEST, "Invalid Request object")
        if "id" in value:
            self.id = value["id"]
            self.has_id = True
        else:
            self.id = None
            self.has_id = False
        self.v2 = False
        version = value.get("jsonrpc")
        if version is not None:
            if not isinstance(version, str):
                raise RpcError(RPC_INVALID_REQUEST, "jsonrpc field must be a string")
            if version == "2.0":
                self.v2 = True
            elif version != "1.0":
                raise RpcError(RPC_INVALID_REQUEST, "JSON-RPC version not supported")
        method = value.get("method")
        if method is None:
            raise RpcError(RPC_INVALID_REQUEST, "Missing method")
        if not isinstance(method, str):
            raise RpcError(RPC_INVALID_REQUEST, "Method must be a string")
        self.method = method
        params = value.get("params")
        if isinstance(params, list | dict):
            self.params = params
        elif params is None:
            self.params = []
        else:
            raise RpcError(RPC_INVALID_REQUEST, "Params must be an array or object")

    def reply(self, result_json: str | None, error: RpcError | None) -> str:
        """src/rpc/request.cpp JSONRPCReplyObj, serialised.

        1.0: both ``result`` and ``error`` (one null); 2.0: ``"jsonrpc":"2.0"`` and only
        the non-null one. ``id`` is omitted when the request had none.
        """
        parts: list[str] = []
        if self.v2:
            parts.append('"jsonrpc":"2.0"')
        if error is None:
            parts.append('"result":' + (result_json if result_json is not None else "null"))
            if not self.v2:
                parts.append('"error":null')
        else:
            if not self.v2:
                parts.append('"result":null')
            parts.append('"error":' + _json_dumps({"code": error.code, "message": error.message}))
        if self.has_id:
            parts.append('"id":' + _json_dumps(self.id))
        return "{" + ",".join(parts) + "}"


# --- HTTP server ----------------------------------------------------------------------


class _BadHttp(Exception):
    """Malformed or oversize request: answer with ``status`` and disconnect."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _ClientGone(Exception):
    """The client closed the connection in the middle of a request."""


class _HttpRequest:
    __slots__ = ("body", "headers", "method", "minor", "target")

    def __init__(
        self, method: str, target: str, minor: int, headers: list[tuple[str, str]]
    ) -> None:
        self.method = method
        self.target = target
        self.minor = minor
        self.headers = headers
        self.body = b""

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive name)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def connection_tokens(self) -> set[str]:
        value = self.header("connection") or ""
        return {tok.strip().lower() for tok in value.split(",")}

    @property
    def keep_alive(self) -> bool:
        """src/httpserver.cpp WriteReply: 1.1 keeps alive unless ``close``; 1.0 only on ``keep-alive``."""
        tokens = self.connection_tokens()
        if "close" in tokens:
            return False
        return self.minor >= 1 or "keep-alive" in tokens


class _Connection:
    """Buffered reader over one client socket."""

    def __init__(self, reader: asyncio.StreamReader, idle_timeout: float) -> None:
        self.reader = reader
        self.idle_timeout = idle_timeout
        self.buf = bytearray()

    async def recv(self) -> bool:
        """Append the next bytes to ``buf``; False at EOF."""
        data = await self.reader.read(_READ_CHUNK)
        if not data:
            return False
        self.buf += data
        return True

    async def recv_idle(self) -> None:
        """Like :meth:`recv` but bounded by the idle timeout; EOF raises _ClientGone."""
        async with asyncio.timeout(self.idle_timeout):
            if not await self.recv():
                raise _ClientGone

    async def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self.recv_idle()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def read_line(self, limit: int) -> bytes:
        """One line without its ``\\n`` / ``\\r\\n``, at most ``limit`` bytes."""
        while True:
            pos = self.buf.find(b"\n")
            if pos >= 0:
                if pos > limit:
                    raise _BadHttp(_HTTP_BAD_REQUEST, "line too long")
                line = bytes(self.buf[:pos])
                del self.buf[: pos + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buf) > limit:
                raise _BadHttp(_HTTP_BAD_REQUEST, "line too long")
            await self.recv_idle()


def _parse_head(head: str) -> _HttpRequest:
    """Request line and header fields (src/httpserver.cpp LoadControlData, HTTPHeaders::Read)."""
    lines = [line[:-1] if line.endswith("\r") else line for line in head.split("\n")]
    request_line = lines[0]
    if len(request_line) < _MIN_REQUEST_LINE_LENGTH:
        raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP request line too short")
    if "\0" in request_line:
        raise _BadHttp(_HTTP_BAD_REQUEST, "Invalid request line contains NUL")
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP request line malformed")
    method, target, version = parts
    match = _HTTP_VERSION.fullmatch(version)
    if match is None:
        raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP bad version")
    headers = [_parse_header_line(line) for line in lines[1:] if line]
    return _HttpRequest(method, target, int(match.group(1)), headers)


def _parse_header_line(line: str) -> tuple[str, str]:
    if "\r" in line or "\0" in line:
        raise _BadHttp(_HTTP_BAD_REQUEST, "Header contains invalid character")
    key, sep, value = line.partition(":")
    if not sep:
        raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP header missing colon (:)")
    if not key:
        raise _BadHttp(_HTTP_BAD_REQUEST, "Empty HTTP header name")
    if any(c in key for c in " \t\n\r\f\v"):
        raise _BadHttp(_HTTP_BAD_REQUEST, "Invalid header field-name contains whitespace")
    return key.lower(), value.strip(" \t")


class _Response:
    __slots__ = ("body", "close", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.close = close

    def encode(self, minor: int, *, keep_alive: bool, head_only: bool = False) -> bytes:
        """Serialise like src/httpserver.cpp HTTPRequest::WriteReply."""
        needs_body = self.status != _HTTP_NO_CONTENT and not 100 <= self.status < 200
        lines = [f"HTTP/1.{minor} {self.status} {_REASONS.get(self.status, 'Unknown')}"]
        lines += [f"{key}: {value}" for key, value in self.headers]
        if minor >= 1:
            lines.append("Date: " + email.utils.formatdate(usegmt=True))
        if needs_body:
            lines.append(f"Content-Length: {len(self.body)}")
            if not any(key.lower() == "content-type" for key, _ in self.headers):
                lines.append("Content-Type: " + _DEFAULT_CONTENT_TYPE)
        if not keep_alive:
            lines.append("Connection: close")
        elif minor == 0:
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if head_only or not needs_body else head + self.body


def _no_store(status: int, body: bytes = b"", *, close: bool = False) -> _Response:
    """src/httpserver.cpp WriteNoStoreErrorReply."""
    return _Response(status, body, [("Cache-Control", "no-store")], close=close)


def _unauthorized() -> _Response:
    return _Response(_HTTP_UNAUTHORIZED, b"", [("WWW-Authenticate", _WWW_AUTH_HEADER_DATA)])


class RpcServer:
    """JSON-RPC server over HTTP/1.1 on asyncio, like bitcoind's RPC port.

    Sources: src/httpserver.cpp (HTTP), src/httprpc.cpp (auth, dispatch, status
    codes), src/rpc/request.cpp and src/rpc/server.cpp (JSON-RPC semantics).

    * Only ``POST /`` is served. Other paths (including ``/wallet/...``) get ``404``,
      ``GET``/``HEAD``/``PUT`` on ``/`` get ``405``, unknown HTTP methods ``405``.
    * HTTP Basic authentication against ``credentials``; a missing or wrong
      ``Authorization`` header gets ``401`` with ``WWW-Authenticate:
      Basic realm="jsonrpc"`` and an empty body; a wrong one only after
      ``auth_failure_delay`` seconds (``asyncio.sleep``, other clients are unaffected).
    * Headers (request line included) are limited to 8 KiB and must arrive within
      ``idle_timeout`` seconds; a body over ``max_body`` bytes gets ``413``; malformed
      requests get ``400``; each of these closes the connection. A connection on
      which no byte arrives for ``idle_timeout`` seconds while waiting for a request
      or a body is closed without a reply. Handlers themselves are not timed out.
    * Requests on one connection are handled one at a time, in order; connections
      run concurrently. Each handler runs in the connection's task, so
      :meth:`stop` cancels in-flight handlers.

    :param methods: method name -> :data:`Handler`.
    :param host: address to bind (only this one), default ``127.0.0.1``.
    :param port: TCP port; ``0`` picks a free one, see :attr:`port` after :meth:`start`.
    :param credentials: accepted ``(user, password)`` pairs (e.g. from
        :func:`write_cookie`); an empty list rejects everyone.
    :param max_body: largest accepted request body in bytes.
    :param idle_timeout: seconds, see above (Core ``-rpcservertimeout``, default 30).
    :param auth_failure_delay: seconds to wait before answering a wrong password
        (Core: 250 ms).
    """

    def __init__(
        self,
        methods: dict[str, Handler],
        *,
        host: str = "127.0.0.1",
        port: int,
        credentials: list[tuple[str, str]],
        max_body: int = _DEFAULT_MAX_BODY,
        idle_timeout: float = _DEFAULT_IDLE_TIMEOUT,
        auth_failure_delay: float = _AUTH_FAILURE_DELAY,
    ) -> None:
        self.methods = methods
        self.host = host
        self.port = port
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.auth_failure_delay = auth_failure_delay
        # Like Core's InitRPCAuthentication: keep HMAC-SHA256(salt, password), so the
        # password comparison does not leak the password's length.
        self._salt = secrets.token_bytes(16)
        self._credentials = [
            (user.encode("utf-8"), self._hash_password(password.encode("utf-8")))
            for user, password in credentials
        ]
        self._warmup: str | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind ``host:port`` and start accepting connections.

        After it returns :attr:`port` holds the bound port (useful with port 0).

        :raises OSError: the address cannot be bound.
        :raises RuntimeError: the server is already running.
        """
        if self._server is not None:
            raise RuntimeError("RPC server already started")
        self._server = await asyncio.start_server(self._on_connect, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        for address in self.addresses:
            logger.info("Binding RPC on address %s port %d", address[0], address[1])

    async def stop(self) -> None:
        """Stop listening, close every connection and cancel in-flight handlers.

        Returns once all connection tasks have finished. Idempotent.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        while self._tasks:  # loop: a connection accepted just before close() may start late
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every listening socket; empty when not running."""
        if self._server is None:
            return []
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            for sock in self._server.sockets
        ]

    @property
    def connections(self) -> int:
        """Number of open client connections."""
        return len(self._tasks)

    def set_warmup(self, status: str | None) -> None:
        """While ``status`` is not None every call fails with :data:`RPC_IN_WARMUP` and
        ``status`` as message (src/rpc/server.cpp ``SetRPCWarmupStatus`` /
        ``SetRPCWarmupFinished``). The server starts out of warmup.
        """
        self._warmup = status

    # -- connection handling ------------------------------------------------------------

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Run the connection in a task of our own (tracked, cancelled by stop()) rather
        # than in the one asyncio.start_server would create for a coroutine callback:
        # on Python 3.11 that one logs a spurious error when it ends cancelled.
        if self._server is None:  # stopping
            writer.close()
            return
        task = asyncio.get_running_loop().create_task(self._connection(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            await self._serve(_Connection(reader, self.idle_timeout), writer, str(peer))
        except (_ClientGone, ConnectionError, TimeoutError):
            pass
        except Exception:
            logger.exception("Unexpected error on RPC connection from %s", peer)
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        async with asyncio.timeout(self.idle_timeout):
            await writer.drain()

    async def _serve(self, conn: _Connection, writer: asyncio.StreamWriter, peer: str) -> None:
        while True:
            try:
                request = await self._read_request(conn, writer)
            except _BadHttp as exc:
                logger.debug("Bad HTTP request from %s: %s", peer, exc)
                response = _no_store(exc.status, close=True)
                await self._send(writer, response.encode(1, keep_alive=False))
                return
            if request is None:
                return
            try:
                response = await self._dispatch(request, peer)
            except Exception as exc:
                # src/httpserver.cpp MaybeDispatchRequestToWorker: reply so the client
                # does not hang, then close.
                logger.exception("Unexpected error while processing RPC request from %s", peer)
                response = _no_store(
                    _HTTP_INTERNAL_SERVER_ERROR, str(exc).encode("utf-8", "replace"), close=True
                )
            keep_alive = request.keep_alive and not response.close
            await self._send(
                writer,
                response.encode(
                    request.minor, keep_alive=keep_alive, head_only=request.method == "HEAD"
                ),
            )
            if not keep_alive:
                return

    async def _read_request(
        self, conn: _Connection, writer: asyncio.StreamWriter
    ) -> _HttpRequest | None:
        """Read one full request; None on a clean EOF between requests."""
        async with asyncio.timeout(self.idle_timeout):
            while True:
                # Tolerate empty lines before a request line (RFC 9112 section 2.2).
                while conn.buf.startswith((b"\r\n", b"\n")):
                    del conn.buf[: 2 if conn.buf.startswith(b"\r") else 1]
                match = _HEAD_END.search(conn.buf, 0, _MAX_HEADERS_SIZE + 4)
                if match is not None:
                    break
                if len(conn.buf) > _MAX_HEADERS_SIZE:
                    raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP headers exceed size limit")
                if not await conn.recv():
                    if conn.buf:
                        raise _ClientGone
                    return None
        head = bytes(conn.buf[: match.start()]).decode("latin-1")
        del conn.buf[: match.end()]
        request = _parse_head(head)
        request.body = await self._read_body(request, conn, writer, len(head))
        return request

    async def _read_body(
        self, request: _HttpRequest, conn: _Connection, writer: asyncio.StreamWriter, head_size: int
    ) -> bytes:
        """src/httpserver.cpp HTTPRequest::LoadBody."""
        transfer_encoding = request.header("transfer-encoding")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                raise _BadHttp(_HTTP_BAD_REQUEST, "unsupported Transfer-Encoding")
            await self._maybe_continue(request, writer)
            return await self._read_chunked(conn, head_size)
        values = request.header_all("content-length")
        if not values:
            return b""  # no Content-Length and no Transfer-Encoding: no body
        if any(value != values[0] for value in values):
            raise _BadHttp(_HTTP_BAD_REQUEST, "Differing Content-Length values")
        if _DIGITS.fullmatch(values[0]) is None:
            raise _BadHttp(_HTTP_BAD_REQUEST, "Cannot parse Content-Length value")
        length = int(values[0])
        if length > self.max_body:
            raise _BadHttp(_HTTP_CONTENT_TOO_LARGE, "Max body size exceeded")
        if len(conn.buf) < length:
            await self._maybe_continue(request, writer)
        return await conn.read_exact(length)

    async def _maybe_continue(self, request: _HttpRequest, writer: asyncio.StreamWriter) -> None:
        """Answer ``Expect: 100-continue`` so that curl does not wait a second."""
        expect = request.header("expect")
        if request.minor >= 1 and expect is not None and expect.lower() == "100-continue":
            await self._send(writer, b"HTTP/1.1 100 Continue\r\n\r\n")

    async def _read_chunked(self, conn: _Connection, head_size: int) -> bytes:
        body = bytearray()
        while True:
            line = await conn.read_line(_MAX_HEADERS_SIZE)
            size_text = line.split(b";", 1)[0].strip(b" \t").decode("latin-1")
            if _HEX_DIGITS.fullmatch(size_text) is None:
                raise _BadHttp(_HTTP_BAD_REQUEST, "Cannot parse chunk length value")
            size = int(size_text, 16)
            if size > self.max_body - len(body):
                raise _BadHttp(_HTTP_CONTENT_TOO_LARGE, "Chunk will exceed max body size")
            if size == 0:
                break
            body += await conn.read_exact(size)
            if await conn.read_line(_MAX_HEADERS_SIZE) != b"":
                raise _BadHttp(_HTTP_BAD_REQUEST, "Improperly terminated chunk")
        # Trailer section: validated, counted against the header limit, dropped.
        used = head_size
        while True:
            line = await conn.read_line(_MAX_HEADERS_SIZE)
            used += len(line) + 2
            if used > _MAX_HEADERS_SIZE:
                raise _BadHttp(_HTTP_BAD_REQUEST, "HTTP headers exceed size limit")
            if not line:
                return bytes(body)
            _parse_header_line(line.decode("latin-1"))

    # -- RPC dispatch (src/httprpc.cpp HTTPReq_JSONRPC) ----------------------------------

    async def _dispatch(self, request: _HttpRequest, peer: str) -> _Response:
        if request.method not in _KNOWN_HTTP_METHODS:
            return _no_store(_HTTP_BAD_METHOD)
        if request.target != "/":
            return _no_store(_HTTP_NOT_FOUND)  # no wallet endpoints
        if request.method != "POST":
            return _Response(_HTTP_BAD_METHOD, b"JSONRPC server handles only POST requests")
        authorization = request.header("authorization")
        if authorization is None:
            return _unauthorized()
        user = self._authorized(authorization)
        if user is None:
            logger.warning("ThreadRPCServer incorrect password attempt from %s", peer)
            await asyncio.sleep(self.auth_failure_delay)
            return _unauthorized()
        status, reply = await self._execute_http_rpc(request.body, user, peer)
        if reply is None:
            return _Response(status)
        return _Response(
            status, (reply + "\n").encode("utf-8"), [("Content-Type", "application/json")]
        )

    def _hash_password(self, password: bytes) -> bytes:
        return hmac.new(self._salt, password, hashlib.sha256).digest()

    def _authorized(self, authorization: str) -> str | None:
        """src/httprpc.cpp RPCAuthorized / CheckUserAuthorized; returns the user name."""
        if not authorization.startswith("Basic "):
            return None
        try:
            raw = base64.b64decode(authorization[6:].strip(" \t").encode("ascii"), validate=True)
        except (binascii.Error, ValueError):
            return None
        user, sep, password = raw.partition(b":")
        if not sep:
            return None
        password_hash = self._hash_password(password)
        ok = False
        for expected_user, expected_hash in self._credentials:
            user_ok = hmac.compare_digest(expected_user, user)
            hash_ok = hmac.compare_digest(expected_hash, password_hash)
            ok |= user_ok and hash_ok
        return user.decode("utf-8", "replace") if ok else None

    async def _execute_http_rpc(self, body: bytes, user: str, peer: str) -> tuple[int, str | None]:
        """src/httprpc.cpp ExecuteHTTPRPC: (HTTP status, reply JSON or None for no body)."""
        jreq = _JsonRpcRequest()
        try:
            try:
                value = _json_loads(body)
            except (ValueError, RecursionError):
                raise RpcError(RPC_PARSE_ERROR, "Parse error") from None
            if isinstance(value, dict):
                jreq.parse(value)
                # Legacy 1.0 errors become HTTP errors; 2.0 errors are HTTP 200.
                reply = await self._exec(jreq, catch_errors=jreq.v2, user=user, peer=peer)
                if jreq.is_notification:
                    return _HTTP_NO_CONTENT, None
                return _HTTP_OK, reply
            if isinstance(value, list):
                replies: list[str] = []
                for item in value:
                    # Fresh state per element (Core reuses one JSONRPCRequest, so a
                    # malformed element would inherit the previous element's id).
                    sub = _JsonRpcRequest()
                    try:
                        sub.parse(item)
                        response = await self._exec(sub, catch_errors=True, user=user, peer=peer)
                    except RpcError as exc:
                        response = sub.reply(None, exc)
                    if not sub.is_notification:
                        replies.append(response)
                if not replies and value:
                    return _HTTP_NO_CONTENT, None  # all-notification batch
                return _HTTP_OK, "[" + ",".join(replies) + "]"
            raise RpcError(RPC_PARSE_ERROR, "Top-level object parse error")
        except RpcError as exc:
            # src/httprpc.cpp JSONErrorReply
            return _http_status_for_error(exc.code), jreq.reply(None, exc)

    async def _exec(
        self, jreq: _JsonRpcRequest, *, catch_errors: bool, user: str, peer: str
    ) -> str:
        """src/rpc/server.cpp JSONRPCExec: the serialised reply object."""
        logger.debug("ThreadRPCServer method=%r user=%r peeraddr=%s", jreq.method, user, peer)
        try:
            result_json = await self._call(jreq.method, jreq.params)
        except RpcError as exc:
            if not catch_errors:
                raise
            return jreq.reply(None, exc)
        return jreq.reply(result_json, None)

    async def _call(self, method: str, params: list[Any] | dict[str, Any]) -> str:
        """src/rpc/server.cpp CRPCTable::execute / ExecuteCommand: the result as JSON."""
        if self._warmup is not None:
            raise RpcError(RPC_IN_WARMUP, self._warmup)
        handler = self.methods.get(method)
        if handler is None:
            raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")
        try:
            result = await handler(params)
        except RpcError:
            raise
        except Exception as exc:
            logger.exception("RPC method %r raised", method)
            raise RpcError(RPC_MISC_ERROR, str(exc)) from exc
        try:
            return _json_dumps(result)
        except (TypeError, ValueError, RecursionError) as exc:
            logger.exception("RPC method %r returned a value that is not JSON", method)
            raise RpcError(RPC_MISC_ERROR, f"result is not JSON serializable: {exc}") from exc


# --- Client (src/bitcoin-cli.cpp) -----------------------------------------------------

_CLIENT_MAX_REPLY = 1 << 30


async def rpc_call(
    host: str,
    port: int,
    user: str,
    password: str,
    method: str,
    params: list[Any] | dict[str, Any],
    timeout: float = 30.0,
) -> Any:
    """Make one JSON-RPC 1.0 call, ``{"method", "params", "id": 1}``, over a new connection.

    Follows src/bitcoin-cli.cpp ``CallRPC``: HTTP/1.1 ``POST /`` with Basic auth;
    ``400``, ``404`` and ``500`` replies carry a JSON-RPC error object.

    :param host: server address (IPv6 literals without brackets).
    :param port: server port.
    :param user: RPC user (``"__cookie__"`` with :func:`read_cookie`).
    :param password: RPC password.
    :param method: method name.
    :param params: positional list (or named dict).
    :param timeout: seconds for the whole exchange, connecting included.
    :returns: the reply's ``result``.
    :raises RpcError: the reply carries an error object (its code and message).
    :raises RpcAuthError: HTTP 401, wrong or missing credentials.
    :raises RpcHttpError: any other unusable reply (other HTTP error status, empty,
        not JSON, not a reply object).
    :raises ConnectionError: nothing listens, or the connection broke before a full
        reply arrived.
    :raises TimeoutError: no complete reply within ``timeout``.
    :raises ValueError: ``host`` contains a line break.
    """
    if "\r" in host or "\n" in host:
        raise ValueError("invalid host")
    body = _json_dumps({"method": method, "params": params, "id": 1}).encode("utf-8")
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = (
        "POST / HTTP/1.1\r\n"
        f"Host: {host_header}\r\n"
        "Connection: close\r\n"
        f"Authorization: Basic {credentials}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    async with asyncio.timeout(timeout):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise ConnectionError(f"Could not connect to the server {host}:{port}: {exc}") from exc
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status, data = await _read_http_reply(reader)
        finally:
            writer.close()
    return _process_reply(status, data)


async def _read_http_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status code and body of the (final) HTTP reply."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError("server closed the connection without a reply") from exc
        except asyncio.LimitOverrunError as exc:
            raise RpcHttpError(0, "reply headers too large") from exc
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _STATUS.fullmatch(parts[1]):
            raise RpcHttpError(0, "malformed HTTP reply from server")
        status = int(parts[1])
        if 100 <= status < 200:
            continue  # interim reply
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        if status == _HTTP_NO_CONTENT:
            return status, b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise RpcHttpError(status, "chunked replies are not supported")
        length_text = headers.get("content-length")
        try:
            if length_text is not None:
                if not _DIGITS.fullmatch(length_text) or int(length_text) > _CLIENT_MAX_REPLY:
                    raise RpcHttpError(status, "bad Content-Length in reply")
                return status, await reader.readexactly(int(length_text))
            data = bytearray()
            while chunk := await reader.read(_READ_CHUNK):
                data += chunk
                if len(data) > _CLIENT_MAX_REPLY:
                    raise RpcHttpError(status, "reply too large")
            return status, bytes(data)
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError("server closed the connection mid-reply") from exc


def _process_reply(status: int, data: bytes) -> Any:
    """src/bitcoin-cli.cpp CallRPC status checks and reply processing."""
    if status == _HTTP_UNAUTHORIZED:
        raise RpcAuthError("Authorization failed: Incorrect rpcuser or rpcpassword were specified.")
    if status == _HTTP_SERVICE_UNAVAILABLE:
        raise RpcHttpError(status, f"Server response: {data.decode('utf-8', 'replace')}")
    if status >= 400 and status not in (
        _HTTP_BAD_REQUEST,
        _HTTP_NOT_FOUND,
        _HTTP_INTERNAL_SERVER_ERROR,
    ):
        raise RpcHttpError(status, f"server returned HTTP error {status}")
    if not data:
        raise RpcHttpError(status, "no response from server")
    try:
        reply = _json_loads(data)
    except (ValueError, RecursionError):
        raise RpcHttpError(status, "couldn't parse reply from server") from None
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise RpcHttpError(status, "expected reply to have result, error and id properties")
    error = reply.get("error")
    if error is not None:
        if (
            isinstance(error, dict)
            and isinstance(error.get("code"), int)
            and isinstance(error.get("message"), str)
        ):
            raise RpcError(error["code"], error["message"])
        raise RpcError(RPC_MISC_ERROR, _json_dumps(error))
    return reply.get("result")


def parse_cli_param(s: str) -> Any:
    """Convert one command-line argument the way bitcoin-cli does for JSON parameters.

    src/rpc/client.cpp ``Parse`` with ``JSON_OR_STRING``: the value parsed as JSON if
    it is valid JSON, else the raw string. ``"true"`` -> ``True``, ``"5"`` -> ``5``,
    ``'["a"]'`` -> ``["a"]``, ``"abc"`` -> ``"abc"``. ``NaN``/``Infinity`` and
    numbers overflowing a double are not JSON here and stay strings. Never raises.

    :param s: the argument.
    :returns: the decoded JSON value or ``s`` itself.
    """
    try:
        return _json_loads(s)
    except (ValueError, RecursionError):
        return s
