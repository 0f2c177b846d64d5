"""The SOCKS5 client handshake as a sans-IO state machine: Core's ``Socks5()`` (src/netbase.cpp).

Byte for byte what Bitcoin Core sends (RFC 1928, RFC 1929 user/password):

* the greeting offers "no authentication", and user/password too when credentials are
  given (``05 01 00`` or ``05 02 00 02``);
* user/password only when the proxy picks it and credentials were given;
* the CONNECT request always names the destination as a DOMAINNAME, also for an IP
  literal (``05 01 00 03 <len> "15.61.23.23" <port>``): Core's ``Socks5`` sends
  ``addrConnect.ToStringAddr()`` that way and Tor resolves both; Core's feature_proxy
  test checks it. An IPv6 literal is sent without brackets.

The caller owns the socket. :meth:`Socks5Handshake.start` gives the greeting; then it
reads at most :attr:`Socks5Handshake.need` bytes at a time (exactly what the proxy owes
next, as Core's ``InterruptibleRecv`` reads, so no byte of the tunnel is consumed) and
feeds them to :meth:`Socks5Handshake.receive`, sending whatever that returns, until
:attr:`Socks5Handshake.done`. Timeouts and end-of-stream are the caller's to detect.
Every failure raises :class:`~peerkeeper.net.netbase.ProxyError` with a ``kind`` and
Core's wording.
"""

from __future__ import annotations

import enum
import ipaddress

from peerkeeper.net.netbase import _MAX_SOCKS5_FIELD, ProxyError, socks5_reply_error

__all__ = ["Socks5Handshake", "socks5_destination"]

SOCKS5 = 0x05
METHOD_NOAUTH = 0x00
METHOD_USER_PASS = 0x02
METHOD_NO_ACCEPTABLE = 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4 = 0x01
ATYP_DOMAINNAME = 0x03
ATYP_IPV6 = 0x04


def socks5_destination(host: str, port: int) -> bytes:
    """The destination field of a CONNECT request, as Core sends it: DOMAINNAME, length,
    the host text, the port big-endian.

    ``host`` is an IP literal (IPv6 without brackets) or a host name; a name that is
    not ASCII is IDNA-encoded. Raises :class:`ValueError` for an empty host, a NUL, an
    empty label, more than 255 bytes (Core "Hostname too long") or a port outside
    0..65535.
    """
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} out of range")
    if not host or "\0" in host:
        raise ValueError("empty or NUL-containing host")
    try:
        ipaddress.ip_address(host)
        encoded = host.encode("ascii")
    except ValueError:
        try:
            encoded = host.encode("idna")
        except UnicodeError as e:
            raise ValueError(f"host cannot be encoded: {e}") from None
    if len(encoded) > _MAX_SOCKS5_FIELD:
        raise ValueError(f"host name too long ({len(encoded)} > {_MAX_SOCKS5_FIELD} bytes)")
    return bytes([ATYP_DOMAINNAME, len(encoded)]) + encoded + port.to_bytes(2, "big")


def _credential_field(what: str, value: str) -> bytes:
    if not value or not value.isascii() or len(value) > _MAX_SOCKS5_FIELD:
        raise ValueError(f"proxy {what} must be 1..{_MAX_SOCKS5_FIELD} ASCII characters")
    return bytes([len(value)]) + value.encode("ascii")


class _State(enum.Enum):
    NEW = enum.auto()
    METHOD = enum.auto()  # the proxy's method choice: 2 bytes
    AUTH = enum.auto()  # the RFC 1929 status: 2 bytes
    REPLY = enum.auto()  # VER REP RSV ATYP: 4 bytes
    NAME_LEN = enum.auto()  # a DOMAINNAME bound address' length: 1 byte
    BOUND = enum.auto()  # the bound address and port
    DONE = enum.auto()


class Socks5Handshake:
    """One SOCKS5 CONNECT, client side (Core ``Socks5``, src/netbase.cpp).

    Args:
        host: destination host text (an IP literal without brackets, or a name such as
            ``x.onion``); sent as a DOMAINNAME, never resolved here.
        port: destination port, 0..65535.
        credentials: ``(username, password)``, each 1..255 ASCII characters, or None.

    Raises:
        ProxyError: ``kind="invalid-destination"`` or ``"invalid-credentials"`` when the
            request could not be sent at all (nothing has been sent then).

    Attributes:
        destination: ``host:port`` (``[v6]:port``) for messages.
        need: how many bytes the proxy owes next (0 once done or before :meth:`start`).
        done: True once the proxy reported success; the tunnel is open.
        bound: the proxy's bound address bytes from its reply (unused, as in Core).
    """

    def __init__(
        self, host: str, port: int, credentials: tuple[str, str] | None = None, *, proxy: str = ""
    ) -> None:
        self.destination = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._proxy = proxy
        try:
            self._request = bytes([SOCKS5, CMD_CONNECT, 0x00]) + socks5_destination(host, port)
        except ValueError as e:
            raise self._error("invalid-destination", str(e)) from None
        self._auth: bytes | None = None
        if credentials is not None:
            user, password = credentials
            try:
                self._auth = (
                    b"\x01"
                    + _credential_field("username", user)
                    + _credential_field("password", password)
                )
            except ValueError as e:
                raise self._error("invalid-credentials", str(e)) from None
        self._state = _State.NEW
        self._buf = bytearray()
        self.need = 0
        self.bound = b""

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def _error(self, kind: str, message: str, code: int | None = None) -> ProxyError:
        return ProxyError(self.destination, kind, message, proxy=self._proxy, reply_code=code)

    def start(self) -> bytes:
        """The greeting to send first (Core's method selection message)."""
        if self._state is not _State.NEW:
            raise RuntimeError("start() called twice")
        self._state, self.need = _State.METHOD, 2
        if self._auth is not None:
            return bytes([SOCKS5, 2, METHOD_NOAUTH, METHOD_USER_PASS])
        return bytes([SOCKS5, 1, METHOD_NOAUTH])

    def receive(self, data: bytes) -> bytes:
        """Feed bytes read from the proxy (at most :attr:`need`); returns the bytes to
        send next (possibly empty).

        Raises:
            ProxyError: the proxy's answer ends the handshake: ``protocol`` (not SOCKS5,
                a non-zero reserved byte, an unknown address type, an unsupported
                method), ``auth-failed``, or the reply code's kind
                (:func:`~peerkeeper.net.netbase.socks5_reply_error`).
            ValueError: more bytes than :attr:`need`, or fed before :meth:`start`
                or after :attr:`done` (a caller bug).
        """
        if self._state in (_State.NEW, _State.DONE) or len(data) > self.need:
            raise ValueError(f"{len(data)} bytes fed while {self.need} are due")
        self._buf += data
        self.need -= len(data)
        if self.need:
            return b""
        chunk, self._buf = bytes(self._buf), bytearray()
        return self._step(chunk)

    def _step(self, chunk: bytes) -> bytes:
        state = self._state
        if state is _State.METHOD:
            if chunk[0] != SOCKS5:
                raise self._error("protocol", "Proxy failed to initialize")
            if chunk[1] == METHOD_USER_PASS and self._auth is not None:
                self._state, self.need = _State.AUTH, 2
                return self._auth
            if chunk[1] == METHOD_NOAUTH:
                return self._send_request()
            if chunk[1] == METHOD_NO_ACCEPTABLE:
                raise self._error("auth-failed", "Proxy accepts none of the offered methods")
            raise self._error(
                "protocol", f"Proxy requested wrong authentication method {chunk[1]:02x}"
            )
        if state is _State.AUTH:
            if chunk != b"\x01\x00":
                raise self._error("auth-failed", "Proxy authentication unsuccessful")
            return self._send_request()
        if state is _State.REPLY:
            if chunk[0] != SOCKS5:
                raise self._error("protocol", "Proxy failed to accept request")
            if chunk[1] != 0x00:
                kind, message = socks5_reply_error(chunk[1])
                raise self._error(kind, message, chunk[1])
            if chunk[2] != 0x00:
                raise self._error("protocol", "malformed proxy response")
            sizes = {ATYP_IPV4: 4 + 2, ATYP_IPV6: 16 + 2}
            if chunk[3] == ATYP_DOMAINNAME:
                self._state, self.need = _State.NAME_LEN, 1
            elif chunk[3] in sizes:
                self._state, self.need = _State.BOUND, sizes[chunk[3]]
            else:
                raise self._error("protocol", "malformed proxy response")
            return b""
        if state is _State.NAME_LEN:
            self._state, self.need = _State.BOUND, chunk[0] + 2
            return b""
        self.bound = chunk  # _State.BOUND
        self._state, self.need = _State.DONE, 0
        return b""

    def _send_request(self) -> bytes:
        self._state, self.need = _State.REPLY, 4
        return self._request
