"""The console commands: `peerkeeper node` as a real process, driven by `peerkeeper rpc`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peerkeeper.cli import build_parser, config_from_args
from peerkeeper.config import ConfigError, read_conf_file

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peerkeeper.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_node_and_rpc_processes(tmp_path: Path) -> None:
    p2p, rpcport = free_port(), free_port()
    node = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.cli", "node", "--chain", "regtest", "--datadir", str(tmp_path),
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
        count = cli("rpc", *common, "getconnectioncount")
        assert count.stdout.strip() == "0"
        bad = cli("rpc", *common, "disconnectnode", "1.2.3.4:8333")
        assert bad.returncode == 1 and "error code: -29" in bad.stderr
        wrong = cli("rpc", *common, "--rpcuser", "x", "--rpcpassword", "y", "getconnectioncount")
        assert wrong.returncode == 1
        stop = cli("rpc", *common, "stop")
        assert stop.stdout.strip() == "peerkeeper stopping"
        assert node.wait(timeout=20) == 0
        assert not cookie.exists()
        assert node.stderr is not None and "[node]" in node.stderr.read()
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
