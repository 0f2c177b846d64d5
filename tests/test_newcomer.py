"""What a newcomer trips over: the conf file in the datadir, busy ports, the startup
summary, native nodes that advertise, log and redial, exports from an empty datadir,
the gossip demo with 2 nodes, and jargon in the help texts."""

from __future__ import annotations

import argparse
import io
import json
import logging
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from support import free_port, native_identity, running, wait_until

from peerkeeper.daemon import rpcclient
from peerkeeper.daemon.cli import build_parser, config_from_args, main, startup_summary
from peerkeeper.daemon.config import ConfigError
from peerkeeper.daemon.gossipdemo import run_gossip_demo
from peerkeeper.daemon.nativecli import native_config
from peerkeeper.net.netaddr import Service
from peerkeeper.shell.nativenode import NativeNode

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[1]


def run_main(*args: str) -> tuple[int, str, str]:
    """``peerkeeper ARGS`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def entry(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    """The ``peerkeeper`` console script's entry point as a process."""
    return subprocess.run(
        [sys.executable, "-m", "peerkeeper.daemon.entry", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def held_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


# -- the configuration file and the option forms -----------------------------------------------


def test_node_and_rpc_read_bitcoin_conf_in_the_datadir(tmp_path: Path) -> None:
    (tmp_path / "bitcoin.conf").write_text(
        "regtest=1\nmaxconnections=30\n[regtest]\nport=19001\nrpcport=19002\n"
        "rpcuser=alice\nrpcpassword=secret\n[main]\nrpcport=1\n"
    )
    parser = build_parser()
    cfg = config_from_args(parser.parse_args(["node", f"--datadir={tmp_path}"]))
    assert (cfg.chain, cfg.p2p_port, cfg.rpc_port, cfg.maxconnections) == (
        "regtest",
        19001,
        19002,
        30,
    )
    cfg = config_from_args(parser.parse_args(["node", "--datadir", str(tmp_path), "--port", "5"]))
    assert cfg.p2p_port == 5  # the command line wins
    target = rpcclient.resolve_target(
        parser.parse_args(["rpc", f"--datadir={tmp_path}", "getconnectioncount"])
    )
    assert (target.port, target.user, target.password) == (19002, "alice", "secret")
    assert target.cookie_dir == tmp_path / "regtest"
    # --conf names another file; a missing one is an error naming it, not a traceback.
    missing = tmp_path / "nope.conf"
    with pytest.raises(ConfigError, match="nope.conf"):
        config_from_args(parser.parse_args(["node", "--conf", str(missing)]))
    code, _, err = run_main("export-peers-dat", "--conf", str(missing), str(tmp_path / "o.dat"))
    assert code == 1 and "nope.conf" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "command",
    [
        ["rpc", "getconnectioncount"],
        ["netinfo"],
        ["import-peers-dat", "f"],
        ["export-peers-dat", "f"],
        ["export-peers-json", "f"],
        ["import-banlist", "f"],
        ["export-banlist", "f"],
        ["import-anchors-dat", "f"],
        ["export-anchors-dat", "f"],
        ["node"],
    ],
)
def test_regtest_and_equals_forms(command: list[str], tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [command[0], "--regtest", f"--datadir={tmp_path}", *command[1:]]
    )
    assert args.regtest and args.datadir == tmp_path


def test_no_seed_jargon_in_help_or_readme() -> None:
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        assert isinstance(action, argparse._SubParsersAction)
        texts += [p.format_help() for p in action.choices.values()]
    texts.append((ROOT / "README.md").read_text())
    for text in texts:
        assert "seed 00" not in text


# -- busy ports and the startup summary ----------------------------------------------------------


def test_startup_summary_and_busy_ports(tmp_path: Path) -> None:
    """A node says what it will do; a second one on its ports says which port is taken."""
    p2p, rpcport = free_port(), free_port()
    first = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.daemon.entry", "node", "--regtest",
         f"--datadir={tmp_path / 'a'}", "--bind", f"127.0.0.1:{p2p}", "--rpcport", str(rpcport),
         "--addnode", f"127.0.0.1:{free_port()}", "--printtoconsole", "0"],
    )  # fmt: skip
    try:
        log_file = tmp_path / "a" / "regtest" / "debug.log"
        deadline = time.monotonic() + 30
        # The summary is written once the node has started (after its cookie): wait for
        # its last line, not for the cookie.
        while not (log_file.exists() and "running until Ctrl-C" in log_file.read_text()):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        logged = log_file.read_text()
        for words in (
            f"listening for peers on 127.0.0.1:{p2p}",
            "when it runs low: no seeds",
            "(--addnode)",
            f"RPC on 127.0.0.1:{rpcport}",
            f"data directory {tmp_path / 'a' / 'regtest'}",
            "running until Ctrl-C",
        ):
            assert words in logged, words
        common = ["node", "--regtest", f"--datadir={tmp_path / 'b'}", "--printtoconsole", "0"]
        busy = entry(*common, "--bind", f"127.0.0.1:{p2p}", "--rpcport", str(free_port()))
        assert busy.returncode == 1 and "Traceback" not in busy.stderr
        assert (
            f"Error: P2P port {p2p} on 127.0.0.1 is in use (another node running?): "
            "choose another with --port or --bind"
        ) in busy.stderr
        busy = entry(*common, "--bind", f"127.0.0.1:{free_port()}", "--rpcport", str(rpcport))
        assert busy.returncode == 1 and "Traceback" not in busy.stderr
        assert f"Error: RPC port {rpcport} on 127.0.0.1 is in use" in busy.stderr
        assert "--rpcport" in busy.stderr
        stop = entry(
            "rpc", "--regtest", f"--datadir={tmp_path / 'a'}", "--rpcport", str(rpcport), "stop"
        )
        assert stop.returncode == 0, stop.stderr
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_native_busy_ports_name_the_port(tmp_path: Path) -> None:
    common = ["node", "--protocol", "native", "--datadir", str(tmp_path), "--expected-pow", "4"]
    with held_port() as busy:
        r = entry(*common, "--bind", f"127.0.0.1:{busy}", "--rpcport", str(free_port()))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"P2P port {busy} on 127.0.0.1 is in use" in r.stderr and "--port" in r.stderr
        r = entry(*common, "--bind", f"127.0.0.1:{free_port()}", "--rpcport", str(busy))
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"RPC port {busy} on 127.0.0.1 is in use" in r.stderr and "--rpcport" in r.stderr
    assert not (tmp_path / "native" / ".cookie").exists()


async def test_startup_summary_of_a_connect_node(tmp_path: Path) -> None:
    async with running(tmp_path, "a", server=True, rpcport=free_port()) as a:
        a.config.connect = ["127.0.0.1:1"]
        lines = startup_summary(a, a.config)
    assert any(line.startswith("dialling only 127.0.0.1:1 (--connect)") for line in lines)
    assert any(line.startswith(f"RPC on 127.0.0.1:{a.config.rpcport}") for line in lines)


# -- native nodes ----------------------------------------------------------------------------------


def _native(tmp: Path, name: str, *extra: str) -> NativeNode:
    args = build_parser().parse_args(
        ["node", "--protocol", "native", "--datadir", str(tmp / name), "--bind", "127.0.0.1:0",
         "--expected-pow", "4", *extra]
    )  # fmt: skip
    return NativeNode(native_config(args), identity=native_identity(40 + len(name)))


async def test_native_bind_port_is_the_advertised_port(tmp_path: Path) -> None:
    a = _native(tmp_path, "a")
    await a.start()
    try:
        a_port = a.listening[0][1]
        b = _native(tmp_path, "bb", "--peer", f"127.0.0.1:{a_port}")
        await b.start()
        try:
            b_port = b.listening[0][1]
            assert b.core is not None and b.core.listen_port == b_port
            await wait_until(lambda: len(a.running()) == 1)
            # A learnt from the handshake where B listens: the port B is bound to.
            point = a.running()[0].current_point
            assert point is not None and point.port == b_port
        finally:
            await b.stop()
    finally:
        await a.stop()


async def test_native_refused_dial_is_logged_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = _native(tmp_path, "a")
    await a.start()
    try:
        with caplog.at_level(logging.INFO, logger="peerkeeper.native"):
            port = free_port()
            assert await a.connect(Service.parse(f"127.0.0.1:{port}", port)) is None
        assert any(
            f"127.0.0.1:{port}" in r.getMessage() and "Connection refused" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
    finally:
        await a.stop()


async def test_restarted_native_node_dials_its_peer_at_once(tmp_path: Path) -> None:
    """Before: the restarted node waited out the 60 s back-off its own shutdown set."""
    a = _native(tmp_path, "a")
    await a.start()
    try:
        peer = f"127.0.0.1:{a.listening[0][1]}"
        b = _native(tmp_path, "bb", "--peer", peer)
        await b.start()
        await wait_until(lambda: len(b.running()) == 1)
        await b.stop()
        await wait_until(lambda: not a.running())
        again = _native(tmp_path, "bb", "--peer", peer)
        await again.start()
        try:
            await wait_until(lambda: len(again.running()) == 1, timeout=10)
        finally:
            await again.stop()
    finally:
        await a.stop()


# -- import / export ----------------------------------------------------------------------------


def test_export_from_an_empty_datadir_or_another_chain_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out.dat"
    for command in ("export-peers-dat", "export-peers-json"):
        code, stdout, err = run_main(command, "--regtest", f"--datadir={tmp_path / 'd'}", str(out))
        assert code == 1 and stdout == "" and not out.exists()
        assert err.strip() == (
            f"Error: no address book in {tmp_path / 'd' / 'regtest' / 'peerkeeper.sqlite'} "
            "(has a node run with this --datadir and --chain?)"
        )
    assert not (tmp_path / "d").exists()  # nothing made on the way
    for command in ("export-banlist", "export-anchors-dat"):
        code, _, err = run_main(command, "--regtest", f"--datadir={tmp_path / 'd'}", str(out))
        assert code == 1 and "peerkeeper.sqlite (has a node run" in err
    # A regtest address book, exported with the default chain (main): not there.
    src = tmp_path / "in.dat"
    (tmp_path / "d").mkdir()
    from peerkeeper.bitcoin.addrman import AddrMan
    from peerkeeper.io.addrdb import write_peers_dat

    write_peers_dat(src, AddrMan(__import__("random").Random(1)), bytes.fromhex("fabfb5da"))
    assert (
        run_main("import-peers-dat", "--regtest", f"--datadir={tmp_path / 'd'}", str(src))[0] == 0
    )
    code, _, err = run_main("export-peers-dat", f"--datadir={tmp_path / 'd'}", str(out))
    assert code == 1 and f"{tmp_path / 'd' / 'peerkeeper.sqlite'}" in err
    assert (
        run_main("export-peers-dat", "--regtest", f"--datadir={tmp_path / 'd'}", str(out))[0] == 0
    )


def test_import_banlist_counts_expired_bans(tmp_path: Path) -> None:
    now = int(time.time())
    bans = tmp_path / "banlist.json"
    bans.write_text(
        json.dumps(
            {
                "banned_nets": [
                    {"version": 1, "ban_created": now - 100, "banned_until": now - 10,
                     "address": "1.2.3.0/24"},
                    {"version": 1, "ban_created": now - 100, "banned_until": now + 3600,
                     "address": "5.6.7.8/32"},
                ]
            }
        )
    )  # fmt: skip
    code, out, _ = run_main("import-banlist", "--regtest", f"--datadir={tmp_path}", str(bans))
    assert code == 0 and out.strip() == f"imported 1 bans from {bans} (1 expired, not imported)"
    missing = tmp_path / "missing.json"
    code, _, err = run_main("import-banlist", "--regtest", f"--datadir={tmp_path}", str(missing))
    assert code == 1 and str(missing) in err
    code, _, err = run_main("import-peers-dat", "--regtest", f"--datadir={tmp_path}", str(missing))
    assert code == 1 and str(missing) in err and "Traceback" not in err


# -- the gossip demo ------------------------------------------------------------------------------


async def test_gossip_demo_with_two_nodes_converges() -> None:
    lines: list[str] = []
    result = await run_gossip_demo(2, seconds=15, out=lines.append)
    assert result.converged_after is not None, lines


def test_gossip_demo_refuses_zero_seconds() -> None:
    code, _, err = run_main("gossip-demo", "--nodes", "2", "--seconds", "0")
    assert code == 1 and "--seconds must be more than 0" in err


# -- files for packagers --------------------------------------------------------------------------


def test_license_and_systemd_unit(tmp_path: Path) -> None:
    """The unit's ExecStart is a peerkeeperd command line that peerkeeperd accepts."""
    from peerkeeper.daemon.peerkeeperd import build_config

    assert "Copyright (c) 2026 The peerkeeper developers" in (ROOT / "LICENSE").read_text()
    unit = (ROOT / "contrib" / "peerkeeperd.service").read_text()
    assert "[Service]" in unit and "WantedBy=multi-user.target" in unit
    command = unit.split("\nExecStart=", 1)[1].replace("\\\n", " ").split("\n", 1)[0]
    program, *argv = shlex.split(command)
    assert program.endswith("/peerkeeperd")
    conf = tmp_path / "bitcoin.conf"
    conf.write_text("")
    argv = [
        f"-conf={conf}" if a.startswith("-conf=") else f"-datadir={tmp_path}" if a.startswith("-datadir=") else a
        for a in argv
    ]  # fmt: skip
    config, _ = build_config(argv, tmp_path)
    assert config.datadir == tmp_path
