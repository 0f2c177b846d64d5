"""Native node identities: Ed25519 keys, Octez's proof-of-work stamp, peer ids.

Octez's shape (tezos/tezos-mirror ``src/lib_crypto/crypto_box.ml``,
``src/lib_base/p2p_identity.ml``), with Ed25519 signing keys (the ``cryptography``
package) where Octez has NaCl box keys, because our sessions are encrypted by BIP324 and
the identity only has to be proved (signed), not used for encryption:

* **peer id**: Blake2b with a 16-byte digest of the 32-byte public key (Octez
  ``Crypto_box.hash``, ``Public_key_hash`` size 16), printed in base58check with Octez's
  ``id`` prefix (bytes ``0x99 0x67``; 30 characters) or in lowercase RFC 4648 base32.
* **proof of work**: a 24-byte stamp such that Blake2b-256(public key || stamp), read
  as a little-endian integer (Octez ``Z.of_bits``), is at most :func:`pow_target`
  (Octez ``make_pow_target``: ``difficulty`` leading zero bits, fractional allowed).
  Octez's default is 26 bits; Python's hashing makes that about a minute, so ours is
  :data:`DEFAULT_POW_DIFFICULTY` = 20 bits (about a second), configurable.
* **identity.json**: ``{"peer_id", "public_key", "secret_key", "proof_of_work_stamp"}``
  (Octez's file; keys and stamp in hex), written atomically with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from peerkeeper.addrdb import atomic_write

__all__ = [
    "DEFAULT_POW_DIFFICULTY",
    "PEER_ID_SIZE",
    "PUBLIC_KEY_SIZE",
    "STAMP_SIZE",
    "Identity",
    "IdentityError",
    "PeerId",
    "check_proof_of_work",
    "generate_proof_of_work",
    "load_identity",
    "load_or_create_identity",
    "pow_target",
    "save_identity",
    "verify_signature",
]

PEER_ID_SIZE = 16
PUBLIC_KEY_SIZE = 32
#: The proof-of-work stamp's size (Octez ``Crypto_box.nonce_size``).
STAMP_SIZE = 24
#: Our default proof of work in bits (Octez ``expected_pow`` is 26; see the module doc).
DEFAULT_POW_DIFFICULTY = 20.0
#: Octez's base58check prefix of peer ids ("id", ``Base58.Prefix.cryptobox_public_key_hash``).
_B58_PREFIX = b"\x99\x67"


class IdentityError(ValueError):
    """A malformed peer id, key, stamp or identity file (the message says which)."""


@dataclass(frozen=True, slots=True)
class PeerId:
    """A peer id: 16 bytes (``raw``), the Blake2b-128 hash of a public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PEER_ID_SIZE:
            raise IdentityError(f"a peer id is {PEER_ID_SIZE} bytes, not {len(self.raw)}")

    @classmethod
    def of_public_key(cls, public_key: bytes) -> PeerId:
        """The peer id of a 32-byte public key (Octez ``Crypto_box.hash``)."""
        if len(public_key) != PUBLIC_KEY_SIZE:
            raise IdentityError(f"a public key is {PUBLIC_KEY_SIZE} bytes")
        return cls(hashlib.blake2b(public_key, digest_size=PEER_ID_SIZE).digest())

    def b58(self) -> str:
        """Base58check with Octez's ``id`` prefix (30 characters)."""
        return base58.b58encode_check(_B58_PREFIX + self.raw).decode("ascii")

    def b32(self) -> str:
        """Lowercase RFC 4648 base32, no padding (26 characters)."""
        return base64.b32encode(self.raw).decode("ascii").rstrip("=").lower()

    def __str__(self) -> str:
        return self.b58()

    def __repr__(self) -> str:
        return f"PeerId({self.b58()})"

    @classmethod
    def parse(cls, text: str) -> PeerId:
        """A peer id from base58check (``id...``), base32 or 32 hex digits.

        Raises :class:`IdentityError` for anything else.
        """
        text = text.strip()
        if len(text) == 2 * PEER_ID_SIZE:
            try:
                return cls(bytes.fromhex(text))
            except ValueError:
                pass
        if text.startswith("id"):
            try:
                raw = base58.b58decode_check(text)
            except ValueError:
                raw = b""
            if raw[:2] == _B58_PREFIX and len(raw) == 2 + PEER_ID_SIZE:
                return cls(raw[2:])
        if len(text) == 26:
            try:
                raw = base64.b32decode(text.upper() + "======")
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) == PEER_ID_SIZE:
                return cls(raw)
        raise IdentityError(f"not a peer id: {text!r}")


def pow_target(difficulty: float) -> int:
    """Octez ``Crypto_box.make_pow_target``: the largest acceptable hash value.

    ``difficulty`` is in bits, 0..256 (fractions allowed); raises IdentityError outside.
    """
    if not 0.0 <= difficulty <= 256.0 or math.isnan(difficulty):
        raise IdentityError(f"proof-of-work difficulty {difficulty} outside 0..256")
    frac, whole = math.modf(difficulty)
    shift = int(whole)
    m = (1 << 54) - 1 if frac == 0.0 else int(2.0 ** (54.0 - frac))
    if shift < 202:
        return (m << (202 - shift)) | ((1 << (202 - shift)) - 1)
    return m >> (shift - 202)


def _pow_hash(public_key: bytes, stamp: bytes) -> int:
    digest = hashlib.blake2b(public_key + stamp, digest_size=32).digest()
    return int.from_bytes(digest, "little")  # Octez Z.of_bits: little-endian


def check_proof_of_work(public_key: bytes, stamp: bytes, difficulty: float) -> bool:
    """Whether ``stamp`` proves ``difficulty`` bits of work for ``public_key``
    (Octez ``check_proof_of_work``). Wrong sizes give False."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(stamp) != STAMP_SIZE:
        return False
    return _pow_hash(public_key, stamp) <= pow_target(difficulty)


def generate_proof_of_work(
    public_key: bytes, difficulty: float, rng: random.Random, max_tries: int | None = None
) -> bytes:
    """Find a stamp: start from a random 24-byte value and count up (Octez
    ``generate_proof_of_work``). Raises IdentityError after ``max_tries`` attempts."""
    target = pow_target(difficulty)
    start = rng.getrandbits(8 * STAMP_SIZE)
    tries = 0
    base = hashlib.blake2b(public_key, digest_size=32)
    while max_tries is None or tries < max_tries:
        stamp = ((start + tries) % (1 << (8 * STAMP_SIZE))).to_bytes(STAMP_SIZE, "little")
        h = base.copy()
        h.update(stamp)
        if int.from_bytes(h.digest(), "little") <= target:
            return stamp
        tries += 1
    raise IdentityError(f"no proof of work of {difficulty} bits in {max_tries} tries")


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Ed25519 verification; False (never an exception) for any malformed input."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Identity:
    """Our identity: the Ed25519 key pair, the proof-of-work stamp, the peer id."""

    private_key: Ed25519PrivateKey
    public_key: bytes
    stamp: bytes
    peer_id: PeerId

    @classmethod
    def from_private_bytes(cls, secret: bytes, stamp: bytes) -> Identity:
        """Rebuild from a 32-byte Ed25519 seed and a stamp; raises IdentityError."""
        if len(secret) != 32:
            raise IdentityError("an Ed25519 secret key is 32 bytes")
        if len(stamp) != STAMP_SIZE:
            raise IdentityError(f"a stamp is {STAMP_SIZE} bytes")
        key = Ed25519PrivateKey.from_private_bytes(secret)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(key, public, stamp, PeerId.of_public_key(public))

    @classmethod
    def generate(cls, difficulty: float, rng: random.Random | None = None) -> Identity:
        """A new key (from ``rng`` when given, for tests; else the OS) and a stamp of
        ``difficulty`` bits."""
        secret = rng.getrandbits(256).to_bytes(32, "little") if rng else os.urandom(32)
        key = Ed25519PrivateKey.from_private_bytes(secret)
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        stamp = generate_proof_of_work(public, difficulty, rng or random.Random())
        return cls(key, public, stamp, PeerId.of_public_key(public))

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``data``."""
        return self.private_key.sign(data)

    def secret_bytes(self) -> bytes:
        """The 32-byte Ed25519 seed."""
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def save_identity(identity: Identity, path: Path) -> None:
    """Write ``identity`` to ``path`` (Octez's identity.json shape), mode 0600, through a
    temporary file and a rename. Raises OSError."""
    doc = {
        "peer_id": str(identity.peer_id),
        "public_key": identity.public_key.hex(),
        "secret_key": identity.secret_bytes().hex(),
        "proof_of_work_stamp": identity.stamp.hex(),
    }
    data = (json.dumps(doc, indent=2) + "\n").encode()
    atomic_write(path, data)  # a mkstemp file: mode 0600 from the start


def load_identity(path: Path) -> Identity:
    """Read an identity file; raises IdentityError naming the file and the problem
    (bad JSON, a missing field, wrong sizes, a peer id or public key that does not match
    the secret key). The file is never modified."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise IdentityError(f"{path}: unreadable identity file: {e}") from None
    try:
        if not isinstance(doc, dict):
            raise IdentityError("not a JSON object")
        identity = Identity.from_private_bytes(
            bytes.fromhex(doc["secret_key"]), bytes.fromhex(doc["proof_of_work_stamp"])
        )
        if bytes.fromhex(doc["public_key"]) != identity.public_key:
            raise IdentityError("public_key does not match secret_key")
        if PeerId.parse(doc["peer_id"]) != identity.peer_id:
            raise IdentityError("peer_id does not match the public key")
    except IdentityError as e:
        raise IdentityError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise IdentityError(f"{path}: bad identity file: {e!r}") from None
    return identity


def load_or_create_identity(path: Path, difficulty: float) -> Identity:
    """The identity in ``path``, created (and saved) if the file does not exist.

    A stored stamp below ``difficulty`` raises IdentityError, as Octez refuses to run
    with an identity that does not meet ``expected_pow`` (``p2p_identity``/node config
    check); delete the file to make a new identity.
    """
    if not path.exists():
        identity = Identity.generate(difficulty)
        save_identity(identity, path)
        return identity
    identity = load_identity(path)
    if not check_proof_of_work(identity.public_key, identity.stamp, difficulty):
        raise IdentityError(
            f"{path}: the identity's proof of work is below the expected {difficulty:g} bits"
        )
    return identity
