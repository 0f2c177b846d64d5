"""Native node identities in Octez's shape: peer ids, proof-of-work stamps, identity.json.

Sources (tezos/tezos-mirror):

* ``src/lib_crypto/crypto_box.ml``: ``Public_key_hash`` (Blake2b, 16 bytes, base58check
  prefix ``Base58.Prefix.cryptobox_public_key_hash`` = ``"\\153\\103"`` = ``0x99 0x67``,
  printed as 30 characters starting with ``id``), ``hash``, ``make_pow_target``,
  ``compare_pow_target``, ``check_proof_of_work``, ``generate_proof_of_work`` and
  ``Nonce.increment`` (``src/lib_hacl/hacl.ml``: a big-endian counter, 24 bytes).
* ``src/lib_base/p2p_identity.ml``: the identity record ``{peer_id; public_key;
  secret_key; proof_of_work_stamp}`` and its JSON encoding (``peer_id`` optional: derived
  from the public key when absent).
* ``src/bin_node/node_identity_file.ml``: ``read ?expected_pow`` (checks the peer id
  against the public key, the public key against the secret key, then the proof of work;
  ``Insufficient_proof_of_work`` otherwise; the node refuses to start) and ``write``/
  ``generate`` (never overwrite an existing identity file).

Differences from Octez, by design: keys are Ed25519 (``cryptography``'s
:class:`Ed25519PrivateKey`, 32-byte seed and 32-byte public key) instead of NaCl box keys,
because sessions are encrypted by BIP324 and the identity only has to be proved by a
signature. The peer id is still Blake2b-128 of the 32-byte public key, so an Octez
``identity.json``'s ``peer_id``/``public_key`` pair derives identically here.

Pure: identity.json is encoded and decoded here (:func:`dumps_identity`,
:func:`loads_identity`); the file is read and written by :mod:`peerkeeper.io.addrdb`
(``load_identity``, ``save_identity``, ``load_or_create_identity``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field

import base58
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "DEFAULT_POW_DIFFICULTY",
    "MAX_IDENTITY_FILE_SIZE",
    "PEER_ID_SIZE",
    "PUBLIC_KEY_SIZE",
    "SECRET_KEY_SIZE",
    "SIGNATURE_SIZE",
    "STAMP_SIZE",
    "Identity",
    "IdentityError",
    "PeerId",
    "check_proof_of_work",
    "dumps_identity",
    "generate_proof_of_work",
    "loads_identity",
    "pow_target",
    "verify_signature",
]

#: Size of a peer id in bytes (Octez ``Crypto_box.Public_key_hash``, ``size = Some 16``).
PEER_ID_SIZE = 16
#: Size of an Ed25519 public key in bytes (Octez ``Crypto_box.public_key_size`` is 32 too).
PUBLIC_KEY_SIZE = 32
#: Size of an Ed25519 secret key (seed) in bytes.
SECRET_KEY_SIZE = 32
#: Size of an Ed25519 signature in bytes.
SIGNATURE_SIZE = 64
#: Size of a proof-of-work stamp in bytes (Octez ``Crypto_box.nonce_size`` = 24).
STAMP_SIZE = 24
#: Default proof of work, in bits. Octez's node expects 26 bits (``expected_pow``); mining
#: 2^26 Blake2b hashes from Python's ``hashlib`` takes about a minute, which is too slow
#: for a first start, tests and demos, so we default to 20 bits (2^20 hashes, about a
#: second). It is a float like Octez's and configurable per node.
DEFAULT_POW_DIFFICULTY = 20.0
#: Largest identity file read, in bytes (an Octez identity.json is about 300 bytes).
MAX_IDENTITY_FILE_SIZE = 64 * 1024

#: Octez's base58check prefix of peer ids (``Base58.Prefix.cryptobox_public_key_hash``).
_B58_PREFIX = b"\x99\x67"
_B58_LEN = 30
_B32_LEN = 26
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_STAMP_MOD = 1 << (8 * STAMP_SIZE)
_FIELDS = ("peer_id", "public_key", "secret_key", "proof_of_work_stamp")


class IdentityError(ValueError):
    """A malformed peer id, key, stamp, difficulty or identity file (the message says
    which and, for a file, names it)."""


@dataclass(frozen=True, slots=True)
class PeerId:
    """A peer id: ``raw`` is 16 bytes, the Blake2b-128 hash of a 32-byte public key.

    Hashable and immutable. ``str()`` gives Octez's base58check form (``id…``, 30
    characters). Raises :class:`IdentityError` if ``raw`` is not 16 bytes.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.raw, bytes) or len(self.raw) != PEER_ID_SIZE:
            size = len(self.raw) if isinstance(self.raw, bytes | bytearray) else "non-bytes"
            raise IdentityError(f"a peer id is {PEER_ID_SIZE} bytes, not {size}")

    @classmethod
    def of_public_key(cls, public_key: bytes) -> PeerId:
        """The peer id of a 32-byte public key: Blake2b with a 16-byte digest (Octez
        ``Crypto_box.hash``). Raises :class:`IdentityError` for a wrong key length."""
        if len(public_key) != PUBLIC_KEY_SIZE:
            raise IdentityError(f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
        return cls(hashlib.blake2b(public_key, digest_size=PEER_ID_SIZE).digest())

    def b58(self) -> str:
        """Base58check of ``0x99 0x67 || raw`` (Octez ``P2p_peer.Id.to_b58check``): 30
        characters starting with ``id``."""
        return base58.b58encode_check(_B58_PREFIX + self.raw).decode("ascii")

    def b32(self) -> str:
        """Lowercase RFC 4648 base32 of ``raw`` without padding (26 characters)."""
        return base64.b32encode(self.raw).decode("ascii").rstrip("=").lower()

    def __str__(self) -> str:
        return self.b58()

    def __repr__(self) -> str:
        return f"PeerId({self.b58()})"

    @classmethod
    def parse(cls, text: str) -> PeerId:
        """A peer id from its base58check form (30 characters, ``id…``), its base32 form
        (26 characters, either case) or 32 hex digits; surrounding whitespace is ignored.

        Raises :class:`IdentityError` for anything else (bad length, alphabet, checksum
        or prefix).
        """
        if not isinstance(text, str):
            raise IdentityError(f"not a peer id: {text!r}")
        s = text.strip()
        raw: bytes | None = None
        try:
            if len(s) == 2 * PEER_ID_SIZE and _HEX_RE.fullmatch(s):
                raw = bytes.fromhex(s)
            elif len(s) == _B58_LEN:
                decoded = base58.b58decode_check(s)
                if decoded[:2] == _B58_PREFIX and len(decoded) == 2 + PEER_ID_SIZE:
                    raw = decoded[2:]
            elif len(s) == _B32_LEN:
                decoded = base64.b32decode(s.upper() + "======")
                # Reject non-canonical text (nonzero bits in the unused tail).
                if len(decoded) == PEER_ID_SIZE and cls(decoded).b32() == s.lower():
                    raw = decoded
        except (ValueError, binascii.Error):
            raw = None
        if raw is None:
            raise IdentityError(f"not a peer id: {text!r}")
        return cls(raw)


@functools.lru_cache(maxsize=64)
def _pow_target_int(difficulty: float) -> int:
    if math.isnan(difficulty) or not 0.0 <= difficulty <= 256.0:
        raise IdentityError(f"proof-of-work difficulty {difficulty!r} is outside 0..256 bits")
    frac, whole = math.modf(difficulty)
    shift = int(whole)
    m = (1 << 54) - 1 if frac == 0.0 else int(2.0 ** (54.0 - frac))
    if shift >= 202:
        return m >> (shift - 202)
    target = (m << (202 - shift)) | ((1 << (202 - shift)) - 1)
    # A tiny fraction can round 2^(54 - frac) up to 2^54, giving a target of 2^256 or
    # more; every 256-bit hash is below it either way, so clamping changes nothing.
    return min(target, (1 << 256) - 1)


def pow_target(difficulty: float) -> bytes:
    """The proof-of-work target for ``difficulty`` bits, as 32 little-endian bytes.

    Octez ``Crypto_box.make_pow_target``: with ``frac, shift = modf(difficulty)``,
    ``m = 2^54 - 1`` if ``frac == 0`` else ``int(2^(54 - frac))``; the target is
    ``(m << (202 - shift)) | (2^(202 - shift) - 1)`` when ``shift < 202``, else
    ``m >> (shift - 202)``. So ``difficulty`` is a number of leading zero bits, with
    fractional bits refining the mantissa. The bytes are the target in the order of Octez's
    ``Z.to_bits`` (little-endian), the same order in which a hash is read (``Z.of_bits``):
    a hash ``h`` passes iff ``int.from_bytes(h, "little") <= int.from_bytes(target,
    "little")``.

    Raises :class:`IdentityError` when ``difficulty`` is NaN or outside 0..256 (Octez:
    ``invalid_arg``).
    """
    return _pow_target_int(float(difficulty)).to_bytes(32, "little")


def check_proof_of_work(public_key: bytes, stamp: bytes, difficulty: float) -> bool:
    """Whether ``stamp`` proves ``difficulty`` bits of work for ``public_key``.

    Octez ``Crypto_box.check_proof_of_work``: Blake2b-256 of ``public_key || stamp``, read
    as a little-endian integer, must be at most :func:`pow_target`. A public key that is
    not 32 bytes or a stamp that is not 24 bytes gives False. Raises
    :class:`IdentityError` for an invalid ``difficulty``.
    """
    target = _pow_target_int(float(difficulty))
    if len(public_key) != PUBLIC_KEY_SIZE or len(stamp) != STAMP_SIZE:
        return False
    digest = hashlib.blake2b(public_key + stamp, digest_size=32).digest()
    return int.from_bytes(digest, "little") <= target


def generate_proof_of_work(
    public_key: bytes, difficulty: float, rng: random.Random, max_tries: int | None = None
) -> bytes:
    """Mine a 24-byte stamp for ``public_key`` meeting ``difficulty`` bits.

    Octez ``Crypto_box.generate_proof_of_work``: start from a random nonce (here drawn
    from ``rng``) and step it with ``Nonce.increment`` (a 192-bit big-endian counter,
    wrapping) until :func:`check_proof_of_work` passes. Expect about ``2**difficulty``
    tries. ``max_tries`` (None: unbounded) caps the number of stamps tried.

    Raises :class:`IdentityError` for a public key that is not 32 bytes, an invalid
    difficulty, a negative ``max_tries``, or when ``max_tries`` stamps fail (Octez:
    ``Not_found``).
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise IdentityError(f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    if max_tries is not None and max_tries < 0:
        raise IdentityError(f"max_tries must be >= 0, not {max_tries}")
    target = _pow_target_int(float(difficulty))
    prefix = hashlib.blake2b(public_key, digest_size=32)
    counter = rng.getrandbits(8 * STAMP_SIZE)
    tries = 0
    while max_tries is None or tries < max_tries:
        stamp = counter.to_bytes(STAMP_SIZE, "big")
        h = prefix.copy()
        h.update(stamp)
        if int.from_bytes(h.digest(), "little") <= target:
            return stamp
        counter = (counter + 1) % _STAMP_MOD
        tries += 1
    raise IdentityError(f"no proof of work of {difficulty:g} bits found in {max_tries} tries")


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (64 bytes) is a valid Ed25519 signature of ``data`` by
    ``public_key`` (32 bytes). Never raises: a malformed key (wrong length, not a curve
    point) or signature gives False."""
    if (
        not isinstance(public_key, bytes)
        or not isinstance(signature, bytes)
        or len(public_key) != PUBLIC_KEY_SIZE
        or len(signature) != SIGNATURE_SIZE
    ):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Identity:
    """Our node identity (Octez ``P2p_identity.t`` with Ed25519 keys).

    Fields: ``private_key`` (Ed25519), ``public_key`` (32 raw bytes), ``stamp`` (24-byte
    proof-of-work stamp), ``peer_id`` (:class:`PeerId` of ``public_key``). Construction
    checks consistency and raises :class:`IdentityError` if the public key does not
    belong to the private key, the peer id does not match, or a size is wrong. It does
    not check the stamp's work (that depends on the expected difficulty). Equality and
    hashing use the public fields; the private key is left out of ``repr``.
    """

    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    public_key: bytes
    stamp: bytes
    peer_id: PeerId

    def __post_init__(self) -> None:
        if len(self.stamp) != STAMP_SIZE:
            raise IdentityError(
                f"a proof-of-work stamp is {STAMP_SIZE} bytes, not {len(self.stamp)}"
            )
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise IdentityError(
                f"a public key is {PUBLIC_KEY_SIZE} bytes, not {len(self.public_key)}"
            )
        if _raw_public(self.private_key) != self.public_key:
            raise IdentityError("public_key does not match secret_key")
        if PeerId.of_public_key(self.public_key) != self.peer_id:
            raise IdentityError("peer_id does not match public_key")

    @classmethod
    def from_private_bytes(cls, secret: bytes, stamp: bytes) -> Identity:
        """Rebuild an identity from a 32-byte Ed25519 seed and a 24-byte stamp (public
        key and peer id are derived). Raises :class:`IdentityError` for wrong sizes."""
        if len(secret) != SECRET_KEY_SIZE:
            raise IdentityError(
                f"an Ed25519 secret key is {SECRET_KEY_SIZE} bytes, not {len(secret)}"
            )
        key = Ed25519PrivateKey.from_private_bytes(secret)
        public = _raw_public(key)
        return cls(key, public, stamp, PeerId.of_public_key(public))

    @classmethod
    def generate(cls, difficulty: float, rng: random.Random) -> Identity:
        """A new identity (Octez ``P2p_identity.generate``): a fresh Ed25519 key from the
        operating system's randomness (``Ed25519PrivateKey.generate``) and a stamp of
        ``difficulty`` bits mined by :func:`generate_proof_of_work`, starting from a
        point drawn from ``rng`` (production passes :class:`random.SystemRandom`).
        ``rng`` never influences the key. Takes about ``2**difficulty`` Blake2b hashes.
        Raises :class:`IdentityError` for an invalid difficulty."""
        key = Ed25519PrivateKey.generate()
        public = _raw_public(key)
        stamp = generate_proof_of_work(public, difficulty, rng)
        return cls(key, public, stamp, PeerId.of_public_key(public))

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self.private_key.sign(data)

    def secret_bytes(self) -> bytes:
        """The 32-byte Ed25519 seed (the identity file's ``secret_key``)."""
        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def to_json(self) -> dict[str, str]:
        """The identity.json object (Octez ``P2p_identity.encoding``): ``peer_id`` in
        base58check, ``public_key``, ``secret_key`` and ``proof_of_work_stamp`` in hex."""
        return {
            "peer_id": self.peer_id.b58(),
            "public_key": self.public_key.hex(),
            "secret_key": self.secret_bytes().hex(),
            "proof_of_work_stamp": self.stamp.hex(),
        }


def dumps_identity(identity: Identity) -> bytes:
    """The bytes of Octez's identity.json for ``identity`` (``P2p_identity.encoding``, see
    :meth:`Identity.to_json`): the JSON object indented by 2, then a newline, ASCII.

    Pure; :func:`peerkeeper.io.addrdb.save_identity` writes it to disk (mode 0600,
    atomically).
    """
    return (json.dumps(identity.to_json(), indent=2) + "\n").encode("ascii")


def _hex_field(doc: dict[str, object], name: str, size: int) -> bytes:
    value = doc.get(name)
    if value is None:
        raise IdentityError(f"missing {name}")
    if not isinstance(value, str) or not _HEX_RE.fullmatch(value) or len(value) % 2:
        raise IdentityError(f"{name} is not a hex string")
    raw = bytes.fromhex(value)
    if len(raw) != size:
        raise IdentityError(f"{name} is {len(raw)} bytes, not {size}")
    return raw


def _identity_of_json(doc: object) -> Identity:
    """Checks in the order of Octez ``Node_identity_file.read``."""
    if not isinstance(doc, dict):
        raise IdentityError("not a JSON object")
    unknown = sorted(str(k) for k in doc if k not in _FIELDS)
    if unknown:
        raise IdentityError(f"unknown field(s) {', '.join(unknown)}")
    public = _hex_field(doc, "public_key", PUBLIC_KEY_SIZE)
    secret = _hex_field(doc, "secret_key", SECRET_KEY_SIZE)
    stamp = _hex_field(doc, "proof_of_work_stamp", STAMP_SIZE)
    derived = PeerId.of_public_key(public)
    text = doc.get("peer_id")
    if text is not None:  # optional in P2p_identity.encoding
        if not isinstance(text, str):
            raise IdentityError("peer_id is not a string")
        if PeerId.parse(text) != derived:  # Octez Identity_mismatch
            raise IdentityError(f"peer_id {text} does not match public_key (expected {derived})")
    key = Ed25519PrivateKey.from_private_bytes(secret)
    if _raw_public(key) != public:  # Octez Identity_keys_mismatch
        raise IdentityError("public_key does not match secret_key")
    return Identity(key, public, stamp, derived)


def loads_identity(data: bytes, expected_pow: float | None = None) -> Identity:
    """Decode the contents of an identity file (Octez ``Node_identity_file.read
    ?expected_pow``, src/bin_node/node_identity_file.ml, after the file is read).

    Checks, in Octez's order: the size (at most :data:`MAX_IDENTITY_FILE_SIZE` bytes),
    the JSON shape (an object with ``public_key``, ``secret_key``,
    ``proof_of_work_stamp`` in hex of 32/32/24 bytes, optional ``peer_id`` in any
    :meth:`PeerId.parse` form, no other field), that ``peer_id`` is the hash of the
    public key, that the public key belongs to the secret key, and, when
    ``expected_pow`` (bits) is given, that the stamp meets it.  Pure;
    :func:`peerkeeper.io.addrdb.load_identity` reads the file.

    Raises :class:`IdentityError` naming the problem: too large, bad JSON, bad field,
    mismatch, or insufficient proof of work.
    """
    if len(data) > MAX_IDENTITY_FILE_SIZE:
        raise IdentityError(f"larger than {MAX_IDENTITY_FILE_SIZE} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise IdentityError(f"not valid JSON ({e})") from None
    identity = _identity_of_json(doc)
    if expected_pow is not None and not check_proof_of_work(
        identity.public_key, identity.stamp, expected_pow
    ):  # Octez Insufficient_proof_of_work
        raise IdentityError(
            f"the identity's proof of work is below the expected {expected_pow:.2f} "
            "bits; move the file away to generate a new identity"
        )
    return identity
