"""A chain of block headers only (sans-IO): what a node without validation can say about blocks.

peerkeeper keeps peers, not a chain. But tools that drive a bitcoind ask about blocks:
Core's functional test framework starts some tests from a cached 199-block regtest chain,
mines one block on a node with ``generatetoaddress`` and hands it to every node with
``getblock`` / ``submitblock``, then compares ``getbestblockhash``. This class answers
those questions honestly for headers: it holds a linear chain of 80-byte headers from
the genesis block, checks that each new header extends the tip and meets its own
proof-of-work target (Core ``CheckProofOfWork``, src/pow.cpp; difficulty retargeting
and transactions are not checked: regtest does not retarget), and can mine a header-only
block on regtest (an empty transaction list). Nothing here reads a clock or a file.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

__all__ = ["GENESIS_HEADERS", "HeaderChain", "HeaderError", "block_hash", "compact_target"]

#: The genesis blocks' merkle root shared by main, test, signet and regtest
#: (src/kernel/chainparams.cpp ``CreateGenesisBlock``), in header byte order.
_GENESIS_MERKLE = bytes.fromhex("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b")[
    ::-1
]


def _genesis(time: int, bits: int, nonce: int) -> bytes:
    return struct.pack("<I32s32sIII", 1, bytes(32), _GENESIS_MERKLE, time, bits, nonce)


#: 80-byte genesis headers (src/kernel/chainparams.cpp; testnet4's coinbase differs and
#: is not carried: its chain starts from the hash alone).
GENESIS_HEADERS: dict[str, bytes] = {
    "main": _genesis(1231006505, 0x1D00FFFF, 2083236893),
    "test": _genesis(1296688602, 0x1D00FFFF, 414098458),
    "signet": _genesis(1598918400, 0x1E0377AE, 52613770),
    "regtest": _genesis(1296688602, 0x207FFFFF, 2),
}

#: Core's MAX_HEADERS_RESULTS (src/net_processing.h): headers in one ``headers`` message.
MAX_HEADERS_RESULTS = 2000
#: Core's DEFAULT_MAX_TIP_AGE (src/validation.h): an older tip means initial block download.
MAX_TIP_AGE = 24 * 3600


class HeaderError(ValueError):
    """A header that cannot extend the chain; ``str()`` is Core's ``submitblock`` word
    (``duplicate``, ``prev-blk-not-found``, ``high-hash``, ``inconclusive``)."""


def block_hash(header: bytes) -> str:
    """The block hash (hex, as Core prints it) of an 80-byte header: sha256d, reversed."""
    return hashlib.sha256(hashlib.sha256(header).digest()).digest()[::-1].hex()


def compact_target(bits: int) -> int:
    """Core ``arith_uint256::SetCompact`` for a positive, non-overflowing compact value."""
    size, word = bits >> 24, bits & 0x007FFFFF
    return word >> 8 * (3 - size) if size <= 3 else word << 8 * (size - 3)


@dataclass(frozen=True, slots=True)
class _Header:
    raw: bytes
    hash: str
    prev: str
    time: int
    bits: int


def _parse(raw: bytes) -> _Header:
    if len(raw) < 80:
        raise HeaderError("inconclusive")
    head = bytes(raw[:80])
    _, prev, _, time, bits, _ = struct.unpack("<I32s32sIII", head)
    return _Header(head, block_hash(head), prev[::-1].hex(), time, bits)


class HeaderChain:
    """The headers from genesis to the tip, one per height.

    ``HeaderChain(genesis_header)``; :meth:`add` extends the tip (raises
    :class:`HeaderError`), :meth:`mine` makes the next regtest header at a given time,
    :attr:`height`, :attr:`tip`, :meth:`hash_at`, :meth:`header`, :meth:`height_of`,
    :meth:`median_time_past`, :meth:`in_ibd`."""

    def __init__(self, genesis: bytes) -> None:
        first = _parse(genesis)
        self._headers: list[_Header] = [first]
        self._height: dict[str, int] = {first.hash: 0}

    @property
    def height(self) -> int:
        """The tip's height (genesis is 0)."""
        return len(self._headers) - 1

    @property
    def tip(self) -> str:
        """The tip's hash (hex)."""
        return self._headers[-1].hash

    def hash_at(self, height: int) -> str | None:
        """The hash at ``height``, or None beyond the tip."""
        return self._headers[height].hash if 0 <= height <= self.height else None

    def height_of(self, block: str) -> int | None:
        """The height of ``block`` (hex hash), or None if unknown."""
        return self._height.get(block)

    def header(self, block: str) -> bytes | None:
        """The 80-byte header of ``block``, or None if unknown."""
        h = self._height.get(block)
        return None if h is None else self._headers[h].raw

    def time_at(self, height: int) -> int:
        """The header time (unix seconds) at ``height``."""
        return self._headers[height].time

    def bits_at(self, height: int) -> int:
        """The compact target at ``height``."""
        return self._headers[height].bits

    def add(self, raw: bytes) -> str:
        """Append the header at the start of ``raw`` (a header or a whole block); returns
        its hash. Raises :class:`HeaderError`: ``duplicate`` (known), ``high-hash`` (proof of
        work above its own target), ``prev-blk-not-found`` (does not extend the tip)."""
        h = _parse(raw)
        if h.hash in self._height:
            raise HeaderError("duplicate")
        # Core's order: CheckBlockHeader's proof of work (in CheckBlock) before
        # AcceptBlockHeader's look for the previous block (src/validation.cpp).
        if int(h.hash, 16) > compact_target(h.bits):
            raise HeaderError("high-hash")
        if h.prev != self.tip:
            raise HeaderError("prev-blk-not-found")
        self._height[h.hash] = len(self._headers)
        self._headers.append(h)
        return h.hash

    def headers_after(
        self, locator: list[bytes], hash_stop: bytes, limit: int = MAX_HEADERS_RESULTS
    ) -> list[bytes]:
        """The 80-byte headers a ``getheaders`` asks for (Core's ``GETHEADERS`` handler,
        src/net_processing.cpp): after the first ``locator`` hash on our chain
        (``FindForkInGlobalIndex``; genesis when none is), up to ``limit`` headers or
        through ``hash_stop``. An empty locator asks for the ``hash_stop`` block alone.
        Hashes in internal byte order (as on the wire)."""
        if not locator:
            h = self._height.get(hash_stop[::-1].hex())
            return [] if h is None else [self._headers[h].raw]
        start = 0
        for block in locator:
            h = self._height.get(block[::-1].hex())
            if h is not None:
                start = h
                break
        stop = hash_stop[::-1].hex()
        out: list[bytes] = []
        for header in self._headers[start + 1 : start + 1 + limit]:
            out.append(header.raw)
            if header.hash == stop:
                break
        return out

    def median_time_past(self) -> int:
        """Core ``GetMedianTimePast``: the median time of the last 11 headers."""
        times = sorted(h.time for h in self._headers[-11:])
        return times[len(times) // 2]

    def in_ibd(self, now: float) -> bool:
        """Core ``IsInitialBlockDownload``' tip-age rule: the tip is older than 24 hours."""
        return self._headers[-1].time < now - MAX_TIP_AGE

    def mine(self, now: float, max_tries: int = 1_000_000) -> bytes:
        """The next header on the tip with time ``max(now, median time past + 1)``, the
        tip's bits and the first nonce that meets them (regtest: about two tries); an
        empty merkle root (the block has no transactions). Raises :class:`HeaderError`
        (``inconclusive``) when ``max_tries`` nonces fail."""
        tip = self._headers[-1]
        time = max(int(now), self.median_time_past() + 1)
        target = compact_target(tip.bits)
        prev = bytes.fromhex(tip.hash)[::-1]
        for nonce in range(max_tries):
            raw = struct.pack("<I32s32sIII", 0x20000000, prev, bytes(32), time, tip.bits, nonce)
            if int(block_hash(raw), 16) <= target:
                return raw
        raise HeaderError("inconclusive")
