"""``peerkeeper rpc``: a bitcoin-cli (src/bitcoin-cli.cpp) on the standard library alone.

A console call of ``peerkeeper rpc METHOD ...`` goes through
:mod:`peerkeeper.daemon.entry` to :func:`main` here, which imports argparse,
http.client and json, and neither the node, aiohttp nor asyncio: the call costs an
interpreter start and one HTTP exchange. The full ``peerkeeper`` parser
(:mod:`peerkeeper.daemon.cli`) uses the same option definitions
(:func:`add_common_options`, :func:`add_client_options`) and the same :func:`run`, so
both print the same text and exit with the same status.

What it does, as bitcoin-cli:

* where: ``--rpcconnect`` (``HOST`` or ``HOST:PORT``, Core's ``SplitHostPort``) and
  ``--rpcport`` (else the chain's RPC port, src/chainparamsbase.cpp), from the command
  line, else from the configuration file: ``--conf`` or ``<datadir>/bitcoin.conf``
  when it exists (Core's ``-conf`` default, src/common/args.cpp), with its ``[chain]``
  sections and ``chain.key=`` keys, read as ``peerkeeper node`` reads it
  (:func:`peerkeeper.daemon.config.read_conf_file`: the file's top section picks the
  chain when the command line does not, the last value of a key wins);
* who: ``--rpcuser``/``--rpcpassword`` (command line, else the file), else the cookie
  ``<datadir>/<chain>/.cookie`` (src/rpc/request.cpp ``GetAuthCookie``; ``<datadir>``
  for main, ``<datadir>/native`` for ``--protocol native``);
* the call (``CallRPC``): JSON-RPC 1.0 ``{"method", "params", "id": 1}``, HTTP/1.1
  ``POST /`` with Basic authentication; ``400``, ``404`` and ``500`` replies carry an
  error object, ``401`` is "Authorization failed", ``503`` "Server response";
* the arguments (src/rpc/client.cpp ``Parse``, ``RPCConvertNamedValues``): each is
  JSON if it parses, else a string; ``-named`` takes ``name=value``;
* ``-rpcwait`` (``ConnectAndCallRPC``): retry every second while nothing answers, the
  cookie is missing or the node warms up (``-28``), ``-rpcwaittimeout`` bounds it;
  ``-rpcclienttimeout`` (900 s; 0: none) bounds each reply;
* the output (bitcoin-cli ``main``): a string result raw, null nothing, anything else as
  JSON indented by 2; an error reply ``error code: N`` / ``error message:`` / the
  message on stderr, exit 1.

``-netinfo``, ``-getinfo``, ``-addrinfo`` and ``--help`` are left to the full parser
(:func:`main` returns None for them).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from peerkeeper.daemon.confparse import ConfLineError, chain_in_file, conf_items

__all__ = [
    "CHAIN_RPC_PORTS",
    "DEFAULT_NATIVE_RPC_PORT",
    "RPC_IN_WARMUP",
    "RPC_MISC_ERROR",
    "ClientConfigError",
    "RpcCaller",
    "RpcReplyError",
    "RpcTarget",
    "add_client_options",
    "add_common_options",
    "add_protocol_option",
    "call_rpc",
    "main",
    "parse_cli_param",
    "parse_named_params",
    "read_client_conf",
    "resolve_target",
    "run",
]

#: Each chain's default RPC port (src/chainparamsbase.cpp): the table of
#: :data:`peerkeeper.net.chains.CHAINS`, repeated here so that a call does not import
#: it (tests/test_rpcclient.py checks that the two agree).
CHAIN_RPC_PORTS = {
    "main": 8332,
    "test": 18332,
    "testnet4": 48332,
    "signet": 38332,
    "regtest": 18443,
}
#: The native node's default JSON-RPC port (Octez's RPC port).
DEFAULT_NATIVE_RPC_PORT = 8732
#: src/rpc/protocol.h: a client-side failure, and "the node is starting".
RPC_MISC_ERROR = -1
RPC_IN_WARMUP = -28
#: The largest reply read (as :func:`peerkeeper.daemon.rpc.rpc_call`).
_MAX_REPLY = 1 << 30
#: bitcoin-cli's ``DEFAULT_HTTP_CLIENT_TIMEOUT`` (src/bitcoin-cli.cpp), seconds.
DEFAULT_CLIENT_TIMEOUT = 900
#: The configuration keys the client reads.
_CLIENT_KEYS = ("rpcport", "rpcuser", "rpcpassword", "rpcconnect")
_CHAIN_KEYS = ("regtest", "testnet4", "signet", "testnet", "chain")


class ClientConfigError(ValueError):
    """A client option or the configuration file is unusable (printed as ``error: ...``)."""


class RpcReplyError(Exception):
    """The node's reply is an error (``code``, ``message``), or no usable reply came
    (``RPC_MISC_ERROR``: "Authorization failed", "server returned HTTP error", ...)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- the options (shared with peerkeeper.daemon.cli's parsers) ----------------------------------


def add_common_options(p: argparse.ArgumentParser) -> None:
    """``--chain``, ``--regtest``, ``--datadir``, ``--conf`` and the RPC credentials: the
    options every ``peerkeeper`` command that finds a node's files takes."""
    p.add_argument("--chain", choices=sorted(CHAIN_RPC_PORTS), help="network (default: main)")
    p.add_argument("--regtest", action="store_true", help="same as --chain regtest")
    p.add_argument("--datadir", type=Path, help="data directory (default: ~/.peerkeeper)")
    p.add_argument(
        "--conf",
        type=Path,
        help="bitcoin.conf-style configuration file (default: <datadir>/bitcoin.conf if any)",
    )
    p.add_argument("--rpcport", type=int, help="JSON-RPC port (default: the chain's, as Core)")
    p.add_argument("--rpcuser", help="JSON-RPC user (default: cookie authentication)")
    p.add_argument("--rpcpassword", help="JSON-RPC password")


def add_protocol_option(p: argparse.ArgumentParser) -> None:
    """``--protocol bitcoin|native``."""
    p.add_argument(
        "--protocol",
        choices=("bitcoin", "native"),
        default="bitcoin",
        help="bitcoin (default) or native: peerkeeper's own protocol (identities, pool)",
    )


def add_client_options(p: argparse.ArgumentParser, *, reports: bool) -> None:
    """bitcoin-cli's options (src/bitcoin-cli.cpp ``SetupCliArgs``), single dash as Core's;
    ``reports``: also ``-named``, ``-netinfo``, ``-getinfo`` and ``-addrinfo``."""
    p.add_argument(
        "--rpcconnect",
        "-rpcconnect",
        default=None,
        help="RPC host, or HOST:PORT (default: 127.0.0.1)",
    )
    p.add_argument(
        "-rpcwait", "--rpcwait", action="store_true", help="wait for the RPC server to start"
    )
    p.add_argument(
        "-rpcwaittimeout",
        "--rpcwaittimeout",
        type=int,
        default=0,
        help="with -rpcwait: give up after this many seconds (default 0: never)",
    )
    p.add_argument(
        "-rpcclienttimeout",
        "--rpcclienttimeout",
        type=int,
        default=DEFAULT_CLIENT_TIMEOUT,
        help=f"seconds to wait for a reply (default {DEFAULT_CLIENT_TIMEOUT}; 0: no limit)",
    )
    if reports:
        p.add_argument(
            "-named", "--named", action="store_true", help="pass arguments as name=value"
        )
        for flag, text in (
            ("-netinfo", "peers and networks at a glance; optional level 0-4 and 'outonly'"),
            ("-getinfo", "general information from the node"),
            ("-addrinfo", "known addresses per network"),
        ):
            p.add_argument(flag, "-" + flag, action="store_true", help=text)


# -- where the node is -------------------------------------------------------------------------


class RpcTarget:
    """Where and how to call: ``host``, ``port``, the directory holding the cookie
    (``cookie_dir``), and ``user``/``password`` when given (else the cookie's)."""

    __slots__ = ("host", "port", "cookie_dir", "user", "password")

    def __init__(
        self,
        host: str,
        port: int,
        cookie_dir: Path,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.cookie_dir = cookie_dir
        self.user = user
        self.password = password

    def credentials(self) -> tuple[str, str]:
        """``(user, password)``: the given ones, else the cookie's. Raises
        ``ConnectionError`` (transient for -rpcwait) when the cookie cannot be read."""
        if self.user and self.password:
            return self.user, self.password
        try:
            return read_cookie(self.cookie_dir)
        except (OSError, ValueError) as e:
            raise ConnectionError(f"cannot read the RPC cookie in {self.cookie_dir}: {e}") from None


def read_client_conf(path: Path, chain: str | None) -> tuple[str, dict[str, str]]:
    """The chain and the client's keys (``rpcport``, ``rpcuser``, ``rpcpassword``,
    ``rpcconnect``) of a bitcoin.conf-style file, by the rules of
    :func:`peerkeeper.daemon.config.read_conf_file`: ``#`` comments, ``[chain]``
    sections and ``chain.key=`` keys apply to that chain only, the last value wins, and
    without ``chain`` the file's top section picks it (``chain=``, ``regtest=1``, ...;
    default main). Raises :class:`ClientConfigError` naming the file and line."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ClientConfigError(f"cannot read configuration file {path}: {e}") from None
    if chain is None:
        chain = chain_in_file(lines)
    values: dict[str, str] = {}
    try:
        for lineno, key, value in conf_items(lines, chain):
            if key in _CLIENT_KEYS:
                if key == "rpcport" and not value.isdigit():
                    raise ClientConfigError(f"{path}:{lineno}: bad value for rpcport: {value!r}")
                values[key] = value
    except ConfLineError as e:
        raise ClientConfigError(f"{path}:{e}") from None
    return chain, values


def _split_host_port(text: str) -> tuple[str, int | None]:
    """Core ``SplitHostPort`` (src/util/strencodings.cpp): ``host``, ``host:port``,
    ``[v6]:port``; a bare IPv6 address has no port."""
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and (host.startswith("[") or ":" not in host):
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return host, int(port)
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1], None
    return text, None


def resolve_target(args: argparse.Namespace) -> RpcTarget:
    """The node to call for parsed ``rpc``/``netinfo`` arguments (see the module
    docstring); raises :class:`ClientConfigError`."""
    datadir = Path(args.datadir or "~/.peerkeeper").expanduser()
    if getattr(args, "protocol", "bitcoin") == "native":
        port = args.rpcport if args.rpcport is not None else DEFAULT_NATIVE_RPC_PORT
        host, _ = _split_host_port(args.rpcconnect or "127.0.0.1")
        return RpcTarget(host, port, datadir / "native", args.rpcuser, args.rpcpassword)
    chain: str | None = "regtest" if args.regtest else args.chain
    conf: Path | None = args.conf
    if conf is None and (datadir / "bitcoin.conf").is_file():
        conf = datadir / "bitcoin.conf"  # Core's -conf default
    values: dict[str, str] = {}
    if conf is not None:
        chain, values = read_client_conf(Path(conf).expanduser(), chain)
    chain = chain or "main"
    if chain not in CHAIN_RPC_PORTS:
        raise ClientConfigError(
            f"unknown chain {chain!r} (one of {', '.join(sorted(CHAIN_RPC_PORTS))})"
        )
    host, port = _split_host_port(args.rpcconnect or values.get("rpcconnect", "127.0.0.1"))
    if args.rpcport is not None:
        port = args.rpcport
    elif "rpcport" in values:
        port = int(values["rpcport"])
    if port is None:
        port = CHAIN_RPC_PORTS[chain]
    if not 0 <= port <= 65535:
        raise ClientConfigError("-rpcport must be between 0 and 65535")
    return RpcTarget(
        host,
        port,
        datadir if chain == "main" else datadir / chain,
        args.rpcuser or values.get("rpcuser"),
        args.rpcpassword or values.get("rpcpassword"),
    )


# -- the call ----------------------------------------------------------------------------------


def read_cookie(datadir: Path) -> tuple[str, str]:
    """``<datadir>/.cookie``'s first line split at the first ``:`` (src/rpc/request.cpp
    ``GetAuthCookie``); as :func:`peerkeeper.daemon.rpc.read_cookie`."""
    path = datadir / ".cookie"
    line = path.read_bytes().decode("utf-8").split("\n", 1)[0].rstrip("\r")
    user, sep, password = line.partition(":")
    if not sep:
        raise ValueError(f"malformed RPC cookie file {path}: no ':' separator")
    return user, password


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _json_loads(data: bytes | str) -> Any:
    """Strict JSON (UniValue's): no NaN/Infinity, no numbers overflowing to infinity."""
    return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)


def parse_cli_param(s: str) -> Any:
    """One argument as bitcoin-cli converts it (src/rpc/client.cpp ``Parse`` with
    ``JSON_OR_STRING``): its JSON value if it is valid JSON, else the string itself."""
    try:
        return _json_loads(s)
    except (ValueError, RecursionError):
        return s


def parse_named_params(items: list[str]) -> dict[str, Any]:
    """bitcoin-cli -named (src/rpc/client.cpp ``RPCConvertNamedValues``): ``name=value``
    arguments by name (a later one wins), values JSON else strings; arguments without
    ``=`` are positional, sent in ``"args"``."""
    params: dict[str, Any] = {}
    positional: list[Any] = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            positional.append(parse_cli_param(item))
        else:
            params[name] = parse_cli_param(value)
    if positional:
        params.setdefault("args", positional)
    return params


def _process_reply(status: int, data: bytes) -> Any:
    """src/bitcoin-cli.cpp ``CallRPC``'s status checks and reply processing."""
    if status == 401:
        raise RpcReplyError(
            RPC_MISC_ERROR,
            "Authorization failed: Incorrect rpcuser or rpcpassword were specified.",
        )
    if status == 503:
        raise RpcReplyError(RPC_MISC_ERROR, f"Server response: {data.decode('utf-8', 'replace')}")
    if status >= 400 and status not in (400, 404, 500):
        raise RpcReplyError(RPC_MISC_ERROR, f"server returned HTTP error {status}")
    if not data:
        raise RpcReplyError(RPC_MISC_ERROR, "no response from server")
    try:
        reply = _json_loads(data)
    except (ValueError, RecursionError):
        raise RpcReplyError(RPC_MISC_ERROR, "couldn't parse reply from server") from None
    if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
        raise RpcReplyError(
            RPC_MISC_ERROR, "expected reply to have result, error and id properties"
        )
    error = reply.get("error")
    if error is not None:
        if (
            isinstance(error, dict)
            and isinstance(error.get("code"), int)
            and isinstance(error.get("message"), str)
        ):
            raise RpcReplyError(error["code"], error["message"])
        raise RpcReplyError(RPC_MISC_ERROR, json.dumps(error, separators=(",", ":")))
    return reply.get("result")


def call_rpc(
    host: str,
    port: int,
    user: str,
    password: str,
    method: str,
    params: list[Any] | dict[str, Any],
    timeout: float | None = None,
) -> Any:
    """One JSON-RPC 1.0 call over a new HTTP connection (src/bitcoin-cli.cpp ``CallRPC``).

    ``timeout``: seconds for the connection and each read (None: no limit). Returns the
    reply's ``result``. Raises :class:`RpcReplyError` (an error reply or an unusable
    one), ``ConnectionError`` (nothing listens, or the server hung up mid-reply),
    ``TimeoutError``, ``ValueError`` (a line break in ``host``).
    """
    if "\r" in host or "\n" in host:
        raise ValueError("invalid host")
    body = json.dumps(
        {"method": method, "params": params, "id": 1}, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")
    auth = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            conn.request(
                "POST",
                "/",
                body,
                {
                    "Authorization": "Basic " + auth,
                    "Content-Type": "application/json",
                    "Connection": "close",
                },
            )
        except ConnectionError as e:
            reason = e.strerror or str(e)
            raise ConnectionError(
                f"Could not connect to the server {host}:{port}: {reason}"
            ) from None
        try:
            reply = conn.getresponse()
            if (reply.length or 0) > _MAX_REPLY:
                raise RpcReplyError(RPC_MISC_ERROR, "reply too large")
            data = reply.read(_MAX_REPLY + 1)
        except (http.client.RemoteDisconnected, http.client.IncompleteRead) as e:
            raise ConnectionError(f"server closed the connection mid-reply: {e!r}") from None
        except http.client.HTTPException as e:
            raise RpcReplyError(
                RPC_MISC_ERROR, f"malformed HTTP reply from server: {e!r}"
            ) from None
        if len(data) > _MAX_REPLY:
            raise RpcReplyError(RPC_MISC_ERROR, "reply too large")
        return _process_reply(reply.status, data)
    finally:
        conn.close()


class RpcCaller:
    """``caller(method, params)``: :func:`call_rpc` on ``target`` with bitcoin-cli's
    ``-rpcwait`` (``ConnectAndCallRPC``): while ``wait``, a connection failure, a
    missing cookie or the warm-up error is retried every second, until ``wait_timeout``
    seconds (0: never) have passed, then ``ConnectionError("timeout on transient error:
    ...")``."""

    def __init__(
        self,
        target: RpcTarget,
        *,
        timeout: float | None = DEFAULT_CLIENT_TIMEOUT,
        wait: bool = False,
        wait_timeout: float = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.wait = wait
        self.wait_timeout = wait_timeout
        self._sleep = sleep
        self._deadline = time.monotonic() + wait_timeout

    def __call__(self, method: str, params: list[Any] | dict[str, Any]) -> Any:
        t = self.target
        while True:
            try:
                user, password = t.credentials()
                return call_rpc(t.host, t.port, user, password, method, params, self.timeout)
            except (OSError, RpcReplyError) as e:
                transient = isinstance(e, OSError) or e.code == RPC_IN_WARMUP
                if not (self.wait and transient):
                    raise
                if self.wait_timeout > 0 and time.monotonic() >= self._deadline:
                    raise ConnectionError(f"timeout on transient error: {e}") from None
                self._sleep(1.0)


def caller_for(args: argparse.Namespace, target: RpcTarget) -> RpcCaller:
    """The :class:`RpcCaller` for parsed arguments (``-rpcwait``, ``-rpcwaittimeout``,
    ``-rpcclienttimeout``)."""
    timeout = float(args.rpcclienttimeout) if args.rpcclienttimeout > 0 else None
    return RpcCaller(target, timeout=timeout, wait=args.rpcwait, wait_timeout=args.rpcwaittimeout)


def run(
    args: argparse.Namespace,
    report: Callable[[RpcCaller], str | None] | None = None,
) -> int:
    """Do what parsed ``rpc``/``netinfo`` arguments ask and print it as bitcoin-cli does;
    the exit status. ``report(caller)`` builds a report's text (-netinfo, -getinfo,
    -addrinfo) or returns None for a plain ``args.method`` call."""
    try:
        target = resolve_target(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    caller = caller_for(args, target)
    try:
        text = report(caller) if report is not None else None
        if text is None:
            if args.method is None:
                print("error: too few parameters (need at least a command)", file=sys.stderr)
                return 1
            params: list[Any] | dict[str, Any]
            if getattr(args, "named", False):
                params = parse_named_params(args.params)
            else:
                params = [parse_cli_param(p) for p in args.params]
            result = caller(args.method, params)
            if isinstance(result, str):
                text = result
            elif result is not None:
                text = json.dumps(result, indent=2)
    except RpcReplyError as e:
        print(f"error code: {e.code}\nerror message:\n{e.message}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(
            f"error: Error while attempting to communicate with server {target.host}:"
            f"{target.port} ({e})\n\nMake sure the peerkeeper node is running and that you are"
            " connecting to the correct RPC port.",
            file=sys.stderr,
        )
        return 1
    if text is not None:
        print(text)
    return 0


# -- the light entry point ---------------------------------------------------------------------


class _Unhandled(Exception):
    """Not for the light path: the full parser takes the arguments."""


class _LightParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _Unhandled(message)


def main(argv: list[str]) -> int | None:
    """``peerkeeper rpc ARGV...`` without the full CLI: the exit status, or None when
    the arguments need the full parser (``--help``, the reports, anything it cannot
    parse: the full parser then prints its usage error)."""
    if any(a in ("-h", "--help") for a in argv):
        return None
    parser = _LightParser(prog="peerkeeper rpc", add_help=False)
    add_common_options(parser)
    add_protocol_option(parser)
    add_client_options(parser, reports=True)
    parser.add_argument("method", nargs="?")
    parser.add_argument("params", nargs="*")
    try:
        args = parser.parse_args(argv)
    except _Unhandled:
        return None
    if args.netinfo or args.getinfo or args.addrinfo or args.method is None:
        return None
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
