"""Connecting through a SOCKS5 proxy (IO): Core's ``ConnectThroughProxy`` / ``Socks5``.

The proxy settings themselves (:class:`~peerkeeper.net.netbase.Proxy`,
:class:`~peerkeeper.net.netbase.ProxySettings`, ``parse_proxy``, stream isolation, the
errors) are pure and live in :mod:`peerkeeper.net.netbase` (Core's src/netbase.h).
:func:`connect_via_proxy` is the asyncio side: a TCP (or unix) connection to the proxy,
then the SOCKS5 handshake by python-socks, returning a connected non-blocking socket;
every failure is a :class:`~peerkeeper.net.netbase.ProxyError` with a ``kind``.

I2P is reached through the SAM protocol in Core (``-i2psam``, src/i2p.cpp), not SOCKS5;
SAM is out of scope here, so ``ProxySettings.for_network`` never returns a proxy for
I2P (an explicit SOCKS proxy for ``.b32.i2p`` names, such as i2pd's, can still be passed
to :func:`connect_via_proxy`).

Known differences from Core's own SOCKS5 client (``Socks5``, src/netbase.cpp), all
from using python-socks for the protocol: an IP-literal destination is sent with
address type IPv4/IPv6 (Core sends every destination as a DOMAINNAME string; Tor
accepts both), and the whole exchange is bounded by one ``timeout`` instead of
Core's 5 s TCP connect plus 20 s per read (``SOCKS5_RECV_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from typing import Any, cast

from python_socks import ProxyConnectionError as _PSConnectionError
from python_socks import ProxyError as _PSProxyError
from python_socks import ProxyTimeoutError as _PSTimeoutError
from python_socks import ProxyType
from python_socks.async_.asyncio import Proxy as _PSProxy

from peerkeeper.net.netbase import (
    _MAX_SOCKS5_FIELD,
    Proxy,
    ProxyError,
    socks5_reply_error,
)

__all__ = ["connect_via_proxy"]


class _ProxySocketOpener:
    """Opens the TCP or unix connection to the proxy for python-socks.

    Passed to python-socks as its ``forward`` connector (which it calls as
    ``connect(dest_host=..., dest_port=..., timeout=None)`` and expects a connected
    socket from), so that the connection to the proxy is ours: unix sockets work,
    and a failure here is known to be the proxy's (Core ``Proxy::Connect``).
    """

    def __init__(self, proxy: Proxy, destination: str) -> None:
        self.proxy = proxy
        self.destination = destination
        self.sock: socket.socket | None = None
        self.connected = False

    def _fail(self, kind: str, message: str) -> ProxyError:
        return ProxyError(self.destination, kind, message, proxy=str(self.proxy), proxy_failed=True)

    async def connect(self, *args: Any, **kwargs: Any) -> socket.socket:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        try:
            if proxy.is_unix_socket:
                family: int = socket.AF_UNIX
                address: Any = proxy.unix_path
            else:
                infos = await loop.getaddrinfo(
                    proxy.host, proxy.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
                if not infos:
                    raise self._fail("unreachable", f"cannot resolve proxy host {proxy.host}")
                family, _, _, _, address = infos[0]
        except socket.gaierror as e:
            raise self._fail("unreachable", f"cannot resolve proxy host: {e}") from None
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock = sock
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            self.sock = None
            code = e.errno or 0
            text = e.strerror or str(e) or type(e).__name__
            if code in (errno.ECONNREFUSED, errno.ENOENT):
                raise self._fail("refused", text) from None
            if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                raise self._fail("unreachable", text) from None
            raise self._fail("connect-failed", text) from None
        except BaseException:
            sock.close()
            self.sock = None
            raise
        self.connected = True
        return sock


_TOR_REPLY = re.compile(r"Invalid reply code: 0X([0-9A-F]{1,2})", re.IGNORECASE)
_AUTH_FAILURES = (
    "Username and password authentication failure",
    "No acceptable authentication methods were offered",
)


def _map_python_socks_error(exc: BaseException, destination: str, proxy: Proxy) -> ProxyError:
    """Turn a python-socks exception into a :class:`ProxyError` (never raises)."""
    where = str(proxy)
    if isinstance(exc, _PSTimeoutError):
        return ProxyError(destination, "timeout", str(exc), proxy=where)
    if isinstance(exc, _PSConnectionError):
        kind = "refused" if exc.errno == errno.ECONNREFUSED else "connect-failed"
        return ProxyError(destination, kind, str(exc), proxy=where, proxy_failed=True)
    if isinstance(exc, _PSProxyError):
        text = str(exc)
        code = exc.error_code
        if code is None:
            m = _TOR_REPLY.search(text)  # python-socks knows only RFC 1928 codes
            if m is not None:
                code = int(m.group(1), 16)
        if code is not None:
            kind, message = socks5_reply_error(code)
            return ProxyError(destination, kind, message, proxy=where, reply_code=code)
        if type(exc.__cause__).__name__ == "IncompleteReadError":  # EOF mid-handshake
            return ProxyError(destination, "closed", "proxy closed the connection", proxy=where)
        if any(s in text for s in _AUTH_FAILURES):
            return ProxyError(destination, "auth-failed", text, proxy=where)
        return ProxyError(destination, "protocol", text or "malformed proxy response", proxy=where)
    if isinstance(exc, OSError):
        text = exc.strerror or str(exc) or type(exc).__name__
        return ProxyError(destination, "closed", text, proxy=where)
    return ProxyError(destination, "protocol", f"{type(exc).__name__}: {exc}", proxy=where)


def _validate_destination(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be sent in a SOCKS5 CONNECT, or None if it can."""
    if not 0 <= port <= 0xFFFF:
        return f"port {port} out of range"
    if not host or "\0" in host:
        return "empty or NUL-containing host"
    try:
        encoded = host.encode("idna")
    except UnicodeError as e:
        return f"host cannot be encoded: {e}"
    if len(encoded) > _MAX_SOCKS5_FIELD:
        return f"host name too long ({len(encoded)} > {_MAX_SOCKS5_FIELD} bytes)"
    return None


def _validate_credentials(credentials: tuple[str, str]) -> str | None:
    for what, value in zip(("username", "password"), credentials, strict=True):
        if not value or not value.isascii() or len(value) > _MAX_SOCKS5_FIELD:
            return f"proxy {what} must be 1..{_MAX_SOCKS5_FIELD} ASCII characters"
    return None


async def connect_via_proxy(
    proxy: Proxy,
    host: str,
    port: int,
    *,
    timeout: float,
    credentials: tuple[str, str] | None = None,
) -> socket.socket:
    """Connect to ``host:port`` through the SOCKS5 ``proxy``; Core ``ConnectThroughProxy``
    (src/netbase.cpp).

    Opens one connection to the proxy (TCP, or a unix socket) and runs the SOCKS5
    CONNECT handshake with python-socks (RFC 1928; RFC 1929 user/password when
    ``credentials`` is given, offered alongside "no authentication" as Core does).
    ``host`` goes to the proxy unresolved: a ``.onion`` / ``.b32.i2p`` / DNS name is
    never looked up locally. Nothing is retried. Choosing credentials is the
    caller's job (see :class:`StreamIsolationGenerator`).

    Args:
        proxy: the proxy to use.
        host: destination host text (IP literal without brackets, or a name).
        port: destination port 0..65535.
        timeout: seconds for the whole exchange (connect plus handshake); never
            exceeded by more than the loop's scheduling latency.
        credentials: ``(username, password)``, each 1..255 ASCII characters, or None.

    Returns:
        A connected, non-blocking ``socket.socket`` whose bytes now go to
        ``host:port``; the caller owns it (hand it to ``loop.create_connection(sock=)``).

    Raises:
        ProxyError: ``kind`` says why (see :data:`PROXY_ERROR_KINDS`); no socket is
            left open.
    """
    why = _validate_destination(host, port)
    if why is not None:
        raise ProxyError(f"{host}:{port}", "invalid-destination", why, proxy=str(proxy))
    destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if credentials is not None:
        why = _validate_credentials(credentials)
        if why is not None:
            raise ProxyError(destination, "invalid-credentials", why, proxy=str(proxy))
    opener = _ProxySocketOpener(proxy, destination)
    username, password = credentials if credentials is not None else (None, None)
    ps_proxy = _PSProxy(
        ProxyType.SOCKS5,
        host=proxy.host,
        port=proxy.port,
        username=username,
        password=password,
        rdns=True,
        forward=cast(_PSProxy, opener),
    )
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            # python-socks' own timeout is a backstop; ours fires first and knows the phase.
            sock = await ps_proxy.connect(host, port, timeout=timeout + 1.0)
    except ProxyError:
        raise
    except TimeoutError:
        if opener.sock is not None:
            opener.sock.close()
        phase = "the SOCKS5 handshake" if opener.connected else "connecting to the proxy"
        raise ProxyError(
            destination,
            "timeout",
            f"no answer within {timeout:g} s ({phase})",
            proxy=str(proxy),
            proxy_failed=not opener.connected,
        ) from None
    except asyncio.CancelledError:
        if opener.sock is not None:
            opener.sock.close()
        raise
    except Exception as e:
        if opener.sock is not None:
            opener.sock.close()
        raise _map_python_socks_error(e, destination, proxy) from None
    sock.setblocking(False)
    return sock
