"""MurmurHash3 and Core's rolling bloom filter (sans-IO, no randomness of its own).

Ports, rule for rule:

* ``murmurhash3`` -- Core ``MurmurHash3`` (src/hash.cpp), the x86_32 variant of
  MurmurHash3 with a 32-bit seed, little-endian 4-byte blocks.
* ``RollingBloomFilter`` -- Core ``CRollingBloomFilter`` (src/common/bloom.h,
  src/common/bloom.cpp): the same parameter math, the same hash
  (``RollingBloomHash``: ``MurmurHash3(n * 0xFBA4C795 + nTweak, key)``), the same
  ``FastRange32`` position (src/util/fastrange.h), the same 2-bit generation layout and
  the same generation wipe.  Given the same tweak, a filter here and one in Core set the
  same bits for the same inserts.

The one difference is where the tweak comes from: Core's constructor and ``reset()``
draw it from ``FastRandomContext``; here the caller passes it (sans-IO: no global RNG
is read), e.g. ``rng.getrandbits(32)``.

Speed: ``insert``/``contains`` compute the ``n_hash_funcs`` MurmurHash3 values in one
pass over Python integers used as vectors of 64-bit lanes (one lane per hash function;
every intermediate value of MurmurHash3 x86_32 and of ``FastRange32`` fits in 64 bits,
so lanes never carry into each other), instead of ``n_hash_funcs`` scalar hashes.
"""

from __future__ import annotations

import math
import struct

__all__ = ["RollingBloomFilter", "murmurhash3"]

_Bytes = bytes | bytearray | memoryview

_M32 = 0xFFFFFFFF
_C1 = 0xCC9E2D51
_C2 = 0x1B873593
_HASH_NUM_MULT = 0xFBA4C795  # RollingBloomHash / CBloomFilter::Hash (src/common/bloom.cpp)
_MAX_HASH_FUNCS = 50  # the clamp in CRollingBloomFilter's constructor


_BLOCK_STRUCTS: dict[int, struct.Struct] = {}


def _block_struct(nblocks: int) -> struct.Struct:
    """A cached ``struct.Struct`` for ``nblocks`` little-endian uint32 (keys up to 256
    bytes are cached; longer ones get a fresh one)."""
    s = _BLOCK_STRUCTS.get(nblocks)
    if s is None:
        s = struct.Struct(f"<{nblocks}I")
        if nblocks <= 64:
            _BLOCK_STRUCTS[nblocks] = s
    return s


def _mixed_blocks(data: bytes) -> tuple[list[int], int]:
    """The seed-independent part of MurmurHash3 x86_32 (src/hash.cpp): each 4-byte
    little-endian block ``k1`` after ``k1 *= c1; k1 = rotl(k1, 15); k1 *= c2``, and the
    value the tail and the length XOR into ``h1`` (tail ``k1`` mixed the same way, XOR
    ``len & 0xFFFFFFFF``; both are plain XORs into ``h1``, so they combine)."""
    n = len(data)
    nblocks = n >> 2
    ks: list[int] = []
    if nblocks:
        for b in _block_struct(nblocks).unpack_from(data):
            k = (b * _C1) & _M32
            k = ((k << 15) | (k >> 17)) & _M32
            ks.append((k * _C2) & _M32)
    rem = n & 3
    final = n & _M32
    if rem:
        t = nblocks << 2
        k = data[t]
        if rem > 1:
            k ^= data[t + 1] << 8
        if rem > 2:
            k ^= data[t + 2] << 16
        k = (k * _C1) & _M32
        k = ((k << 15) | (k >> 17)) & _M32
        final ^= (k * _C2) & _M32
    return ks, final


def murmurhash3(seed: int, data: _Bytes) -> int:
    """Core ``MurmurHash3(nHashSeed, vDataToHash)`` (src/hash.cpp): MurmurHash3 x86_32.

    Args:
        seed: the seed; reduced modulo 2**32 like Core's ``unsigned int`` argument.
        data: the bytes to hash.

    Returns:
        The 32-bit hash as a non-negative ``int``.
    """
    ks, final = _mixed_blocks(bytes(data))
    h = seed & _M32
    for k in ks:
        h ^= k
        h = ((h << 13) | (h >> 19)) & _M32
        h = (h * 5 + 0xE6546B64) & _M32
    h ^= final
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def _c_round(x: float) -> int:
    """C ``round()``: halfway cases away from zero (Python's ``round`` goes to even)."""
    r = math.floor(abs(x))
    if abs(x) - r >= 0.5:
        r += 1
    return int(r) if x >= 0 else -int(r)


class RollingBloomFilter:
    """Core ``CRollingBloomFilter`` (src/common/bloom.h, src/common/bloom.cpp): a
    probabilistic "most recently inserted" set.

    ``contains(key)`` is always True for the last ``n_elements`` to ``1.5 * n_elements``
    keys inserted, and True for other keys with probability about ``fp_rate``.

    Parameters, as Core's constructor computes them:

    * ``n_hash_funcs = max(1, min(round(log(fp_rate) / log(0.5)), 50))`` (C ``round``);
    * ``n_entries_per_generation = ceil(n_elements / 2)``; three generations are kept, so
      ``nMaxElements = 3 * n_entries_per_generation``;
    * ``nFilterBits = ceil(-n_hash_funcs * nMaxElements /
      log(1 - exp(log(fp_rate) / n_hash_funcs)))``;
    * ``data`` holds ``ceil(nFilterBits / 64) * 2`` 64-bit words: a position uses bit
      ``h & 63`` of the word pair ``data[pos & ~1]``, ``data[pos | 1]``, whose two bits
      store the generation (1, 2 or 3) that last set it, 0 meaning unset.

    Here the even words are the bytearray ``_lo`` and the odd words ``_hi``, each as
    little-endian 64-bit words, so bit ``b`` of word pair ``w`` is bit ``(64 * w + b) & 7``
    of byte ``(64 * w + b) >> 3``.

    Args:
        n_elements: number of recent inserts to remember (>= 1).
        fp_rate: false-positive rate, in (0, 1).
        tweak: 32-bit value added to each hash seed.  Core draws it at random in
            ``reset()``; pass a random one (e.g. ``rng.getrandbits(32)``) unless a test
            needs determinism.

    Raises:
        ValueError: ``n_elements`` < 1 or too large for Core's 32-bit sizes, ``fp_rate``
            not in (0, 1), ``tweak`` not in 0..2**32-1.
    """

    __slots__ = (
        "_entries_per_generation",
        "_entries_this_generation",
        "_generation",
        "_hash_funcs",
        "_data_size",
        "_lo",
        "_hi",
        "_tweak",
        "_rep",
        "_m32",
        "_m31",
        "_m63",
        "_c_add",
        "_seeds",
        "_lanes",
    )

    def __init__(self, n_elements: int, fp_rate: float, tweak: int) -> None:
        if not 1 <= n_elements <= 0x55555554:  # nEntriesPerGeneration * 3 fits uint32_t
            raise ValueError(f"n_elements must be in 1..{0x55555554}, got {n_elements}")
        if not 0.0 < fp_rate < 1.0:
            raise ValueError(f"fp_rate must be in (0, 1), got {fp_rate}")
        log_fp_rate = math.log(fp_rate)
        # The optimal number of hash functions is log(fpRate) / log(0.5), restricted to
        # 1..50 (src/common/bloom.cpp).
        self._hash_funcs = max(1, min(_c_round(log_fp_rate / math.log(0.5)), _MAX_HASH_FUNCS))
        # Between 2 and 3 generations of nElements / 2 entries.
        self._entries_per_generation = (n_elements + 1) // 2
        max_elements = self._entries_per_generation * 3
        filter_bits = math.ceil(
            -1.0
            * self._hash_funcs
            * max_elements
            / math.log(1.0 - math.exp(log_fp_rate / self._hash_funcs))
        )
        if filter_bits >= 1 << 32:
            raise ValueError("filter too large for Core's 32-bit bit count")
        words = (filter_bits + 63) // 64  # CeilDiv(nFilterBits, 64u)
        self._data_size = words << 1  # data.size(): word pairs
        self._lo = bytearray(8 * words)
        self._hi = bytearray(8 * words)

        k = self._hash_funcs
        self._lanes = struct.Struct(f"<{k}Q")
        rep = 0
        for i in range(k):
            rep |= 1 << (64 * i)
        self._rep = rep
        self._m32 = _M32 * rep
        self._m31 = 0x7FFFFFFF * rep
        self._m63 = 63 * rep
        self._c_add = 0xE6546B64 * rep
        self._tweak = 0
        self._seeds = 0
        self._entries_this_generation = 0
        self._generation = 1
        self.reset(tweak)

    # --- parameters (read-only) ---------------------------------------------------------

    @property
    def n_hash_funcs(self) -> int:
        """Core ``nHashFuncs``."""
        return self._hash_funcs

    @property
    def n_entries_per_generation(self) -> int:
        """Core ``nEntriesPerGeneration``."""
        return self._entries_per_generation

    @property
    def data_size(self) -> int:
        """Core ``data.size()``: the number of 64-bit words (two per 64 positions)."""
        return self._data_size

    @property
    def tweak(self) -> int:
        """Core ``nTweak``."""
        return self._tweak

    @property
    def generation(self) -> int:
        """Core ``nGeneration`` (1, 2 or 3)."""
        return self._generation

    def data_words(self) -> list[int]:
        """Core's ``data`` vector, word by word (for tests and debugging)."""
        lo = struct.unpack(f"<{self._data_size // 2}Q", self._lo)
        hi = struct.unpack(f"<{self._data_size // 2}Q", self._hi)
        out: list[int] = []
        for a, b in zip(lo, hi, strict=True):
            out.append(a)
            out.append(b)
        return out

    # --- operations ---------------------------------------------------------------------

    def reset(self, tweak: int | None = None) -> None:
        """Core ``CRollingBloomFilter::reset`` (src/common/bloom.cpp): forget every entry,
        restart at generation 1.

        Core also draws a new random ``nTweak`` here (to decrease the impact of false
        positives); pass the new ``tweak`` to do the same, or None to keep the current one.

        Raises:
            ValueError: ``tweak`` not in 0..2**32-1.
        """
        if tweak is not None:
            if not 0 <= tweak <= _M32:
                raise ValueError(f"tweak must be a 32-bit unsigned int, got {tweak}")
            self._tweak = tweak
            seeds = 0
            for n in range(self._hash_funcs):
                seeds |= ((n * _HASH_NUM_MULT + tweak) & _M32) << (64 * n)
            self._seeds = seeds
        self._entries_this_generation = 0
        self._generation = 1
        n = len(self._lo)
        self._lo[:] = bytes(n)
        self._hi[:] = bytes(n)

    def _positions(self, key: bytes) -> tuple[int, ...]:
        """For each hash function n, ``64 * (pos >> 1) + (h & 63)`` with
        ``h = RollingBloomHash(n, nTweak, key)`` and ``pos = FastRange32(h, data.size())``
        (src/common/bloom.cpp, src/util/fastrange.h): the bit index into ``_lo``/``_hi``."""
        ks, final = _mixed_blocks(key)
        rep = self._rep
        m32 = self._m32
        c_add = self._c_add
        h = self._seeds
        for k in ks:
            h ^= k * rep
            h = ((h << 13) | (h >> 19)) & m32
            h = (h * 5 + c_add) & m32
        if final:
            h ^= final * rep
        h = (h ^ (h >> 16)) & m32
        h = (h * 0x85EBCA6B) & m32
        h = (h ^ (h >> 13)) & m32
        h = (h * 0xC2B2AE35) & m32
        h = (h ^ (h >> 16)) & m32
        pos = ((h * self._data_size) >> 32) & m32  # lane products stay below 2**64
        idx = (((pos >> 1) & self._m31) << 6) | (h & self._m63)
        return self._lanes.unpack(idx.to_bytes(self._lanes.size, "little"))

    def insert(self, key: _Bytes) -> None:
        """Core ``CRollingBloomFilter::insert`` (src/common/bloom.cpp).

        When the current generation already holds ``n_entries_per_generation`` entries,
        move to the next generation (1 -> 2 -> 3 -> 1) and wipe the entries that carry
        that generation number; then mark each hash position with the generation.
        """
        if self._entries_this_generation == self._entries_per_generation:
            self._entries_this_generation = 0
            self._generation += 1
            if self._generation == 4:
                self._generation = 1
            self._wipe_generation(self._generation)
        self._entries_this_generation += 1

        lo = self._lo
        hi = self._hi
        g1 = 0xFF if self._generation & 1 else 0
        g2 = 0xFF if self._generation >> 1 else 0
        for i in self._positions(key if type(key) is bytes else bytes(key)):
            j = i >> 3
            m = 1 << (i & 7)
            keep = 0xFF ^ m
            lo[j] = (lo[j] & keep) | (m & g1)
            hi[j] = (hi[j] & keep) | (m & g2)

    def _wipe_generation(self, generation: int) -> None:
        """Core's wipe loop: ``mask = (p1 ^ nGenerationMask1) | (p2 ^ nGenerationMask2)``
        over every word pair, done here on the whole arrays at once."""
        n = len(self._lo)
        lo = int.from_bytes(self._lo, "little")
        hi = int.from_bytes(self._hi, "little")
        ones = (1 << (8 * n)) - 1
        mask = (lo ^ (ones if generation & 1 else 0)) | (hi ^ (ones if generation >> 1 else 0))
        self._lo[:] = (lo & mask).to_bytes(n, "little")
        self._hi[:] = (hi & mask).to_bytes(n, "little")

    def contains(self, key: _Bytes) -> bool:
        """Core ``CRollingBloomFilter::contains`` (src/common/bloom.cpp): True iff for every
        hash function the position's bit is set in either word of its pair."""
        lo = self._lo
        hi = self._hi
        for i in self._positions(key if type(key) is bytes else bytes(key)):
            j = i >> 3
            if not ((lo[j] | hi[j]) >> (i & 7)) & 1:
                return False
        return True

    def __contains__(self, key: _Bytes) -> bool:
        return self.contains(key)
