"""Tests for peerkeeper.daemon.rpc: cookie files, the HTTP JSON-RPC server and the client.

Expected behaviour comes from Bitcoin Core: src/httprpc.cpp, src/httpserver.cpp,
src/rpc/request.cpp, src/rpc/server.cpp, src/bitcoin-cli.cpp.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from peerkeeper.daemon import rpc
from peerkeeper.daemon.rpc import (
    RPC_IN_WARMUP,
    RPC_INVALID_PARAMETER,
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_PARSE_ERROR,
    RpcAuthError,
    RpcError,
    RpcServer,
    delete_cookie,
    parse_cli_param,
    read_cookie,
    rpc_call,
    write_cookie,
)

USER = "alice"
PASSWORD = "s3cret"
GOOD_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MAX_BODY = 4096


# --- helpers --------------------------------------------------------------------------


class Recorder:
    """Handlers used by the test server; records notification calls."""

    def __init__(self) -> None:
        self.notified: list[Any] = []
        self.blocker = asyncio.Event()
        self.slow_started = asyncio.Event()

    def methods(self) -> dict[str, rpc.Handler]:
        async def add(params: list[Any] | dict[str, Any]) -> Any:
            if isinstance(params, dict):
                return params["a"] + params["b"]
            return sum(params)

        async def echo(params: list[Any] | dict[str, Any]) -> Any:
            return params

        async def notify(params: list[Any] | dict[str, Any]) -> Any:
            self.notified.append(params)
            return None

        async def bad_param(params: list[Any] | dict[str, Any]) -> Any:
            raise RpcError(RPC_INVALID_PARAMETER, "bad param")

        async def boom(params: list[Any] | dict[str, Any]) -> Any:
            raise ValueError("boom")

        async def not_json(params: list[Any] | dict[str, Any]) -> Any:
            return object()

        async def slow(params: list[Any] | dict[str, Any]) -> Any:
            self.slow_started.set()
            await self.blocker.wait()
            return "done"

        return {
            "add": add,
            "echo": echo,
            "notify": notify,
            "bad_param": bad_param,
            "boom": boom,
            "not_json": not_json,
            "slow": slow,
        }


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length)
    return Reply(status, headers, body)


async def exchange(
    port: int, raw: bytes, *, check_closed: bool = False
) -> tuple[Reply | None, bool]:
    """Send raw bytes; return (reply or None if closed without one, closed after it?).

    The second item is only computed with ``check_closed``: a second request on the same
    connection is answered (open) or meets the end of the stream (closed); no waiting.
    """
    async with asyncio.timeout(4):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw)
            await writer.drain()
            try:
                reply: Reply | None = await read_reply(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None, True
            if not check_closed:
                return reply, False
            try:
                writer.write(post_bytes(b'{"method":"add","params":[2],"id":2}'))
                await writer.drain()
                probe = await read_reply(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return reply, True
            assert probe.json()["result"] == 2, probe  # served: the connection stayed open
            return reply, False
        finally:
            writer.close()


def post_bytes(
    body: bytes,
    *,
    auth: str | None = GOOD_AUTH,
    path: str = "/",
    extra: str = "",
    version: str = "1.1",
) -> bytes:
    head = f"POST {path} HTTP/{version}\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    if auth is not None:
        head += f"Authorization: {auth}\r\n"
    return (head + extra + "\r\n").encode() + body


async def post(port: int, obj: Any, **kwargs: Any) -> Reply:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    reply, _ = await exchange(port, post_bytes(body, **kwargs))
    assert reply is not None
    return reply


async def assert_healthy(server: RpcServer) -> None:
    """The server still answers, and no connection task is left behind."""
    reply = await post(server.port, {"method": "add", "params": [2, 3], "id": 9})
    assert reply.json() == {"result": 5, "error": None, "id": 9}
    async with asyncio.timeout(2):
        while server.connections:
            await asyncio.sleep(0.01)


async def start_server(recorder: Recorder, **kwargs: Any) -> RpcServer:
    server = RpcServer(
        recorder.methods(),
        port=0,
        credentials=[("nobody", "x"), (USER, PASSWORD)],
        max_body=MAX_BODY,
        **kwargs,
    )
    await server.start()
    return server


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture
async def server(recorder: Recorder) -> AsyncIterator[RpcServer]:
    srv = await start_server(recorder, auth_failure_delay=0.01)
    yield srv
    recorder.blocker.set()
    await srv.stop()
    assert srv.connections == 0


# --- cookie ---------------------------------------------------------------------------


def test_cookie_write_read_delete(tmp_path: Path) -> None:
    user, password = write_cookie(tmp_path)
    path = tmp_path / ".cookie"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert re.fullmatch(r"__cookie__:[0-9a-f]{64}", content)
    assert (user, password) == ("__cookie__", content.split(":", 1)[1])
    assert read_cookie(tmp_path) == (user, password)
    assert not (tmp_path / ".cookie.tmp").exists()

    # A new cookie replaces the old one with a new random password.
    _, password2 = write_cookie(tmp_path)
    assert password2 != password
    assert read_cookie(tmp_path) == ("__cookie__", password2)

    delete_cookie(tmp_path)
    assert not path.exists()
    delete_cookie(tmp_path)  # already gone: no error
    with pytest.raises(FileNotFoundError):
        read_cookie(tmp_path)
    path.write_text("no-separator\n")
    with pytest.raises(ValueError):
        read_cookie(tmp_path)
    path.write_text("u:p:q\r\nsecond line")
    assert read_cookie(tmp_path) == ("u", "p:q")


def test_cookie_never_readable_by_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stale world-readable temp file must not be reused and the umask must not
    # matter: the file is 0600 from the moment it is opened, before the secret is
    # written into it.
    stale = tmp_path / ".cookie.tmp"
    stale.write_text("old")
    stale.chmod(0o644)
    modes_at_open: list[int] = []
    modes_at_write: list[int] = []
    real_open, real_write = os.open, os.write

    def spy_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        modes_at_open.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return fd

    def spy_write(fd: int, data: Any) -> int:
        modes_at_write.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "write", spy_write)
    old_umask = os.umask(0)
    try:
        write_cookie(tmp_path)
    finally:
        os.umask(old_umask)
    assert modes_at_open == [0o600]
    assert modes_at_write and set(modes_at_write) == {0o600}
    assert stat.S_IMODE((tmp_path / ".cookie").stat().st_mode) == 0o600
    assert re.fullmatch(r"__cookie__:[0-9a-f]{64}", (tmp_path / ".cookie").read_text())


async def test_cookie_credentials_authenticate(tmp_path: Path, recorder: Recorder) -> None:
    user, password = write_cookie(tmp_path)
    srv = RpcServer(recorder.methods(), port=0, credentials=[(user, password)])
    await srv.start()
    try:
        assert srv.addresses == [("127.0.0.1", srv.port)]  # default bind: loopback only
        got_user, got_password = read_cookie(tmp_path)
        assert await rpc_call("127.0.0.1", srv.port, got_user, got_password, "add", [1, 2]) == 3
    finally:
        await srv.stop()
    assert srv.addresses == []


# --- authentication -------------------------------------------------------------------


async def test_good_auth_legacy_reply(server: RpcServer) -> None:
    reply = await post(server.port, {"method": "add", "params": [1, 2], "id": 1})
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    # Exact bytes of Core's compact UniValue output, newline-terminated.
    assert reply.body == b'{"result":3,"error":null,"id":1}\n'


@pytest.mark.parametrize(
    "auth",
    [
        None,
        "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode(),
        "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode(),
        "Basic " + base64.b64encode(USER.encode()).decode(),  # no colon
        "Basic !!!not-base64!!!",
        "Bearer " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
        "Basic " + base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode(),
    ],
)
async def test_bad_auth_is_401(server: RpcServer, recorder: Recorder, auth: str | None) -> None:
    reply = await post(server.port, {"method": "notify", "params": [1], "id": 1}, auth=auth)
    assert reply.status == 401
    assert reply.headers["www-authenticate"] == 'Basic realm="jsonrpc"'
    assert reply.body == b""
    assert recorder.notified == []  # the method never ran


async def test_failed_auth_delay_does_not_block_others(recorder: Recorder) -> None:
    srv = await start_server(recorder)  # default 250 ms delay, like Core
    try:
        order: list[str] = []

        async def bad() -> None:
            reply = await post(
                srv.port, {"method": "add", "params": [], "id": 1}, auth="Basic eDp5"
            )
            assert reply.status == 401
            order.append("bad")

        async def good() -> None:
            await asyncio.sleep(0.02)  # let the bad request go first
            reply = await post(srv.port, {"method": "add", "params": [1], "id": 1})
            assert reply.status == 200
            order.append("good")

        await asyncio.gather(bad(), good())
        assert order == ["good", "bad"]
    finally:
        await srv.stop()


# --- JSON-RPC semantics ---------------------------------------------------------------


async def test_jsonrpc2_replies(server: RpcServer) -> None:
    reply = await post(server.port, {"jsonrpc": "2.0", "method": "add", "params": [4], "id": "x"})
    assert reply.status == 200
    assert reply.body == b'{"jsonrpc":"2.0","result":4,"id":"x"}\n'

    reply = await post(server.port, {"jsonrpc": "2.0", "method": "bad_param", "id": 2})
    assert reply.status == 200  # 2.0 errors are not HTTP errors
    assert reply.json() == {
        "jsonrpc": "2.0",
        "error": {"code": RPC_INVALID_PARAMETER, "message": "bad param"},
        "id": 2,
    }

    reply = await post(server.port, {"jsonrpc": "2.0", "method": "nope", "id": 3})
    assert reply.status == 200
    assert reply.json()["error"] == {"code": RPC_METHOD_NOT_FOUND, "message": "Method not found"}

    # "jsonrpc":"1.0" is accepted and means legacy.
    reply = await post(server.port, {"jsonrpc": "1.0", "method": "add", "params": [1], "id": 4})
    assert reply.json() == {"result": 1, "error": None, "id": 4}


async def test_named_params_and_missing_params(server: RpcServer) -> None:
    reply = await post(server.port, {"method": "add", "params": {"a": 2, "b": 5}, "id": 1})
    assert reply.json()["result"] == 7
    reply = await post(server.port, {"method": "echo", "id": 1})
    assert reply.json()["result"] == []
    reply = await post(server.port, {"method": "echo", "params": None, "id": None})
    assert reply.json() == {"result": [], "error": None, "id": None}


async def test_notification(server: RpcServer, recorder: Recorder) -> None:
    reply = await post(server.port, {"jsonrpc": "2.0", "method": "notify", "params": ["n"]})
    assert reply.status == 204
    assert reply.body == b""
    assert "content-length" not in reply.headers
    assert recorder.notified == [["n"]]  # executed even though nothing is returned
    # A 2.0 notification that fails is still not answered.
    reply = await post(server.port, {"jsonrpc": "2.0", "method": "boom"})
    assert reply.status == 204
    # Legacy requests without id are answered, without an "id" member.
    reply = await post(server.port, {"method": "add", "params": [1, 1]})
    assert reply.status == 200
    assert reply.body == b'{"result":2,"error":null}\n'


async def test_method_not_found_legacy(server: RpcServer) -> None:
    reply = await post(server.port, {"method": "nope", "params": [], "id": 7})
    assert reply.status == 404
    assert reply.body == (
        b'{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":7}\n'
    )


async def test_handler_rpc_error_legacy(server: RpcServer) -> None:
    reply = await post(server.port, {"method": "bad_param", "params": [], "id": 1})
    assert reply.status == 500
    assert reply.json() == {
        "result": None,
        "error": {"code": RPC_INVALID_PARAMETER, "message": "bad param"},
        "id": 1,
    }


async def test_handler_exception_is_misc_error_and_logged(
    server: RpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="peerkeeper.rpc"):
        reply = await post(server.port, {"method": "boom", "params": [], "id": 1})
    assert reply.status == 500
    assert reply.json()["error"] == {"code": RPC_MISC_ERROR, "message": "boom"}
    records = [r for r in caplog.records if r.name == "peerkeeper.rpc" and r.exc_info]
    assert records and isinstance(records[0].exc_info[1], ValueError)  # type: ignore[index]

    reply = await post(server.port, {"method": "not_json", "id": 2})
    assert reply.status == 500
    assert reply.json()["error"]["code"] == RPC_MISC_ERROR
    await assert_healthy(server)


async def test_warmup(server: RpcServer) -> None:
    server.set_warmup("Loading block index…")
    reply = await post(server.port, {"method": "add", "params": [1], "id": 1})
    assert reply.json()["error"] == {"code": RPC_IN_WARMUP, "message": "Loading block index…"}
    server.set_warmup(None)
    reply = await post(server.port, {"method": "add", "params": [1], "id": 1})
    assert reply.json()["result"] == 1


async def test_batch(server: RpcServer, recorder: Recorder) -> None:
    batch = [
        {"method": "add", "params": [1, 2], "id": 1},
        {"jsonrpc": "2.0", "method": "add", "params": [3], "id": 2},
        {"jsonrpc": "2.0", "method": "notify", "params": ["b"]},
        5,
        {"jsonrpc": "2.0", "method": "nope", "id": 3},
        {"method": "bad_param", "id": 4},
        {"method": 12, "id": 5},
    ]
    reply = await post(server.port, batch)
    assert reply.status == 200  # batches never carry HTTP errors
    assert reply.json() == [
        {"result": 3, "error": None, "id": 1},
        {"jsonrpc": "2.0", "result": 3, "id": 2},
        {
            "result": None,
            "error": {"code": RPC_INVALID_REQUEST, "message": "Invalid Request object"},
            "id": None,
        },
        {
            "jsonrpc": "2.0",
            "error": {"code": RPC_METHOD_NOT_FOUND, "message": "Method not found"},
            "id": 3,
        },
        {"result": None, "error": {"code": RPC_INVALID_PARAMETER, "message": "bad param"}, "id": 4},
        {
            "result": None,
            "error": {"code": RPC_INVALID_REQUEST, "message": "Method must be a string"},
            "id": 5,
        },
    ]
    assert recorder.notified == [["b"]]

    reply = await post(server.port, [{"jsonrpc": "2.0", "method": "notify", "params": [1]}])
    assert reply.status == 204 and reply.body == b""
    reply = await post(server.port, [])
    assert reply.status == 200 and reply.json() == []


async def test_big_batch_streams_in_order_and_yields(recorder: Recorder) -> None:
    """A batch whose replies pass 256 KiB is streamed (chunked), in order; its calls run
    in slices, so a request on another connection is answered before the batch ends."""
    order: list[str] = []

    async def mark(params: list[Any] | dict[str, Any]) -> Any:
        order.append(str(params[0]) if isinstance(params, list) else "?")
        return "x" * 200  # ~230 bytes per reply: 4,000 replies pass 256 KiB

    srv = RpcServer({"mark": mark}, port=0, credentials=[(USER, PASSWORD)], max_body=1 << 22)
    await srv.start()
    try:
        n = 4000
        body = json.dumps(
            [{"method": "mark", "params": ["batch"], "id": i} for i in range(n)]
            + [{"jsonrpc": "2.0", "method": "mark", "params": ["note"]}]  # no reply
        ).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(post_bytes(body))
        await writer.drain()
        async with asyncio.timeout(10):
            while not order:
                await asyncio.sleep(0)
            other = await asyncio.create_task(
                post(srv.port, {"method": "mark", "params": ["other"], "id": "o"})
            )
            assert other.json()["result"] == "x" * 200
            head = await reader.readuntil(b"\r\n\r\n")
            assert b"Transfer-Encoding: chunked" in head and head.startswith(b"HTTP/1.1 200")
            raw = bytearray()
            while True:  # de-chunk
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                if size == 0:
                    break
                raw += await reader.readexactly(size + 2)
                del raw[-2:]
        writer.close()
        replies = json.loads(raw)
        assert [r["id"] for r in replies] == list(range(n))
        assert all(r == {"result": "x" * 200, "error": None, "id": r["id"]} for r in replies)
        # The other client was served while the batch ran, not after it.
        assert order.index("other") < n
        assert order.count("batch") == n and order[-1] == "note"
    finally:
        await srv.stop()


async def test_batch_parse_error_anywhere_runs_nothing(
    server: RpcServer, recorder: Recorder
) -> None:
    """As Core, a batch is parsed whole first: an error in its last element fails it all."""
    good = [{"jsonrpc": "2.0", "method": "notify", "params": [i]} for i in range(40)]
    body = json.dumps(good).encode()[:-1] + b', {"method": "add", "params": [NaN]}]'
    reply = await post(server.port, body)
    assert reply.status == 500 and reply.json()["error"]["code"] == RPC_PARSE_ERROR
    assert recorder.notified == []
    # Deep nesting inside an element, and a batch that is not closed.
    for bad in (b"[" + b"[" * 1500 + b"]" * 1500 + b"]", b'[{"method": "add"}'):
        reply = await post(server.port, bad)
        assert reply.status == 500 and reply.json()["error"]["code"] == RPC_PARSE_ERROR
    await assert_healthy(server)


@pytest.mark.parametrize(
    ("body", "status", "error", "reply_id"),
    [
        (b"this is not json", 500, (RPC_PARSE_ERROR, "Parse error"), None),
        (b"", 500, (RPC_PARSE_ERROR, "Parse error"), None),
        (
            b'{"method": "add", "params": [NaN], "id": 1}',
            500,
            (RPC_PARSE_ERROR, "Parse error"),
            None,
        ),
        pytest.param(b"[" * 4000, 500, (RPC_PARSE_ERROR, "Parse error"), None, id="deep"),
        (b"\xff\xfe garbage", 500, (RPC_PARSE_ERROR, "Parse error"), None),
        (b"42", 500, (RPC_PARSE_ERROR, "Top-level object parse error"), None),
        (b'{"id": 1}', 400, (RPC_INVALID_REQUEST, "Missing method"), 1),
        (
            b'{"id": 2, "method": "add", "params": "1"}',
            400,
            (RPC_INVALID_REQUEST, "Params must be an array or object"),
            2,
        ),
        (
            b'{"id": 3, "jsonrpc": "3.0", "method": "add"}',
            400,
            (RPC_INVALID_REQUEST, "JSON-RPC version not supported"),
            3,
        ),
        (
            b'{"id": 4, "jsonrpc": 2, "method": "add"}',
            400,
            (RPC_INVALID_REQUEST, "jsonrpc field must be a string"),
            4,
        ),
    ],
)
async def test_bad_json_rpc(
    server: RpcServer, body: bytes, status: int, error: tuple[int, str], reply_id: Any
) -> None:
    reply = await post(server.port, body)
    assert reply.status == status
    assert reply.json() == {
        "result": None,
        "error": {"code": error[0], "message": error[1]},
        "id": reply_id,
    }
    await assert_healthy(server)


async def test_missing_content_length_is_parse_error(server: RpcServer) -> None:
    raw = f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD_AUTH}\r\n\r\n".encode()
    reply, _ = await exchange(server.port, raw)
    assert reply is not None and reply.status == 500
    assert reply.json()["error"]["code"] == RPC_PARSE_ERROR


# --- HTTP layer -----------------------------------------------------------------------


async def test_routing_and_methods(server: RpcServer) -> None:
    reply, closed = await exchange(
        server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", check_closed=True
    )
    assert reply is not None and reply.status == 405
    assert reply.body == b"JSONRPC server handles only POST requests"
    assert not closed  # an ordinary error reply keeps the connection

    reply = await post(server.port, {"method": "add", "id": 1}, path="/wallet/w1")
    assert reply.status == 404 and reply.body == b""
    reply = await post(server.port, {"method": "add", "id": 1}, path="/other")
    assert reply.status == 404

    reply, _ = await exchange(server.port, b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply is not None and reply.status == 405 and reply.body == b""
    reply, _ = await exchange(server.port, b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply is not None and reply.status == 405

    # HEAD: status and headers only, then the connection is reusable.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        async with asyncio.timeout(3):
            writer.write(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 405 ")
            writer.write(post_bytes(b'{"method":"add","params":[6],"id":1}'))
            assert (await read_reply(reader)).json()["result"] == 6
    finally:
        writer.close()
    await assert_healthy(server)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"HELLO\r\n\r\n", 400),
        (b"\x00\x01\x02\xff garbage \xfe\r\n\r\n", 400),
        (b"POST / HTTP/1.1 extra\r\n\r\n", 400),
        (b"POST / HTTP/2.0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nNoColonHere\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\n: empty\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 999999999999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000000\r\n\r\n", 413),
        (f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode(), 413),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + GOOD_AUTH.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + GOOD_AUTH.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY\r\n",
            400,
        ),
        # A chunked body is refused as soon as it grows past the limit (aiohttp reads the
        # chunks; Core refuses at the chunk-size line).
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + GOOD_AUTH.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n"
            + b"x" * (MAX_BODY + 1),
            413,
        ),
    ],
)
async def test_malformed_http_gets_error_and_close(
    server: RpcServer, raw: bytes, status: int
) -> None:
    reply, closed = await exchange(server.port, raw, check_closed=True)
    assert reply is not None
    assert reply.status == status
    assert reply.headers.get("cache-control") == "no-store"
    assert closed
    await assert_healthy(server)


async def test_oversize_body_is_413_before_reading(server: RpcServer) -> None:
    body = b"x" * (MAX_BODY + 1)
    reply, closed = await exchange(server.port, post_bytes(body), check_closed=True)
    assert reply is not None and reply.status == 413
    assert closed
    # Exactly max_body is accepted (and is, here, a parse error).
    reply = await post(server.port, b" " * MAX_BODY)
    assert reply.status == 500 and reply.json()["error"]["code"] == RPC_PARSE_ERROR


async def test_client_disconnecting_mid_request(server: RpcServer) -> None:
    for raw in (
        b"POST / HT",
        post_bytes(b'{"method":"add","params":[1],"id":1}')[:-5],
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        writer.write_eof()  # half-close: the server sees EOF mid-request
        async with asyncio.timeout(2):
            assert await reader.read() == b""  # closed, no reply
        writer.close()
    await assert_healthy(server)


async def test_stalled_requests_are_closed(recorder: Recorder) -> None:
    srv = await start_server(recorder, idle_timeout=0.2)
    try:
        stalls = [
            b"",  # connects and says nothing
            b"POST / HTTP/1.1\r\nHost: x\r\n",  # half the headers
            post_bytes(b'{"method":"add","params":[1],"id":1}')[:-10],  # half the body
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: "
            + GOOD_AUTH.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        ]

        async def stall(raw: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            try:
                writer.write(raw)
                async with asyncio.timeout(3):
                    return await reader.read()  # returns once the server closes
            finally:
                writer.close()

        # Each stalled connection is closed by the server, without a reply.
        assert await asyncio.gather(*(stall(raw) for raw in stalls)) == [b""] * len(stalls)

        # A keep-alive connection serves a request, then is closed when idle.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(post_bytes(b'{"method":"add","params":[1],"id":1}'))
        async with asyncio.timeout(3):
            reply = await read_reply(reader)
            assert reply.json()["result"] == 1
            assert await reader.read() == b""
        writer.close()
        await assert_healthy(srv)
    finally:
        await srv.stop()


async def test_keep_alive_and_pipelining(server: RpcServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        async with asyncio.timeout(3):
            writer.write(post_bytes(b'{"method":"add","params":[1],"id":1}'))
            assert (await read_reply(reader)).json()["result"] == 1
            # Two requests in one write: two replies, in order.
            writer.write(
                post_bytes(b'{"method":"add","params":[2],"id":2}')
                + b"\r\n"  # stray CRLF between requests is tolerated
                + post_bytes(b'{"method":"add","params":[3],"id":3}')
            )
            assert (await read_reply(reader)).json()["id"] == 2
            assert (await read_reply(reader)).json()["id"] == 3
            writer.write(
                post_bytes(b'{"method":"add","params":[4],"id":4}', extra="Connection: close\r\n")
            )
            reply = await read_reply(reader)
            assert reply.json()["result"] == 4
            assert reply.headers["connection"] == "close"
            assert await reader.read() == b""
    finally:
        writer.close()


async def test_http10(server: RpcServer) -> None:
    body = b'{"method":"add","params":[1],"id":1}'
    reply, closed = await exchange(server.port, post_bytes(body, version="1.0"), check_closed=True)
    assert reply is not None and reply.json()["result"] == 1
    assert closed  # HTTP/1.0 closes by default
    reply, closed = await exchange(
        server.port,
        post_bytes(body, version="1.0", extra="Connection: keep-alive\r\n"),
        check_closed=True,
    )
    assert reply is not None and reply.headers["connection"] == "keep-alive"
    assert not closed


async def test_chunked_body_and_expect_continue(server: RpcServer) -> None:
    body = b'{"method":"add","params":[20,22],"id":1}'
    raw = (
        f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD_AUTH}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
        f"{10:x};ext=1\r\n".encode()
        + body[:10]
        + f"\r\n{len(body) - 10:x}\r\n".encode()
        + body[10:]
        + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    reply, _ = await exchange(server.port, raw)
    assert reply is not None and reply.json()["result"] == 42

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        async with asyncio.timeout(3):
            writer.write(post_bytes(body, extra="Expect: 100-continue\r\n")[: -len(body)])
            assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(body)
            assert (await read_reply(reader)).json()["result"] == 42
    finally:
        writer.close()


async def test_stop_cancels_inflight_and_leaks_no_task(recorder: Recorder) -> None:
    srv = await start_server(recorder)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", srv.port)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(post_bytes(b'{"method":"slow","id":1}'))
    async with asyncio.timeout(3):
        await recorder.slow_started.wait()
        assert srv.connections == 2
        await srv.stop()
        assert srv.connections == 0
        assert await reader.read() == b""
        assert await idle_reader.read() == b""
    writer.close()
    idle_writer.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await srv.stop()  # idempotent
    with pytest.raises(ConnectionError):
        await rpc_call("127.0.0.1", srv.port, USER, PASSWORD, "add", [1], timeout=2)


# --- client ---------------------------------------------------------------------------


async def test_rpc_call_round_trip(server: RpcServer) -> None:
    port = server.port
    assert await rpc_call("127.0.0.1", port, USER, PASSWORD, "add", [1, 2, 3]) == 6
    assert await rpc_call("127.0.0.1", port, USER, PASSWORD, "echo", [{"k": [1, "é"]}]) == [
        {"k": [1, "é"]}
    ]
    assert await rpc_call("127.0.0.1", port, USER, PASSWORD, "notify", []) is None

    with pytest.raises(RpcError) as info:
        await rpc_call("127.0.0.1", port, USER, PASSWORD, "bad_param", [])
    assert (info.value.code, info.value.message) == (RPC_INVALID_PARAMETER, "bad param")
    assert not isinstance(info.value, RpcAuthError)

    with pytest.raises(RpcError) as info:
        await rpc_call("127.0.0.1", port, USER, PASSWORD, "nope", [])
    assert info.value.code == RPC_METHOD_NOT_FOUND

    with pytest.raises(RpcError) as info:
        await rpc_call("127.0.0.1", port, USER, PASSWORD, "boom", [])
    assert (info.value.code, str(info.value)) == (RPC_MISC_ERROR, "boom")

    with pytest.raises(RpcAuthError) as auth_info:
        await rpc_call("127.0.0.1", port, USER, "wrong", "add", [1])
    assert auth_info.value.status == 401


async def test_rpc_call_nothing_listening() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound then closed: nothing listens there
    with pytest.raises(ConnectionError):
        await rpc_call("127.0.0.1", port, USER, PASSWORD, "add", [1], timeout=2)


async def test_rpc_call_times_out(recorder: Recorder) -> None:
    srv = await start_server(recorder)
    try:
        with pytest.raises(TimeoutError):
            await rpc_call("127.0.0.1", srv.port, USER, PASSWORD, "slow", [], timeout=0.2)
    finally:
        recorder.blocker.set()
        await srv.stop()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("true", True),
        ("false", False),
        ("null", None),
        ("5", 5),
        ("-1.5", -1.5),
        ('"quoted"', "quoted"),
        ('["a", 1]', ["a", 1]),
        ('{"a": {"b": []}}', {"a": {"b": []}}),
        ("abc", "abc"),
        ("", ""),
        ("1.2.3.4", "1.2.3.4"),
        ("NaN", "NaN"),
        ("1e999", "1e999"),
        ("[1,", "[1,"),
    ],
)
def test_parse_cli_param(arg: str, expected: Any) -> None:
    result = parse_cli_param(arg)
    assert result == expected
    assert type(result) is type(expected)


async def test_work_queue_depth_exceeded_is_503(recorder: Recorder) -> None:
    """Core's -rpcthreads / -rpcworkqueue: one running, one waiting, the next refused."""
    srv = RpcServer(
        recorder.methods(),
        port=0,
        credentials=[(USER, PASSWORD)],
        threads=1,
        work_queue=1,
    )
    await srv.start()
    try:
        slow = asyncio.create_task(post(srv.port, {"method": "slow", "id": 1}))
        await asyncio.wait_for(recorder.slow_started.wait(), 3)
        waiting = asyncio.create_task(post(srv.port, {"method": "add", "params": [2], "id": 2}))
        async with asyncio.timeout(3):
            while srv._waiting == 0:
                await asyncio.sleep(0.005)
        refused, closed = await exchange(
            srv.port, post_bytes(b'{"method":"add","params":[3],"id":3}'), check_closed=True
        )
        assert refused is not None and refused.status == 503 and closed
        assert refused.body == b"Work queue depth exceeded"
        assert refused.headers.get("cache-control") == "no-store"
        recorder.blocker.set()
        assert (await slow).json()["result"] == "done"
        assert (await waiting).json()["result"] == 2  # the queued one ran after
    finally:
        recorder.blocker.set()
        await srv.stop()


async def test_header_limits_and_error_replies_as_core(server: RpcServer) -> None:
    """Core's 8 KiB of header lines (src/httpserver.h MAX_HEADERS_SIZE), counted in total
    not per line, and its "HTTP/1.1 400" even for a request it cannot parse (Core's
    interface_http.py checks both)."""

    def lines(n: int) -> bytes:
        return b"".join(b"header_%04d: foo\r\n" % i for i in range(n))

    ok, _ = await exchange(server.port, b"GET /x HTTP/1.1\r\nHost: x\r\n" + lines(399) + b"\r\n")
    assert ok is not None and ok.status == 404
    big, closed = await exchange(
        server.port, b"GET /x HTTP/1.1\r\nHost: x\r\n" + lines(455) + b"\r\n", check_closed=True
    )
    assert big is not None and big.status == 400 and closed
    for raw in (
        b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n",
        b"GET / \r\n\r\n",
        b"GET /safe\x00/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(raw)
        async with asyncio.timeout(3):
            assert (await reader.read(100)).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()
    # Header lines that never end: refused while they arrive, not after.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    with contextlib.suppress(ConnectionError):
        for i in range(400):
            writer.write(b"x-%04d: %s\r\n" % (i, b"y" * 100))
            await writer.drain()
    async with asyncio.timeout(3):
        assert (await reader.read(100)).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert await reader.read() == b""
    writer.close()
    await assert_healthy(server)
