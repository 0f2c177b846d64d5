"""Identities: peer ids, Octez's proof-of-work target, signatures, identity.json."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import pytest

from peerkeeper.identity import (
    Identity,
    IdentityError,
    PeerId,
    check_proof_of_work,
    generate_proof_of_work,
    load_identity,
    load_or_create_identity,
    pow_target,
    save_identity,
    verify_signature,
)

IDENT = Identity.generate(6.0, random.Random(7))


def test_peer_id_is_blake2b_128_and_prints_like_octez() -> None:
    pid = PeerId.of_public_key(IDENT.public_key)
    assert pid.raw == hashlib.blake2b(IDENT.public_key, digest_size=16).digest()
    text = str(pid)
    assert text.startswith("id") and len(text) == 30
    assert PeerId.parse(text) == pid
    assert len(pid.b32()) == 26 and pid.b32() == pid.b32().lower()
    assert PeerId.parse(pid.b32()) == pid
    assert PeerId.parse(pid.raw.hex()) == pid


@pytest.mark.parametrize(
    "bad", ["", "id", "hello", "idqRfGME9Bdhde2rksPSz7s6naxMW5", "zz" * 16, "a" * 27]
)
def test_peer_id_parse_errors(bad: str) -> None:
    with pytest.raises(IdentityError):
        PeerId.parse(bad)


def test_peer_id_size() -> None:
    with pytest.raises(IdentityError):
        PeerId(b"short")
    with pytest.raises(IdentityError):
        PeerId.of_public_key(b"\x00" * 31)


def test_pow_target_follows_octez() -> None:
    assert pow_target(0) == (1 << 256) - 1
    # Whole bits: m = 2^54 - 1 shifted, low bits all ones: exactly 256 - f one bits.
    assert pow_target(8) == (1 << 248) - 1
    assert pow_target(26) == (1 << 230) - 1
    # A fraction: m = int(2 ** (54 - 0.5)) shifted left by 202 - 8, low bits ones.
    m = int(2.0**53.5)
    assert pow_target(8.5) == (m << 194) | ((1 << 194) - 1)
    assert pow_target(8) > pow_target(8.5) > pow_target(9)
    assert pow_target(256) == ((1 << 54) - 1) >> 54 == 0
    for bad in (-1.0, 256.5, float("nan")):
        with pytest.raises(IdentityError):
            pow_target(bad)


def test_mining_and_checking() -> None:
    stamp = generate_proof_of_work(IDENT.public_key, 8.0, random.Random(1))
    assert check_proof_of_work(IDENT.public_key, stamp, 8.0)
    h = int.from_bytes(hashlib.blake2b(IDENT.public_key + stamp, digest_size=32).digest(), "little")
    assert h <= pow_target(8.0)
    # The same stamp fails a difficulty it does not meet.
    bits = 256 - h.bit_length()
    assert not check_proof_of_work(IDENT.public_key, stamp, bits + 1.0)
    assert check_proof_of_work(IDENT.public_key, stamp, float(bits))
    assert not check_proof_of_work(IDENT.public_key, stamp[:-1], 0.0)
    with pytest.raises(IdentityError):
        generate_proof_of_work(IDENT.public_key, 200.0, random.Random(1), max_tries=10)


def test_sign_and_verify() -> None:
    sig = IDENT.sign(b"data")
    assert len(sig) == 64
    assert verify_signature(IDENT.public_key, sig, b"data")
    assert not verify_signature(IDENT.public_key, sig, b"other")
    assert not verify_signature(IDENT.public_key, bytes(64), b"data")
    assert not verify_signature(IDENT.public_key[:31], sig, b"data")
    assert not verify_signature(b"\xff" * 32, sig, b"data")  # not a curve point


def test_file_round_trip_mode_and_atomicity(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    save_identity(IDENT, path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]  # no temporary file left
    doc = json.loads(path.read_text())
    assert set(doc) == {"peer_id", "public_key", "secret_key", "proof_of_work_stamp"}
    again = load_identity(path)
    assert again.peer_id == IDENT.peer_id and again.stamp == IDENT.stamp
    assert verify_signature(IDENT.public_key, again.sign(b"x"), b"x")


def _corrupt_docs() -> list[str]:
    good = {
        "peer_id": str(IDENT.peer_id),
        "public_key": IDENT.public_key.hex(),
        "secret_key": IDENT.secret_bytes().hex(),
        "proof_of_work_stamp": IDENT.stamp.hex(),
    }
    other = Identity.generate(0.0, random.Random(99))
    return [
        "{not json",
        "[]",
        json.dumps({**good, "secret_key": "00"}),
        json.dumps({k: v for k, v in good.items() if k != "peer_id"}),
        json.dumps({**good, "peer_id": str(other.peer_id)}),
        json.dumps({**good, "public_key": other.public_key.hex()}),
        json.dumps({**good, "proof_of_work_stamp": "zz"}),
    ]


@pytest.mark.parametrize("text", _corrupt_docs())
def test_corrupt_files_are_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "identity.json"
    path.write_text(text)
    with pytest.raises(IdentityError, match="identity.json"):
        load_or_create_identity(path, 0.0)
    assert path.read_text() == text


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    first = load_or_create_identity(path, 6.0)
    assert check_proof_of_work(first.public_key, first.stamp, 6.0)
    assert load_or_create_identity(path, 6.0).peer_id == first.peer_id
    # A stored identity below the expected work is refused (as Octez), not replaced.
    with pytest.raises(IdentityError, match="proof of work"):
        load_or_create_identity(path, 200.0)
    assert load_identity(path).peer_id == first.peer_id
