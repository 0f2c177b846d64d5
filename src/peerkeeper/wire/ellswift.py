"""ElligatorSwift keys and the BIP324 x-only ECDH, through libsecp256k1.

This is the only module of peerkeeper that touches ``coincurve._libsecp256k1`` (the
cffi binding bundled with ``coincurve``; coincurve's public API does not wrap the
``ellswift`` module). Every cffi buffer is allocated inside the function that uses it.

References:

* BIP324, "ElligatorSwift encoding of curve X coordinates" and "Shared secret
  computation" (``bip-0324.mediawiki``);
* libsecp256k1 ``include/secp256k1_ellswift.h`` (``secp256k1_ellswift_create``,
  ``_decode``, ``_xdh`` and ``secp256k1_ellswift_xdh_hash_function_bip324``);
* Bitcoin Core ``src/key.cpp`` ``CKey::EllSwiftCreate`` and
  ``CKey::ComputeBIP324ECDHSecret``, ``src/pubkey.cpp`` ``EllSwiftPubKey::Decode``.

Randomness is always passed in (sans-IO, no global RNG): ``generate_key(rng)`` takes
either a callable ``rng(n) -> bytes`` (``os.urandom``, ``secrets.token_bytes``) or an
object with a ``randbytes(n)`` method (``random.Random``; tests only — production
callers must pass ``os.urandom``-backed randomness, as a private key is drawn from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]

__all__ = [
    "ELLSWIFT_SIZE",
    "EllSwiftError",
    "RandomSource",
    "check_privkey",
    "ellswift_create",
    "ellswift_decode",
    "ellswift_xdh_bip324",
    "generate_key",
    "randbytes",
]

#: Size of an ElligatorSwift-encoded public key (Core ``EllSwiftPubKey::SIZE``).
ELLSWIFT_SIZE = 64
_KEY_SIZE = 32
_SECP256K1_EC_COMPRESSED = 258  # (1 << 1) | (1 << 8), include/secp256k1.h


class EllSwiftError(ValueError):
    """An ElligatorSwift operation failed: wrong input size or an invalid private key.

    Decoding never fails for well-sized input (every 64-byte string encodes a point),
    so a remote peer cannot cause this error with a key it sends.
    """


class _SupportsRandbytes(Protocol):
    def randbytes(self, n: int, /) -> bytes: ...


#: Where randomness comes from: ``rng(n) -> bytes`` or an object with ``randbytes(n)``.
RandomSource = Callable[[int], bytes] | _SupportsRandbytes


def randbytes(rng: RandomSource, n: int) -> bytes:
    """Draw ``n`` bytes from ``rng`` (a callable or an object with ``randbytes``)."""
    method = getattr(rng, "randbytes", None)
    out = method(n) if method is not None else rng(n)  # type: ignore[operator]
    if not isinstance(out, bytes | bytearray) or len(out) != n:
        raise TypeError(f"random source returned {type(out).__name__}, not {n} bytes")
    return bytes(out)


def _check(name: str, value: bytes | bytearray | memoryview, size: int) -> bytes:
    raw = bytes(value)
    if len(raw) != size:
        raise EllSwiftError(f"{name} must be {size} bytes, got {len(raw)}")
    return raw


def _sign_ctx() -> object:
    # coincurve's randomized (blinded) signing context; secp256k1_ellswift_create needs
    # a context that is not secp256k1_context_static (it computes privkey * G).
    from coincurve.context import GLOBAL_CONTEXT

    return GLOBAL_CONTEXT.ctx


def ellswift_create(privkey32: bytes, aux_rand32: bytes) -> bytes:
    """Encode the public key of ``privkey32`` as 64 ElligatorSwift bytes.

    ``aux_rand32`` is fresh randomness choosing one of the many encodings of the key
    (Core ``CKey::EllSwiftCreate(ent32)``). Raises :class:`EllSwiftError` for a private
    key that is zero or not below the group order.
    """
    key = _check("privkey", privkey32, _KEY_SIZE)
    aux = _check("aux_rand", aux_rand32, _KEY_SIZE)
    out = ffi.new("unsigned char[64]")
    if not lib.secp256k1_ellswift_create(_sign_ctx(), out, key, aux):
        raise EllSwiftError("invalid private key")
    return bytes(ffi.buffer(out, ELLSWIFT_SIZE))


def ellswift_decode(ell64: bytes) -> bytes:
    """Decode 64 ElligatorSwift bytes to the 33-byte compressed public key.

    X is BIP324's ``XSwiftEC(u, t)``; libsecp256k1 gives Y the parity of ``t`` (BIP324
    itself only uses X). Same as Core ``EllSwiftPubKey::Decode``. Every 64-byte input
    decodes, so only a wrong size raises :class:`EllSwiftError`.
    """
    ell = _check("ellswift", ell64, ELLSWIFT_SIZE)
    pubkey = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ellswift_decode(lib.secp256k1_context_static, pubkey, ell):
        raise EllSwiftError("ellswift decoding failed")  # pragma: no cover - cannot fail
    out = ffi.new("unsigned char[33]")
    outlen = ffi.new("size_t *", 33)
    ok = lib.secp256k1_ec_pubkey_serialize(
        lib.secp256k1_context_static, out, outlen, pubkey, _SECP256K1_EC_COMPRESSED
    )
    if not ok or outlen[0] != 33:
        raise EllSwiftError("pubkey serialization failed")  # pragma: no cover
    return bytes(ffi.buffer(out, 33))


def ellswift_xdh_bip324(
    ell_a64: bytes, ell_b64: bytes, privkey32: bytes, initiating: bool
) -> bytes:
    """The 32-byte BIP324 ECDH shared secret.

    Arguments in libsecp256k1's order: ``ell_a64`` is the **initiator's** encoding,
    ``ell_b64`` the **responder's**; ``privkey32`` is ours and ``initiating`` says which
    of the two encodings is ours (party A = initiator). The result is
    ``tagged_hash("bip324_ellswift_xonly_ecdh", ell_a64 || ell_b64 || x(shared point))``
    (BIP324 "Shared secret computation"; Core ``CKey::ComputeBIP324ECDHSecret``, which
    remaps (theirs, ours) to (A, B) the same way). Raises :class:`EllSwiftError` for
    wrong sizes or an invalid private key.
    """
    ell_a = _check("ell_a", ell_a64, ELLSWIFT_SIZE)
    ell_b = _check("ell_b", ell_b64, ELLSWIFT_SIZE)
    key = _check("privkey", privkey32, _KEY_SIZE)
    out = ffi.new("unsigned char[32]")
    ok = lib.secp256k1_ellswift_xdh(
        lib.secp256k1_context_static,
        out,
        ell_a,
        ell_b,
        key,
        0 if initiating else 1,
        lib.secp256k1_ellswift_xdh_hash_function_bip324,
        ffi.NULL,
    )
    if not ok:
        raise EllSwiftError("invalid private key")
    return bytes(ffi.buffer(out, _KEY_SIZE))


def _seckey_valid(key: bytes) -> bool:
    return bool(lib.secp256k1_ec_seckey_verify(lib.secp256k1_context_static, key))


def check_privkey(privkey32: bytes) -> None:
    """Raise :class:`EllSwiftError` unless ``privkey32`` is a valid secp256k1 secret key."""
    if not _seckey_valid(_check("privkey", privkey32, _KEY_SIZE)):
        raise EllSwiftError("invalid private key")


def generate_key(rng: RandomSource) -> tuple[bytes, bytes]:
    """A fresh ``(privkey32, ellswift64)`` pair drawn from ``rng``.

    32 bytes of ``rng`` per private key candidate (redrawn in the ~2^-128 case that it
    is not a valid scalar) and 32 more for the encoding entropy, like Core's
    ``GenerateRandomKey()`` + ``GetRandHash()`` in ``V2Transport``'s constructor.
    Production callers pass ``os.urandom`` (or ``secrets.token_bytes``); a seeded
    ``random.Random`` is for tests and simulations only.
    """
    while True:
        priv = randbytes(rng, _KEY_SIZE)
        if _seckey_valid(priv):
            break
    return priv, ellswift_create(priv, randbytes(rng, _KEY_SIZE))
