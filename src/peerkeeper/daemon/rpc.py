"""JSON-RPC over HTTP server and client, modelled on Bitcoin Core.

The server behaves like bitcoind's RPC interface:

* ``src/httpserver.cpp``: an 8 KiB header limit, a body limit answered with ``413``,
  ``400`` plus disconnect for malformed input (an empty ``no-store`` reply), and an
  idle timeout (``-rpcservertimeout``, 30 s by default).
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

HTTP itself (parsing, keep-alive, pipelining, chunked bodies, ``Expect: 100-continue``)
is aiohttp's, server and client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

import aiohttp
import aiohttp.http_exceptions
import aiohttp.http_parser
import aiohttp.streams
import aiohttp.web_protocol
from aiohttp import web
from aiohttp.web_protocol import ERROR as _ERROR_MESSAGE
from aiohttp.web_protocol import RequestHandler

from peerkeeper.daemon.rpcclient import (  # the light client's strict JSON, one definition
    _finite_float,
    _json_loads,
    _reject_constant,
    parse_cli_param,
)

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
#: src/httpserver.h DEFAULT_HTTP_SERVER_TIMEOUT (seconds)
_DEFAULT_IDLE_TIMEOUT = 30.0
#: src/httprpc.cpp: UninterruptibleSleep(250ms) after a wrong password
_AUTH_FAILURE_DELAY = 0.25
#: default -rpc body limit (Core: MAX_BODY_SIZE, 32 MiB)
_DEFAULT_MAX_BODY = 32 * 1024 * 1024
#: src/httpserver.h DEFAULT_HTTP_THREADS and DEFAULT_HTTP_WORKQUEUE
_DEFAULT_THREADS = 16
_DEFAULT_WORK_QUEUE = 64
_KNOWN_HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "PUT"})

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


# --- HTTP server (aiohttp) -----------------------------------------------------------------

#: Replies of a batch are sent with a Content-Length while they fit in this many bytes;
#: past it they are streamed (chunked), so a huge batch never sits whole in memory.
_STREAM_THRESHOLD = 256 * 1024
#: Calls of a batch run between two yields to the event loop (P2P keeps being served).
_BATCH_SLICE = 64
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _drop_object(_pairs: list[tuple[str, Any]]) -> None:
    return None


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
#: Bodies longer than this (characters) are parsed in a worker thread.
_THREAD_PARSE = 1 << 20


def _count_int(_text: str) -> int:
    return 0


def _py_int(text: str) -> int:
    return int(text)


#: Checks a batch element without keeping it (objects and numbers become placeholders);
#: its hooks are Python calls, where a worker thread gives the GIL back to the loop.
_CHECKER = json.JSONDecoder(
    object_pairs_hook=_drop_object,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
    parse_int=_count_int,
)
#: Decodes a big single request in a worker thread, yielding the GIL at every number.
_THREAD_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_py_int
)
#: A batch element this long (characters) is decoded in a worker thread.
_BIG_ELEMENT = 1 << 16


def _parse_single(text: str, start: int) -> Any:
    """A big single request's JSON value (``text[start]`` is its first character), with
    the decoder whose number hook lets a worker thread give the GIL back.

    :raises ValueError: not strict JSON (no NaN, no overflowing numbers).
    :raises RecursionError: nested too deeply.
    """
    value, end = _THREAD_DECODER.raw_decode(text, start)
    if _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise ValueError("extra data after the request")
    return value


def _check_batch(text: str, start: int) -> tuple[int, int]:
    """A batch (``text[start]`` is ``[``): the number of elements and the length of the
    longest, after checking every element in turn and keeping none, so that neither
    memory nor the GIL is held for the whole text. As Core, which parses the whole body
    first, a parse error anywhere fails the batch.

    :raises ValueError: not strict JSON (no NaN, no overflowing numbers).
    :raises RecursionError: nested too deeply.
    """
    count = longest = 0
    pos = _WHITESPACE.match(text, start + 1).end()  # type: ignore[union-attr]
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            _, end = _CHECKER.raw_decode(text, pos)
            count += 1
            longest = max(longest, end - pos)
            pos = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
            if text.startswith(",", pos):
                pos = _WHITESPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            elif text.startswith("]", pos):
                pos += 1
                break
            else:
                raise ValueError("expected ',' or ']' in the batch")
    if _WHITESPACE.match(text, pos).end() != len(text):  # type: ignore[union-attr]
        raise ValueError("extra data after the batch")
    return count, longest


class _ClientGone(Exception):
    """The client closed the connection, or stalled, in the middle of a request."""


class _BodyTooLarge(Exception):
    """The body grew past ``max_body`` while it was read (a chunked one)."""


def _no_store(status: int, body: bytes = b"", *, close: bool = False) -> web.Response:
    """src/httpserver.cpp WriteNoStoreErrorReply (Core's reason phrases)."""
    response = web.Response(
        status=status,
        body=body,
        reason=_REASONS.get(status),
        headers={"Cache-Control": "no-store"},
    )
    if close:
        response.force_close()
    return response


def _unauthorized() -> web.Response:
    return web.Response(
        status=_HTTP_UNAUTHORIZED, headers={"WWW-Authenticate": _WWW_AUTH_HEADER_DATA}
    )


class _ConnectionHandler(RequestHandler):
    """aiohttp's per-connection protocol, answering malformed HTTP as Core does.

    aiohttp's parser rejects a bad request line, header or length with a status
    (``400``, or ``413`` for an oversize line); Core answers those with an empty
    ``no-store`` reply and closes (src/httpserver.cpp ``WriteNoStoreErrorReply``).
    A request head that grows past Core's 8 KiB while it arrives is refused the same
    way, so a client sending endless header lines holds at most one read buffer.
    """

    _head_bytes = 0
    _last_payload: Any = None

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, **kw: Any) -> None:
        super().__init__(manager, loop=loop, **kw)
        self._parser = _HostOptionalParser(
            self,
            loop,
            kw.get("read_bufsize", 2**18),
            max_line_size=kw["max_line_size"],
            max_field_size=kw["max_field_size"],
            max_headers=kw["max_headers"],
            payload_exception=aiohttp.web_protocol.RequestPayloadError,
            max_msg_queue_size=aiohttp.web_protocol.MAX_MSG_QUEUE_SIZE,
        )

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        payload = self._last_payload
        in_body = payload is not None and not payload.is_eof()  # as the chunk starts
        super().data_received(data)
        if self._request_count != before:
            self._head_bytes = 0  # a head was completed
            if self._messages:
                self._last_payload = self._messages[-1][1]
            return
        if self._payload_parser is None and not self._upgraded and not in_body:
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEADERS_SIZE + _MAX_HEADERS_SIZE:  # line + headers
                logger.debug("HTTP request head over %d bytes: closed", _MAX_HEADERS_SIZE)
                if self.transport is not None:
                    self.transport.write(_RAW_400)
                self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        logger.debug("Bad HTTP request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the reply had started: the connection is dropped")
        return _no_store(status, close=True)


class _HostOptionalParser(aiohttp.http_parser.HttpRequestParserPy):
    """aiohttp's HTTP/1.x request parser (the pure-Python one), taking an HTTP/1.1
    request without a ``Host`` header as Core's libevent does (aiohttp refuses it; Core's
    interface_http.py sends such requests), reading a body with both Transfer-Encoding
    and Content-Length by the former (RFC 9112 section 6.1, as Core), and refusing
    versions other than 1.0 and
    1.1 and a ``Content-Length`` past an int64 with 400 (as Core; the Python parser
    would take HTTP/9.9, and any length)."""

    _failed = False

    def feed_data(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        """aiohttp's, fed one request head at a time: a malformed request is answered
        after the requests before it on the connection, in order (aiohttp would lose
        the ones parsed from the same read and answer the error first; Core's
        interface_http.py pipelines a long-running call and a malformed one)."""
        if self._failed:
            return [], False, b""
        messages: list[Any] = []
        # Inside a body: fed whole, as aiohttp does; else a few heads at a time, so a
        # flood of blank lines costs no more than a handful of feeds.
        in_body = self._payload_parser is not None
        pieces = [data] if in_body else data.split(b"\r\n\r\n", 8)
        for i, piece in enumerate(pieces):
            chunk = piece if i == len(pieces) - 1 else piece + b"\r\n\r\n"
            if not chunk and i:
                continue
            try:
                found, upgraded, tail = super().feed_data(chunk, *args, **kwargs)
            except aiohttp.http_exceptions.HttpProcessingError as exc:
                self._failed = True  # the stream cannot be followed any further
                error = aiohttp.web_protocol._ErrInfo(status=400, exc=exc, message=exc.message)
                messages.append((error, aiohttp.streams.EMPTY_PAYLOAD))
                return messages, False, b""
            messages.extend(found)
            if upgraded:
                return messages, True, tail + b"\r\n\r\n".join(pieces[i + 1 :])
        return messages, False, b""

    def parse_message(self, lines: list[bytes]) -> Any:
        if (
            lines
            and lines[0].endswith(b" HTTP/1.1")
            and not any(line[:5].lower() == b"host:" for line in lines[1:])
        ):
            lines = [lines[0], b"Host: ", *lines[1:]]
        if any(line[:18].lower() == b"transfer-encoding:" for line in lines[1:]):
            # RFC 9112 6.1 (and Core): Transfer-Encoding wins over Content-Length, which is
            # dropped; aiohttp would refuse the request.
            lines = [line for line in lines if line[:15].lower() != b"content-length:"]
        message = super().parse_message(lines)
        if message.version not in (aiohttp.HttpVersion10, aiohttp.HttpVersion11):
            raise aiohttp.http_exceptions.BadHttpMessage("unsupported HTTP version")
        length = message.headers.get("Content-Length", "0")
        if not (length.isascii() and length.isdigit()) or len(length) > 19 or int(length) >= 2**63:
            # Core reads it as an int64
            raise aiohttp.http_exceptions.BadHttpMessage("Cannot parse Content-Length value")
        return message


class _HttpServer(web.Server):
    """aiohttp's low-level server with :class:`_ConnectionHandler` per connection."""

    def __call__(self) -> RequestHandler:
        return _ConnectionHandler(self, loop=self._loop, **self._kwargs)


def _request_factory(
    message: Any,
    payload: Any,
    protocol: RequestHandler,
    writer: Any,
    task: asyncio.Task[None],
) -> web.BaseRequest:
    """aiohttp's request, except that the reply to an unparsable request is HTTP/1.1
    (aiohttp's placeholder says 1.0; Core answers 1.1)."""
    if message is _ERROR_MESSAGE:
        message = message._replace(version=aiohttp.HttpVersion11)
    return web.BaseRequest(message, payload, protocol, writer, task, protocol._loop)


#: The raw 400 sent when a request head passes the limit while arriving.
_RAW_400 = (
    b"HTTP/1.1 400 Bad Request\r\nCache-Control: no-store\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


class RpcServer:
    """JSON-RPC server over HTTP/1.1, on aiohttp, like bitcoind's RPC port.

    Sources: src/httpserver.cpp (HTTP), src/httprpc.cpp (auth, dispatch, status
    codes), src/rpc/request.cpp and src/rpc/server.cpp (JSON-RPC semantics). HTTP
    parsing, keep-alive and pipelining are aiohttp's.

    * Only ``POST /`` is served. Other paths (including ``/wallet/...``) get ``404``,
      ``GET``/``HEAD``/``PUT`` on ``/`` get ``405``, other HTTP methods ``405``.
    * HTTP Basic authentication against ``credentials``; a missing or wrong
      ``Authorization`` header gets ``401`` with ``WWW-Authenticate:
      Basic realm="jsonrpc"`` and an empty body; a wrong one only after
      ``auth_failure_delay`` seconds (``asyncio.sleep``, other clients are unaffected).
      Credentials are checked before the body is read.
    * A ``Content-Length`` over ``max_body`` bytes gets ``413`` before any byte of the
      body is read, a chunked body growing past it ``413`` as soon as it does;
      malformed requests get ``400``; each of these closes the connection. A
      connection on which no request starts within ``idle_timeout`` seconds, or whose
      body stalls for that long, is closed without a reply. Handlers are not timed out.
    * A batch is bounded in memory and time: it is checked whole (a parse error
      anywhere fails it, as in Core), then its elements are decoded and run one at a
      time, yielding to the event loop every 64 calls, so peers keep being served; its
      replies are sent with a ``Content-Length`` up to 256 KiB and streamed (chunked)
      past that, so a 100,000-call batch never holds all its replies.
    * Requests on one connection are handled one at a time, in order; at most
      ``threads`` requests run at once (Core's ``-rpcthreads``) and ``work_queue`` more
      read their bodies or wait for a turn (``-rpcworkqueue``); past that a request
      gets ``503`` "Work queue depth exceeded", as in Core (checked after
      authentication here). A body is read before its request takes a turn, so a
      client dripping its body never holds one; a streamed reply its client stops
      reading for ``idle_timeout`` is dropped. :meth:`stop` aborts every connection
      and cancels in-flight handlers.

    :param methods: method name -> :data:`Handler`.
    :param host: address to bind (only this one), default ``127.0.0.1``.
    :param port: TCP port; ``0`` picks a free one, see :attr:`port` after :meth:`start`.
    :param credentials: accepted ``(user, password)`` pairs (e.g. from
        :func:`write_cookie`); an empty list rejects everyone.
    :param max_body: largest accepted request body in bytes (Core: 32 MiB).
    :param idle_timeout: seconds, see above (Core ``-rpcservertimeout``, default 30).
    :param auth_failure_delay: seconds to wait before answering a wrong password
        (Core: 250 ms).
    :param threads: requests run at once (Core ``-rpcthreads``, 16).
    :param work_queue: requests waiting for one of those (Core ``-rpcworkqueue``, 64).
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
        threads: int = _DEFAULT_THREADS,
        work_queue: int = _DEFAULT_WORK_QUEUE,
    ) -> None:
        self.methods = methods
        self.work_queue = max(1, work_queue)
        self._slots = asyncio.Semaphore(max(1, threads))
        self._waiting = 0
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
        self._http: _HttpServer | None = None
        self._server: asyncio.Server | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind ``host:port`` and start accepting connections.

        After it returns :attr:`port` holds the bound port (useful with port 0).

        :raises OSError: the address cannot be bound.
        :raises RuntimeError: the server is already running.
        """
        if self._server is not None:
            raise RuntimeError("RPC server already started")
        self._http = _HttpServer(
            self._handle,
            request_factory=_request_factory,
            handler_cancellation=True,
            keepalive_timeout=self.idle_timeout,
            access_log=None,
            lingering_time=0,  # a refused body is not read on: close at once (as Core)
            max_line_size=_MAX_HEADERS_SIZE,
            max_field_size=_MAX_HEADERS_SIZE,
            max_headers=_MAX_HEADERS_SIZE // 4,  # the shortest line, "a:\r\n", is 4 bytes
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._http, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        for address in self.addresses:
            logger.info("Binding RPC on address %s port %d", address[0], address[1])

    async def stop(self) -> None:
        """Stop listening, close every connection and cancel in-flight handlers.

        Returns once every connection's task has finished. Idempotent.
        """
        server, self._server = self._server, None
        http = self._http
        if server is None or http is None:
            return
        server.close()
        for _ in range(100):  # a few rounds: a connection accepted just before close()
            if not http.connections:
                break
            # aiohttp keeps each connection's task on its protocol object.
            tasks = [t for c in http.connections if (t := c._task_handler) is not None]
            for conn in http.connections:
                if conn.transport is not None:
                    conn.transport.abort()  # unsent bytes are dropped, not waited for
                conn.force_close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.01)  # let connection_lost run
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
        return len(self._http.connections) if self._http is not None else 0

    def set_warmup(self, status: str | None) -> None:
        """While ``status`` is not None every call fails with :data:`RPC_IN_WARMUP` and
        ``status`` as message (src/rpc/server.cpp ``SetRPCWarmupStatus`` /
        ``SetRPCWarmupFinished``). The server starts out of warmup.
        """
        self._warmup = status

    # -- one request (src/httprpc.cpp HTTPReq_JSONRPC) ------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.version.major != 1:
            return _no_store(_HTTP_BAD_REQUEST, close=True)  # HTTP/1.x only, as Core
        head = sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
        if head > _MAX_HEADERS_SIZE:
            return _no_store(_HTTP_BAD_REQUEST, close=True)  # Core's 8 KiB of headers
        length = request.content_length
        if length is not None and length > self.max_body:
            return _no_store(_HTTP_CONTENT_TOO_LARGE, close=True)  # before reading it
        if request.method not in _KNOWN_HTTP_METHODS:
            return _no_store(_HTTP_BAD_METHOD)
        if request.raw_path != "/":
            return _no_store(_HTTP_NOT_FOUND)  # no wallet endpoints
        if request.method != "POST":
            return web.Response(
                status=_HTTP_BAD_METHOD,
                body=b"JSONRPC server handles only POST requests",
                content_type="text/html",
                charset="ISO-8859-1",
            )
        peer = str(request.remote)
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return _unauthorized()
        user = self._authorized(authorization)
        if user is None:
            logger.warning("ThreadRPCServer incorrect password attempt from %s", peer)
            await asyncio.sleep(self.auth_failure_delay)
            return _unauthorized()
        if self._waiting >= self.work_queue and self._slots.locked():
            logger.warning(
                "Request rejected because http work queue depth exceeded, it can be "
                "increased with the -rpcworkqueue= setting"
            )
            return _no_store(_HTTP_SERVICE_UNAVAILABLE, b"Work queue depth exceeded", close=True)
        self._waiting += 1
        try:
            # As Core: the body is read before the request waits for a worker, so a
            # client dripping its body holds a place in the queue, never a worker.
            text = await self._read_request_text(request)
            if isinstance(text, web.StreamResponse):
                return text
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._execute_http_rpc(request, text, user, peer)
        finally:
            self._slots.release()

    async def _read_request_text(self, request: web.BaseRequest) -> str | None | web.StreamResponse:
        """The body as text (None: not UTF-8), or the reply that ends the request."""
        expect = request.headers.get("Expect", "")
        if request.version >= (1, 1) and expect.lower() == "100-continue":
            # Answer it, so that curl does not wait a second (aiohttp's router would).
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            text = await self._read_text(request)
        except _BodyTooLarge:
            return _no_store(_HTTP_CONTENT_TOO_LARGE, close=True)
        except (_ClientGone, TimeoutError, ConnectionError, aiohttp.ClientPayloadError):
            return self._drop(request)
        except (
            aiohttp.http_exceptions.HttpProcessingError,
            aiohttp.web_protocol.RequestPayloadError,
        ):
            if request.transport is None or request.transport.is_closing():
                return self._drop(request)  # the client went away mid-body
            return _no_store(_HTTP_BAD_REQUEST, close=True)  # a malformed chunked body
        return text

    def _drop(self, request: web.BaseRequest) -> web.StreamResponse:
        """Close the connection without a reply (a stalled or vanished client)."""
        if request.transport is not None:
            request.transport.close()
        response = web.Response()
        response.force_close()
        return response

    async def _read_text(self, request: web.BaseRequest) -> str | None:
        """The whole body as text (None: not UTF-8), at most ``max_body`` bytes, no byte
        slower than ``idle_timeout`` (src/httpserver.cpp ``HTTPRequest::LoadBody``). Only
        the text outlives this call, so a big body is held once, not twice."""
        body = bytearray()
        content = request.content
        while True:
            async with asyncio.timeout(self.idle_timeout):
                chunk = await content.readany()
            if not chunk:
                if request.content_length is not None and len(body) < request.content_length:
                    raise _ClientGone
                try:
                    return body.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            body += chunk
            if len(body) > self.max_body:
                raise _BodyTooLarge

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

    async def _execute_http_rpc(
        self, request: web.BaseRequest, text: str | None, user: str, peer: str
    ) -> web.StreamResponse:
        """src/httprpc.cpp ExecuteHTTPRPC."""
        jreq = _JsonRpcRequest()
        try:
            try:
                if text is None:
                    raise ValueError("not UTF-8")
                start = _WHITESPACE.match(text).end()  # type: ignore[union-attr]
                # A big body is parsed off the event loop (the hooks give the GIL back
                # every few milliseconds), so peers are served meanwhile.
                big = len(text) > _THREAD_PARSE
                shape: tuple[int, int] | None = None
                if text.startswith("[", start):
                    shape = (
                        await asyncio.to_thread(_check_batch, text, start)
                        if big
                        else _check_batch(text, start)
                    )
                elif big:
                    value = await asyncio.to_thread(_parse_single, text, start)
                else:
                    value = _json_loads(text)
            except (ValueError, RecursionError):
                raise RpcError(RPC_PARSE_ERROR, "Parse error") from None
            if shape is not None:
                return await self._batch(request, text, start, shape, user, peer)
            if isinstance(value, dict):
                jreq.parse(value)
                # Legacy 1.0 errors become HTTP errors; 2.0 errors are HTTP 200.
                reply = await self._exec(jreq, catch_errors=jreq.v2, user=user, peer=peer)
                if jreq.is_notification:
                    return web.Response(status=_HTTP_NO_CONTENT)
                return _json_response(_HTTP_OK, reply)
            raise RpcError(RPC_PARSE_ERROR, "Top-level object parse error")
        except RpcError as exc:
            # src/httprpc.cpp JSONErrorReply
            return _json_response(_http_status_for_error(exc.code), jreq.reply(None, exc))

    async def _batch(
        self,
        request: web.BaseRequest,
        text: str,
        start: int,
        shape: tuple[int, int],
        user: str,
        peer: str,
    ) -> web.StreamResponse:
        """A batch: each element decoded, run and answered in turn, in slices; elements
        of 64 KiB or more are decoded in a worker thread."""
        count, longest = shape
        out = _BatchWriter(request, self.idle_timeout)
        pos = start + 1
        for index in range(count):
            if index and index % _BATCH_SLICE == 0:
                await out.flush()
                await asyncio.sleep(0)  # peers and other clients are served meanwhile
            pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
            if longest >= _BIG_ELEMENT:
                item, pos = await asyncio.to_thread(_THREAD_DECODER.raw_decode, text, pos)
            else:
                item, pos = _DECODER.raw_decode(text, pos)  # the whole text checked before
            pos = _WHITESPACE.match(text, pos).end() + 1  # type: ignore[union-attr]
            # Fresh state per element (Core reuses one JSONRPCRequest, so a malformed
            # element would inherit the previous element's id).
            sub = _JsonRpcRequest()
            try:
                sub.parse(item)
                del item
                response = await self._exec(sub, catch_errors=True, user=user, peer=peer)
            except RpcError as exc:
                response = sub.reply(None, exc)
            if not sub.is_notification:
                out.add(response)
        return await out.finish(empty_batch=not count)

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


def _json_response(status: int, reply: str) -> web.Response:
    return web.Response(
        status=status, body=(reply + "\n").encode("utf-8"), content_type="application/json"
    )


class _BatchWriter:
    """A batch's reply array: buffered, then streamed once past :data:`_STREAM_THRESHOLD`."""

    def __init__(self, request: web.BaseRequest, send_timeout: float) -> None:
        self.request = request
        self.send_timeout = send_timeout
        self.pending: list[str] = []
        self.size = 0
        self.count = 0
        self.stream: web.StreamResponse | None = None

    def add(self, reply: str) -> None:
        self.pending.append(reply)
        self.size += len(reply) + 1
        self.count += 1

    def _take(self) -> bytes:
        data = ",".join(self.pending).encode("utf-8")
        self.pending.clear()
        self.size = 0
        return data

    async def flush(self) -> None:
        """Stream what is buffered once it is large, waiting while the client is slow."""
        if self.stream is None:
            if self.size < _STREAM_THRESHOLD:
                return
            self.stream = web.StreamResponse(status=_HTTP_OK)
            self.stream.content_type = "application/json"
            self.stream.enable_chunked_encoding()
            await self.stream.prepare(self.request)
            await self._write(b"[" + self._take())
        elif self.pending:
            await self._write(b"," + self._take())

    async def _write(self, data: bytes) -> None:
        """Send, or drop a client that reads nothing for ``send_timeout`` seconds (as
        Core's -rpcservertimeout): a stalled reader never holds a worker for good."""
        assert self.stream is not None
        try:
            async with asyncio.timeout(self.send_timeout):
                await self.stream.write(data)
        except TimeoutError:
            if self.request.transport is not None:
                self.request.transport.abort()
            raise ConnectionError("RPC client stopped reading its reply") from None

    async def finish(self, *, empty_batch: bool) -> web.StreamResponse:
        if self.stream is not None:
            if self.pending:
                await self._write(b"," + self._take())
            await self._write(b"]\n")
            await self.stream.write_eof()
            return self.stream
        if not self.count and not empty_batch:
            return web.Response(status=_HTTP_NO_CONTENT)  # all-notification batch
        return _json_response(_HTTP_OK, "[" + self._take().decode("utf-8") + "]")


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

    Follows src/bitcoin-cli.cpp ``CallRPC``: HTTP/1.1 ``POST /`` with Basic auth (aiohttp's
    client); ``400``, ``404`` and ``500`` replies carry a JSON-RPC error object.

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
        not JSON, not a reply object, over 1 GiB).
    :raises ConnectionError: nothing listens, or the connection broke before a full
        reply arrived.
    :raises TimeoutError: no complete reply within ``timeout``.
    :raises ValueError: ``host`` contains a line break.
    """
    if "\r" in host or "\n" in host:
        raise ValueError("invalid host")
    body = _json_dumps({"method": method, "params": params, "id": 1}).encode("utf-8")
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    try:
        async with (
            asyncio.timeout(timeout),
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.post(
                url,
                data=body,
                headers={
                    "Authorization": aiohttp.encode_basic_auth(user, password),
                    "Content-Type": "application/json",
                    "Connection": "close",
                },
            ) as reply,
        ):
            if (reply.content_length or 0) > _CLIENT_MAX_REPLY:
                raise RpcHttpError(reply.status, "reply too large")
            data = bytearray()
            async for chunk in reply.content.iter_any():
                data += chunk
                if len(data) > _CLIENT_MAX_REPLY:
                    raise RpcHttpError(reply.status, "reply too large")
            status = reply.status
    except aiohttp.ClientConnectorError as exc:
        raise ConnectionError(f"Could not connect to the server {host}:{port}: {exc}") from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
        raise ConnectionError(f"server closed the connection mid-reply: {exc}") from exc
    except aiohttp.ClientResponseError as exc:
        raise RpcHttpError(exc.status, f"malformed HTTP reply from server: {exc.message}") from exc
    except aiohttp.ClientError as exc:
        raise ConnectionError(f"RPC connection to {host}:{port} failed: {exc}") from exc
    return _process_reply(status, bytes(data))


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
