"""Tests for peerkeeper.bitcoin.bloom.

* MurmurHash3 vectors: Bitcoin Core src/test/hash_tests.cpp (murmurhash3).
* Rolling bloom filter: Core src/test/bloom_tests.cpp (rolling_bloom), replayed with
  Core's exact test randomness.  That test runs under ``SeedRandomForTest(SeedRand::ZEROS)``:
  the global RNG becomes the ChaCha20 keystream of the all-zero key, ``m_rng`` is reseeded
  with its first 32 bytes, and every ``CRollingBloomFilter::reset()`` (also run by the
  constructor) takes ``FastRandomContext().rand<unsigned int>()``: a fresh context keyed
  with the next 32 global bytes, whose first keystream word (LE32) is the tweak.  With
  the same tweaks and data, Core's exact hit counts (71 and 3) must come out here.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from peerkeeper.bitcoin.bloom import RollingBloomFilter, murmurhash3

# --- a minimal ChaCha20 (RFC 8439, zero nonce), as Core's FastRandomContext uses ---------

_M32 = 0xFFFFFFFF


def _chacha20_block(key_words: tuple[int, ...], counter: int) -> bytes:
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574, *key_words, counter, 0, 0, 0]
    x = list(s)

    def qr(a: int, b: int, c: int, d: int) -> None:
        x[a] = (x[a] + x[b]) & _M32
        x[d] ^= x[a]
        x[d] = ((x[d] << 16) | (x[d] >> 16)) & _M32
        x[c] = (x[c] + x[d]) & _M32
        x[b] ^= x[c]
        x[b] = ((x[b] << 12) | (x[b] >> 20)) & _M32
        x[a] = (x[a] + x[b]) & _M32
        x[d] ^= x[a]
        x[d] = ((x[d] << 8) | (x[d] >> 24)) & _M32
        x[c] = (x[c] + x[d]) & _M32
        x[b] ^= x[c]
        x[b] = ((x[b] << 7) | (x[b] >> 25)) & _M32

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(1, 5, 9, 13)
        qr(2, 6, 10, 14)
        qr(3, 7, 11, 15)
        qr(0, 5, 10, 15)
        qr(1, 6, 11, 12)
        qr(2, 7, 8, 13)
        qr(3, 4, 9, 14)
    return struct.pack("<16I", *((a + b) & _M32 for a, b in zip(x, s, strict=True)))


class ChaCha20Stream:
    """Core ``ChaCha20`` keystream with nonce 0 (src/crypto/chacha20.h), buffered like
    Core's: consecutive reads continue the same stream."""

    def __init__(self, key: bytes) -> None:
        assert len(key) == 32
        self._key = struct.unpack("<8I", key)
        self._counter = 0
        self._buf = b""

    def read(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += _chacha20_block(self._key, self._counter)
            self._counter += 1
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def test_chacha20_rfc8439_a1() -> None:
    # Core src/test/crypto_tests.cpp chacha20_testvector, RFC 8439 A.1 #1 and #2.
    s = ChaCha20Stream(bytes(32))
    assert s.read(64).hex() == (
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )
    assert s.read(64).hex() == (
        "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
        "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"
    )


# --- MurmurHash3 -------------------------------------------------------------------------

# Core src/test/hash_tests.cpp, BOOST_AUTO_TEST_CASE(murmurhash3): (expected, seed, data).
MURMUR_VECTORS = [
    (0x00000000, 0x00000000, ""),
    (0x6A396F08, 0xFBA4C795, ""),
    (0x81F16F39, 0xFFFFFFFF, ""),
    (0x514E28B7, 0x00000000, "00"),
    (0xEA3F0B17, 0xFBA4C795, "00"),
    (0xFD6CF10D, 0x00000000, "ff"),
    (0x16C6B7AB, 0x00000000, "0011"),
    (0x8EB51C3D, 0x00000000, "001122"),
    (0xB4471BF8, 0x00000000, "00112233"),
    (0xE2301FA8, 0x00000000, "0011223344"),
    (0xFC2E4A15, 0x00000000, "001122334455"),
    (0xB074502C, 0x00000000, "00112233445566"),
    (0x8034D2A0, 0x00000000, "0011223344556677"),
    (0xB4698DEF, 0x00000000, "001122334455667788"),
]


@pytest.mark.parametrize(("expected", "seed", "data"), MURMUR_VECTORS)
def test_murmurhash3_core_vectors(expected: int, seed: int, data: str) -> None:
    assert murmurhash3(seed, bytes.fromhex(data)) == expected
    assert murmurhash3(seed, bytearray.fromhex(data)) == expected
    assert murmurhash3(seed, memoryview(bytes.fromhex(data))) == expected


def test_murmurhash3_seed_is_unsigned_int() -> None:
    # Core's seed is an unsigned int: n * 0xFBA4C795 + nTweak wraps modulo 2**32.
    assert murmurhash3(0xFBA4C795 + (1 << 32), b"\x00") == 0xEA3F0B17


# --- parameters (src/common/bloom.cpp constructor) -------------------------------------


def _core_params(n: int, fp: float) -> tuple[int, int, int]:
    log_fp = math.log(fp)
    x = log_fp / math.log(0.5)
    k = max(1, min(int(math.floor(x + 0.5)), 50))
    per_gen = -(-n // 2)
    bits = math.ceil(-1.0 * k * per_gen * 3 / math.log(1.0 - math.exp(log_fp / k)))
    return k, per_gen, -(-bits // 64) * 2


@pytest.mark.parametrize(
    ("n", "fp"), [(100, 0.01), (1000, 0.001), (50000, 0.000001), (1, 0.5), (7, 0.9)]
)
def test_parameters_follow_core(n: int, fp: float) -> None:
    f = RollingBloomFilter(n, fp, 0)
    assert (f.n_hash_funcs, f.n_entries_per_generation, f.data_size) == _core_params(n, fp)


def test_banman_filter_parameters() -> None:
    # BanMan's m_discouraged{50000, 0.000001} (src/banman.h): 20 hash functions,
    # 25000 entries per generation, 67396 64-bit words (~527 KiB, as in Core).
    f = RollingBloomFilter(50000, 0.000001, 0)
    assert (f.n_hash_funcs, f.n_entries_per_generation, f.data_size) == (20, 25000, 67396)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        RollingBloomFilter(0, 0.01, 0)
    with pytest.raises(ValueError):
        RollingBloomFilter(10, 0.0, 0)
    with pytest.raises(ValueError):
        RollingBloomFilter(10, 1.0, 0)
    with pytest.raises(ValueError):
        RollingBloomFilter(10, 0.01, -1)
    with pytest.raises(ValueError):
        RollingBloomFilter(10, 0.01, 1 << 32)


def test_positions_match_scalar_core_formula() -> None:
    # The lane-vector hashing must give, for every hash function n, Core's
    # h = MurmurHash3(n * 0xFBA4C795 + nTweak, key), pos = FastRange32(h, data.size()).
    rng = random.Random(7)
    f = RollingBloomFilter(50000, 0.000001, rng.getrandbits(32))
    for _ in range(100):
        key = rng.randbytes(rng.randrange(0, 40))
        f.reset()
        f.insert(key)
        words = f.data_words()
        for n in range(f.n_hash_funcs):
            h = murmurhash3(n * 0xFBA4C795 + f.tweak, key)
            pos = (h * f.data_size) >> 32
            # generation 1: bit set in the even word of the pair, clear in the odd one
            assert (words[pos & ~1] >> (h & 63)) & 1 == 1
            assert (words[pos | 1] >> (h & 63)) & 1 == 0
        assert f.contains(key)


# --- Core's rolling_bloom test, with Core's randomness ----------------------------------


def test_rolling_bloom_core_replay() -> None:
    global_rng = ChaCha20Stream(bytes(32))  # SeedRandomForTest(SeedRand::ZEROS)
    m_rng = ChaCha20Stream(global_rng.read(32))  # m_rng.Reseed(GetRandHash())

    def next_tweak() -> int:
        # CRollingBloomFilter::reset(): FastRandomContext().rand<unsigned int>()
        ctx = ChaCha20Stream(global_rng.read(32))
        return int(struct.unpack("<Q", ctx.read(8))[0] & _M32)

    def random_data() -> bytes:
        return m_rng.read(32)  # BloomTest::RandomData(): m_rng.rand256()

    # last-100-entry, 1% false positive:
    rb1 = RollingBloomFilter(100, 0.01, next_tweak())

    # Overfill:
    datasize = 399
    data = []
    for _ in range(datasize):
        d = random_data()
        data.append(d)
        rb1.insert(d)
    # Last 100 guaranteed to be remembered:
    for i in range(299, datasize):
        assert rb1.contains(data[i])

    # false positive rate is 1%, so we should get about 100 hits if testing 10,000
    # random keys.
    hits = sum(1 for _ in range(10000) if rb1.contains(random_data()))
    assert hits == 71  # BOOST_CHECK_EQUAL(nHits, 71U)

    assert rb1.contains(data[datasize - 1])
    rb1.reset(next_tweak())
    assert not rb1.contains(data[datasize - 1])

    # Now roll through data, make sure last 100 entries are always remembered:
    for i in range(datasize):
        if i >= 100:
            assert rb1.contains(data[i - 100])
        rb1.insert(data[i])
        assert rb1.contains(data[i])

    # Insert 999 more random entries:
    for _ in range(999):
        d = random_data()
        rb1.insert(d)
        assert rb1.contains(d)
    # Sanity check to make sure the filter isn't just filling up:
    hits = sum(1 for d in data if rb1.contains(d))
    assert hits == 3  # BOOST_CHECK_EQUAL(nHits, 3U)

    # last-1000-entry, 0.01% false positive:
    rb2 = RollingBloomFilter(1000, 0.001, next_tweak())
    for d in data:
        rb2.insert(d)
    # ... room for all of them:
    for d in data:
        assert rb2.contains(d)


# --- behaviour with other randomness --------------------------------------------------


def test_window_and_false_positive_bound() -> None:
    rng = random.Random(2024)
    n = 1000
    f = RollingBloomFilter(n, 0.001, rng.getrandbits(32))
    keys = [rng.randbytes(16) for _ in range(5 * n)]
    for i, k in enumerate(keys):
        f.insert(k)
        # The last n inserts are always remembered.
        if i % 97 == 0:
            lo = max(0, i - n + 1)
            assert all(f.contains(keys[j]) for j in range(lo, i + 1))
    # False positives on fresh keys: the filter is sized so that even with 3
    # generations (1.5 n entries) the rate stays at fp; allow 3x slack on 20,000 samples.
    probes = 20000
    hits = sum(1 for _ in range(probes) if f.contains(rng.randbytes(16)))
    assert hits <= 3 * 0.001 * probes


def test_old_generations_are_forgotten() -> None:
    rng = random.Random(5)
    f = RollingBloomFilter(100, 0.000001, rng.getrandbits(32))
    first = [rng.randbytes(16) for _ in range(50)]
    for k in first:
        f.insert(k)
    for _ in range(200):  # four more generations: the first one has been wiped
        f.insert(rng.randbytes(16))
    assert not any(f.contains(k) for k in first)
    assert f.generation in (1, 2, 3)


def test_reset_keeps_or_changes_tweak() -> None:
    f = RollingBloomFilter(10, 0.01, 42)
    f.insert(b"abc")
    assert b"abc" in f
    f.reset()
    assert f.tweak == 42
    assert not f.contains(b"abc")
    assert f.generation == 1
    assert not any(f.data_words())
    f.insert(b"abc")
    f.reset(7)
    assert f.tweak == 7
    assert not f.contains(b"abc")
    with pytest.raises(ValueError):
        f.reset(-1)


def test_empty_and_odd_length_keys() -> None:
    f = RollingBloomFilter(10, 0.0001, 99)
    for k in (b"", b"\x00", b"\x00\x01", b"\x00\x01\x02", bytes(range(13))):
        f.insert(k)
    for k in (b"", b"\x00", b"\x00\x01", b"\x00\x01\x02", bytes(range(13))):
        assert f.contains(k)
        assert f.contains(bytearray(k))
        assert f.contains(memoryview(k))
