"""Native identities (peerkeeper.native.identity): peer ids, Octez's proof of work, Ed25519
signatures, identity.json (tezos/tezos-mirror crypto_box.ml, p2p_identity.ml,
node_identity_file.ml)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import stat
from pathlib import Path

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerkeeper.io.addrdb import load_identity, load_or_create_identity, save_identity
from peerkeeper.native.identity import (
    DEFAULT_POW_DIFFICULTY,
    MAX_IDENTITY_FILE_SIZE,
    PEER_ID_SIZE,
    STAMP_SIZE,
    Identity,
    IdentityError,
    PeerId,
    check_proof_of_work,
    generate_proof_of_work,
    pow_target,
    verify_signature,
)

IDENT = Identity.generate(6.0, random.Random(7))

# A published Tezos identity (tezedge/node-fuzzer README.md, the fuzzer's default
# identity): its peer_id/public_key pair and 26-bit stamp follow Octez's rules, and our
# peer id derivation does not depend on the key type.
TEZOS_PEER_ID = "idt3LoYeur2FXAvRXsvmW2Ac9EpEHb"
TEZOS_PK = bytes.fromhex("f0c7f2fdf2e6effb32fb6d750051dc63512b5bd8d16ac7aa110f4f4fc840552e")
TEZOS_STAMP = bytes.fromhex("d5a8e2140d85615201c0e08b1bd22780b8d766af9be06123")


def octez_target(f: float) -> int:
    """make_pow_target written out independently from the OCaml (crypto_box.ml)."""
    whole = int(f)
    frac = f - whole
    m = 2**54 - 1 if frac == 0 else int(2 ** (54 - frac))
    if whole < 202:
        return (m * 2 ** (202 - whole)) | (2 ** (202 - whole) - 1)
    return m // 2 ** (whole - 202)


def pow_hash(pk: bytes, stamp: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(pk + stamp, digest_size=32).digest(), "little")


# ---------------------------------------------------------------- peer ids


def test_peer_id_is_blake2b_128_of_the_public_key() -> None:
    pid = PeerId.of_public_key(IDENT.public_key)
    assert pid.raw == hashlib.blake2b(IDENT.public_key, digest_size=16).digest()
    assert pid == IDENT.peer_id and hash(pid) == hash(IDENT.peer_id)
    assert len({pid, PeerId(bytes(pid.raw))}) == 1


def test_peer_id_matches_a_real_tezos_identity() -> None:
    pid = PeerId.of_public_key(TEZOS_PK)
    assert str(pid) == pid.b58() == TEZOS_PEER_ID
    assert PeerId.parse(TEZOS_PEER_ID) == pid


def test_b58_uses_octez_id_prefix() -> None:
    for raw in (bytes(16), b"\xff" * 16, IDENT.peer_id.raw):
        text = PeerId(raw).b58()
        assert text.startswith("id") and len(text) == 30
        assert base58.b58decode_check(text) == b"\x99\x67" + raw


def test_b32_is_lowercase_unpadded_rfc4648() -> None:
    pid = IDENT.peer_id
    text = pid.b32()
    assert len(text) == 26 and text == text.lower() and "=" not in text
    assert base64.b32decode(text.upper() + "======") == pid.raw


@given(st.binary(min_size=PEER_ID_SIZE, max_size=PEER_ID_SIZE))
def test_encodings_round_trip(raw: bytes) -> None:
    pid = PeerId(raw)
    assert PeerId.parse(pid.b58()) == pid
    assert PeerId.parse(str(pid)) == pid
    assert PeerId.parse(pid.b32()) == pid
    assert PeerId.parse(pid.b32().upper()) == pid
    assert PeerId.parse(raw.hex()) == pid
    assert PeerId.parse(f"  {pid}\n") == pid


def _bad_peer_ids() -> list[str]:
    good = IDENT.peer_id.b58()
    flipped = good[:-1] + ("2" if good[-1] != "2" else "3")  # checksum breaks
    other_prefix = base58.b58encode_check(b"\x99\x68" + IDENT.peer_id.raw).decode()
    b32 = IDENT.peer_id.b32()
    return [
        "",
        "id",
        "hello",
        flipped,
        other_prefix,
        good[:-1],
        good + "1",
        "zz" * 16,  # not hex
        "00" * 7 + "0 0" + "00" * 7 + "0",  # a space inside
        "00" * 17,
        b32[:-1] + "1",  # '1' is not base32
        "a" * 27,
        "idé" + good[3:],
    ]


@pytest.mark.parametrize("bad", _bad_peer_ids())
def test_peer_id_parse_errors(bad: str) -> None:
    with pytest.raises(IdentityError, match="not a peer id"):
        PeerId.parse(bad)


def test_non_canonical_base32_is_refused() -> None:
    text = PeerId(bytes(16)).b32()  # 128 bits in 26 chars: the last char has 2 spare bits
    assert text[-1] == "a"
    with pytest.raises(IdentityError):
        PeerId.parse(text[:-1] + "b")  # same 128 bits, a nonzero spare bit


def test_peer_id_sizes() -> None:
    with pytest.raises(IdentityError):
        PeerId(b"short")
    with pytest.raises(IdentityError):
        PeerId(bytes(17))
    with pytest.raises(IdentityError):
        PeerId.of_public_key(bytes(31))
    with pytest.raises(IdentityError):
        PeerId.parse(123)  # type: ignore[arg-type]


# ---------------------------------------------------------------- proof of work


@pytest.mark.parametrize("bits", [0.0, 8.0, 8.5, 26.0, 0.25, 9.99, 201.5, 202.0, 255.0, 256.0])
def test_pow_target_follows_octez(bits: float) -> None:
    target = pow_target(bits)
    assert len(target) == 32
    assert int.from_bytes(target, "little") == min(octez_target(bits), 2**256 - 1)


def test_pow_target_values() -> None:
    def t(bits: float) -> int:
        return int.from_bytes(pow_target(bits), "little")

    assert t(0) == 2**256 - 1
    assert pow_target(0) == b"\xff" * 32
    assert t(8) == 2**248 - 1
    assert pow_target(8) == b"\xff" * 31 + b"\x00"  # little-endian: high byte last
    assert t(26) == 2**230 - 1
    assert t(8.5) == (int(2**53.5) << 194) | (2**194 - 1)
    assert t(8) > t(8.5) > t(9)
    assert t(256) == 0
    assert t(1e-300) == 2**256 - 1  # 2^(54 - tiny) rounds to 2^54: clamped, same meaning


@pytest.mark.parametrize("bad", [-0.5, 256.5, float("nan"), float("inf"), -float("inf")])
def test_pow_target_out_of_range(bad: float) -> None:
    with pytest.raises(IdentityError):
        pow_target(bad)
    with pytest.raises(IdentityError):
        check_proof_of_work(IDENT.public_key, IDENT.stamp, bad)


def test_real_tezos_stamp_meets_26_bits_not_27() -> None:
    assert check_proof_of_work(TEZOS_PK, TEZOS_STAMP, 26.0)
    assert not check_proof_of_work(TEZOS_PK, TEZOS_STAMP, 27.0)


def test_mining_at_8_bits() -> None:
    stamp = generate_proof_of_work(IDENT.public_key, 8.0, random.Random(1))
    assert len(stamp) == STAMP_SIZE
    assert check_proof_of_work(IDENT.public_key, stamp, 8.0)
    h = pow_hash(IDENT.public_key, stamp)
    assert h <= octez_target(8.0)
    zeros = 256 - h.bit_length()
    assert check_proof_of_work(IDENT.public_key, stamp, float(zeros))
    assert not check_proof_of_work(IDENT.public_key, stamp, zeros + 1.0)


def test_mining_searches_like_octez() -> None:
    """A random start, then Nonce.increment (big-endian +1): the first passing stamp."""
    start = random.Random(3).getrandbits(8 * STAMP_SIZE)
    stamp = generate_proof_of_work(IDENT.public_key, 7.0, random.Random(3))
    k = (int.from_bytes(stamp, "big") - start) % 2 ** (8 * STAMP_SIZE)
    assert k < 5000
    for i in range(k):
        candidate = ((start + i) % 2**192).to_bytes(STAMP_SIZE, "big")
        assert not check_proof_of_work(IDENT.public_key, candidate, 7.0)


def test_mining_wraps_the_counter() -> None:
    class Top(random.Random):
        def getrandbits(self, k: int) -> int:
            return 2**k - 1

    stamp = generate_proof_of_work(IDENT.public_key, 0.0, Top())
    assert stamp == b"\xff" * STAMP_SIZE
    stamp = generate_proof_of_work(IDENT.public_key, 4.0, Top(), max_tries=10_000)
    assert check_proof_of_work(IDENT.public_key, stamp, 4.0)


def test_mining_gives_up_after_max_tries() -> None:
    with pytest.raises(IdentityError, match="10 tries"):
        generate_proof_of_work(IDENT.public_key, 200.0, random.Random(1), max_tries=10)
    with pytest.raises(IdentityError):
        generate_proof_of_work(IDENT.public_key, 0.0, random.Random(1), max_tries=0)
    with pytest.raises(IdentityError):
        generate_proof_of_work(IDENT.public_key, 0.0, random.Random(1), max_tries=-1)
    assert generate_proof_of_work(IDENT.public_key, 0.0, random.Random(1), max_tries=1)
    with pytest.raises(IdentityError):
        generate_proof_of_work(IDENT.public_key[:31], 0.0, random.Random(1))


def test_check_rejects_wrong_sizes() -> None:
    assert check_proof_of_work(IDENT.public_key, IDENT.stamp, 0.0)
    assert not check_proof_of_work(IDENT.public_key, IDENT.stamp[:-1], 0.0)
    assert not check_proof_of_work(IDENT.public_key, IDENT.stamp + b"\x00", 0.0)
    assert not check_proof_of_work(IDENT.public_key[:31], IDENT.stamp, 0.0)


def test_default_difficulty() -> None:
    assert DEFAULT_POW_DIFFICULTY == 20.0


# ---------------------------------------------------------------- identities, signatures


def test_generate_meets_difficulty_and_is_consistent() -> None:
    ident = Identity.generate(10.0, random.Random(5))
    assert check_proof_of_work(ident.public_key, ident.stamp, 10.0)
    assert ident.peer_id == PeerId.of_public_key(ident.public_key)
    assert len(ident.public_key) == 32 and len(ident.stamp) == STAMP_SIZE
    # The key comes from the OS, not from rng: the same seed gives another key.
    assert Identity.generate(0.0, random.Random(5)).public_key != ident.public_key
    assert ident.secret_bytes().hex() not in repr(ident)
    with pytest.raises(IdentityError):
        Identity.generate(-1.0, random.Random(0))


def test_identity_construction_checks_consistency() -> None:
    other = Identity.generate(0.0, random.Random(1))
    with pytest.raises(IdentityError, match="public_key does not match"):
        Identity(IDENT.private_key, other.public_key, IDENT.stamp, other.peer_id)
    with pytest.raises(IdentityError, match="peer_id"):
        Identity(IDENT.private_key, IDENT.public_key, IDENT.stamp, other.peer_id)
    with pytest.raises(IdentityError, match="stamp"):
        Identity(IDENT.private_key, IDENT.public_key, IDENT.stamp[:-1], IDENT.peer_id)
    with pytest.raises(IdentityError):
        Identity.from_private_bytes(bytes(31), IDENT.stamp)
    again = Identity.from_private_bytes(IDENT.secret_bytes(), IDENT.stamp)
    assert again == IDENT and hash(again) == hash(IDENT)


def test_sign_and_verify() -> None:
    sig = IDENT.sign(b"data")
    assert len(sig) == 64
    assert verify_signature(IDENT.public_key, sig, b"data")
    assert not verify_signature(IDENT.public_key, sig, b"other")
    forged = bytes([sig[0] ^ 1]) + sig[1:]
    assert not verify_signature(IDENT.public_key, forged, b"data")
    assert not verify_signature(IDENT.public_key, bytes(64), b"data")
    other = Identity.generate(0.0, random.Random(2))
    assert not verify_signature(other.public_key, sig, b"data")


@pytest.mark.parametrize(
    ("pk_len", "sig_len"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 65), (32, 0)]
)
def test_verify_wrong_lengths_is_false(pk_len: int, sig_len: int) -> None:
    sig = IDENT.sign(b"data")
    pk = (IDENT.public_key * 2)[:pk_len]
    s = (sig * 2)[:sig_len]
    assert verify_signature(pk, s, b"data") is False


def test_verify_never_raises_for_garbage() -> None:
    sig = IDENT.sign(b"x")
    # 0xff..ff is not a valid Edwards point encoding; a non-bytes key is refused too.
    assert verify_signature(b"\xff" * 32, sig, b"x") is False
    assert verify_signature("k" * 32, sig, b"x") is False  # type: ignore[arg-type]
    assert verify_signature(IDENT.public_key, b"\xff" * 64, b"x") is False


# ---------------------------------------------------------------- identity.json


def test_file_round_trip_mode_and_atomicity(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    save_identity(IDENT, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]  # no temporary file left
    doc = json.loads(path.read_text())
    assert doc == {
        "peer_id": IDENT.peer_id.b58(),
        "public_key": IDENT.public_key.hex(),
        "secret_key": IDENT.secret_bytes().hex(),
        "proof_of_work_stamp": IDENT.stamp.hex(),
    }
    again = load_identity(path)
    assert again == IDENT and again.peer_id == IDENT.peer_id and again.stamp == IDENT.stamp
    assert verify_signature(IDENT.public_key, again.sign(b"x"), b"x")
    # Replacing keeps 0600 and leaves a single file; str paths work too.
    path.chmod(0o644)
    other = Identity.generate(0.0, random.Random(8))
    save_identity(other, str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]
    assert load_identity(str(path)) == other


def test_failed_save_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    save_identity(IDENT, path)
    before = path.read_bytes()
    with pytest.raises(OSError):
        save_identity(IDENT, tmp_path / "missing-dir" / "identity.json")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]


def test_peer_id_is_optional_as_in_octez(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    doc = IDENT.to_json()
    del doc["peer_id"]
    path.write_text(json.dumps(doc))
    assert load_identity(path).peer_id == IDENT.peer_id
    doc["peer_id"] = IDENT.peer_id.b32()  # any parseable form
    path.write_text(json.dumps(doc))
    assert load_identity(path) == IDENT


def _corrupt_docs() -> dict[str, str]:
    good = IDENT.to_json()
    other = Identity.generate(0.0, random.Random(99))
    return {
        "bad json": "{not json",
        "empty": "",
        "not an object": "[]",
        "empty object": "{}",
        "short secret": json.dumps({**good, "secret_key": "00"}),
        "short public": json.dumps({**good, "public_key": IDENT.public_key[:31].hex()}),
        "long stamp": json.dumps({**good, "proof_of_work_stamp": (IDENT.stamp + b"\0").hex()}),
        "non-hex stamp": json.dumps({**good, "proof_of_work_stamp": "zz" * STAMP_SIZE}),
        "odd hex": json.dumps({**good, "secret_key": good["secret_key"] + "0"}),
        "hex number": json.dumps({**good, "secret_key": 5}),
        "missing secret": json.dumps({k: v for k, v in good.items() if k != "secret_key"}),
        "other peer id": json.dumps({**good, "peer_id": str(other.peer_id)}),
        "garbage peer id": json.dumps({**good, "peer_id": "garbage"}),
        "other public key": json.dumps(
            {**good, "public_key": other.public_key.hex(), "peer_id": str(other.peer_id)}
        ),
        "unknown field": json.dumps({**good, "extra": 1}),
        "binary": "\xff\xfe\x00garbage",
    }


@pytest.mark.parametrize("kind", list(_corrupt_docs()))
def test_corrupt_files_are_refused_and_left_intact(tmp_path: Path, kind: str) -> None:
    text = _corrupt_docs()[kind]
    path = tmp_path / "identity.json"
    path.write_text(text, encoding="latin-1")
    before = path.read_bytes()
    with pytest.raises(IdentityError, match="identity.json"):
        load_identity(path)
    with pytest.raises(IdentityError, match="identity.json"):
        load_or_create_identity(path, 0.0)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]


def test_mismatch_messages_name_the_problem(tmp_path: Path) -> None:
    docs = _corrupt_docs()
    path = tmp_path / "identity.json"
    for kind, pattern in [
        ("other peer id", "peer_id .* does not match public_key"),
        ("other public key", "public_key does not match secret_key"),
        ("short secret", "secret_key is 1 bytes"),
        ("bad json", "not valid JSON"),
        ("unknown field", "unknown field"),
        ("missing secret", "missing secret_key"),
    ]:
        path.write_text(docs[kind])
        with pytest.raises(IdentityError, match=pattern):
            load_identity(path)


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="nope.json"):
        load_identity(tmp_path / "nope.json")
    big = tmp_path / "identity.json"
    big.write_text(" " * (MAX_IDENTITY_FILE_SIZE + 1))
    with pytest.raises(IdentityError, match="larger than"):
        load_identity(big)
    assert big.stat().st_size == MAX_IDENTITY_FILE_SIZE + 1


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    first = load_or_create_identity(path, 6.0)
    assert check_proof_of_work(first.public_key, first.stamp, 6.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["identity.json"]
    text = path.read_text()
    again = load_or_create_identity(path, 6.0)
    assert again == first and again.secret_bytes() == first.secret_bytes()
    assert path.read_text() == text  # reloaded, not rewritten
    assert load_or_create_identity(path, 0.0) == first  # a lower expectation is met too


def test_load_or_create_refuses_insufficient_work(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    save_identity(IDENT, path)
    zeros = 256 - pow_hash(IDENT.public_key, IDENT.stamp).bit_length()
    text = path.read_text()
    # Octez Insufficient_proof_of_work: the node refuses; the file is not replaced.
    with pytest.raises(IdentityError, match="identity.json.*proof of work"):
        load_or_create_identity(path, zeros + 1.0)
    with pytest.raises(IdentityError, match="proof of work"):
        load_identity(path, expected_pow=zeros + 1.0)
    assert path.read_text() == text
    assert load_or_create_identity(path, float(zeros)) == IDENT


def test_load_or_create_bad_difficulty_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    with pytest.raises(IdentityError):
        load_or_create_identity(path, 300.0)
    assert not path.exists()
