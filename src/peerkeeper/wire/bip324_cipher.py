"""The BIP324 packet cipher: FSChaCha20, FSChaCha20Poly1305 and their key schedule.

Pure functions of their inputs (no I/O, no clock, no randomness). The primitives come
from ``cryptography`` (OpenSSL's ChaCha20 and ChaCha20-Poly1305, RFC 8439); the
forward-secure rekeying and the key derivation are written here after:

* BIP324, "Shared secret computation", "Overall packet encryption and decryption
  pseudocode" and "Rekeying wrappers: FSChaCha20Poly1305 and FSChaCha20";
* Bitcoin Core ``src/crypto/chacha20.cpp`` (``FSChaCha20::Crypt``),
  ``src/crypto/chacha20poly1305.cpp`` (``FSChaCha20Poly1305::NextPacket``,
  ``AEADChaCha20Poly1305::Keystream``), ``src/crypto/hkdf_sha256_32.cpp``
  (``CHKDF_HMAC_SHA256_L32``) and ``src/bip324.cpp`` (``BIP324Cipher``).

ChaCha20 nonces follow Core's ``ChaCha20::Nonce96 = {uint32 first, uint64 second}``,
serialised as ``LE32(first) || LE64(second)``; ``cryptography``'s ``algorithms.ChaCha20``
takes 16 bytes ``LE32(block counter) || nonce12``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from peerkeeper.wire.ellswift import (
    ELLSWIFT_SIZE,
    check_privkey,
    ellswift_create,
    ellswift_xdh_bip324,
)

__all__ = [
    "REKEY_INTERVAL",
    "BIP324Cipher",
    "DecryptionError",
    "FSChaCha20",
    "FSChaCha20Poly1305",
    "SessionKeys",
    "derive_session_keys",
    "hkdf_sha256_l32",
]

#: Messages between rekeys of both ciphers (Core ``BIP324Cipher::REKEY_INTERVAL``).
REKEY_INTERVAL = 224
_KEYLEN = 32
_NONCE = struct.Struct("<IQ")
_ZERO32 = bytes(32)
_Buf = bytes | bytearray | memoryview


class DecryptionError(Exception):
    """A packet failed Poly1305 authentication (wrong key, wrong AAD, or tampering)."""


def _chacha20(key: bytes, block: int, first: int, second: int) -> CipherContext:
    """A ChaCha20 keystream context positioned at ``block`` of nonce ``{first, second}``."""
    nonce16 = struct.pack("<I", block) + _NONCE.pack(first, second)
    return Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor()


class FSChaCha20:
    """Forward-secure ChaCha20 stream cipher, used for the 3-byte length fields.

    One continuous ChaCha20 keystream per epoch (nonce ``{0, rekey_counter}``, starting
    at block 0; messages are not block-aligned). After ``rekey_interval`` calls of
    :meth:`crypt` the next 32 bytes of that same keystream become the new key, the
    rekey counter goes up by one and the chunk counter restarts (Core
    ``FSChaCha20::Crypt``).
    """

    __slots__ = ("_stream", "_interval", "_chunk_counter", "_rekey_counter")

    def __init__(self, key: _Buf, rekey_interval: int = REKEY_INTERVAL) -> None:
        key = bytes(key)
        if len(key) != _KEYLEN:
            raise ValueError("FSChaCha20 key must be 32 bytes")
        if rekey_interval < 1:
            raise ValueError("rekey_interval must be positive")
        self._interval = rekey_interval
        self._chunk_counter = 0
        self._rekey_counter = 0
        self._stream = _chacha20(key, 0, 0, 0)

    def crypt(self, data: _Buf) -> bytes:
        """Encrypt or decrypt one chunk (the same operation), then maybe rekey."""
        out = self._stream.update(data)
        self._chunk_counter += 1
        if self._chunk_counter == self._interval:
            new_key = self._stream.update(_ZERO32)
            self._rekey_counter += 1
            self._stream = _chacha20(new_key, 0, 0, self._rekey_counter)
            self._chunk_counter = 0
        return out


class FSChaCha20Poly1305:
    """Forward-secure ChaCha20-Poly1305 AEAD, used for packet contents.

    Packet ``i`` of epoch ``r`` uses nonce ``LE32(i) || LE64(r)``. After
    ``rekey_interval`` packets the new key is the first 32 bytes of the AEAD's
    keystream (ChaCha20 block 1, as ``AEADChaCha20Poly1305::Keystream`` skips the
    Poly1305 key block) for nonce ``{0xFFFFFFFF, r}`` (Core
    ``FSChaCha20Poly1305::NextPacket``). Both :meth:`encrypt` and :meth:`decrypt`
    advance the packet counter, even when decryption fails, as Core does.
    """

    EXPANSION = 16

    __slots__ = ("_key", "_aead", "_interval", "_packet_counter", "_rekey_counter")

    def __init__(self, key: _Buf, rekey_interval: int = REKEY_INTERVAL) -> None:
        key = bytes(key)
        if len(key) != _KEYLEN:
            raise ValueError("FSChaCha20Poly1305 key must be 32 bytes")
        if rekey_interval < 1:
            raise ValueError("rekey_interval must be positive")
        self._key = key
        self._aead = ChaCha20Poly1305(key)
        self._interval = rekey_interval
        self._packet_counter = 0
        self._rekey_counter = 0

    def _next_packet(self) -> None:
        self._packet_counter += 1
        if self._packet_counter == self._interval:
            key = _chacha20(self._key, 1, 0xFFFFFFFF, self._rekey_counter).update(_ZERO32)
            self._key = key
            self._aead = ChaCha20Poly1305(key)
            self._packet_counter = 0
            self._rekey_counter += 1

    def encrypt(self, plaintext: _Buf, aad: _Buf = b"") -> bytes:
        """Ciphertext || 16-byte tag of ``plaintext``; advances to the next packet."""
        nonce = _NONCE.pack(self._packet_counter, self._rekey_counter)
        out = self._aead.encrypt(nonce, plaintext, aad)
        self._next_packet()
        return out

    def decrypt(self, ciphertext: _Buf, aad: _Buf = b"") -> bytes:
        """Plaintext of ``ciphertext`` (which ends with the tag); advances to the next packet.

        Raises :class:`DecryptionError` when authentication fails.
        """
        nonce = _NONCE.pack(self._packet_counter, self._rekey_counter)
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptionError("packet authentication failed") from None
        finally:
            self._next_packet()


def hkdf_sha256_l32(ikm: _Buf, salt: _Buf, info: _Buf) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a 32-byte output: one extract, one expand block.

    ``PRK = HMAC(salt, ikm)``; ``OKM = HMAC(PRK, info || 0x01)`` (Core
    ``CHKDF_HMAC_SHA256_L32``). BIP324 derives each key with its own ``info`` label.
    """
    prk = hmac.digest(bytes(salt), bytes(ikm), hashlib.sha256)
    return hmac.digest(prk, bytes(info) + b"\x01", hashlib.sha256)


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """Everything BIP324 derives from the ECDH secret (BIP324 "Shared secret computation")."""

    initiator_l: bytes
    initiator_p: bytes
    responder_l: bytes
    responder_p: bytes
    #: The first 16 bytes are the initiator's terminator, the last 16 the responder's.
    garbage_terminators: bytes
    session_id: bytes


def derive_session_keys(ecdh_secret: _Buf, magic: bytes) -> SessionKeys:
    """Derive the session keys with salt ``"bitcoin_v2_shared_secret" || magic``."""
    if len(magic) != 4:
        raise ValueError("magic must be 4 bytes")
    prk = hmac.digest(b"bitcoin_v2_shared_secret" + magic, bytes(ecdh_secret), hashlib.sha256)

    def expand(label: bytes) -> bytes:
        return hmac.digest(prk, label + b"\x01", hashlib.sha256)

    return SessionKeys(
        initiator_l=expand(b"initiator_L"),
        initiator_p=expand(b"initiator_P"),
        responder_l=expand(b"responder_L"),
        responder_p=expand(b"responder_P"),
        garbage_terminators=expand(b"garbage_terminators"),
        session_id=expand(b"session_id"),
    )


class BIP324Cipher:
    """The BIP324 packet cipher for one connection (Core ``BIP324Cipher``, ``src/bip324.cpp``).

    ``BIP324Cipher(privkey, our_ellswift, magic)`` holds our key (raises
    :class:`~peerkeeper.wire.ellswift.EllSwiftError`, a ``ValueError``, for an invalid
    one; ``our_ellswift`` is trusted to encode it, as in Core); :meth:`initialize`
    with the peer's 64-byte ElligatorSwift key runs the ECDH, derives the four ciphers,
    the garbage terminators and the session id, and forgets the private key. Then
    :meth:`encrypt` makes packets (``len(contents) + EXPANSION`` bytes) and
    :meth:`decrypt_length` / :meth:`decrypt` read them. Packet layout: 3-byte
    FSChaCha20-encrypted little-endian contents length, then the FSChaCha20Poly1305
    encryption of ``header || contents`` (header bit 7 = ignore/decoy) with a tag.
    """

    SESSION_ID_LEN = 32
    GARBAGE_TERMINATOR_LEN = 16
    REKEY_INTERVAL = REKEY_INTERVAL
    LENGTH_LEN = 3
    HEADER_LEN = 1
    #: Bytes a packet adds to its contents: length (3), header (1), tag (16).
    EXPANSION = LENGTH_LEN + HEADER_LEN + FSChaCha20Poly1305.EXPANSION
    IGNORE_BIT = 0x80

    __slots__ = (
        "_key",
        "_our_pubkey",
        "_magic",
        "_send_l",
        "_recv_l",
        "_send_p",
        "_recv_p",
        "_session_id",
        "_send_garbage_terminator",
        "_recv_garbage_terminator",
    )

    def __init__(self, privkey: _Buf, our_ellswift: _Buf, magic: bytes) -> None:
        if len(privkey) != 32 or len(our_ellswift) != ELLSWIFT_SIZE or len(magic) != 4:
            raise ValueError("need a 32-byte key, a 64-byte ellswift encoding, a 4-byte magic")
        check_privkey(bytes(privkey))
        self._key: bytes | None = bytes(privkey)
        self._our_pubkey = bytes(our_ellswift)
        self._magic = bytes(magic)
        self._send_l: FSChaCha20 | None = None
        self._recv_l: FSChaCha20 | None = None
        self._send_p: FSChaCha20Poly1305 | None = None
        self._recv_p: FSChaCha20Poly1305 | None = None
        self._session_id = b""
        self._send_garbage_terminator = b""
        self._recv_garbage_terminator = b""

    @classmethod
    def from_entropy(cls, privkey: _Buf, ent32: _Buf, magic: bytes) -> BIP324Cipher:
        """Build from a private key and 32 bytes of encoding entropy (Core's other constructor)."""
        return cls(privkey, ellswift_create(bytes(privkey), bytes(ent32)), magic)

    @property
    def our_pubkey(self) -> bytes:
        """Our 64-byte ElligatorSwift public key."""
        return self._our_pubkey

    def __bool__(self) -> bool:
        """True once :meth:`initialize` has run."""
        return self._send_l is not None

    def initialize(self, their_ellswift: _Buf, initiator: bool, self_decrypt: bool = False) -> None:
        """Complete the key exchange with the peer's key. Only once.

        ``initiator`` is True on the side that opened the connection. ``self_decrypt``
        (tests only, as in Core) swaps the send and receive keys so that a cipher can
        decrypt what an identically initialised one encrypted. May raise
        :class:`~peerkeeper.wire.ellswift.EllSwiftError` only for a wrong-sized key.
        """
        if self._key is None:
            raise RuntimeError("BIP324Cipher already initialized")
        theirs = bytes(their_ellswift)
        ours = self._our_pubkey
        ell_a, ell_b = (ours, theirs) if initiator else (theirs, ours)
        secret = ellswift_xdh_bip324(ell_a, ell_b, self._key, initiator)
        keys = derive_session_keys(secret, self._magic)
        side = initiator != self_decrypt
        if side:
            self._send_l, self._recv_l = FSChaCha20(keys.initiator_l), FSChaCha20(keys.responder_l)
            self._send_p = FSChaCha20Poly1305(keys.initiator_p)
            self._recv_p = FSChaCha20Poly1305(keys.responder_p)
        else:
            self._send_l, self._recv_l = FSChaCha20(keys.responder_l), FSChaCha20(keys.initiator_l)
            self._send_p = FSChaCha20Poly1305(keys.responder_p)
            self._recv_p = FSChaCha20Poly1305(keys.initiator_p)
        first, last = keys.garbage_terminators[:16], keys.garbage_terminators[16:]
        self._send_garbage_terminator, self._recv_garbage_terminator = (
            (first, last) if initiator else (last, first)
        )
        self._session_id = keys.session_id
        self._key = None

    def _ready(self) -> tuple[FSChaCha20, FSChaCha20, FSChaCha20Poly1305, FSChaCha20Poly1305]:
        if self._send_l is None or self._recv_l is None or self._send_p is None:
            raise RuntimeError("BIP324Cipher not initialized")
        assert self._recv_p is not None
        return self._send_l, self._recv_l, self._send_p, self._recv_p

    @property
    def session_id(self) -> bytes:
        """The 32-byte session id (only after :meth:`initialize`)."""
        self._ready()
        return self._session_id

    @property
    def send_garbage_terminator(self) -> bytes:
        """The 16 bytes we send after our garbage (only after :meth:`initialize`)."""
        self._ready()
        return self._send_garbage_terminator

    @property
    def recv_garbage_terminator(self) -> bytes:
        """The 16 bytes that end the peer's garbage (only after :meth:`initialize`)."""
        self._ready()
        return self._recv_garbage_terminator

    def encrypt(self, contents: _Buf, aad: _Buf = b"", ignore: bool = False) -> bytes:
        """One packet: ``len(contents) + EXPANSION`` bytes. Contents below 2**24 bytes."""
        header = b"\x80" if ignore else b"\x00"
        return self.encrypt_with_header(header + contents, aad)

    def encrypt_with_header(self, plaintext: _Buf, aad: _Buf = b"") -> bytes:
        """Like :meth:`encrypt` for ``plaintext = header byte || contents`` already joined."""
        length, body = self.encrypt_parts(plaintext, aad)
        return length + body

    def encrypt_parts(self, plaintext: _Buf, aad: _Buf = b"") -> tuple[bytes, bytes]:
        """The packet for ``plaintext = header byte || contents`` as (encrypted length, rest).

        For callers that queue the two parts and join them once with other output
        (saves a copy of large contents).
        """
        send_l, _, send_p, _ = self._ready()
        n = len(plaintext) - self.HEADER_LEN
        if not 0 <= n < 1 << 24:
            raise ValueError(f"packet contents of {n} bytes cannot be encoded")
        return send_l.crypt(n.to_bytes(3, "little")), send_p.encrypt(plaintext, aad)

    def decrypt_length(self, data: _Buf) -> int:
        """Decrypt a 3-byte length field; exactly once per received packet, in order."""
        if len(data) != self.LENGTH_LEN:
            raise ValueError("length field is 3 bytes")
        _, recv_l, _, _ = self._ready()
        return int.from_bytes(recv_l.crypt(data), "little")

    def decrypt(self, data: _Buf, aad: _Buf = b"") -> tuple[bool, bytes]:
        """Decrypt the rest of a packet (``length + HEADER_LEN + 16`` bytes after the length).

        Returns ``(ignore, contents)``; raises :class:`DecryptionError` when
        authentication fails (the packet counter still advances, as in Core).
        """
        plain = self.decrypt_with_header(data, aad)
        return bool(plain[0] & self.IGNORE_BIT), plain[1:]

    def decrypt_with_header(self, data: _Buf, aad: _Buf = b"") -> bytes:
        """Like :meth:`decrypt`, returning ``header byte || contents`` unsplit (one copy less)."""
        if len(data) < self.HEADER_LEN + FSChaCha20Poly1305.EXPANSION:
            raise ValueError("packet shorter than header and tag")
        _, _, _, recv_p = self._ready()
        return recv_p.decrypt(data, aad)
