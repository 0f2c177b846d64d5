"""Connecting through a SOCKS5 proxy (IO): Core's ``ConnectThroughProxy`` (src/netbase.cpp).

The proxy settings themselves (:class:`~peerkeeper.net.netbase.Proxy`,
:class:`~peerkeeper.net.netbase.ProxySettings`, ``parse_proxy``, stream isolation, the
errors) are pure and live in :mod:`peerkeeper.net.netbase` (Core's src/netbase.h); the
SOCKS5 handshake is the sans-IO :class:`~peerkeeper.net.socks5.Socks5Handshake` (Core's
``Socks5``). :func:`connect_via_proxy` is the asyncio side: a TCP (or unix) connection
to the proxy, then the handshake's bytes carried both ways, returning a connected
non-blocking socket; every failure is a :class:`~peerkeeper.net.netbase.ProxyError`
with a ``kind``.

peerkeeper speaks SOCKS5 itself rather than through python-socks because Core's
client sends every destination, IP literals included, as a DOMAINNAME; python-socks
picks the address type from the host text and has no way to do that, and Core's
feature_proxy test checks the bytes. The one remaining difference: the whole exchange
is bounded by one ``timeout`` instead of Core's 5 s TCP connect plus 20 s per read
(``SOCKS5_RECV_TIMEOUT``).

I2P is reached through the SAM protocol in Core (``-i2psam``, src/i2p.cpp), not SOCKS5:
see :mod:`peerkeeper.io.i2psam`, which opens its sockets to the SAM bridge with
:func:`open_proxy_socket` (an explicit SOCKS proxy for ``.b32.i2p`` names, such as
i2pd's, can still be passed to :func:`connect_via_proxy`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

from peerkeeper.net.netbase import Proxy, ProxyError
from peerkeeper.net.socks5 import Socks5Handshake

__all__ = ["connect_via_proxy", "open_proxy_socket"]

log = logging.getLogger("peerkeeper.net")


class _ProxySocketOpener:
    """Opens the TCP or unix connection to the proxy (Core ``Proxy::Connect``); a
    failure here is the proxy's own (``proxy_failed``)."""

    def __init__(self, proxy: Proxy, destination: str) -> None:
        self.proxy = proxy
        self.destination = destination
        self.sock: socket.socket | None = None
        self.connected = False

    def _fail(self, kind: str, message: str) -> ProxyError:
        return ProxyError(self.destination, kind, message, proxy=str(self.proxy), proxy_failed=True)

    async def connect(self) -> socket.socket:
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


async def open_proxy_socket(proxy: Proxy, destination: str = "") -> socket.socket:
    """A connected non-blocking socket to ``proxy`` itself (TCP or unix), Core
    ``Proxy::Connect`` (src/netbase.cpp); unbounded in time: wrap it in a timeout.

    Raises :class:`~peerkeeper.net.netbase.ProxyError` with ``proxy_failed`` set
    (``destination`` names what the connection was for, in the error).
    """
    return await _ProxySocketOpener(proxy, destination or str(proxy)).connect()


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

    Opens one connection to the proxy (TCP, or a unix socket) and runs Core's SOCKS5
    CONNECT handshake (:class:`~peerkeeper.net.socks5.Socks5Handshake`: RFC 1928, the
    destination always a DOMAINNAME; RFC 1929 user/password when ``credentials`` is
    given, offered alongside "no authentication" as Core does).
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
    handshake = Socks5Handshake(host, port, credentials, proxy=str(proxy))
    opener = _ProxySocketOpener(proxy, handshake.destination)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            sock = await opener.connect()
            log.debug("SOCKS5 connecting %s", host)
            await loop.sock_sendall(sock, handshake.start())
            while not handshake.done:
                data = await loop.sock_recv(sock, handshake.need)
                if not data:
                    raise ProxyError(
                        handshake.destination,
                        "closed",
                        "proxy closed the connection",
                        proxy=str(proxy),
                    )
                reply = handshake.receive(data)
                if reply:
                    await loop.sock_sendall(sock, reply)
    except TimeoutError:
        if opener.sock is not None:
            opener.sock.close()
        phase = "the SOCKS5 handshake" if opener.connected else "connecting to the proxy"
        raise ProxyError(
            handshake.destination,
            "timeout",
            f"no answer within {timeout:g} s ({phase})",
            proxy=str(proxy),
            proxy_failed=not opener.connected,
        ) from None
    except ProxyError:
        if opener.sock is not None:
            opener.sock.close()
        raise
    except OSError as e:
        if opener.sock is not None:
            opener.sock.close()
        text = e.strerror or str(e) or type(e).__name__
        raise ProxyError(handshake.destination, "closed", text, proxy=str(proxy)) from None
    except BaseException:
        if opener.sock is not None:
            opener.sock.close()
        raise
    log.debug("SOCKS5 connected %s", host)
    return sock
