"""Command line: ``peerkeeper node`` (the daemon) and ``peerkeeper rpc`` (a bitcoin-cli equivalent).

``peerkeeper node --chain regtest --connect 127.0.0.1:18444`` runs a node until
interrupted or stopped over RPC. Options keep Bitcoin Core's names
(``--connect``, ``--addnode``, ``--bind``, ``--port``, ``--maxconnections``,
``--rpcport``, ...; see ``peerkeeper node --help``); ``--conf`` reads a
bitcoin.conf-style file first, and command-line values win.

``peerkeeper rpc [--chain C] [--datadir D] METHOD [ARGS...]`` calls the node's
JSON-RPC with the cookie from the data directory (or ``--rpcuser`` /
``--rpcpassword``), prints the result as JSON and exits 1 on an RPC error, like
bitcoin-cli.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from peerkeeper import __version__
from peerkeeper.bitcoin.addrman import AddrMan, AddrManFormatError
from peerkeeper.bitcoin.banman import BanlistError, BanMan
from peerkeeper.bitcoin.outbound import MAX_BLOCK_RELAY_ONLY_ANCHORS
from peerkeeper.daemon import rpcclient
from peerkeeper.daemon.config import DEFAULT_DATADIR, Config, ConfigError, read_conf_file
from peerkeeper.daemon.debuglog import LogOptions, install, set_mocktime_source
from peerkeeper.daemon.labcli import add_lab_parsers, run_crawl_command, run_lab_command
from peerkeeper.daemon.nativecli import (
    add_native_options,
    run_native_node,
)
from peerkeeper.daemon.simcli import add_sim_parser, run_sim
from peerkeeper.io.addrdb import (
    PeersDatError,
    load_banlist,
    loads_anchors,
    read_peers_dat,
    write_anchors,
    write_banlist_json,
    write_peers_dat,
    write_peers_json,
)
from peerkeeper.io.malloc import tune_malloc
from peerkeeper.io.store import (
    Store,
    StoreError,
    addrman_from_snapshot,
    load_addrbook,
    load_bans,
    lock_datadir,
    peek_anchors,
    save_addrbook,
    save_anchors,
    save_bans,
    snapshot_addrman,
)
from peerkeeper.net.asmap import AsmapError

if TYPE_CHECKING:
    from peerkeeper.daemon.node import Node

__all__ = [
    "LOG_CATEGORIES",
    "main",
    "build_parser",
    "config_from_args",
    "run_daemon",
    "run_node",
    "setup_logging",
]

#: The log categories peerkeeper writes under (``-debug=CATEGORY``; Core's names where
#: Core has them).
LOG_CATEGORIES = (
    "net",
    "rpc",
    "addrman",
    "node",
    "native",
    "pool",
    "dispatch",
    "gossip",
    "seeds",
    "store",
    "tor",
    "i2p",
)


def setup_logging(
    debug: list[str],
    *,
    path: Path | None = None,
    console: TextIO | None = sys.stderr,
    options: LogOptions | None = None,
    make_dirs: bool = True,
) -> None:
    """Core's debug.log lines (:mod:`peerkeeper.daemon.debuglog`) to ``path`` (appended;
    None = no file; its directory is made unless ``make_dirs`` is false, and an
    ``OSError`` is raised when it cannot be opened) and ``console``. Categories in
    ``debug`` (or ``1``/``all``) log debug lines, the others from info up; ``options``,
    when given, carries its own categories and levels (peerkeeperd's -debug, -loglevel,
    -debugexclude) and ``debug`` is not read."""
    opts = options or LogOptions(categories=set(debug) | ({"all"} if "1" in debug else set()))
    if path is not None and make_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
    install(opts, LOG_CATEGORIES, path=str(path) if path is not None else None, console=console)


#: The options shared with the light ``peerkeeper rpc`` (:mod:`peerkeeper.daemon.rpcclient`).
_add_common = rpcclient.add_common_options
_add_protocol = rpcclient.add_protocol_option


#: Repeatable ``node`` options with Core's names (src/init.cpp ``SetupServerArgs``).
_LIST_OPTIONS = (
    ("seednode", "connect to this peer to fetch addresses, then disconnect (repeatable)"),
    ("uacomment", "a comment in the user agent we announce (repeatable)"),
    ("onlynet", "make automatic outbound connections only to this network (repeatable)"),
    ("whitelist", "[PERMS@]ADDR[/MASK]: permissions for peers from there (repeatable)"),
    ("whitebind", "[PERMS@]ADDR:PORT: listen there, peers get these permissions (repeatable)"),
    ("proxy", "SOCKS5 proxy host[:port][=network] (repeatable)"),
    ("externalip", "our own public address (repeatable)"),
    ("dnsserver", "DNS server host[:port] for DNS seeding (peerkeeper's own option)"),
)
#: 0/1 ``node`` options with Core's names and defaults.
_BOOL_OPTIONS = (
    ("dnsseed", "query DNS seeds when the address table is low (default 1 unless -connect)"),
    ("forcednsseed", "always query DNS seeds at start (default 0)"),
    ("fixedseeds", "use the fixed seeds when a reachable network is empty (default 1)"),
    ("whitelistrelay", "whitelisted peers without permissions get relay (default 1)"),
    ("whitelistforcerelay", "whitelisted peers without permissions get forcerelay (default 0)"),
    ("proxyrandomize", "random proxy credentials per connection (Tor stream isolation, default 1)"),
    ("cjdnsreachable", "fc00::/8 addresses are CJDNS and reachable (default 0)"),
    (
        "listenonion",
        "publish an onion service through Tor's control port (default 1 when listening)",
    ),
    (
        "i2pacceptincoming",
        "accept inbound I2P connections through -i2psam (default 1 when listening)",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``peerkeeper`` argument parser with its ``node`` and ``rpc`` commands."""
    parser = argparse.ArgumentParser(
        prog="peerkeeper", description="A peer-to-peer connection manager."
    )
    parser.add_argument("--version", action="version", version=f"peerkeeper {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    node = sub.add_parser("node", help="run the node (daemon)")
    _add_common(node)
    _add_protocol(node)
    add_native_options(node)
    node.add_argument(
        "--bind", action="append", default=None, help="listen on ADDR[:PORT] (repeatable)"
    )
    node.add_argument("--port", type=int, help="P2P listen port (default: the chain's)")
    node.add_argument("--listen", type=int, choices=(0, 1), help="accept inbound connections")
    node.add_argument(
        "--connect", action="append", default=None, help="connect only to this peer (repeatable)"
    )
    node.add_argument(
        "--addnode",
        action="append",
        default=None,
        help="keep a connection to this peer (repeatable)",
    )
    node.add_argument(
        "--maxconnections", type=int, help="automatic connections, inbound included (default 200)"
    )
    node.add_argument("--rpcbind", help="RPC listen address (default 127.0.0.1)")
    node.add_argument(
        "--server", type=int, choices=(0, 1), help="run the JSON-RPC server (default 1)"
    )
    node.add_argument(
        "--maxsendbuffer", type=int, help="per-peer send buffer, in kB (default 1000)"
    )
    node.add_argument(
        "--maxreceivebuffer", type=int, help="per-peer receive buffer, in kB (default 5000)"
    )
    node.add_argument(
        "--peertimeout", type=int, help="seconds to complete the handshake (default 60)"
    )
    node.add_argument("--timeout", type=int, help="TCP connect timeout in ms (default 5000)")
    node.add_argument(
        "--bantime", type=int, help="seconds a ban lasts when none is given (default 86400)"
    )
    node.add_argument(
        "--networkactive", type=int, choices=(0, 1), help="enable P2P activity (default 1)"
    )
    node.add_argument(
        "--v2transport", type=int, choices=(0, 1), help="BIP324 encrypted transport (default 1)"
    )
    node.add_argument(
        "--asmap", type=Path, help="asmap file: group peers by AS number (as Core's -asmap)"
    )
    node.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="serve /metrics, /events and the dashboard there (read-only; a PORT alone: 127.0.0.1)",
    )
    node.add_argument(
        "--eventlog",
        type=Path,
        metavar="FILE",
        help="write the event stream to FILE as JSON lines (rotated at 10 MiB)",
    )
    node.add_argument(
        "--dialmap",
        type=Path,
        metavar="FILE",
        help="dial virtual addresses through FILE's loopback endpoints (a `peerkeeper lab`"
        " network); other addresses are not dialled",
    )
    node.add_argument(
        "--debug",
        action="append",
        default=None,
        help="debug log category: net, rpc, addrman, node, native, pool, dispatch, gossip, all",
    )
    for name, help_text in _LIST_OPTIONS:
        node.add_argument(f"--{name}", action="append", default=None, help=help_text)
    for name, help_text in _BOOL_OPTIONS:
        node.add_argument(f"--{name}", type=int, choices=(0, 1), help=help_text)
    node.add_argument(
        "--fixedseedsfile",
        type=Path,
        help="fixed seeds in Core's contrib/seeds/nodes_<chain>.txt format",
    )
    node.add_argument(
        "--inboundrelaypercent",
        type=int,
        help="percent of inbound slots for tx-relaying peers (default 50)",
    )
    node.add_argument("--onion", help="SOCKS5 proxy for .onion peers (host[:port]; 0 = none)")
    node.add_argument(
        "--torcontrol", help="Tor's control port for --listenonion (default 127.0.0.1:9051)"
    )
    node.add_argument("--torpassword", help="Tor control port password (default: none)")
    node.add_argument(
        "--i2psam",
        help="I2P SAM bridge host[:port] (default port 7656) to reach I2P peers and "
        "accept I2P connections (SAM 3.1, as Core)",
    )
    node.add_argument(
        "--printtoconsole",
        type=int,
        choices=(0, 1),
        help="log to stderr too (default 1); the log file is <datadir>/<chain>/debug.log",
    )
    node.add_argument(
        "--debuglogfile",
        help="log file, relative to <datadir>/<chain> (default debug.log; 0 = none)",
    )
    node.add_argument(
        "--maxuploadtarget",
        help="upload limit per 24 h (bytes with k/K/m/M/g/G/t/T; default unit M; 0 = none)",
    )

    for name, help_text in (
        ("import-peers-dat", "replace the address book with a Bitcoin Core peers.dat"),
        ("export-peers-dat", "write the address book as a Bitcoin Core peers.dat"),
        ("export-peers-json", "write the address book as Floresta's peers.json"),
        ("import-banlist", "replace the bans with a Bitcoin Core banlist.json"),
        ("export-banlist", "write the bans as a Bitcoin Core banlist.json"),
        ("import-anchors-dat", "replace the stored anchors with a Bitcoin Core anchors.dat"),
        ("export-anchors-dat", "write the stored anchors as a Bitcoin Core anchors.dat"),
    ):
        cmd = sub.add_parser(name, help=help_text + " (run while the node is stopped)")
        _add_common(cmd)
        cmd.add_argument("file", type=Path)

    demo = sub.add_parser(
        "gossip-demo",
        help="N native nodes on loopback share who they connected to (the dispatch layer)",
    )
    demo.add_argument("--nodes", type=int, default=20, help="how many nodes (default 20)")
    demo.add_argument(
        "--seconds", type=float, default=30.0, help="give up after this long (default 30)"
    )

    add_sim_parser(sub)

    rpc = sub.add_parser(
        "rpc",
        help="call a JSON-RPC method (like bitcoin-cli)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_rpc_epilog(),
    )
    _add_common(rpc)
    _add_protocol(rpc)
    _add_rpc_client(rpc)
    rpc.add_argument("method", nargs="?", help="the method (see the list below)")
    rpc.add_argument("params", nargs="*", help="its arguments (JSON, else strings)")

    netinfo = sub.add_parser(
        "netinfo", help="the peers and networks at a glance (bitcoin-cli -netinfo)"
    )
    _add_common(netinfo)
    _add_rpc_client(netinfo)
    netinfo.add_argument("level", nargs="?", default="0", help="detail level 0-4 (default 0)")
    netinfo.add_argument("outonly", nargs="?", help="'outonly' (or 'o'): outbound peers only")
    netinfo.add_argument(
        "--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until interrupted"
    )
    add_lab_parsers(sub)
    return parser


def _add_rpc_client(p: argparse.ArgumentParser) -> None:
    """bitcoin-cli's options (src/bitcoin-cli.cpp SetupCliArgs), single dash as Core's."""
    rpcclient.add_client_options(p, reports=p.prog.endswith(" rpc"))


#: How the examples in help texts call the node.
_CLI = "peerkeeper rpc"


def _rpc_epilog() -> str:
    from peerkeeper.daemon.rpchelp import METHODS, help_listing

    listing: str = help_listing(sorted(METHODS))
    return "methods (`peerkeeper rpc help METHOD` for one):\n\n" + listing


def config_from_args(args: argparse.Namespace) -> Config:
    """Merge configuration file values and command-line options into a :class:`Config`.

    The file is ``--conf``, else ``<datadir>/bitcoin.conf`` when it exists (Core's
    ``-conf`` default, src/common/args.cpp ``ReadConfigFiles``); command-line values
    win. Raises :class:`ConfigError` (also when ``--conf`` cannot be read).
    """
    chain = "regtest" if getattr(args, "regtest", False) else args.chain
    values: dict[str, Any] = {}
    conf: Path | None = args.conf
    default_conf = Path(args.datadir or DEFAULT_DATADIR).expanduser() / "bitcoin.conf"
    if conf is None and default_conf.is_file():
        conf = default_conf
    if conf is not None:
        try:
            values.update(read_conf_file(Path(conf).expanduser(), chain))
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read configuration file {conf}: {e}") from None
    if chain is not None:
        values["chain"] = chain
    for key in (
        "datadir",
        "rpcport",
        "rpcuser",
        "rpcpassword",
        "bind",
        "port",
        "connect",
        "addnode",
        "maxconnections",
        "rpcbind",
        "maxsendbuffer",
        "maxreceivebuffer",
        "peertimeout",
        "bantime",
        "timeout",
        "debug",
        "asmap",
        "fixedseedsfile",
        "web",
        "eventlog",
        "dialmap",
        "inboundrelaypercent",
        "onion",
        "i2psam",
        "torcontrol",
        "torpassword",
        "maxuploadtarget",
        *(name for name, _ in _LIST_OPTIONS),
    ):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    for key in (
        "listen",
        "server",
        "networkactive",
        "v2transport",
        *(name for name, _ in _BOOL_OPTIONS),
    ):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = bool(value)
    values["datadir"] = Path(values.get("datadir") or DEFAULT_DATADIR).expanduser()
    values["daemon"] = True  # Core's daemon defaults: RPC server on, listening
    config = Config(**values)
    config.validate()
    return config


async def run_node(config: Config, *, init_error: Callable[[str], None] | None = None) -> int:
    """Run the Bitcoin node until it is stopped (signal or ``stop`` RPC); the exit code:
    0, or 1 when it cannot start: the reason is logged as an error and handed to
    ``init_error`` (peerkeeperd prints it as Core's ``InitError`` does: ``Error: ...``
    on stderr)."""
    from peerkeeper.daemon.node import Node

    def fail(e: Exception) -> int:
        logging.getLogger("peerkeeper.node").error("%s", e)
        if init_error is not None:
            init_error(str(e))
        return 1

    try:
        node = Node(config)
    except (AsmapError, ConfigError) as e:
        return fail(e)
    set_mocktime_source(lambda: node.clock.mocktime)  # Core's "(mocktime: ...)" stamp
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, node.request_stop)
    try:
        await node.start()
    except (OSError, StoreError) as e:
        await node.stop()
        return fail(e)
    logging.getLogger("peerkeeper.node").info(
        "peerkeeper %s started (chain %s, datadir %s)", __version__, config.chain, node.datadir
    )
    for line in startup_summary(node, config):
        logging.getLogger("peerkeeper.node").info("%s", line)
    try:
        await node.wait_stopped()
    finally:
        logging.getLogger("peerkeeper.node").info("shutting down")
        await node.stop()
    return 0


def startup_summary(node: Node, config: Config) -> list[str]:
    """What a started node will do, in plain words (logged at start): where it listens,
    how it finds peers, whom it dials, where its RPC and files are, and how it stops."""
    from peerkeeper.bitcoin.seeds import DNS_SEEDS
    from peerkeeper.wire.corelog import host_port

    lines: list[str] = []
    listening = [host_port(h, p) for h, p in node.connman.listening]
    if listening:
        lines.append(f"listening for peers on {', '.join(listening)}")
    elif config.connect:
        lines.append("not listening for peers (--connect turns listening off; --listen 1)")
    else:
        lines.append("not listening for peers")
    if config.connect:
        peers = config.specified_outgoing
        lines.append(
            f"dialling only {', '.join(peers)} (--connect); no seeding"
            if peers
            else "no outbound connections (--connect 0); no seeding"
        )
    else:
        sources = []
        real_dns = [s for s in DNS_SEEDS.get(config.chain, ()) if not s.endswith(".invalid.")]
        if config.dns_seeding and real_dns:
            sources.append(f"DNS seeds ({len(real_dns)})")
        if config.seednode:
            sources.append(f"--seednode {', '.join(config.seednode)}")
        if config.fixedseeds and config.fixedseedsfile is not None:
            sources.append(f"fixed seeds from {config.fixedseedsfile} after 60 s")
        seeding = (
            "from " + " + ".join(sources)
            if sources
            else "no seeds (add peers with --addnode, --connect or --seednode)"
        )
        lines.append(f"address book: {len(node.addrman)} addresses; when it runs low: {seeding}")
        if config.use_addrman_outgoing:
            lines.append("automatic outbound connections: 8 full-relay, 2 block-relay-only")
    if config.addnode:
        lines.append(f"keeping connections to {', '.join(config.addnode)} (--addnode)")
    if node.rpc is not None:
        datadir = f" --datadir {config.datadir}" if config.datadir is not None else ""
        lines.append(
            f"RPC on {host_port(config.rpcbind, node.rpc.port)}: peerkeeper rpc "
            f"--chain {config.chain}{datadir} --rpcport {node.rpc.port} METHOD"
        )
    else:
        lines.append("no RPC server (--server 0)")
    if node.web is not None:
        lines.append(f"dashboard and /metrics on http://{host_port(node.web.host, node.web.port)}/")
    if config.datadir is not None:
        lines.append(f"data directory {config.chain_datadir}")
    lines.append("running until Ctrl-C (or `peerkeeper rpc stop`)")
    return lines


def _run_rpc(args: argparse.Namespace) -> int:
    """``peerkeeper rpc`` / ``peerkeeper netinfo`` (:func:`peerkeeper.daemon.rpcclient.run`,
    which the light entry point runs too), with bitcoin-cli's reports."""
    return rpcclient.run(args, lambda call: _cli_report(args, call))


#: bitcoin-cli -named's conversion (kept importable here).
parse_named_params = rpcclient.parse_named_params


def _cli_report(args: argparse.Namespace, call: Callable[[str, list[Any]], Any]) -> str | None:
    """The text of -netinfo / -getinfo / -addrinfo (None: a plain call)."""
    from peerkeeper.daemon import netinfo

    words = [w for w in (getattr(args, "method", None), *getattr(args, "params", ())) if w]
    if args.command == "netinfo" or getattr(args, "netinfo", False):
        if args.command == "netinfo":
            words = [args.level, *([args.outonly] if args.outonly else [])]
        try:
            level, outonly = netinfo.parse_netinfo_args(words, cli=_CLI)
        except netinfo.NetinfoHelp as e:
            return e.text
        return _netinfo_text(call, level, outonly, getattr(args, "watch", None))
    if getattr(args, "getinfo", False):
        netinfo.check_no_args("-getinfo", words)
        return netinfo.format_getinfo(call("getblockchaininfo", []), call("getnetworkinfo", []))
    if getattr(args, "addrinfo", False):
        netinfo.check_no_args("-addrinfo", words)
        return netinfo.format_addrinfo(call("getaddrmaninfo", []))
    return None


def _netinfo_text(
    call: Callable[[str, list[Any]], Any],
    level: int,
    outonly: bool,
    watch: float | None,
) -> str:
    from peerkeeper.daemon import netinfo

    while True:
        peers = call("getpeerinfo", [])
        network = call("getnetworkinfo", [])
        chain = call("getblockchaininfo", [])["chain"]
        text = netinfo.format_netinfo(
            level,
            outonly,
            peers,
            network,
            now=time.time(),
            chain=chain,
            client_version=f"v{__version__}",
            check_server_version=False,  # Core's check is for its own version numbers
        )
        if watch is None:
            return text
        print("\x1b[H\x1b[2J" + text, flush=True)  # clear the terminal, then the report
        time.sleep(watch)


T = TypeVar("T")


def _with_store_value(config: Config, work: Callable[[Store], T]) -> T:
    """Lock the chain's data directory, open its store, run ``work``, close and unlock.

    Raises :class:`~peerkeeper.io.store.StoreError` (also when a node holds the directory).
    """
    lock = lock_datadir(config.chain_datadir)
    try:
        store = Store(config.chain_datadir)
        store.open()
        try:
            return work(store)
        finally:
            store.close()
    finally:
        lock.close()


class FileCommandError(Exception):
    """An import/export command cannot do its work; printed as ``Error: ...``, exit 1."""


def _nothing_stored(path: Path, what: str = "address book") -> FileCommandError:
    return FileCommandError(
        f"no {what} in {path} (has a node run with this --datadir and --chain?)"
    )


def _with_stored_value(
    config: Config, work: Callable[[Store], T], what: str = "peerkeeper store"
) -> T:
    """:func:`_with_store_value` for the export commands: a store that does not exist
    (no node ever ran with this ``--datadir`` and ``--chain``) is an error naming
    ``what`` is missing, not an empty store made on the spot."""
    path = Store(config.chain_datadir).path
    if not path.is_file():
        raise _nothing_stored(path, what)
    return _with_store_value(config, work)


def _import_peers_dat(config: Config, path: Path) -> int:
    """Replace the stored address book with ``path`` (Core's peers.dat); nothing changes on error."""
    try:
        addrman = read_peers_dat(path, config.chain_params.magic, random.SystemRandom())
    except (PeersDatError, OSError) as e:
        print(f"Error: {_file_error(e, path)}", file=sys.stderr)
        return 1
    snap = snapshot_addrman(addrman)
    _with_store_value(config, lambda st: st.call_sync(lambda c: save_addrbook(c, snap, None)))
    print(f"imported {len(addrman)} addresses from {path}")
    return 0


def _stored_addrman(store: Store) -> AddrMan:
    """The stored address book; :class:`FileCommandError` when none was ever saved."""
    snap = store.call_sync(load_addrbook)
    if snap is None:
        raise _nothing_stored(store.path)
    try:
        return addrman_from_snapshot(snap, random.SystemRandom())
    except AddrManFormatError as e:
        raise FileCommandError(f"the address book in {store.path} is unusable: {e}") from None


def _export_peers_dat(config: Config, path: Path) -> int:
    """Write the stored address book to ``path`` as Core's peers.dat."""
    addrman = _with_stored_value(config, _stored_addrman, "address book")
    write_peers_dat(path, addrman, config.chain_params.magic)
    print(f"exported {len(addrman)} addresses to {path}")
    return 0


def _export_peers_json(config: Config, path: Path) -> int:
    """Write the stored address book to ``path`` as Floresta's peers.json."""
    addrman = _with_stored_value(config, _stored_addrman, "address book")
    write_peers_json(path, addrman, time.time())
    print(f"exported {len(addrman)} addresses to {path}")
    return 0


def _import_banlist(config: Config, path: Path) -> int:
    """Replace the stored bans with ``path`` (Core's banlist.json); nothing changes on error.
    Bans that have expired are not imported (Core's ``BanMan::LoadBanlist`` sweeps them);
    the message counts them."""
    now = time.time()
    banman = BanMan(random.SystemRandom().getrandbits(32))
    every = BanMan(0)  # the same file with nothing expired yet: to count what was swept
    try:
        load_banlist(banman, path, now)
        load_banlist(every, path, 0.0)
    except (BanlistError, OSError) as e:
        print(f"Error: {_file_error(e, path)}", file=sys.stderr)
        return 1
    rows = [(str(s), e.create_time, e.ban_until) for s, e in banman.get_banned(now).items()]
    _with_store_value(config, lambda st: st.call_sync(lambda c: save_bans(c, rows)))
    expired = len(every.get_banned(0.0)) - len(rows)
    print(f"imported {len(rows)} bans from {path} ({expired} expired, not imported)")
    return 0


def _export_banlist(config: Config, path: Path) -> int:
    """Write the stored bans to ``path`` as Core's banlist.json."""
    banman = BanMan(random.SystemRandom().getrandbits(32))
    obj = _with_stored_value(config, lambda st: st.call_sync(load_bans))
    banman.load_json(obj, time.time())
    write_banlist_json(path, banman.get_banned(time.time()))
    print(f"exported {len(banman)} bans to {path}")
    return 0


def _import_anchors_dat(config: Config, path: Path) -> int:
    """Replace the stored anchors with ``path`` (Core's anchors.dat; at most 2 are kept,
    as Core truncates); the file itself is left in place."""
    try:
        entries = loads_anchors(path.read_bytes(), config.chain_params.magic, name=str(path))
    except (PeersDatError, OSError) as e:
        print(f"Error: {_file_error(e, path)}", file=sys.stderr)
        return 1
    entries = entries[:MAX_BLOCK_RELAY_ONLY_ANCHORS]
    _with_store_value(config, lambda st: st.call_sync(lambda c: save_anchors(c, entries)))
    print(f"imported {len(entries)} anchors from {path}")
    return 0


def _export_anchors_dat(config: Config, path: Path) -> int:
    """Write the stored anchors (block-relay-only peers at the last clean shutdown) as
    Core's anchors.dat."""
    entries = _with_stored_value(config, lambda st: st.call_sync(peek_anchors))
    write_anchors(path, entries, config.chain_params.magic)
    print(f"exported {len(entries)} anchors to {path}")
    return 0


def _file_error(e: Exception, path: Path) -> str:
    """An error's text that names the file: an OS error's own file name, else ``path``
    when the text does not already name it."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename or path}"
    text = str(e)
    return text if str(path) in text or path.name in text else f"{path}: {text}"


_FILE_COMMANDS: dict[str, Callable[[Config, Path], int]] = {
    "import-anchors-dat": _import_anchors_dat,
    "export-anchors-dat": _export_anchors_dat,
    "import-peers-dat": _import_peers_dat,
    "export-peers-dat": _export_peers_dat,
    "export-peers-json": _export_peers_json,
    "import-banlist": _import_banlist,
    "export-banlist": _export_banlist,
}


def run_daemon(main: Coroutine[Any, Any, int]) -> int:
    """Run a node's main coroutine on uvloop when installed, else asyncio's loop, with
    malloc tuned for large messages (:func:`peerkeeper.io.malloc.tune_malloc`)."""
    tune_malloc()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    status: int = uvloop.run(main)
    return status


def _main_native(args: argparse.Namespace) -> int:
    """``node`` / ``rpc`` with ``--protocol native`` (see :mod:`peerkeeper.daemon.nativecli`)."""
    if args.command == "node":
        setup_logging(args.debug or [])
        return run_daemon(run_native_node(args))
    if args.command != "rpc":
        print(f"error: {args.command} is for the bitcoin protocol", file=sys.stderr)
        return 1
    return _run_rpc(args)  # the cookie in <datadir>/native, port 8732 (rpcclient)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``peerkeeper`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        return run_sim(args, sys.argv[1:] if argv is None else argv)
    if args.command == "lab":
        return run_lab_command(args)
    if args.command == "crawl":
        return run_crawl_command(args)
    if args.command == "gossip-demo":
        from peerkeeper.daemon.gossipdemo import run_gossip_demo

        if args.nodes < 2:
            print("error: --nodes must be at least 2", file=sys.stderr)
            return 1
        if not args.seconds > 0:
            print("error: --seconds must be more than 0 (how long to wait)", file=sys.stderr)
            return 1
        result = asyncio.run(run_gossip_demo(args.nodes, seconds=args.seconds))
        return 0 if result.converged_after is not None else 1
    if getattr(args, "protocol", "bitcoin") == "native":
        return _main_native(args)
    if args.command == "rpc":
        return _run_rpc(args)
    if args.command == "netinfo":
        try:
            return _run_rpc(args)
        except KeyboardInterrupt:
            return 0
    try:
        config = config_from_args(args)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.command in _FILE_COMMANDS:
        try:
            return _FILE_COMMANDS[args.command](config, args.file)
        except (StoreError, FileCommandError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"Error: {_file_error(e, args.file)}", file=sys.stderr)
            return 1
    if args.command == "node":
        # As bitcoind: <datadir>/<chain>/debug.log, and the console unless told not to.
        log_file = None if args.debuglogfile == "0" else config.chain_datadir / "debug.log"
        if args.debuglogfile not in (None, "0"):
            log_file = config.chain_datadir / Path(args.debuglogfile).expanduser()
        setup_logging(
            config.debug,
            path=log_file,
            console=None if args.printtoconsole == 0 else sys.stderr,
        )
        return run_daemon(run_node(config, init_error=lambda m: _print_init_error(m, config)))
    raise AssertionError(f"unhandled command {args.command}")


def _print_init_error(message: str, config: Config) -> None:
    """Core's ``InitError`` on the console (src/noui.cpp): ``Error: ...`` on stderr, also
    when the log does not go to the console. A P2P listener that cannot bind is said in
    ``peerkeeper node``'s words, naming the port and the options that move it (the log
    keeps Core's line, src/net.cpp ``BindListenPort``; peerkeeperd prints Core's too)."""
    import re

    from peerkeeper.wire import corelog

    for template, in_use in (
        (corelog.UNABLE_TO_BIND_IN_USE, True),
        (corelog.UNABLE_TO_BIND, False),
    ):
        m = re.fullmatch(re.escape(template).replace("%s", "(.+?)"), message)
        if m is not None:
            host, _, port = m[1].rpartition(":")
            host = host.removeprefix("[").removesuffix("]")
            reason = "in use (another node running?)" if in_use else f"unusable ({m[2]})"
            message = f"P2P port {port} on {host} is {reason}: choose another with --port or --bind"
    if message == corelog.FAILED_TO_LISTEN:
        message = (
            f"cannot listen on P2P port {config.p2p_port} on any address (in use by another "
            "node?): choose another with --port or --bind, or --listen 0"
        )
    print(f"Error: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
