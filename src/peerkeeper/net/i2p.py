"""I2P's SAM 3.1 as Bitcoin Core speaks it (src/i2p.cpp), without sockets or files:
I2P-style Base64, destinations and their ``.b32.i2p`` addresses, SAM replies, and the
request lines Core sends.

* :func:`decode_i2p_base64` / :func:`encode_i2p_base64`: Base64 with ``-`` and ``~``
  for ``+`` and ``/`` (Core ``SwapBase64``, ``DecodeI2PBase64``).
* :func:`dest_bin_to_addr`: a destination's address, ``base32(sha256(dest)).b32.i2p``
  (Core ``DestBinToAddr``); :func:`my_destination` cuts our destination out of the
  private key (Core ``Session::MyDestination``, with Core's error texts).
* :class:`SamReply`: one reply line as keys and values (Core ``Session::Reply``); a
  missing key raises :class:`I2PError` saying which request it answered.
* The requests: :data:`HELLO`, :data:`DEST_GENERATE`, :func:`session_create_transient`,
  :func:`session_create_persistent`, :func:`stream_accept`, :func:`stream_connect`,
  :func:`naming_lookup`.

SAM 3.1 has no ports: every I2P address is used with port 0 (:data:`I2P_SAM31_PORT`),
and Core refuses to dial any other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field

from peerkeeper.net.netaddr import AddrError, NetAddr

#: SAM 3.1 does not use ports; Core uses 0 for every I2P address (src/i2p.h).
I2P_SAM31_PORT = 0
#: Core's bound on one SAM reply line, in bytes (src/i2p.h ``MAX_MSG_SIZE``).
MAX_MSG_SIZE = 65_536
#: The default SAM bridge port (Core's ``-i2psam`` help).
DEFAULT_SAM_PORT = 7656
#: The file in the network's datadir that keeps the persistent session's key.
PRIVATE_KEY_FILE = "i2p_private_key"
#: Destination layout (I2P common structures): 387 bytes plus the certificate length
#: found, big-endian, at bytes 385-386.
DEST_LEN_BASE = 387
CERT_LEN_POS = 385

HELLO = "HELLO VERSION MIN=3.1 MAX=3.1"
#: Signature type 7 (EdDSA_SHA512_Ed25519), by number: i2pd < 2.24.0 lacks the name.
DEST_GENERATE = "DEST GENERATE SIGNATURE_TYPE=7"


class I2PError(Exception):
    """A SAM reply or a key Core would refuse; the text is Core's."""


_TO_STD = str.maketrans("-~+/", "+/-~")


def swap_base64(text: str) -> str:
    """Core ``SwapBase64``: standard <-> I2P Base64 (``+/`` <-> ``-~``), both ways."""
    return text.translate(_TO_STD)


def decode_i2p_base64(text: str) -> bytes:
    """Core ``DecodeI2PBase64``; raises :class:`I2PError` ``Cannot decode Base64: "..."``."""
    try:
        return base64.b64decode(swap_base64(text), validate=True)
    except (binascii.Error, ValueError):
        raise I2PError(f'Cannot decode Base64: "{text}"') from None


def encode_i2p_base64(data: bytes) -> str:
    """Standard Base64 of ``data`` with I2P's two characters (padding kept, as Core)."""
    return swap_base64(base64.b64encode(data).decode("ascii"))


def dest_bin_to_addr(dest: bytes) -> NetAddr:
    """Core ``DestBinToAddr``: the ``.b32.i2p`` address of a binary destination."""
    digest = hashlib.sha256(dest).digest()
    text = base64.b32encode(digest).decode("ascii").rstrip("=").lower() + ".b32.i2p"
    try:
        return NetAddr.parse(text)
    except AddrError:  # cannot happen for a 32-byte hash; Core checks anyway
        raise I2PError(f'Cannot parse I2P address: "{text}"') from None


def dest_b64_to_addr(dest: str) -> NetAddr:
    """Core ``DestB64ToAddr``: the address of an I2P-Base64 destination (what a SAM
    bridge sends for an accepted peer)."""
    return dest_bin_to_addr(decode_i2p_base64(dest))


def my_destination(private_key: bytes) -> bytes:
    """Core ``Session::MyDestination``: our destination, the first 387 bytes of the
    private key plus its certificate's length. Raises :class:`I2PError` with Core's
    text for a key too short for either."""
    if len(private_key) < CERT_LEN_POS + 2:
        raise I2PError(f"The private key is too short ({len(private_key)} < {CERT_LEN_POS + 2})")
    cert_len = int.from_bytes(private_key[CERT_LEN_POS : CERT_LEN_POS + 2], "big")
    dest_len = DEST_LEN_BASE + cert_len
    if dest_len > len(private_key):
        raise I2PError(
            f"Certificate length ({cert_len}) designates that the private key should be "
            f"{dest_len} bytes, but it is only {len(private_key)} bytes"
        )
    return private_key[:dest_len]


@dataclass(slots=True)
class SamReply:
    """One SAM reply line (Core ``Session::Reply``): ``request`` is what it answers
    (``SESSION CREATE ...`` without its key, as Core logs it), ``full`` the line,
    ``keys`` each space-separated word: ``KEY=VALUE`` -> value, a bare word -> None."""

    request: str
    full: str
    keys: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, request: str, line: str) -> SamReply:
        """Split ``line`` (without its ``\\n``) as Core does; the first of two equal keys wins."""
        shown = "SESSION CREATE ..." if request.startswith("SESSION CREATE") else request
        reply = cls(shown, line)
        for word in line.split(" "):
            key, eq, value = word.partition("=")
            reply.keys.setdefault(key, value if eq else None)
        return reply

    def get(self, key: str) -> str:
        """``key``'s value; :class:`I2PError` ``Missing KEY= in the reply to "..."``."""
        value = self.keys.get(key)
        if value is None:
            raise I2PError(f'Missing {key}= in the reply to "{self.request}"')
        return value

    def check_ok(self) -> SamReply:
        """Core's ``check_result_ok``: ``RESULT=OK`` or :class:`I2PError`."""
        if self.get("RESULT") != "OK":
            raise I2PError(f'Reply to "{self.request}": had a RESULT not equal to OK.')
        return self


def session_create_transient(session_id: str) -> str:
    """A session whose destination the router makes (outbound-only; Core's quantity 1)."""
    return (
        f"SESSION CREATE STYLE=STREAM ID={session_id} DESTINATION=TRANSIENT SIGNATURE_TYPE=7 "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=1 outbound.quantity=1"
    )


def session_create_persistent(session_id: str, private_key: bytes) -> str:
    """A session with our kept destination (accepting inbound; Core's quantity 3)."""
    return (
        f"SESSION CREATE STYLE=STREAM ID={session_id} "
        f"DESTINATION={encode_i2p_base64(private_key)} "
        "i2cp.leaseSetEncType=4,0 inbound.quantity=3 outbound.quantity=3"
    )


def stream_accept(session_id: str) -> str:
    return f"STREAM ACCEPT ID={session_id} SILENT=false"


def stream_connect(session_id: str, destination: str) -> str:
    return f"STREAM CONNECT ID={session_id} DESTINATION={destination} SILENT=false"


def naming_lookup(addr: NetAddr) -> str:
    return f"NAMING LOOKUP NAME={addr}"
