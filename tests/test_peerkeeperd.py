"""peerkeeperd: bitcoind's command line and bitcoin.conf, Core's errors, a real process."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import free_port

from peerkeeper.daemon.config import ConfigError
from peerkeeper.daemon.debuglog import TRACE
from peerkeeper.daemon.peerkeeperd import IGNORED_OPTIONS, build_config, log_options, main
from peerkeeper.daemon.rpc import read_cookie, rpc_call

#: The bitcoin.conf Core's functional test framework writes (test_framework/util.py
#: initialize_datadir), with its ports.
FRAMEWORK_CONF = """regtest=1
[regtest]
port={port}
rpcport={rpcport}
rpcservertimeout=99000
rpcdoccheck=1
fallbackfee=0.0002
server=1
keypool=1
discover=0
dnsseed=0
fixedseeds=0
listenonion=0
peertimeout=999999999
printtoconsole=0
natpmp=0
shrinkdebugfile=0
unsafesqlitesync=1
connect=0
bind=127.0.0.1
"""
#: The arguments the framework passes to every node (test_framework/test_node.py).
FRAMEWORK_ARGS = [
    "-logtimemicros",
    "-debug",
    "-debugexclude=leveldb",
    "-debugexclude=rand",
    "-uacomment=testnode0",
    "-disablewallet",
    "-logthreadnames",
    "-logsourcelocations",
    "-loglevel=trace",
    "-nologratelimit",
    "-v2transport=0",
]


def framework_datadir(tmp: Path, port: int = 19444, rpcport: int = 19443) -> Path:
    data = tmp / "node0"
    data.mkdir()
    (data / "bitcoin.conf").write_text(FRAMEWORK_CONF.format(port=port, rpcport=rpcport))
    return data


def test_the_frameworks_arguments_and_conf_make_cores_settings(tmp_path: Path) -> None:
    data = framework_datadir(tmp_path)
    config, args = build_config([f"-datadir={data}", *FRAMEWORK_ARGS], tmp_path / "unused")
    assert config.chain == "regtest" and config.datadir == data
    assert config.port == 19444 and config.rpcport == 19443
    assert config.connect == ["0"] and config.noconnect
    assert config.bind == ["127.0.0.1"] and config.listening
    assert config.dnsseed is False and config.fixedseeds is False
    assert config.peertimeout == 999999999 and config.v2transport is False
    assert config.debug == ["all"]  # bare -debug is every category, as Core
    assert config.server is True
    ignored = {n for n in IGNORED_OPTIONS if args.is_arg_set(n)}
    assert {"disablewallet", "keypool", "unsafesqlitesync", "logratelimit"} <= ignored
    # The framework's logging options are Core's and take effect (debuglog).
    options, path, console = log_options(args, config)
    assert options.time_micros and options.thread_names and options.source_locations
    assert options.exclude == {"leveldb", "rand"} and options.level == TRACE
    assert path == data / "regtest" / "debug.log" and console is False
    assert config.uacomment == ["testnode0"]
    # The command line wins over the file; repeated list options add up.
    config, _ = build_config(
        [f"-datadir={data}", "-port=20000", "-connect=1.2.3.4", "-connect=5.6.7.8"], tmp_path
    )
    assert config.port == 20000
    assert config.connect == ["1.2.3.4", "5.6.7.8", "0"]  # Core's GetArgs merge


@pytest.mark.parametrize(
    ("argv", "conf", "message"),
    [
        (["-foo"], None, "Error parsing command line arguments: Invalid parameter -foo"),
        (["-regtest", "-testnet"], None, "Invalid combination of -regtest, -signet, -testnet"),
        (
            [],
            "regtest=1\n[regtest]\nnoconnect\n",
            "Error reading configuration file: parse error on line 3: noconnect, if you intended to specify a negated option, use noconnect=1 instead",
        ),
        (
            [],
            "-port=1\n",
            "Error reading configuration file: parse error on line 1: -port=1, options in configuration file must be specified without leading -",
        ),
        (["-regtest", "-bind=nonsense:x"], None, "Cannot resolve -bind address: 'nonsense:x'"),
        (
            ["-regtest", "-forcednsseed=1", "-dnsseed=0"],
            None,
            "Cannot set -forcednsseed to true when setting -dnsseed to false.",
        ),
        (["-regtest", "-proxy=abc..abc:23456"], None, "Invalid -proxy address or hostname"),
        (["-regtest", "-port=65536"], None, "Invalid port specified in -port: '65536'"),
        (["-regtest", "-rpcport=0"], None, "Invalid port specified in -rpcport: '0'"),
        (["-regtest", "-test=foo"], None, 'Unrecognised option "foo" provided in -test=<option>.'),
        (["-test=addrman"], None, "-test=<option> can only be used with regtest"),
        (["-regtest", "-i2psam=def..def:23456"], None, "Invalid -i2psam address or hostname"),
        (["-regtest", "-i2psam=192.0.0.1:def"], None, "Invalid port specified in -i2psam"),
        (
            ["-regtest", "-onlynet=onion", "-listenonion=0"],
            None,
            "Outbound connections restricted to Tor (-onlynet=onion) but the proxy",
        ),
        (  # -connect soft-sets -dnsseed=0 (Core's p2p_dns_seeds)
            ["-regtest", "-forcednsseed=1", "-connect=fakenodeaddr.fakedomain.invalid."],
            None,
            "Cannot set -forcednsseed to true when setting -dnsseed to false.",
        ),
    ],
)
def test_bad_input_is_cores_error_and_writes_nothing(
    tmp_path: Path, argv: list[str], conf: str | None, message: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if conf is not None:
        (data / "bitcoin.conf").write_text(conf)
    before = sorted(p.name for p in data.iterdir())
    with pytest.raises(ConfigError) as e:
        build_config([f"-datadir={data}", *argv], tmp_path)
    assert str(e.value).startswith(message)
    assert sorted(p.name for p in data.iterdir()) == before


def test_main_prints_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-foo"], default_datadir=tmp_path / "never") == 1
    assert capsys.readouterr().err == (
        "Error: Error parsing command line arguments: Invalid parameter -foo\n"
    )
    assert main([f"-datadir={tmp_path / 'missing'}"], default_datadir=tmp_path) == 1
    assert 'Error: Specified data directory "' in capsys.readouterr().err
    assert not (tmp_path / "never").exists() and not (tmp_path / "missing").exists()


def test_a_proxy_name_that_does_not_resolve_is_an_init_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], daemon_logging: None
) -> None:
    """Core resolves -proxy/-onion/-i2psam names at startup (src/init.cpp) and stops with
    InitError when one does not resolve (a .invalid name is never looked up)."""
    for arg, text in (
        ("-proxy=nowhere.invalid:9050", "Invalid -proxy address or hostname: 'nowhere.invalid:9050'"),
        ("-onion=nowhere.invalid", "Invalid -onion address or hostname: 'nowhere.invalid'"),
        ("-i2psam=nowhere.invalid", "Invalid -i2psam address or hostname: 'nowhere.invalid'"),
    ):  # fmt: skip
        argv = ["-regtest", f"-datadir={tmp_path}", arg, "-printtoconsole=0"]
        assert main(argv, default_datadir=tmp_path) == 1
        assert capsys.readouterr().err == f"Error: {text}\n"


async def test_peerkeeperd_runs_as_bitcoind_would_be_run(tmp_path: Path) -> None:
    """A real process with the framework's arguments and bitcoin.conf: the cookie at
    <datadir>/regtest/.cookie, RPC answers, debug.log in the datadir, nothing on
    stderr, ``stop`` ends it with exit code 0."""
    port, rpcport = free_port(), free_port()
    data = framework_datadir(tmp_path, port, rpcport)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peerkeeper.daemon.peerkeeperd",
            f"-datadir={data}",
            *FRAMEWORK_ARGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        cookie = data / "regtest" / ".cookie"
        async with asyncio.timeout(20):
            while not cookie.exists():
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                await asyncio.sleep(0.05)
        user, password = read_cookie(data / "regtest")
        info = await rpc_call("127.0.0.1", rpcport, user, password, "getnetworkinfo", [])
        assert info["networkactive"] is True and info["connections"] == 0
        assert await rpc_call("127.0.0.1", rpcport, user, password, "stop", []) is not None
        assert await asyncio.to_thread(proc.wait, 20) == 0
        out, err = proc.communicate()
        assert err == b""
        log = (data / "regtest" / "debug.log").read_text()
        assert f"Bound to 127.0.0.1:{port}" in log  # Core BindListenPort
        assert "Ignoring -disablewallet: peerkeeper has no wallet" in log
        # Core's umask(077) without -sysperms: the chain directory and files are private.
        assert (data / "regtest").stat().st_mode & 0o777 == 0o700
        assert (data / "regtest" / "debug.log").stat().st_mode & 0o777 == 0o600
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_uacomment_is_in_the_user_agent_and_checked_as_core(tmp_path: Path) -> None:
    config, _ = build_config(["-regtest", "-uacomment=testnode0", "-uacomment=b c"], tmp_path)
    assert config.subversion("peerkeeper", "0.1.0") == "/peerkeeper:0.1.0(testnode0; b c)/"
    with pytest.raises(
        ConfigError, match=r"User Agent comment \(a<b\) contains unsafe characters\."
    ):
        build_config(["-regtest", "-uacomment=a<b"], tmp_path)
    for unsafe in ("/", ":", "(x)"):  # Core's SAFE_CHARS_UA_COMMENT (feature_uacomment)
        with pytest.raises(ConfigError, match="contains unsafe characters"):
            build_config(["-regtest", f"-uacomment={unsafe}"], tmp_path)
    with pytest.raises(
        ConfigError, match=r"Total length of network version string \(\d+\) exceeds"
    ):
        build_config(["-regtest", f"-uacomment={'x' * 250}"], tmp_path)


async def test_chainless_rpcs_answer_for_genesis(tmp_path: Path) -> None:
    from peerkeeper import Config, Node
    from peerkeeper.daemon.rpc import RpcError

    node = Node(Config(chain="regtest", datadir=tmp_path, server=False, listen=False))
    m = node.rpc_methods()
    genesis = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
    assert await m["getblockcount"]([]) == 0
    assert await m["getbestblockhash"]([]) == genesis
    assert await m["getblockhash"]([0]) == genesis
    with pytest.raises(RpcError, match="Block height out of range"):
        await m["getblockhash"]([1])
    info = await m["getblockchaininfo"]([])
    assert info["chain"] == "regtest" and info["blocks"] == 0 and info["bits"] == "207fffff"
    assert info["chainwork"] == "0" * 63 + "2"  # Core's regtest genesis chainwork
    assert info["difficulty"] == pytest.approx(4.656542373906925e-10)
    assert (await m["getmempoolinfo"]([]))["loaded"] is True
    assert await m["getrawmempool"]([]) == [] and await m["getrawmempool"]([True]) == {}
    assert await m["syncwithvalidationinterfacequeue"]([]) is None
    assert await m["echo"](["a", 1]) == ["a", 1]
    # Core's mixed call: positional values in "args" beside named ones.
    assert await m["getblockhash"]({"args": [0]}) == genesis
    assert "getwalletinfo" not in m and "sendrawtransaction" not in m  # Method not found
    listing = await m["help"]([])
    assert "\ngetpeerinfo\n" in listing and '\nhelp ( "command" )\n' in listing
    assert listing.startswith("== Blockchain ==\n") and "\n== Network ==\n" in listing
    assert (await m["help"](["getpeerinfo"])).startswith("getpeerinfo\n\nReturns data about")
    assert await m["help"](["nosuch"]) == "help: unknown command: nosuch"  # Core's words
    rpcinfo = await m["getrpcinfo"]([])
    assert rpcinfo["active_commands"][0]["method"] == "getrpcinfo"
    assert rpcinfo["logpath"] == str(tmp_path / "regtest" / "debug.log")


def test_bantime_is_the_default_ban_duration(tmp_path: Path) -> None:
    from peerkeeper import NetAddr, Node

    config, _ = build_config(["-regtest", f"-datadir={tmp_path}", "-bantime=1234"], tmp_path)
    node = Node(config)
    now = node.clock()
    node.banman.ban(NetAddr.parse("127.0.0.1"), now)  # no time given: -bantime
    (banned,) = node.banman.list_banned(now)
    assert banned["ban_duration"] == 1234
    with pytest.raises(ConfigError, match="-bantime must not be negative"):
        build_config(["-regtest", "-bantime=-1"], tmp_path)


def test_onion_binds_defaults_and_duplicate_bindings(tmp_path: Path) -> None:
    """Core AppInitMain: -bind=...=onion (default port -port + 1), the default onion bind
    127.0.0.1:port+1 when no -bind is given, and CheckBindingConflicts' error."""
    from peerkeeper import Service

    config, _ = build_config(["-regtest", "-port=9000", "-bind=127.0.0.1=onion"], tmp_path)
    regular, onion, white, default = config.binds()
    assert regular == [] and onion == [Service.parse("127.0.0.1:9001", 0)] and not default
    config, _ = build_config(["-regtest", "-port=9000"], tmp_path)
    assert config.binds()[1:] == ([Service.parse("127.0.0.1:9001", 0)], [], True)
    config, _ = build_config(["-regtest", "-bind=127.0.0.1:9005"], tmp_path)
    assert config.binds()[1] == []  # a -bind turns the default onion bind off
    combos = [
        "-bind=127.0.0.1:11012",
        "-bind=127.0.0.1:11012=onion",
        "-whitebind=noban@127.0.0.1:11012",
    ]
    for first in combos:
        for second in combos:
            with pytest.raises(ConfigError) as e:
                build_config(["-regtest", first, second], tmp_path)
            assert str(e.value) == (
                "Duplicate binding configuration for address 127.0.0.1:11012. Please check "
                "your -bind, -bind=...=onion and -whitebind settings."
            )
    with pytest.raises(ConfigError, match=r"Cannot resolve -bind address: '127.0.0.1=tor'"):
        build_config(["-regtest", "-bind=127.0.0.1=tor"], tmp_path)


async def test_addconnection_rpc_checks_as_core(tmp_path: Path) -> None:
    from peerkeeper import Config, Node
    from peerkeeper.daemon.rpc import RpcError

    node = Node(Config(chain="regtest", datadir=tmp_path, server=False, listen=False))
    add = node.rpc_methods()["addconnection"]
    with pytest.raises(RpcError) as e:
        await add(["127.0.0.1:1", "inbound", False])
    assert e.value.code == -8
    with pytest.raises(RpcError, match="requires -v2transport init flag") as e:
        await Node(
            Config(chain="regtest", datadir=tmp_path, server=False, listen=False, v2transport=False)
        ).rpc_methods()["addconnection"](["127.0.0.1:1", "feeler", True])
    main_node = Node(Config(chain="signet", datadir=tmp_path, server=False, listen=False))
    with pytest.raises(
        RpcError, match=r"addconnection is for regression testing \(-regtest mode\) only\."
    ):
        await main_node.rpc_methods()["addconnection"](["127.0.0.1:1", "feeler", False])


async def test_header_chain_mine_submit_and_cores_block_files(tmp_path: Path) -> None:
    """generatetoaddress mines a header-only block; getblock(…, 0) and submitblock hand it
    to another node, whose tip follows; Core's block files in the datadir are read (the
    functional framework's cached chain) and a node keeps its headers across restarts."""
    from peerkeeper import Config, Node
    from peerkeeper.bitcoin.headerchain import GENESIS_HEADERS, HeaderChain, HeaderError

    a = Node(Config(chain="regtest", datadir=tmp_path / "a", server=False, listen=False))
    b = Node(Config(chain="regtest", datadir=tmp_path / "b", server=False, listen=False))
    for n in (a, b):
        n.config.chain_datadir.mkdir(parents=True)
    ma, mb = a.rpc_methods(), b.rpc_methods()
    (block,) = await ma["generatetoaddress"]([1, "bcrt1qignored"])
    assert await ma["getblockcount"]([]) == 1 and await ma["getbestblockhash"]([]) == block
    info = await ma["getblockchaininfo"]([])
    assert info["blocks"] == 1 and info["initialblockdownload"] is False  # a fresh tip
    hexblock = await ma["getblock"]({"blockhash": block, "verbosity": 0})
    assert await mb["submitblock"]([hexblock]) is None
    assert await mb["getbestblockhash"]([]) == block
    # Core PushNodeVersion: nStartingHeight is the best height (p2p_leak).
    assert b.connman.core.options.peer.start_height == 1
    assert await mb["submitblock"]([hexblock]) == "duplicate"
    header = await mb["getblockheader"]([block, False])
    assert hexblock.startswith(header) and len(header) == 160
    assert (await mb["getblockheader"]([block]))["previousblockhash"] == (
        await mb["getblockhash"]([0])
    )
    # A restart keeps the chain (the headers are kept in the datadir).
    a2 = Node(Config(chain="regtest", datadir=tmp_path / "a", server=False, listen=False))
    a2._load_headers()
    assert a2.headers is not None and a2.headers.tip == block
    # The pure chain refuses what does not extend it.
    chain = HeaderChain(GENESIS_HEADERS["regtest"])
    raw = chain.mine(2_000_000_000)
    with pytest.raises(HeaderError, match="prev-blk-not-found"):
        HeaderChain(GENESIS_HEADERS["main"]).add(raw)
    chain.add(raw)
    with pytest.raises(HeaderError, match="duplicate"):
        chain.add(raw)
    cache = Path(__file__).resolve().parents[2] / "shared/core-functional/cache/node0/regtest"
    if cache.exists():
        from peerkeeper.io.addrdb import read_block_headers

        headers = read_block_headers(cache, bytes.fromhex("fabfb5da"), core_blocks=True)
        core = HeaderChain(headers[0])
        for h in headers[1:]:
            core.add(h)
        assert core.height == 199  # Core's 199-block regtest cache, XOR-obfuscated files
        assert read_block_headers(cache, bytes.fromhex("fabfb5da"), core_blocks=False) == []


def test_review_cases_follow_core(tmp_path: Path) -> None:
    """Core's InitConfig/AppInitMain details: the default datadir need not exist,
    -noconnect is -connect=0, -debug keeps what follows the last 0/none and refuses an
    unknown category, -nodatadir and a bare -proxy are refused, CR is not a line end."""
    config, _ = build_config(["-regtest"], tmp_path / "fresh")  # created later, as Core
    assert config.datadir == tmp_path / "fresh"
    config, _ = build_config(["-regtest", "-noconnect"], tmp_path)
    assert config.noconnect and not config.use_addrman_outgoing and not config.listening
    assert build_config(["-regtest", "-debug=net", "-debug=0"], tmp_path)[0].debug == []
    assert build_config(["-regtest", "-debug=1", "-debug=none", "-debug=rpc"], tmp_path)[
        0
    ].debug == ["rpc"]
    assert build_config(["-regtest", "-debug=mempool"], tmp_path)[0].debug == ["mempool"]
    with pytest.raises(ConfigError, match=r"Unsupported logging category -debug=bogus\."):
        build_config(["-regtest", "-debug=bogus"], tmp_path)
    with pytest.raises(ConfigError, match="Negating of -datadir is meaningless"):
        build_config(["-nodatadir"], tmp_path)
    with pytest.raises(ConfigError, match="Can not set -proxy with no value"):
        build_config(["-regtest", "-proxy"], tmp_path)
    data = tmp_path / "cr"
    data.mkdir()
    (data / "bitcoin.conf").write_bytes(b"regtest=1\r[regtest]\rport=1\n")
    config, args = build_config([f"-datadir={data}"], tmp_path)
    assert config.port is None  # one line: regtest="1\r[regtest]\rport=1", as Core reads it


async def test_banlist_json_beside_the_store_and_recreated_when_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Core's CBanDB file: banlist.json in the chain datadir after a ban; a start without
    it logs Core's "Recreating the banlist database" and writes it again."""
    import json

    from support import running

    async with running(tmp_path, "a") as node:
        await node.rpc_methods()["setban"](["10.1.0.0/16", "add"])
        path = node.config.chain_datadir / "banlist.json"
        banned = json.loads(path.read_text())["banned_nets"]
        assert [b["address"] for b in banned] == ["10.1.0.0/16"]
    path.unlink()
    with caplog.at_level(logging.INFO, logger="peerkeeper.node"):
        async with running(tmp_path, "a") as node:
            assert path.exists()
            assert [b["address"] for b in await node.rpc_methods()["listbanned"]([])] == [
                "10.1.0.0/16"
            ]  # the store keeps the bans; the file is their copy
    assert "Recreating the banlist database" in caplog.text


def test_version_help_and_loose_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """src/bitcoind.cpp: -version and -h print and exit 0 before the datadir is looked at;
    a loose word is an init error after the config files are read."""
    missing = tmp_path / "missing"
    assert main(["-version", f"-datadir={missing}"], default_datadir=missing) == 0
    assert capsys.readouterr().out.startswith("peerkeeperd version v")
    for flag in ("-h", "-help", "-?", "--help"):
        assert main([flag], default_datadir=missing) == 0
        out = capsys.readouterr().out
        assert "Usage: peerkeeperd [options]" in out and "  -maxconnections\n" in out
    assert not missing.exists()
    data = tmp_path / "d"
    data.mkdir()
    assert main([f"-datadir={data}", "-regtest", "word"], default_datadir=tmp_path) == 1
    assert capsys.readouterr().err == (
        "Error: Command line contains unexpected token 'word', "
        "see bitcoind -h for a list of options.\n"
    )
    assert list(data.iterdir()) == []


def test_a_bind_that_fails_is_cores_init_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], daemon_logging: None
) -> None:
    """Core BindListenPort + InitError: an explicit -bind that cannot be bound stops the
    start with "Error: Unable to bind to ..." on stderr and exit code 1."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    data = tmp_path / "d"
    data.mkdir()
    try:
        code = main(
            [f"-datadir={data}", "-regtest", f"-bind=127.0.0.1:{port}", "-printtoconsole=0",
             "-sysperms", f"-rpcport={free_port()}", "-dnsseed=0", "-connect=0"],
            default_datadir=tmp_path,
        )  # fmt: skip
    finally:
        busy.close()
    assert code == 1
    assert capsys.readouterr().err == (
        f"Error: Unable to bind to 127.0.0.1:{port} on this computer. "
        "peerkeeper is probably already running.\n"
    )
    assert "[error] Unable to bind to" in (data / "regtest" / "debug.log").read_text()


def test_a_log_file_that_cannot_be_opened_is_cores_init_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Core InitLogging: -debuglogfile in a directory that does not exist is an error
    (feature_logging); nothing makes the directory."""
    data = tmp_path / "d"
    data.mkdir()
    argv = [f"-datadir={data}", "-regtest", "-debuglogfile=foo/foo.log", "-sysperms"]
    assert main(argv, default_datadir=tmp_path) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: Could not open debug log file ") and err.endswith("foo.log\n")
    assert not (data / "regtest" / "foo").exists()


def test_command_line_warnings_survive_the_config_files(tmp_path: Path) -> None:
    """Core logs the double-negative warning of a command-line option after reading the
    config files (feature_config_args' test_log_buffer)."""
    data = tmp_path / "d"
    data.mkdir()
    (data / "bitcoin.conf").write_text("regtest=1\n")
    _, args = build_config([f"-datadir={data}", "-nolisten=0"], tmp_path)
    assert args.warnings == ["Parsed potentially confusing double-negative -listen=0"]


def test_empty_addnode_values_are_dropped_with_cores_warning(tmp_path: Path) -> None:
    config, args = build_config(["-regtest", "-addnode= ", "-addnode=some.node"], tmp_path)
    assert config.addnode == ["some.node"]
    assert "Ignoring empty -addnode value" in args.warnings
