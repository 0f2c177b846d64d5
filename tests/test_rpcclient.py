"""The light ``peerkeeper rpc`` (daemon/rpcclient.py through daemon/entry.py): the same
text and exit status as the full CLI, Core's conf file and cookie, bitcoin-cli's reply
handling, and no node, aiohttp or asyncio imported for a plain call."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from support import free_port, running

from peerkeeper.daemon import cli, entry, rpcclient
from peerkeeper.daemon.rpc import RpcError, rpc_call
from peerkeeper.net.chains import CHAINS

pytestmark = pytest.mark.timeout(60)


def capture(main: Any, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def light(*args: str) -> tuple[int, str, str]:
    """``peerkeeper rpc ARGS`` by the light client, which must not hand them on."""
    got = capture(rpcclient.main, list(args))
    assert got[0] is not None, f"left to the full parser: {args}"
    return got


def via_entry(*args: str) -> tuple[int, str, str]:
    """``peerkeeper rpc ARGS`` by the console script's entry point."""
    return capture(entry.main, ["rpc", *args])


def full(*args: str) -> tuple[int, str, str]:
    """``peerkeeper rpc ARGS`` by the full CLI's parser."""
    return capture(cli.main, ["rpc", *args])


def test_rpc_port_table_matches_the_chains() -> None:
    assert {name: c.rpc_port for name, c in CHAINS.items()} == rpcclient.CHAIN_RPC_PORTS


async def test_same_text_and_status_as_the_full_cli(tmp_path: Path) -> None:
    rpcport = free_port()
    async with running(tmp_path, "a", server=True, rpcport=rpcport):
        common = ["--regtest", f"--datadir={tmp_path / 'a'}", "--rpcport", str(rpcport)]
        for argv in (
            ["getconnectioncount"],
            ["getnetworktotals"],  # no such method
            ["help", "getconnectioncount"],  # a string result, printed raw
            ["getnodeaddresses", "0"],
            ["-named", "getnodeaddresses", "count=0", "network=ipv4"],
            ["disconnectnode", "1.2.3.4:8333"],  # an error reply
            ["--rpcuser", "x", "--rpcpassword", "y", "getconnectioncount"],  # 401
            ["getnodeaddresses", "-1"],  # a negative number stays an argument
        ):
            got = await asyncio.to_thread(light, *common, *argv)
            assert got == await asyncio.to_thread(full, *common, *argv), argv
        code, out, _ = await asyncio.to_thread(light, *common, "getconnectioncount")
        assert (code, out) == (0, "0\n")
        code, _, err = await asyncio.to_thread(light, *common, "getnetworktotals")
        assert (code, err) == (1, "error code: -32601\nerror message:\nMethod not found\n")


def test_errors_without_a_node(tmp_path: Path) -> None:
    port = free_port()
    refused = ["--regtest", f"--datadir={tmp_path}", "--rpcport", str(port)]
    (tmp_path / "regtest").mkdir()
    (tmp_path / "regtest" / ".cookie").write_text("__cookie__:abc")
    for argv in (
        [*refused, "getconnectioncount"],
        ["--regtest", f"--datadir={tmp_path / 'none'}", "getconnectioncount"],
        [*refused, "-rpcwait", "-rpcwaittimeout", "1", "uptime"],
        ["--rpcport", "70000", "uptime"],
    ):
        got = light(*argv)
        assert got[0] == 1 and got == full(*argv), argv
    code, _, err = light(*refused, "getconnectioncount")
    assert f"Could not connect to the server 127.0.0.1:{port}" in err
    assert err.endswith("Make sure the peerkeeper node is running and that you are connecting"
                        " to the correct RPC port.\n")  # fmt: skip
    _, _, err = light("--regtest", f"--datadir={tmp_path / 'none'}", "uptime")
    assert f"cannot read the RPC cookie in {tmp_path / 'none' / 'regtest'}" in err
    _, _, err = light(*refused, "-rpcwait", "-rpcwaittimeout", "1", "uptime")
    assert "timeout on transient error" in err


def test_what_the_light_client_leaves_to_the_full_parser() -> None:
    for argv in (["--help"], ["-getinfo"], ["-netinfo", "2"], ["-addrinfo"], [], ["--bogus"]):
        assert rpcclient.main(argv) is None, argv
    code, out, _ = via_entry("--help")
    assert code == 0 and "getpeerinfo" in out  # the full parser's method list
    code, _, err = via_entry()
    assert code == 1 and "too few parameters" in err


async def test_a_plain_call_imports_no_node_aiohttp_or_asyncio(tmp_path: Path) -> None:
    rpcport = free_port()
    script = (
        "import sys\n"
        "from peerkeeper.daemon.entry import main\n"
        f"code = main(['rpc', '--regtest', '--datadir', {str(tmp_path / 'a')!r}, '--rpcport',"
        f" '{rpcport}', 'getconnectioncount'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'asyncio')"
        " or m in ('peerkeeper.daemon.cli', 'peerkeeper.daemon.node', 'peerkeeper.daemon.rpc'))\n"
        "print(code, heavy)\n"
    )
    async with running(tmp_path, "a", server=True, rpcport=rpcport):
        r = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["0", "0 []"]


async def test_conf_file_port_credentials_and_host(tmp_path: Path) -> None:
    """bitcoin-cli's conf: rpcport, rpcuser/rpcpassword and rpcconnect from
    <datadir>/bitcoin.conf, the chain from its top section, [regtest] and regtest.key."""
    rpcport = free_port()
    client = tmp_path / "client"
    client.mkdir()
    conf = client / "bitcoin.conf"
    conf.write_text(
        "regtest=1\nrpcconnect=10.0.0.1\n[main]\nrpcport=1\n[regtest]\n"
        f"rpcport={rpcport}\nrpcuser=alice\nregtest.rpcpassword=secret\nrpcconnect=127.0.0.1\n"
    )
    async with running(
        tmp_path, "node", server=True, rpcport=rpcport, rpcuser="alice", rpcpassword="secret"
    ):
        for main in (light, full):
            code, out, err = await asyncio.to_thread(
                main, f"--datadir={client}", "getconnectioncount"
            )
            assert (code, out) == (0, "0\n"), err
        # rpcconnect=HOST:PORT gives the port when no rpcport is set.
        conf.write_text(f"rpcconnect=127.0.0.1:{rpcport}\nrpcuser=alice\nrpcpassword=secret\n")
        code, out, err = await asyncio.to_thread(light, f"--datadir={client}", "uptime")
        assert code == 0, err
    parser = cli.build_parser()
    conf.write_text("[regtest]\nrpcport=5\n")
    target = rpcclient.resolve_target(
        parser.parse_args(["rpc", f"--datadir={client}", "--regtest", "--rpcport", "6", "x"])
    )
    assert (target.host, target.port) == ("127.0.0.1", 6)  # the command line wins
    target = rpcclient.resolve_target(parser.parse_args(["rpc", f"--datadir={client}", "x"]))
    assert (target.port, target.cookie_dir) == (8332, client)  # main: [regtest] not read
    conf.write_text("regtest=1\nrpcport=lots\n")
    code, _, err = light(f"--datadir={client}", "uptime")
    assert code == 1 and f"{conf}:2: bad value for rpcport" in err
    target = rpcclient.resolve_target(
        parser.parse_args(["rpc", "--protocol", "native", f"--datadir={client}", "x"])
    )
    assert (target.port, target.cookie_dir) == (8732, client / "native")


def test_split_host_port() -> None:
    split = rpcclient._split_host_port
    assert split("127.0.0.1") == ("127.0.0.1", None)
    assert split("127.0.0.1:18443") == ("127.0.0.1", 18443)
    assert split("::1") == ("::1", None)
    assert split("[::1]:18443") == ("::1", 18443)
    assert split("[::1]") == ("::1", None)


# -- bitcoin-cli's reply handling, against a scripted HTTP server ---------------------------------


class _Script(BaseHTTPRequestHandler):
    replies: list[tuple[int, bytes]] = []
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append({"auth": self.headers["Authorization"], "body": json.loads(body)})
        status, data = type(self).replies.pop(0) if type(self).replies else (200, b"")
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def scripted(*replies: tuple[int, bytes]) -> Iterator[int]:
    _Script.replies = list(replies)
    _Script.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _light_call(port: int) -> Any:
    return rpcclient.call_rpc("127.0.0.1", port, "u", "p", "m", [1, "a"], 10)


@pytest.mark.parametrize(
    ("status", "data", "message"),
    [
        (401, b"", "Authorization failed: Incorrect rpcuser or rpcpassword were specified."),
        (503, b"busy", "Server response: busy"),
        (418, b"{}", "server returned HTTP error 418"),
        (200, b"", "no response from server"),
        (200, b"{not json", "couldn't parse reply from server"),
        (200, b'{"result": NaN}', "couldn't parse reply from server"),
        (200, b"[]", "expected reply to have result, error and id properties"),
        (500, b'{"result":null,"error":{"code":-8,"message":"bad"},"id":1}', "bad"),
    ],
)
def test_replies_as_bitcoin_cli_and_the_aiohttp_client(
    status: int, data: bytes, message: str
) -> None:
    with scripted((status, data), (status, data)) as port:
        with pytest.raises(rpcclient.RpcReplyError) as light_error:
            _light_call(port)
        with pytest.raises(RpcError) as aiohttp_error:
            asyncio.run(rpc_call("127.0.0.1", port, "u", "p", "m", [1, "a"], 10))
    assert light_error.value.message == aiohttp_error.value.message == message
    assert light_error.value.code == aiohttp_error.value.code
    sent = _Script.seen[0]
    assert sent["body"] == {"method": "m", "params": [1, "a"], "id": 1}
    assert sent["auth"] == "Basic dTpw"  # u:p


def test_rpcwait_retries_through_the_warmup() -> None:
    warmup = b'{"result":null,"error":{"code":-28,"message":"Loading"},"id":1}'
    ok = b'{"result":7,"error":null,"id":1}'
    with scripted((500, warmup), (500, warmup), (200, ok)) as port:
        target = rpcclient.RpcTarget("127.0.0.1", port, Path("."), "u", "p")
        sleeps: list[float] = []
        caller = rpcclient.RpcCaller(target, wait=True, sleep=sleeps.append)
        assert caller("uptime", []) == 7 and sleeps == [1.0, 1.0]
    with scripted((500, warmup)) as port:
        target = rpcclient.RpcTarget("127.0.0.1", port, Path("."), "u", "p")
        with pytest.raises(rpcclient.RpcReplyError, match="Loading"):
            rpcclient.RpcCaller(target)("uptime", [])  # no -rpcwait: the error as it is
