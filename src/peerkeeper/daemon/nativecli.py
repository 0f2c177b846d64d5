"""``peerkeeper node --protocol native`` and ``peerkeeper rpc --protocol native``.

A native node keeps its files in ``<datadir>/native`` (``identity.json``,
``peers.json``, ``peerkeeper.sqlite``, the RPC ``.cookie``), listens on
:data:`~peerkeeper.shell.nativenode.DEFAULT_NATIVE_PORT` (9732, Octez's) and serves JSON-RPC
on :data:`DEFAULT_NATIVE_RPC_PORT` (8732, Octez's). Options follow Octez's node
(``--peer``, ``--private-mode``, ``--connections``, ``--expected-pow``) where it has
them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from peerkeeper.daemon.rpcclient import DEFAULT_NATIVE_RPC_PORT
from peerkeeper.io.store import DatadirLock, StoreError, lock_datadir
from peerkeeper.native.identity import DEFAULT_POW_DIFFICULTY, IdentityError, PeerId
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.native.pool import PoolConfig
from peerkeeper.net.netaddr import AddrError, Service
from peerkeeper.shell.nativenode import DEFAULT_NATIVE_PORT, NativeConfig, NativeNode

if TYPE_CHECKING:
    from peerkeeper.daemon.rpc import RpcServer

__all__ = ["DEFAULT_NATIVE_RPC_PORT", "add_native_options", "native_config", "run_native_node"]

log = logging.getLogger("peerkeeper.native")


def add_native_options(node: argparse.ArgumentParser) -> None:
    """Add the native protocol's options to the ``node`` parser."""
    g = node.add_argument_group("native protocol (--protocol native)")
    g.add_argument(
        "--peer",
        action="append",
        default=None,
        metavar="HOST:PORT",
        help="a point to bootstrap from (repeatable; Octez --peer)",
    )
    g.add_argument(
        "--trust",
        action="append",
        default=None,
        metavar="HOST:PORT[#PEER_ID]",
        help="a trusted point, optionally with its expected peer id (repeatable)",
    )
    g.add_argument(
        "--private-mode",
        action="store_true",
        help="talk only to trusted points; never advertised (Octez --private-mode)",
    )
    g.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help="expected connections; min N/2 and max 3N/2 (Octez --connections, default 50)",
    )
    g.add_argument(
        "--expected-pow",
        type=float,
        metavar="BITS",
        help=f"identity proof of work, in bits (default {DEFAULT_POW_DIFFICULTY:g})",
    )


def _point(text: str) -> Service:
    try:
        svc = Service.parse(text, DEFAULT_NATIVE_PORT)
    except AddrError as e:
        raise ValueError(f"bad point {text!r}: {e}") from None
    return svc


def native_datadir(args: argparse.Namespace) -> Path:
    """``<datadir>/native`` (datadir default ``~/.peerkeeper``)."""
    base = args.datadir if args.datadir is not None else Path.home() / ".peerkeeper"
    return Path(base).expanduser() / "native"


def native_config(args: argparse.Namespace) -> NativeConfig:
    """A :class:`NativeConfig` from ``node`` arguments; raises ValueError for bad values."""
    trusted: list[tuple[Service, PeerId | None]] = []
    for text in args.trust or []:
        point_text, _, peer_text = text.partition("#")
        try:
            expected = PeerId.parse(peer_text) if peer_text else None
        except IdentityError as e:
            raise ValueError(f"bad peer id in --trust {text!r}: {e}") from None
        trusted.append((_point(point_text), expected))
    limits = MaintenanceConfig()
    if args.connections is not None:
        n = args.connections
        if n < 0:
            raise ValueError("--connections must be >= 0")
        limits = MaintenanceConfig(
            min_connections=n // 2, expected_connections=n, max_connections=3 * n // 2
        )
    port = args.port if args.port is not None else DEFAULT_NATIVE_PORT
    binds: list[tuple[str, int]] = []
    for text in args.bind or ["0.0.0.0"]:
        try:
            svc = Service.parse(text, port)
        except AddrError as e:
            raise ValueError(f"bad --bind {text!r}: {e}") from None
        binds.append((str(svc.addr), svc.port))
    return NativeConfig(
        datadir=native_datadir(args),
        binds=binds,
        # The port peers are told to dial back (the identity message's listening port)
        # is the first listener's as bound: --bind HOST:PORT's port, or the one the OS
        # picked for port 0 (Octez advertises its --net-addr port the same way).
        advertised_port=None,
        pool=PoolConfig(
            trusted_points=tuple(trusted),
            private_mode=bool(args.private_mode),
        ),
        limits=limits,
        pow_difficulty=(
            args.expected_pow if args.expected_pow is not None else DEFAULT_POW_DIFFICULTY
        ),
        bootstrap_points=[_point(p) for p in args.peer or []],
    )


async def run_native_node(args: argparse.Namespace) -> int:
    """Run a native node until SIGINT/SIGTERM or the ``stop`` RPC; the exit status."""
    from peerkeeper.daemon.config import Config, ConfigError
    from peerkeeper.daemon.nativerpc import native_rpc_methods
    from peerkeeper.daemon.rpc import RpcServer, delete_cookie, write_cookie
    from peerkeeper.daemon.web import WebServer
    from peerkeeper.shell.events import EventLog
    from peerkeeper.wire.events import EventFilter

    try:
        config = native_config(args)
    except ValueError as e:
        log.error("cannot start: %s", e)
        return 1
    config.datadir.mkdir(parents=True, exist_ok=True)
    lock: DatadirLock | None = None
    try:
        lock = lock_datadir(config.datadir)
    except StoreError as e:
        log.error("cannot start: %s", e)
        return 1
    node = NativeNode(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    rpc: RpcServer | None = None
    webserver: WebServer | None = None
    eventlog: EventLog | None = None
    try:
        try:
            await node.start()
            if getattr(args, "eventlog", None) is not None:
                eventlog = EventLog(args.eventlog, EventFilter("pool:*"))
                node.event_hub.add_sink(eventlog.filter, eventlog)
        except OSError as e:
            if len(node.listening) < len(config.binds):  # the listener that failed
                host, port = config.binds[len(node.listening)]
                log.error("cannot start: %s", _bind_error("P2P", host, port, "--port or --bind", e))
            else:
                log.error("cannot start: %s", e)
            return 1
        except (IdentityError, StoreError) as e:
            log.error("cannot start: %s", e)
            return 1
        try:
            endpoint = Config(web=getattr(args, "web", None)).web_endpoint()
            if endpoint is not None:
                webserver = WebServer(node, *endpoint)
                await webserver.start()
        except (OSError, ConfigError) as e:
            webserver = None  # as the Bitcoin node: run on without -web
            log.error("%s; running without -web", e)
        if args.server is None or args.server:
            methods = native_rpc_methods(node)

            async def stop_rpc(params: object) -> str:
                stop.set()
                return "peerkeeper stopping"

            methods["stop"] = stop_rpc
            credentials = [write_cookie(config.datadir)]
            if args.rpcuser and args.rpcpassword:
                credentials.append((args.rpcuser, args.rpcpassword))
            rpc_host = args.rpcbind or "127.0.0.1"
            rpc_port = args.rpcport if args.rpcport is not None else DEFAULT_NATIVE_RPC_PORT
            rpc = RpcServer(methods, host=rpc_host, port=rpc_port, credentials=credentials)
            try:
                await rpc.start()
            except OSError as e:
                log.error(
                    "cannot start: %s", _bind_error("RPC", rpc_host, rpc_port, "--rpcport", e)
                )
                return 1
        log.info("native node %s started (datadir %s)", node.peer_id, config.datadir)
        for line in _startup_summary(node, config, rpc):
            log.info("%s", line)
        await stop.wait()
        return 0
    finally:
        log.info("shutting down")
        if webserver is not None:
            await webserver.stop()
        if rpc is not None:
            await rpc.stop()
        delete_cookie(config.datadir)  # written before the RPC server started (or failed to)
        await node.stop()
        if eventlog is not None:  # after the node: its last pool events are written too
            node.event_hub.remove_sink(eventlog)
            eventlog.close()
        if lock is not None:
            lock.close()


def _bind_error(kind: str, host: str, port: int, options: str, e: OSError) -> str:
    """A listener that cannot start, in words that say which one and how to move it."""
    if e.errno == errno.EADDRINUSE:
        return (
            f"{kind} port {port} on {host} is in use (another node running?): "
            f"choose another with {options}"
        )
    return f"cannot listen for {kind} on {host}:{port} ({e.strerror or e}): choose another with {options}"


def _startup_summary(node: NativeNode, config: NativeConfig, rpc: RpcServer | None) -> list[str]:
    """What a started native node will do, in plain words (logged at start)."""
    lines = []
    if node.listening:
        where = ", ".join(f"{h}:{p}" for h, p in node.listening)
        advertised = node.core.listen_port if node.core is not None else 0
        lines.append(f"listening for peers on {where} (telling peers to dial port {advertised})")
    else:
        lines.append("not listening for peers")
    limits = config.limits
    keeping = f"keeping {limits.min_connections} to {limits.max_connections} connections"
    boot = ", ".join(str(p) for p in config.bootstrap_points)
    lines.append(
        f"dialling {boot} (--peer) at once, then {keeping}"
        if boot
        else f"no --peer to dial: waiting for peers to connect, {keeping}"
    )
    trusted = ", ".join(str(p) for p, _ in config.pool.trusted_points)
    if trusted:
        lines.append(f"trusted points (reconnected with back-off): {trusted}")
    if rpc is not None:
        lines.append(
            f"RPC on {rpc.host}:{rpc.port}: peerkeeper rpc --protocol native --datadir "
            f"{config.datadir.parent} --rpcport {rpc.port} METHOD"
        )
    else:
        lines.append("no RPC server (--server 0)")
    lines.append(f"data directory {config.datadir}")
    lines.append("running until Ctrl-C (or `peerkeeper rpc --protocol native stop`)")
    return lines
