"""The console commands: `peerkeeper node` as a real process, driven by `peerkeeper rpc`."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
import time
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from support import free_port

from peerkeeper.daemon.cli import build_parser, config_from_args, main
from peerkeeper.daemon.config import ConfigError, read_conf_file

pytestmark = pytest.mark.timeout(60)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerkeeper.daemon.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``peerkeeper ARGS`` run by ``main`` in this process: what :func:`cli` returns, without
    the interpreter start and imports (a third of a second) a process pays for each call."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's exits
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess(["peerkeeper", *args], code, out.getvalue(), err.getvalue())


def test_node_and_rpc_processes(tmp_path: Path) -> None:
    p2p, rpcport = free_port(), free_port()
    node = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.daemon.cli", "node", "--chain", "regtest", "--datadir", str(tmp_path),
         "--bind", f"127.0.0.1:{p2p}", "--rpcport", str(rpcport), "--debug", "net"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        cookie = tmp_path / "regtest" / ".cookie"
        deadline = time.monotonic() + 20
        while not cookie.exists():
            assert node.poll() is None, node.stderr.read() if node.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert cookie.stat().st_mode & 0o777 == 0o600
        common = ["--chain", "regtest", "--datadir", str(tmp_path), "--rpcport", str(rpcport)]
        info = cli("rpc", *common, "getnetworkinfo")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["subversion"] == "/peerkeeper:0.1.0/"
        # The other calls run the same entry point in this process (the one above is a
        # real `peerkeeper rpc` process).
        count = cli_in_process("rpc", *common, "getconnectioncount")
        assert count.returncode == 0 and count.stdout.strip() == "0"
        bad = cli_in_process("rpc", *common, "disconnectnode", "1.2.3.4:8333")
        assert bad.returncode == 1 and "error code: -29" in bad.stderr
        wrong = cli_in_process(
            "rpc", *common, "--rpcuser", "x", "--rpcpassword", "y", "getconnectioncount"
        )
        assert wrong.returncode == 1
        stop = cli_in_process("rpc", *common, "stop")
        assert stop.stdout.strip() == "peerkeeper stopping"
        assert node.wait(timeout=20) == 0
        assert not cookie.exists()
        # Core's debug.log: <datadir>/<chain>/debug.log, the same lines on the console;
        # an info line has no category, a debug line of -debug=net says [net].
        assert node.stderr is not None
        console = node.stderr.read()
        logged = (tmp_path / "regtest" / "debug.log").read_text()
        started = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ peerkeeper \S+ started", re.M)
        assert started.search(logged) and started.search(console)
        assert re.search(r"Z \[net\] ", logged)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()


def test_rpc_without_node_fails_cleanly(tmp_path: Path) -> None:
    r = cli("rpc", "--chain", "regtest", "--datadir", str(tmp_path), "getpeerinfo")
    assert r.returncode == 1 and "cookie" in r.stderr


def test_conf_file_and_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "bitcoin.conf"
    conf.write_text(
        "regtest=1\nmaxconnections=50\naddnode=1.2.3.4\n[regtest]\nport=19000\n[main]\nport=1\n"
    )
    args = build_parser().parse_args(
        ["node", "--conf", str(conf), "--addnode", "5.6.7.8", "--datadir", str(tmp_path)]
    )
    cfg = config_from_args(args)
    assert (cfg.chain, cfg.maxconnections, cfg.p2p_port, cfg.rpc_port) == (
        "regtest",
        50,
        19000,
        18443,
    )
    assert cfg.addnode == ["5.6.7.8"]  # the command line wins
    assert cfg.chain_datadir == tmp_path / "regtest"
    conf.write_text("maxconnections=lots\n")
    with pytest.raises(ConfigError, match="maxconnections"):
        read_conf_file(conf, "main")


def test_connect_turns_listening_off_by_default(tmp_path: Path) -> None:
    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["node", "--regtest", "--connect", "127.0.0.1:1"]))
    assert not cfg.listening
    cfg = config_from_args(
        parser.parse_args(["node", "--regtest", "--connect", "127.0.0.1:1", "--listen", "1"])
    )
    assert cfg.listening
    with pytest.raises(ConfigError):
        config_from_args(parser.parse_args(["node", "--regtest", "--port", "70000"]))


def test_native_node_and_pool_rpcs(tmp_path: Path) -> None:
    """Two `peerkeeper node --protocol native` processes; pool RPCs over `peerkeeper rpc`."""
    procs: list[subprocess.Popen[str]] = []
    ports = [(free_port(), free_port()) for _ in range(2)]
    web_port = free_port()
    eventlog = tmp_path / "events.jsonl"
    try:
        for i, (p2p, rpcport) in enumerate(ports):
            # Node 1 also serves -web (metrics, pool events) and writes an event log.
            extra = ["--web", str(web_port), "--eventlog", str(eventlog)] if i else []
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "peerkeeper.daemon.cli",
                        "node",
                        "--protocol",
                        "native",
                        "--datadir",
                        str(tmp_path / f"n{i}"),
                        "--bind",
                        f"127.0.0.1:{p2p}",
                        "--rpcport",
                        str(rpcport),
                        "--expected-pow",
                        "4",
                        "--connections",
                        "2",
                        *extra,
                    ],
                    stderr=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
            )
        for i, proc in enumerate(procs):
            cookie = tmp_path / f"n{i}" / "native" / ".cookie"
            deadline = time.monotonic() + 20
            while not cookie.exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        ident = tmp_path / "n1" / "native" / "identity.json"
        assert ident.stat().st_mode & 0o777 == 0o600

        def rpc(i: int, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
            """`peerkeeper rpc` on node ``i``: a real process when ``process``, else the same
            entry point run in this process (no interpreter start per call)."""
            common = ["--protocol", "native", "--datadir", str(tmp_path / f"n{i}")]
            run = cli if process else cli_in_process
            return run("rpc", *common, "--rpcport", str(ports[i][1]), *args)

        info1 = json.loads(rpc(1, "getnodeinfo", process=True).stdout)
        assert info1["peer_id"].startswith("id") and info1["limits"]["expected"] == 2
        peer = rpc(0, "connect", f"127.0.0.1:{ports[1][0]}")
        assert peer.returncode == 0, peer.stderr
        assert peer.stdout.strip() == info1["peer_id"]
        peers = json.loads(rpc(0, "listpeers").stdout)
        assert [(p["peer_id"], p["state"]) for p in peers] == [(info1["peer_id"], "running")]
        points = json.loads(rpc(0, "listpoints").stdout)
        assert {p["point"]: p["state"] for p in points} == {f"127.0.0.1:{ports[1][0]}": "running"}
        assert rpc(0, "trust", "10.0.0.1:9732").returncode == 0
        trusted = [p for p in json.loads(rpc(0, "listpoints").stdout) if p["trusted"]]
        assert [p["point"] for p in trusted] == ["10.0.0.1:9732"]
        bad = rpc(0, "greylist", "10.0.0.1")
        assert bad.returncode == 1 and "never greylisted" in bad.stderr
        assert rpc(0, "untrust", "10.0.0.1:9732").returncode == 0
        assert rpc(0, "greylist", "10.0.0.1").returncode == 0
        assert rpc(0, "greylist", info1["peer_id"]).returncode == 0
        grey = json.loads(rpc(0, "greylist").stdout)
        assert "10.0.0.1" in grey["addresses"] and grey["peer_ids"] == [info1["peer_id"]]
        assert json.loads(rpc(0, "getconnectioncount").stdout) == 0  # greylisting closed it
        assert rpc(0, "greylist", "clear").returncode == 0
        assert json.loads(rpc(0, "greylist").stdout)["peer_ids"] == []
        assert rpc(0, "nosuchmethod").returncode == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert "peerkeeper_pool_points{" in metrics and "peerkeeper_pool_swaps_total" in metrics
        for i, proc in enumerate(procs):
            assert rpc(i, "stop").stdout.strip() == "peerkeeper stopping"
            assert proc.wait(timeout=20) == 0
        saved = json.loads((tmp_path / "n0" / "native" / "peers.json").read_text())
        assert [p["peer_id"] for p in saved] == [info1["peer_id"]]
        logged = [json.loads(line)["event"] for line in eventlog.read_text().splitlines()]
        assert "pool:connection_accepted" in logged or "pool:connection_established" in logged
        assert all(name.startswith("pool:") for name in logged)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


async def test_netinfo_getinfo_addrinfo_help_and_named(tmp_path: Path) -> None:
    """bitcoin-cli's client-side reports against a node with two peers (one v2, one v1)."""
    from support import handshaken, port_of, running, wait_until

    rpcport = free_port()
    async with (
        running(tmp_path, "a", server=True, rpcport=rpcport) as a,
        running(tmp_path, "b") as b,
        running(tmp_path, "c", v2transport=False) as c,
    ):
        for p in (b, c):
            p.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        await wait_until(lambda: handshaken(a, 2))
        common = ["--chain", "regtest", "--datadir", str(tmp_path / "a"), "--rpcport", str(rpcport)]

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(cli_in_process, *args)

        r = await run("rpc", *common, "-netinfo", "4")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert (
            lines[0]
            == "peerkeeper client v0.1.0 regtest - server 70016/peerkeeper:0.1.0/ - services 2"
        )
        columns = "<-> type net serv v mping ping send recv txn blk hb addrp addrl age id address"
        assert lines[2].split() == [*columns.split(), "version"]
        rows = [line.split() for line in lines[3:5]]
        assert [row[0] for row in rows] == ["in", "in"]
        assert sorted(row[-1] for row in rows) == ["70016/peerkeeper:0.1.0/"] * 2
        assert {
            line.split()[0]: line.split()[1:]
            for line in lines
            if line[:5] in ("in   ", "out  ", "total")
        } == {
            "in": ["0", "0", "2", "2"],
            "out": ["0", "0", "0", "0", "0"],
            "total": ["0", "0", "2", "2"],
        }
        assert "Local addresses: n/a" in lines
        level0 = await run("netinfo", *common)
        assert "Local services: p2p v2" in level0.stdout and "<->" not in level0.stdout
        bad = await run("rpc", *common, "-netinfo", "9x")
        assert bad.returncode == 1
        assert "invalid -netinfo level argument: 9x" in bad.stderr
        assert await a.rpc_methods()["getconnectioncount"]([]) == 2  # the node is untouched
        helped = await run("rpc", *common, "-netinfo", "help")
        assert helped.returncode == 0 and helped.stdout.startswith("-netinfo (level [outonly])")

        info = await run("rpc", *common, "-getinfo")
        assert "Chain: regtest" in info.stdout and "Network: in 2, out 0, total 2" in info.stdout
        assert (await run("rpc", *common, "-getinfo", "x")).returncode == 1
        addrinfo = await run("rpc", *common, "-addrinfo")
        assert json.loads(addrinfo.stdout)["addresses_known"]["total"] == 0

        named = await run("rpc", *common, "-named", "getnodeaddresses", "count=0", "network=ipv4")
        assert named.returncode == 0 and json.loads(named.stdout) == []
        helptext = await run("rpc", *common, "help", "addnode")
        assert helptext.stdout.startswith('addnode "node" "command" ( v2transport )\n')
        assert "Arguments:" in helptext.stdout and "> peerkeeper rpc addnode" in helptext.stdout


def test_rpc_help_lists_the_methods() -> None:
    r = cli_in_process("rpc", "--help")
    assert r.returncode == 0
    for line in ("== Network ==", "getpeerinfo", 'addnode "node" "command" ( v2transport )'):
        assert line in r.stdout
    for flag in ("-netinfo", "-getinfo", "-addrinfo", "-rpcwait", "-named"):
        assert flag in r.stdout


def test_rpcwait_waits_for_the_node(tmp_path: Path) -> None:
    """-rpcwait retries while nothing listens (and no cookie exists), then answers."""
    p2p, rpcport = free_port(), free_port()
    common = ["--chain", "regtest", "--datadir", str(tmp_path), "--rpcport", str(rpcport)]
    no_wait = cli_in_process("rpc", *common, "getconnectioncount")
    assert no_wait.returncode == 1
    waiting = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.daemon.cli", "rpc", *common, "-rpcwait",
         "-rpcwaittimeout", "40", "getconnectioncount"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    node = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.daemon.cli", "node", *common, "--bind",
         f"127.0.0.1:{p2p}", "--printtoconsole", "0"],
    )  # fmt: skip
    try:
        out, err = waiting.communicate(timeout=45)
        assert waiting.returncode == 0, err
        assert out.strip() == "0"
        timed_out = cli_in_process(
            "rpc", "--chain", "regtest", "--datadir", str(tmp_path / "none"), "--rpcport",
            str(free_port()), "-rpcwait", "-rpcwaittimeout", "1", "getconnectioncount",
        )  # fmt: skip
        assert timed_out.returncode == 1 and "timeout on transient error" in timed_out.stderr
    finally:
        for proc in (waiting, node):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
