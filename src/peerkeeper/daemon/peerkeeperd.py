"""``peerkeeperd``: the Bitcoin node with bitcoind's command line and bitcoin.conf.

Anything that launches ``bitcoind`` (scripts, service files, Core's functional test
framework) can launch ``peerkeeperd`` the same way: ``-name=value``, ``-name``,
``-noname``, repeated options, ``-regtest``/``-chain=``, ``-datadir=``, ``-conf=``, and
``<datadir>/bitcoin.conf`` with its ``[regtest]``-style sections and ``includeconf``,
all by Core's rules (:mod:`peerkeeper.daemon.args`). The options peerkeeper implements
keep Core's meaning (the same names as ``peerkeeper node --name``); options for what
peerkeeper does not have (wallet, validation, mempool, indexes) are accepted and logged
once as ignored; anything else is Core's error, on stderr with exit code 1, before
anything is written to the datadir::

    Error: Error parsing command line arguments: Invalid parameter -foo

The cookie is ``<datadir>/<chain>/.cookie`` and the log ``<datadir>/<chain>/debug.log``
(appended, a line at a time; also on stderr with ``-printtoconsole``), as Core's.
Source: src/bitcoind.cpp ``AppInit``, src/common/init.cpp ``InitConfig``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from peerkeeper.daemon.args import ArgsError, ArgsManager, ArgSpec, ChainError
from peerkeeper.daemon.config import (
    BOOL_KEYS,
    INT_KEYS,
    LIST_KEYS,
    PATH_KEYS,
    Config,
    ConfigError,
)
from peerkeeper.daemon.debuglog import (
    CORE_CATEGORIES,
    OWN_CATEGORIES,
    LogOptions,
    LogSetupError,
)
from peerkeeper.wire import corelog
from peerkeeper.wire.corelog import set_log_ips

__all__ = ["IGNORED_OPTIONS", "build_config", "main", "arg_specs"]

#: Core's ``NETWORK_ONLY`` options (src/init.cpp): off mainnet, the config file's
#: default section does not set them.
NETWORK_ONLY = frozenset({"addnode", "bind", "connect", "port", "rpcbind", "rpcport"})
#: Core's DISALLOW_NEGATION / DISALLOW_ELISION flags (src/init.cpp, src/init/common.cpp).
_NO_NEGATION = frozenset({"datadir", "loglevel"})
_NO_ELISION = frozenset({"proxy", "loglevel"})
#: Options Core has for parts peerkeeper does not (wallet, validation, mempool, indexes,
#: logging details it does not reproduce yet): accepted, logged once, no effect.
IGNORED_OPTIONS: dict[str, str] = {
    name: reason
    for reason, names in {
        "peerkeeper has no wallet": (
            "disablewallet wallet walletdir keypool fallbackfee paytxfee mintxfee "
            "maxtxfee discardfee txconfirmtarget walletrbf spendzeroconfchange "
            "avoidpartialspends walletbroadcast walletnotify unsafesqlitesync"
        ),
        "peerkeeper does not validate blocks or keep a mempool": (
            "par dbcache prune txindex blockfilterindex coinstatsindex reindex "
            "reindex-chainstate assumevalid checkblocks checklevel checkmempool "
            "blocksdir maxmempool mempoolexpiry persistmempool minrelaytxfee "
            "datacarrier datacarriersize permitbaremultisig acceptnonstdtxn "
            "blocksonly blocknotify blockmaxweight blockmintxfee "
            "prevoutfetchthreads stopatheight stopafterblockimport"
        ),
        "not implemented by peerkeeper's RPC server": (
            "rpcdoccheck rpcallowip rpcauth rpcwhitelist rpcwhitelistdefault rest"
        ),
        "not implemented by peerkeeper's logging": "logratelimit shrinkdebugfile",
        "peerkeeper relays no transactions (no BIP37 filters, no BIP330)": (
            "peerbloomfilters txreconciliation"
        ),
        "peerkeeper's addrman consistency check runs in its test suite, not at run time": (
            "checkaddrman"
        ),
        "peerkeeper does not capture messages to files": "capturemessages",
        "not implemented by peerkeeper yet": (
            "discover natpmp "
            "mocktime daemon daemonwait pid alertnotify "
            "startupnotify shutdownnotify allowignoredconf settings"
        ),
    }.items()
    for name in names.split()
}

#: Core options that select the chain, the files, or the console.
_META = (
    "regtest",
    "testnet",
    "testnet4",
    "signet",
    "chain",
    "datadir",
    "conf",
    "includeconf",
    "sysperms",
)
#: Core's logging options (src/init/common.cpp ``AddLoggingArgs``), read by
#: :func:`log_options`.
_LOG_OPTIONS = (
    "printtoconsole",
    "debuglogfile",
    "debugexclude",
    "loglevel",
    "loglevelalways",
    "logtimestamps",
    "logtimemicros",
    "logthreadnames",
    "logsourcelocations",
    "logips",
)
#: Options Core flags SENSITIVE (src/init.cpp): logged as ``****``.
SENSITIVE_OPTIONS = frozenset({"rpcauth", "rpcpassword", "rpcuser", "torpassword"})
#: Core's ``HelpRequested`` spellings (src/common/args.cpp); ``-version`` beside them.
_HELP = frozenset({"?", "h", "help", "help-debug"})
#: Config fields that are not Core options (or are read specially).
_NOT_OPTIONS = frozenset({"chain", "datadir", "services", "daemon"})

log = logging.getLogger("peerkeeper.node")


def arg_specs() -> list[ArgSpec]:
    """Every option peerkeeperd accepts: Config's fields (Core's names), the chain and
    file options, ``-printtoconsole``, and :data:`IGNORED_OPTIONS`."""
    names = [f.name for f in fields(Config) if f.name not in _NOT_OPTIONS]
    names += [*_META, *_LOG_OPTIONS, "version", *_HELP, *IGNORED_OPTIONS]
    return [
        ArgSpec(
            n,
            network_only=n in NETWORK_ONLY,
            disallow_negation=n in _NO_NEGATION,
            disallow_elision=n in _NO_ELISION,
        )
        for n in dict.fromkeys(names)
    ]


def _parse(argv: list[str], default_datadir: Path) -> ArgsManager:
    args = ArgsManager(arg_specs())
    try:
        args.parse_parameters(argv)
    except ArgsError as e:
        raise ConfigError(f"Error parsing command line arguments: {e}") from None
    datadir = args.datadir(default_datadir)
    if args.datadir_given() and not datadir.is_dir():
        raise ConfigError(
            f'Specified data directory "{args.get_arg("datadir", "")}" does not exist.'
        )
    try:
        args.read_config_files(default_datadir, ignore_invalid_keys=True)
        chain = args.chain()
    except ChainError as e:
        raise ConfigError(str(e)) from None  # Core prints GetChainTypeString's error as is
    except ArgsError as e:
        raise ConfigError(f"Error reading configuration file: {e}") from None
    args.select_network(chain)
    if args.commands:
        # src/bitcoind.cpp AppInit, after the config files were read.
        raise ConfigError(
            f"Command line contains unexpected token '{args.commands[0]}', "
            "see bitcoind -h for a list of options."
        )
    return args


def _debug_categories(values: list[str]) -> list[str]:
    """Core ``SetLoggingCategories`` (src/init/common.cpp): what follows the last ``0`` or
    ``none``; ``""``, ``1`` and ``all`` are every category; an unknown name is Core's
    error. Raises :class:`ConfigError`."""
    for i in range(len(values) - 1, -1, -1):
        if values[i] in ("0", "none"):
            values = values[i + 1 :]
            break
    out: list[str] = []
    for cat in values:
        if cat in ("", "1", "all"):
            out.append("all")
        elif cat in CORE_CATEGORIES or cat in OWN_CATEGORIES:
            out.append(cat)
        else:
            raise ConfigError(f"Unsupported logging category -debug={cat}.")
    return out


def build_config(argv: list[str], default_datadir: Path) -> tuple[Config, ArgsManager]:
    """The :class:`~peerkeeper.daemon.config.Config` that bitcoind's ``argv`` and
    bitcoin.conf describe, and the parsed arguments.

    Raises :class:`~peerkeeper.daemon.config.ConfigError` with Core's message (the text
    after ``Error: ``) for a bad option, file or value."""
    args = _parse(argv, default_datadir)
    chain = args.chain()
    if chain not in ("main", "test", "testnet4", "signet", "regtest"):
        raise ConfigError(f"Unknown chain {chain}.")
    for name in ("port", "rpcport"):  # Core CheckHostPortOptions (src/init.cpp)
        raw = args.get_arg(name)
        if raw is not None and not (raw.isdigit() and 0 < int(raw) <= 0xFFFF):
            raise ConfigError(f"Invalid port specified in -{name}: '{raw}'")
    values: dict[str, Any] = {
        "chain": chain,
        "datadir": args.datadir(default_datadir),
        "daemon": True,
    }
    defaults = Config(daemon=True, server=True)
    for f in fields(Config):
        name = f.name
        if name in _NOT_OPTIONS or not args.is_arg_set(name):
            continue
        if name == "connect" and args.is_arg_negated(name):
            values[name] = ["0"]  # Core: -noconnect is -connect=0 (IsArgNegated)
        elif name in LIST_KEYS or name == "debug":
            values[name] = args.get_args(name)
        elif name in BOOL_KEYS:
            values[name] = args.get_bool_arg(name, bool(getattr(defaults, name)))
        elif name in INT_KEYS:
            values[name] = args.get_int_arg(name, 0)
        elif name in PATH_KEYS:
            value = args.get_arg(name)
            values[name] = Path(value).expanduser() if value else None
        else:
            values[name] = args.get_arg(name)
    if "debug" in values:
        values["debug"] = _debug_categories(values["debug"])
    if "addnode" in values:
        kept = [v for v in values["addnode"] if v.strip()]
        if len(kept) != len(values["addnode"]):
            args.warnings.append(corelog.EMPTY_ADDNODE)  # Core AppInitMain
        values["addnode"] = kept
    config = Config(**values)
    config.validate()
    return config, args


def log_options(args: ArgsManager, config: Config) -> tuple[LogOptions, Path | None, bool]:
    """Core ``InitLogging`` / ``SetLoggingLevel`` / ``SetLoggingCategories``
    (src/init/common.cpp): the line options, the log file (``-debuglogfile``, relative
    to the chain's datadir; None for ``-nodebuglogfile``) and whether to print to the
    console (``-printtoconsole``, default on as for bitcoind without ``-daemon``).

    Raises :class:`ConfigError` with Core's texts for ``-debugexclude`` and ``-loglevel``.
    """
    known = sorted(CORE_CATEGORIES | OWN_CATEGORIES)
    exclude: set[str] = set()
    for cat in args.get_args("debugexclude"):
        if cat in ("", "1", "all"):
            exclude.add("all")
        elif cat in known:
            exclude.add(cat)
        else:
            raise ConfigError(f"Unsupported logging category -debugexclude={cat}.")
    try:
        level, per_category = LogOptions.parse_levels(args.get_args("loglevel"), known)
    except LogSetupError as e:
        raise ConfigError(str(e)) from None
    categories = set(config.debug) - exclude
    if "all" in exclude:
        categories = set()
    options = LogOptions(
        timestamps=args.get_bool_arg("logtimestamps", True),
        time_micros=args.get_bool_arg("logtimemicros", False),
        thread_names=args.get_bool_arg("logthreadnames", False),
        source_locations=args.get_bool_arg("logsourcelocations", False),
        always_print_category_level=args.get_bool_arg("loglevelalways", False),
        categories=categories,
        exclude=exclude,
        level=level,
        category_levels=per_category,
    )
    path: Path | None = None
    if not args.is_arg_negated("debuglogfile"):
        path = config.chain_datadir / Path(args.get_arg("debuglogfile", "") or "debug.log")
    return (
        options,
        path,
        args.get_bool_arg("printtoconsole", not args.get_bool_arg("daemon", False)),
    )


def main(argv: list[str] | None = None, *, default_datadir: Path | None = None) -> int:
    """Run peerkeeperd with bitcoind's ``argv`` (without the program name); the exit
    code: 0 after a clean stop, 1 on a configuration or start-up error (``Error: ...``
    on stderr)."""
    from peerkeeper.daemon.cli import run_daemon, run_node, setup_logging

    argv = sys.argv[1:] if argv is None else argv
    default = default_datadir if default_datadir is not None else Path.home() / ".peerkeeper"
    early = _help_or_version(argv)
    if early is not None:
        print(early, end="")
        return 0
    try:
        config, args = build_config(argv, default)
        options, log_path, to_console = log_options(args, config)
    except ConfigError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    if not args.get_bool_arg("sysperms", False):
        os.umask(0o077)  # Core AppInitBasicSetup: files 0600, directories 0700
    config.chain_datadir.mkdir(parents=True, exist_ok=True)
    # Core prints the log to stdout (LogPrintStr's fwrite to stdout), not stderr.
    try:
        setup_logging(
            [],
            path=log_path,
            console=sys.stdout if to_console else None,
            options=options,
            make_dirs=False,  # Core: -debuglogfile=missing/dir/x.log is an init error
        )
    except OSError:
        print(f"Error: Could not open debug log file {log_path}", file=sys.stderr)  # Core
        return 1
    set_log_ips(args.get_bool_arg("logips", False))  # Core fLogIPs
    for warning in args.warnings:
        if warning.startswith("warning: -includeconf"):
            print(warning, file=sys.stderr)  # Core ReadConfigFiles writes this to stderr
        log.warning("%s", warning)
    for line in args.log_args(SENSITIVE_OPTIONS):  # Core ArgsManager::LogArgs
        log.info("%s", line)
    ignored = sorted(n for n in IGNORED_OPTIONS if args.is_arg_set(n))
    for name in ignored:
        log.info("Ignoring -%s: %s", name, IGNORED_OPTIONS[name])
    return run_daemon(
        run_node(config, init_error=lambda msg: print(f"Error: {msg}", file=sys.stderr))
    )


def _help_or_version(argv: list[str]) -> str | None:
    """What ``-version`` or ``-h`` / ``-help`` / ``-?`` print before anything else
    happens (Core ``ProcessInitCommands``, src/bitcoind.cpp), or None."""
    args = ArgsManager(arg_specs())
    with contextlib.suppress(ArgsError):
        args.parse_parameters(argv)
    wants_help = any(a.split("=", 1)[0].lstrip("-") in _HELP for a in argv if a.startswith("-"))
    if not wants_help and not args.get_bool_arg("version", False):
        return None
    from peerkeeper import __version__

    text = f"peerkeeperd version v{__version__} (a bitcoind-compatible peerkeeper node)\n"
    if args.get_bool_arg("version", False):
        return text + "MIT licence. Options, RPCs and debug.log lines follow Bitcoin Core's.\n"
    names = sorted(spec.name for spec in arg_specs())
    return (
        text
        + "\nUsage: peerkeeperd [options]\n\nOptions (Bitcoin Core's names; "
        + "those for a wallet, validation or a mempool are accepted and ignored):\n"
        + "".join(f"  -{name}\n" for name in names)
    )


def console_main() -> None:
    """The ``peerkeeperd`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console_main()
