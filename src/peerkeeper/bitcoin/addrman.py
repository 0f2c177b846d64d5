"""AddrMan: a port of Bitcoin Core's stochastic address manager (src/addrman.cpp).

Core keeps every address it hears of in one of two bucketed tables:

* the *new* table, ``ADDRMAN_NEW_BUCKET_COUNT`` (1024) buckets of ``ADDRMAN_BUCKET_SIZE``
  (64) slots, for addresses never connected to.  The bucket is chosen by a keyed hash of
  the source's netgroup and the address's netgroup (a source group reaches at most
  ``ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP`` buckets); the slot by a keyed hash of the
  bucket and the full address.  One address may sit in up to
  ``ADDRMAN_NEW_BUCKETS_PER_ADDRESS`` (8) buckets.
* the *tried* table, ``ADDRMAN_TRIED_BUCKET_COUNT`` (256) x 64 slots, for addresses we
  connected to; a netgroup reaches at most ``ADDRMAN_TRIED_BUCKETS_PER_GROUP`` buckets.
  A newly good address that lands on an occupied slot is held as a *collision*
  (test-before-evict) until the occupant has been tested by a feeler.

This module is a faithful port of ``AddrManImpl`` (src/addrman.cpp, src/addrman_impl.h,
src/addrman.h): the same hashing (``HashWriter`` = sha256d over Core's serialization,
``GetCheapHash`` = first 8 bytes little-endian), the same table rules, the same
``Serialize``/``Unserialize`` format (peers.dat body, format 4 ``V4_MULTIPORT`` with
BIP155 addresses) and the same consistency check.  Differences that cannot be seen
from outside:

* randomness comes from the ``random.Random`` passed in, not Core's ChaCha20
  ``FastRandomContext``; the draws have the same distributions (a test that depends on
  Core's exact random stream, like ``addrman_new_multiplicity``, holds with other
  iteration counts);
* ``GetAddr`` draws the same partial Fisher-Yates shuffle over ``vRandom`` but on a
  virtual copy (Core's in-place swaps are, as its comment says, unobservable);
  entries in the tables are object references, not ids, and each entry remembers which
  new-table slots hold it (so ``MakeTried`` clears them directly instead of rehashing
  up to 1024 buckets);
* ``Select`` draws its bucket uniformly among the non-empty buckets -- with a single
  network filter, among those holding an entry of that network (Core draws among all
  and starts over after scanning a bucket without a match: the same distribution).

On top of Core it carries Floresta's per-address state (seed 002: ``AddressState``
never-tried / tried / failed / banned / connected) and service-flag preference in
:meth:`AddrMan.select`.

Pure: nothing here reads the clock or a global RNG.  Every operation that depends on
the time takes ``now`` (unix seconds), a required argument; randomness comes from the
``rng`` given to the constructor.
"""

from __future__ import annotations

import enum
import hashlib
import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from peerkeeper.net.asmap import NetGroupManager
from peerkeeper.net.netaddr import (
    ADDR_IPV6_SIZE,
    MAX_ADDRV2_SIZE,
    AddrError,
    NetAddr,
    Network,
    Service,
    trusted_netaddr,
    trusted_service,
)
from peerkeeper.wire.codec import DecodeError, Reader, ser_compact_size
from peerkeeper.wire.messages import AddrEntry

__all__ = [
    "ADDRMAN_BUCKET_SIZE",
    "ADDRMAN_BUCKET_SIZE_LOG2",
    "ADDRMAN_HORIZON",
    "ADDRMAN_MAX_FAILURES",
    "ADDRMAN_MIN_FAIL",
    "ADDRMAN_NEW_BUCKETS_PER_ADDRESS",
    "ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP",
    "ADDRMAN_NEW_BUCKET_COUNT",
    "ADDRMAN_NEW_BUCKET_COUNT_LOG2",
    "ADDRMAN_REPLACEMENT",
    "ADDRMAN_RETRIES",
    "ADDRMAN_SET_TRIED_COLLISION_SIZE",
    "ADDRMAN_TEST_WINDOW",
    "ADDRMAN_TRIED_BUCKETS_PER_GROUP",
    "ADDRMAN_TRIED_BUCKET_COUNT",
    "ADDRMAN_TRIED_BUCKET_COUNT_LOG2",
    "FILE_FORMAT",
    "FLORESTA_RETRY_TIME",
    "FLORESTA_SELECT_TRIES",
    "INCOMPATIBILITY_BASE",
    "AddrInfo",
    "AddrMan",
    "AddrManFormatError",
    "AddrManVersionError",
    "AddrState",
    "AddrStateKind",
    "AddressPosition",
    "get_bucket_position",
    "get_new_bucket",
    "get_tried_bucket",
]

# --- constants (src/addrman.h, src/addrman_impl.h) ----------------------------------------

#: Over how many buckets entries with tried addresses from a single group are spread.
ADDRMAN_TRIED_BUCKETS_PER_GROUP = 8
#: Over how many buckets entries with new addresses originating from a single group are spread.
ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP = 64
#: Maximum number of times an address can occur in the new table.
ADDRMAN_NEW_BUCKETS_PER_ADDRESS = 8
#: How old addresses can maximally be (seconds; 30 days).
ADDRMAN_HORIZON = 30 * 24 * 3600
#: After how many failed attempts we give up on a new node.
ADDRMAN_RETRIES = 3
#: How many successive failures are allowed ...
ADDRMAN_MAX_FAILURES = 10
#: ... in at least this duration (seconds; 7 days).
ADDRMAN_MIN_FAIL = 7 * 24 * 3600
#: How recent a successful connection should be before we allow an address to be evicted
#: from tried (seconds; 4 hours).
ADDRMAN_REPLACEMENT = 4 * 3600
#: The maximum number of tried addr collisions to store.
ADDRMAN_SET_TRIED_COLLISION_SIZE = 10
#: The maximum time we'll spend trying to resolve a tried table collision (seconds; 40 min).
ADDRMAN_TEST_WINDOW = 40 * 60

ADDRMAN_TRIED_BUCKET_COUNT_LOG2 = 8
#: Total number of buckets for tried addresses.
ADDRMAN_TRIED_BUCKET_COUNT = 1 << ADDRMAN_TRIED_BUCKET_COUNT_LOG2
ADDRMAN_NEW_BUCKET_COUNT_LOG2 = 10
#: Total number of buckets for new addresses.
ADDRMAN_NEW_BUCKET_COUNT = 1 << ADDRMAN_NEW_BUCKET_COUNT_LOG2
ADDRMAN_BUCKET_SIZE_LOG2 = 6
#: Maximum allowed number of entries in buckets for new and tried addresses.
ADDRMAN_BUCKET_SIZE = 1 << ADDRMAN_BUCKET_SIZE_LOG2

#: Serialization format written (``AddrManImpl::FILE_FORMAT`` = ``V4_MULTIPORT``).
FILE_FORMAT = 4
#: ``AddrManImpl::INCOMPATIBILITY_BASE``: the compat byte is this plus the lowest
#: format able to read the file.
INCOMPATIBILITY_BASE = 32
_FORMAT_V1_DETERMINISTIC = 1
_FORMAT_V2_ASMAP = 2
_FORMAT_V3_BIP155 = 3

#: Floresta's ``RETRY_TIME`` (floresta-wire p2p_wire/address_man.rs): a failed or
#: banned address is offered again once this many seconds have passed (1 hour).
FLORESTA_RETRY_TIME = 60 * 60
#: Floresta's ``get_address_to_connect`` draws at most this many candidates.
FLORESTA_SELECT_TRIES = 10

# CAddress disk serialization (src/protocol.h).
_DISK_VERSION_INIT = 220000
_DISK_VERSION_IGNORE_MASK = 0x7FFFF
_DISK_VERSION_ADDRV2 = 1 << 29
_V2_DISK_VERSION = _DISK_VERSION_INIT | _DISK_VERSION_ADDRV2

_NEW_SLOTS = ADDRMAN_NEW_BUCKET_COUNT * ADDRMAN_BUCKET_SIZE
_TRIED_SLOTS = ADDRMAN_TRIED_BUCKET_COUNT * ADDRMAN_BUCKET_SIZE
_POS_MASK = ADDRMAN_BUCKET_SIZE - 1

_sha256 = hashlib.sha256
_from_bytes = int.from_bytes
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_HEAD = struct.Struct("<iii")
_ENTRY_HEAD = struct.Struct("<II")
_ENTRY_TAIL = struct.Struct("<qi")
_PORT = struct.Struct(">H")
#: ``0.66 ** n`` for n in 0..8 (``GetChance``'s ``pow(0.66, std::min(nAttempts, 8))``).
_POW066 = tuple(0.66**n for n in range(9))
#: Smallest serialized AddrInfo: V2 (4+4+1 services+1 net+1 len+0+2 port+1+1 source+8+4).
_MIN_ENTRY_V2 = 27
#: Smallest serialized AddrInfo in V1 (4+4+8+16+2 + 16 + 8+4).
_MIN_ENTRY_V1 = 62

_IPV6_ZERO = trusted_netaddr(Network.IPV6, bytes(ADDR_IPV6_SIZE))


class AddrManFormatError(ValueError):
    """Serialized AddrMan data (peers.dat body) is malformed.

    The one error :meth:`AddrMan.deserialize` raises for bad bytes: truncation, bad
    CompactSize, out-of-range counts, unsupported address encodings, or a failed
    consistency check (Core's ``std::ios_base::failure`` from
    ``AddrManImpl::Unserialize``).  ``truncated`` is True when the data ended early.
    """

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


class AddrManVersionError(AddrManFormatError):
    """The data declares it needs a newer format than this code reads (Core's
    ``InvalidAddrManVersionError``, src/addrman.h); Core then moves peers.dat aside to
    peers.dat.bak and starts empty."""


# --- hashing (src/addrman.cpp AddrInfo::GetTriedBucket / GetNewBucket / GetBucketPosition) --


def _cheap_hash(data: bytes) -> int:
    """``HashWriter{} << data`` then ``GetCheapHash()`` (src/hash.h): the first 8 bytes of
    sha256d(data) read little-endian."""
    return _from_bytes(_sha256(_sha256(data).digest()).digest()[:8], "little")


def _ser_vec(b: bytes) -> bytes:
    """Core serialization of a ``std::vector<unsigned char>``: CompactSize length + bytes."""
    n = len(b)
    return bytes((n,)) + b if n < 0xFD else ser_compact_size(n) + b


def get_tried_bucket(key: bytes, service: Service, group: bytes) -> int:
    """Core ``AddrInfo::GetTriedBucket`` (src/addrman.cpp).

    ``hash1 = H(nKey, GetKey())``; ``hash2 = H(nKey, group, hash1 % 8)``;
    bucket = ``hash2 % ADDRMAN_TRIED_BUCKET_COUNT``.  ``group`` is the address's netgroup
    (``NetGroupManager.get_group``), ``key`` the 32-byte nKey.
    """
    hash1 = _cheap_hash(key + _ser_vec(service.get_key()))
    hash2 = _cheap_hash(key + _ser_vec(group) + _U64.pack(hash1 % ADDRMAN_TRIED_BUCKETS_PER_GROUP))
    return hash2 % ADDRMAN_TRIED_BUCKET_COUNT


def get_new_bucket(key: bytes, group: bytes, source_group: bytes) -> int:
    """Core ``AddrInfo::GetNewBucket`` (src/addrman.cpp).

    ``hash1 = H(nKey, group, source_group)``; ``hash2 = H(nKey, source_group, hash1 % 64)``;
    bucket = ``hash2 % ADDRMAN_NEW_BUCKET_COUNT``.  Ports play no part.
    """
    sg = _ser_vec(source_group)
    hash1 = _cheap_hash(key + _ser_vec(group) + sg)
    hash2 = _cheap_hash(key + sg + _U64.pack(hash1 % ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP))
    return hash2 % ADDRMAN_NEW_BUCKET_COUNT


def get_bucket_position(key: bytes, new: bool, bucket: int, service: Service) -> int:
    """Core ``AddrInfo::GetBucketPosition`` (src/addrman.cpp):
    ``H(nKey, 'N' or 'K', int32 bucket, GetKey()) % ADDRMAN_BUCKET_SIZE``."""
    data = key + (b"N" if new else b"K") + _I32.pack(bucket) + _ser_vec(service.get_key())
    return _cheap_hash(data) % ADDRMAN_BUCKET_SIZE


# --- entries --------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class AddrInfo:
    """Core ``AddrInfo`` (src/addrman_impl.h): a ``CAddress`` plus addrman's statistics.

    Times are whole seconds since the epoch (Core's ``NodeSeconds``).

    Fields:
        time: ``nTime``, when the address was last seen (gossiped/connected).
        services: ``nServices`` bits.
        service: the address and port.
        source: ``source``, the address that first told us about it (no port).
        last_success: ``m_last_success``, last successful connection (0 = never).
        last_try: ``m_last_try``, last connection attempt (memory only).
        attempts: ``nAttempts``, counted failures since the last success.
        ref_count: ``nRefCount``, how many new-table slots hold it (memory only).
        in_tried: ``fInTried`` (memory only).
        random_pos: ``nRandomPos``, index in ``vRandom`` (memory only).
        last_count_attempt: ``m_last_count_attempt`` (memory only).
    """

    time: int
    services: int
    service: Service
    source: NetAddr
    last_success: int = 0
    last_try: int = 0
    attempts: int = 0
    ref_count: int = 0
    in_tried: bool = False
    random_pos: int = -1
    last_count_attempt: int = 0
    # --- private caches (not part of Core's AddrInfo) ---
    _id: int = field(default=-1, repr=False)
    _skey: bytes = field(default=b"", repr=False)  # ser(GetKey())
    _group: bytes = field(default=b"", repr=False)  # ser(GetGroup(addr))
    _network: Network = field(default=Network.UNROUTABLE, repr=False)  # GetNetwork()
    _slots: list[int] = field(default_factory=list, repr=False)  # new-table slots
    _tried_slot: int = field(default=-1, repr=False)  # cached tried bucket*64+pos
    _own_new_bucket: int = field(default=-1, repr=False)  # GetNewBucket(own source)
    _entry: AddrEntry | None = field(default=None, repr=False)  # cached gossip form

    def is_terrible(self, now: float) -> bool:
        """Core ``AddrInfo::IsTerrible`` (src/addrman.cpp): statistics bad enough that the
        entry can be overwritten and is not gossiped.

        Never terrible if tried in the last minute; terrible if ``time`` is more than 10
        minutes in the future, older than ``ADDRMAN_HORIZON``, tried
        ``ADDRMAN_RETRIES`` times without ever succeeding, or failed
        ``ADDRMAN_MAX_FAILURES`` times with no success in ``ADDRMAN_MIN_FAIL``.
        """
        t = int(now)
        if t - self.last_try <= 60:
            return False
        if self.time > t + 600:
            return True
        if t - self.time > ADDRMAN_HORIZON:
            return True
        if self.last_success == 0 and self.attempts >= ADDRMAN_RETRIES:
            return True
        return t - self.last_success > ADDRMAN_MIN_FAIL and self.attempts >= ADDRMAN_MAX_FAILURES

    def get_chance(self, now: float) -> float:
        """Core ``AddrInfo::GetChance`` (src/addrman.cpp): relative selection weight.

        1.0, times 0.01 if tried in the last 10 minutes, times ``0.66 ** min(attempts, 8)``.
        """
        chance = 1.0
        if int(now) - self.last_try < 600:
            chance *= 0.01
        a = self.attempts
        return chance * (_POW066[a] if 0 <= a <= 8 else 0.66 ** min(a, 8))

    def to_entry(self) -> AddrEntry:
        """This entry as the gossip unit ``AddrEntry(time, services, service)``."""
        e = self._entry
        if e is None:
            e = self._entry = AddrEntry(self.time, self.services, self.service)
        return e

    def _snapshot(self) -> AddrInfo:
        return AddrInfo(
            self.time,
            self.services,
            self.service,
            self.source,
            self.last_success,
            self.last_try,
            self.attempts,
            self.ref_count,
            self.in_tried,
            self.random_pos,
            self.last_count_attempt,
        )


@dataclass(frozen=True, slots=True)
class AddressPosition:
    """Core ``AddressPosition`` (src/addrman.h): where an entry sits.

    For a new-table entry, ``bucket``/``position`` are computed from its primary source
    (Core ``FindAddressEntry``), which in edge cases is not where it currently is.
    """

    tried: bool
    multiplicity: int
    bucket: int
    position: int


class AddrStateKind(enum.Enum):
    """Floresta's ``AddressState`` variants (seed 002, floresta-wire address_man.rs)."""

    NEVER_TRIED = "never_tried"
    TRIED = "tried"
    FAILED = "failed"
    BANNED = "banned"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class AddrState:
    """Floresta's per-address state: ``kind`` and, for tried/failed/banned, a time.

    ``TRIED(when)``: last success; ``FAILED(when)``: last failed attempt;
    ``BANNED(until)``: ban expiry; ``NEVER_TRIED`` and ``CONNECTED`` carry no time.
    """

    kind: AddrStateKind
    time: float | None = None

    @classmethod
    def never_tried(cls) -> AddrState:
        return cls(AddrStateKind.NEVER_TRIED)

    @classmethod
    def tried(cls, when: float) -> AddrState:
        return cls(AddrStateKind.TRIED, when)

    @classmethod
    def failed(cls, when: float) -> AddrState:
        return cls(AddrStateKind.FAILED, when)

    @classmethod
    def banned(cls, until: float) -> AddrState:
        return cls(AddrStateKind.BANNED, until)

    @classmethod
    def connected(cls) -> AddrState:
        return cls(AddrStateKind.CONNECTED)


_NEVER_TRIED = AddrState.never_tried()
_CONNECTED = AddrState.connected()

#: Networks reported by ``getaddrmaninfo``, in Core's ``enum Network`` order.
_INFO_NETWORKS = (Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS)
#: Upper bound on remembered bans (Floresta's state); expired ones are dropped first.
_MAX_BANNED = _NEW_SLOTS + _TRIED_SLOTS


def _norm_net(net: Network) -> Network:
    return Network.TORV3 if net is Network.TORV2 else net


class _BucketFill:
    """How many entries each bucket of a table holds, and the list of non-empty buckets.

    ``Select_`` draws buckets uniformly until one has an acceptable entry; drawing
    uniformly among the non-empty buckets instead gives the same distribution without
    Core's long search through an almost empty table.
    """

    __slots__ = ("count", "nonempty", "where")

    def __init__(self, n: int) -> None:
        self.count = [0] * n
        self.nonempty: list[int] = []
        self.where = [-1] * n

    def inc(self, bucket: int) -> None:
        c = self.count[bucket]
        self.count[bucket] = c + 1
        if c == 0:
            self.where[bucket] = len(self.nonempty)
            self.nonempty.append(bucket)

    def dec(self, bucket: int) -> None:
        c = self.count[bucket] - 1
        self.count[bucket] = c
        if c == 0:
            i = self.where[bucket]
            last = self.nonempty.pop()
            if last != bucket:
                self.nonempty[i] = last
                self.where[last] = i
            self.where[bucket] = -1


# --- AddrMan --------------------------------------------------------------------------------


class AddrMan:
    """Bitcoin Core's address manager (``AddrManImpl``, src/addrman.cpp).

    ``AddrMan(rng, *, key=None, asmap=None, deterministic=False)``

    Args:
        rng: every random draw (bucket probing in :meth:`select`, the multiplicity coin in
            :meth:`add`, the shuffle in :meth:`get_addr`, the key) comes from it.
        key: the 32-byte secret ``nKey``; by default drawn from ``rng`` (Core draws it
            from its RNG), or ``01 00 .. 00`` (Core's ``uint256{1}``) when
            ``deterministic``.
        asmap: raw asmap bytes (``-asmap``); buckets then use AS-based netgroups.
        deterministic: Core's test-only deterministic key.

    Raises:
        ValueError: ``key`` is not 32 bytes; ``AsmapError`` for a bad asmap.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        key: bytes | None = None,
        asmap: bytes | None = None,
        deterministic: bool = False,
    ) -> None:
        self.rng = rng
        if key is None:
            key = (
                b"\x01" + bytes(31)
                if deterministic
                else rng.getrandbits(256).to_bytes(32, "little")
            )
        if len(key) != 32:
            raise ValueError("addrman key must be 32 bytes")
        self.netgroupman = NetGroupManager(asmap or b"")
        self._using_asmap = self.netgroupman.using_asmap()
        #: Core's test-before-evict (``Good_`` with ``test_before_evict=true``) and its
        #: collision resolution. Switches for simulation studies only (the eclipse
        #: scenario of :mod:`peerkeeper.sim`); Core has none, and both stay on elsewhere.
        self.test_before_evict = True
        self.resolve_tried_collisions = True
        #: Bumped whenever an entry is created, deleted, moves table or changes services
        #: (and by a reset): a caller that found no usable entry need not look again until
        #: it changes.
        self.version = 0
        self._set_key(bytes(key))
        self._reset()

    # --- state ------------------------------------------------------------------------

    def _set_key(self, key: bytes) -> None:
        self._key = key
        self._pos_prefix_new = [key + b"N" + _I32.pack(b) for b in range(ADDRMAN_NEW_BUCKET_COUNT)]
        self._pos_prefix_tried = [
            key + b"K" + _I32.pack(b) for b in range(ADDRMAN_TRIED_BUCKET_COUNT)
        ]
        self._new_h2_cache: dict[bytes, int] = {}
        self._tried_h2_cache: dict[bytes, int] = {}
        self._group_cache: dict[NetAddr, bytes] = {}

    def _reset(self) -> None:
        self._id_count = 0
        self._map_info: dict[int, AddrInfo] = {}
        self._map_addr: dict[Service, int] = {}
        self._random: list[AddrInfo] = []
        self._n_tried = 0
        self._n_new = 0
        self.version += 1
        self._vv_new: list[AddrInfo | None] = [None] * _NEW_SLOTS
        self._vv_tried: list[AddrInfo | None] = [None] * _TRIED_SLOTS
        self._new_fill = _BucketFill(ADDRMAN_NEW_BUCKET_COUNT)
        self._tried_fill = _BucketFill(ADDRMAN_TRIED_BUCKET_COUNT)
        # per (tried?, network): buckets holding entries of that network
        self._net_fill: dict[tuple[bool, Network], _BucketFill] = {}
        self._last_good = 1
        self._tried_collisions: set[int] = set()
        self._network_counts: dict[Network, list[int]] = {}
        self._svc_counts: dict[tuple[Network, int], list[int]] = {}
        self._banned: dict[Service, float] = {}
        self._connected: set[Service] = set()

    @property
    def key(self) -> bytes:
        """The secret ``nKey`` (32 bytes)."""
        return self._key

    # --- hashing with caches ----------------------------------------------------------

    def _group_ser(self, addr: NetAddr) -> bytes:
        """``ser(GetGroup(addr))``; memoised only with an asmap (lookups are costly)."""
        if not self._using_asmap:
            g = addr.netgroup()
            return bytes((len(g),)) + g
        cached = self._group_cache.get(addr)
        if cached is None:
            cached = _ser_vec(self.netgroupman.get_group(addr))
            if len(self._group_cache) > 200_000:
                self._group_cache.clear()
            self._group_cache[addr] = cached
        return cached

    def _new_bucket(self, info: AddrInfo, src_group: bytes) -> int:
        """GetNewBucket(nKey, src) with ``src_group`` already serialized."""
        key = self._key
        h1 = _cheap_hash(key + info._group + src_group) & (ADDRMAN_NEW_BUCKETS_PER_SOURCE_GROUP - 1)
        ck = src_group + bytes((h1,))
        b = self._new_h2_cache.get(ck)
        if b is None:
            b = _cheap_hash(key + src_group + _U64.pack(h1)) & (ADDRMAN_NEW_BUCKET_COUNT - 1)
            if len(self._new_h2_cache) > 500_000:
                self._new_h2_cache.clear()
            self._new_h2_cache[ck] = b
        return b

    def _own_new_bucket(self, info: AddrInfo) -> int:
        """GetNewBucket(nKey, netgroupman) -- bucket from the entry's own source."""
        b = info._own_new_bucket
        if b < 0:
            b = info._own_new_bucket = self._new_bucket(info, self._group_ser(info.source))
        return b

    def _new_pos(self, bucket: int, info: AddrInfo) -> int:
        """GetBucketPosition(nKey, true, bucket)."""
        return _cheap_hash(self._pos_prefix_new[bucket] + info._skey) & _POS_MASK

    def _tried_slot(self, info: AddrInfo) -> int:
        """``GetTriedBucket * 64 + GetBucketPosition(nKey, false, bucket)`` (cached)."""
        s = info._tried_slot
        if s < 0:
            key = self._key
            h1 = _cheap_hash(key + info._skey) & (ADDRMAN_TRIED_BUCKETS_PER_GROUP - 1)
            ck = info._group + bytes((h1,))
            b = self._tried_h2_cache.get(ck)
            if b is None:
                b = _cheap_hash(key + info._group + _U64.pack(h1)) & (
                    ADDRMAN_TRIED_BUCKET_COUNT - 1
                )
                if len(self._tried_h2_cache) > 500_000:
                    self._tried_h2_cache.clear()
                self._tried_h2_cache[ck] = b
            pos = _cheap_hash(self._pos_prefix_tried[b] + info._skey) & _POS_MASK
            s = info._tried_slot = (b << ADDRMAN_BUCKET_SIZE_LOG2) | pos
        return s

    def _make_info(
        self,
        service: Service,
        time: int,
        services: int,
        source: NetAddr,
        routable: bool = False,
    ) -> AddrInfo:
        """An AddrInfo with its hashing keys; ``routable`` when the caller checked it."""
        info = AddrInfo(time, services, service, source)
        key = service.get_key()
        info._skey = bytes((len(key),)) + key
        addr = service.addr
        info._group = self._group_ser(addr)
        info._network = addr.network if routable else addr.get_network()
        return info

    # --- counts -----------------------------------------------------------------------

    def _count(self, info: AddrInfo, d_new: int, d_tried: int) -> None:
        nc = self._network_counts.get(info._network)
        if nc is None:
            nc = self._network_counts[info._network] = [0, 0]
        nc[0] += d_new
        nc[1] += d_tried
        k = (info._network, info.services)
        sc = self._svc_counts.get(k)
        if sc is None:
            sc = self._svc_counts[k] = [0, 0]
        sc[0] += d_new
        sc[1] += d_tried
        if sc[0] == 0 and sc[1] == 0:
            del self._svc_counts[k]

    def _set_services(self, info: AddrInfo, services: int) -> None:
        if services == info.services:
            return
        self.version += 1
        if info._id in self._map_info and self._map_info[info._id] is info:
            d_new, d_tried = (0, 1) if info.in_tried else (1, 0)
            self._count(info, -d_new, -d_tried)
            info.services = services
            self._count(info, d_new, d_tried)
        else:
            info.services = services
        info._entry = None

    # --- bucket occupancy -------------------------------------------------------------

    def _fill_inc(self, tried: bool, slot: int, info: AddrInfo) -> None:
        bucket = slot >> ADDRMAN_BUCKET_SIZE_LOG2
        (self._tried_fill if tried else self._new_fill).inc(bucket)
        nf = self._net_fill.get((tried, info._network))
        if nf is None:
            nf = self._net_fill[(tried, info._network)] = _BucketFill(
                ADDRMAN_TRIED_BUCKET_COUNT if tried else ADDRMAN_NEW_BUCKET_COUNT
            )
        nf.inc(bucket)

    def _fill_dec(self, tried: bool, slot: int, info: AddrInfo) -> None:
        bucket = slot >> ADDRMAN_BUCKET_SIZE_LOG2
        (self._tried_fill if tried else self._new_fill).dec(bucket)
        self._net_fill[(tried, info._network)].dec(bucket)

    # --- Core's private helpers -------------------------------------------------------

    def _find(self, service: Service) -> AddrInfo | None:
        """Core ``AddrManImpl::Find``."""
        nid = self._map_addr.get(service)
        if nid is None:
            return None
        return self._map_info.get(nid)

    def _create(self, service: Service, time: int, services: int, source: NetAddr) -> AddrInfo:
        """Core ``AddrManImpl::Create``: a new entry in mapInfo, mapAddr and vRandom."""
        info = self._make_info(service, time, services, source, routable=True)
        nid = info._id = self._id_count
        self._id_count += 1
        self._map_info[nid] = info
        self._map_addr[service] = nid
        info.random_pos = len(self._random)
        self._random.append(info)
        self.version += 1
        self._n_new += 1
        self._count(info, 1, 0)
        return info

    def _swap_random(self, i: int, j: int) -> None:
        """Core ``AddrManImpl::SwapRandom``."""
        if i == j:
            return
        r = self._random
        a = r[i]
        b = r[j]
        a.random_pos = j
        b.random_pos = i
        r[i] = b
        r[j] = a

    def _delete(self, info: AddrInfo) -> None:
        """Core ``AddrManImpl::Delete``: remove an entry that is in no table."""
        assert not info.in_tried and info.ref_count == 0
        self.version += 1
        self._swap_random(info.random_pos, len(self._random) - 1)
        self._count(info, -1, 0)
        self._random.pop()
        self._map_addr.pop(info.service, None)
        del self._map_info[info._id]
        self._n_new -= 1

    def _clear_new(self, slot: int) -> None:
        """Core ``AddrManImpl::ClearNew``: empty a new-table slot, deleting the entry when
        no slot holds it any more."""
        old = self._vv_new[slot]
        if old is not None:
            old.ref_count -= 1
            self._vv_new[slot] = None
            old._slots.remove(slot)
            self._fill_dec(False, slot, old)
            if old.ref_count == 0:
                self._delete(old)

    def _put_new(self, slot: int, info: AddrInfo) -> None:
        self._vv_new[slot] = info
        info._slots.append(slot)
        info.ref_count += 1
        self._fill_inc(False, slot, info)

    def _make_tried(self, info: AddrInfo) -> None:
        """Core ``AddrManImpl::MakeTried``: move from every new slot to the tried table,
        first moving the tried occupant (if any) back to the new table."""
        self.version += 1
        vv_new = self._vv_new
        for slot in info._slots:
            vv_new[slot] = None
            self._fill_dec(False, slot, info)
        info._slots.clear()
        info.ref_count = 0
        self._n_new -= 1
        self._count(info, -1, 0)

        slot = self._tried_slot(info)
        old = self._vv_tried[slot]
        if old is not None:
            old.in_tried = False
            self._vv_tried[slot] = None
            self._fill_dec(True, slot, old)
            self._n_tried -= 1
            self._count(old, 0, -1)
            u_bucket = self._own_new_bucket(old)
            u_slot = (u_bucket << ADDRMAN_BUCKET_SIZE_LOG2) | self._new_pos(u_bucket, old)
            self._clear_new(u_slot)
            old.ref_count = 0
            self._put_new(u_slot, old)
            self._n_new += 1
            self._count(old, 1, 0)
        self._vv_tried[slot] = info
        self._fill_inc(True, slot, info)
        self._n_tried += 1
        info.in_tried = True
        self._count(info, 0, 1)

    def _add_single(
        self, entry: AddrEntry, source: NetAddr, src_group: bytes, penalty: int, now: int
    ) -> bool:
        """Core ``AddrManImpl::AddSingle``."""
        time, services, service = entry
        addr = service.addr
        if not addr.is_routable():
            return False
        nid = self._map_addr.get(service)
        info = None if nid is None else self._map_info.get(nid)
        if addr == source:  # no penalty for a source's self-announcement
            penalty = 0
        if info is not None:
            update_interval = 3600 if now - time < 24 * 3600 else 24 * 3600
            if info.time < time - update_interval - penalty:
                info.time = max(0, time - penalty)
                info._entry = None
            if services | info.services != info.services:
                self._set_services(info, info.services | services)
            if time <= info.time:
                return False
            if info.in_tried:
                return False
            if info.ref_count == ADDRMAN_NEW_BUCKETS_PER_ADDRESS:
                return False
            if info.ref_count > 0 and self.rng.getrandbits(info.ref_count) != 0:
                return False
        else:
            info = self._create(service, max(0, time - penalty), services, source)

        bucket = self._new_bucket(info, src_group)
        slot = (bucket << ADDRMAN_BUCKET_SIZE_LOG2) | self._new_pos(bucket, info)
        existing = self._vv_new[slot]
        if existing is info:
            return False
        insert = existing is None
        if not insert:
            assert existing is not None
            if existing.is_terrible(now) or (existing.ref_count > 1 and info.ref_count == 0):
                insert = True
        if insert:
            self._clear_new(slot)
            self._put_new(slot, info)
        elif info.ref_count == 0:
            self._delete(info)
        return insert

    def _good(self, service: Service, test_before_evict: bool, time: int) -> bool:
        """Core ``AddrManImpl::Good_``."""
        self._last_good = time
        info = self._find(service)
        if info is None:
            return False
        info.last_success = time
        info.last_try = time
        info.attempts = 0
        # nTime is not updated here, to avoid leaking information about connected peers.
        if info.in_tried:
            return False
        if info.ref_count <= 0:  # Core: Assume(info.nRefCount > 0)
            return False
        slot = self._tried_slot(info)
        if test_before_evict and self._vv_tried[slot] is not None:
            if len(self._tried_collisions) < ADDRMAN_SET_TRIED_COLLISION_SIZE:
                self._tried_collisions.add(info._id)
            return False
        self._make_tried(info)
        return True

    def _select(
        self,
        new_only: bool,
        networks: frozenset[Network] | None,
        required: int,
        now: int,
    ) -> AddrInfo | None:
        """Core ``AddrManImpl::Select_``, optionally also requiring service bits (an entry
        lacking them is skipped in the bucket scan like an entry of another network)."""
        if not self._random:
            return None
        new_count, tried_count = self._counts(networks, required)
        if new_only and new_count == 0:
            return None
        if new_count + tried_count == 0:
            return None
        rng = self.rng
        if new_only or tried_count == 0:
            search_tried = False
        elif new_count == 0:
            search_tried = True
        else:
            search_tried = bool(rng.getrandbits(1))
        if search_tried:
            table, fill, bits = self._vv_tried, self._tried_fill, ADDRMAN_TRIED_BUCKET_COUNT_LOG2
        else:
            table, fill, bits = self._vv_new, self._new_fill, ADDRMAN_NEW_BUCKET_COUNT_LOG2
        getrandbits = rng.getrandbits
        filtered = networks is not None or required != 0
        nonempty = fill.nonempty
        if networks is not None and len(networks) == 1:
            # one network: only buckets holding entries of it can yield an entry
            (net,) = networks
            net_fill = self._net_fill.get((search_tried, net))
            if net_fill is not None and net_fill.nonempty:
                nonempty = net_fill.nonempty
        n_buckets = 1 << bits
        chance_factor = 1.0
        while True:
            # A uniformly random bucket; Core redraws after scanning an empty one, so
            # drawing uniformly among the non-empty buckets is the same distribution.
            m = len(nonempty)
            if m == n_buckets:
                bucket = getrandbits(bits)
            else:
                mbits = m.bit_length()
                d = getrandbits(mbits)
                while d >= m:
                    d = getrandbits(mbits)
                bucket = nonempty[d]
            initial = getrandbits(ADDRMAN_BUCKET_SIZE_LOG2)
            base = bucket << ADDRMAN_BUCKET_SIZE_LOG2
            found: AddrInfo | None = None
            if filtered:
                for i in range(ADDRMAN_BUCKET_SIZE):
                    e = table[base + ((initial + i) & _POS_MASK)]
                    if (
                        e is not None
                        and (networks is None or e._network in networks)
                        and e.services & required == required
                    ):
                        found = e
                        break
            else:
                for i in range(ADDRMAN_BUCKET_SIZE):
                    e = table[base + ((initial + i) & _POS_MASK)]
                    if e is not None:
                        found = e
                        break
            if found is None:
                continue
            if getrandbits(30) < chance_factor * found.get_chance(now) * (1 << 30):
                return found
            chance_factor *= 1.2

    def _counts(self, networks: frozenset[Network] | None, required: int) -> tuple[int, int]:
        if required == 0:
            if networks is None:
                return self._n_new, self._n_tried
            n = t = 0
            for net in networks:
                c = self._network_counts.get(net)
                if c is not None:
                    n += c[0]
                    t += c[1]
            return n, t
        n = t = 0
        for (net, svc), c in self._svc_counts.items():
            if svc & required == required and (networks is None or net in networks):
                n += c[0]
                t += c[1]
        return n, t

    # --- public API: Core's operations ---------------------------------------------------

    def add(
        self,
        entries: Iterable[AddrEntry],
        source: Service | NetAddr | None,
        time_penalty: float = 0.0,
        *,
        now: float,
    ) -> int:
        """Core ``AddrMan::Add`` / ``AddrManImpl::Add_`` and ``AddSingle``: offer gossiped
        addresses to the new table; returns how many were placed in a new-table slot
        (Core returns ``added > 0``).

        ``source`` is the peer that sent them (only its address counts, as Core's
        ``CNetAddr source``); ``None`` means each entry is its own source, as RPC
        ``addpeeraddress`` does.  ``time_penalty`` seconds are subtracted from each entry's
        time unless the entry is the source's self-announcement.

        Per entry (``AddSingle``): unroutable addresses are refused.  A known address gets
        its time refreshed (if older than 1 h, or 24 h when the announced time is over a
        day old, plus the penalty) and its service bits OR-ed in; it is added to one more
        new bucket only if the announced time is newer, it is not in tried, has fewer than
        ``ADDRMAN_NEW_BUCKETS_PER_ADDRESS`` slots, and a ``1 / 2**ref_count`` coin says
        so.  The target slot is taken over only if empty, holding a terrible entry, or
        holding an entry that is also in another bucket while this one is in none.
        """
        t = int(now)
        penalty = int(time_penalty)
        added = 0
        if source is None:
            for entry in entries:
                src = entry.service.addr
                if self._add_single(entry, src, self._group_ser(src), penalty, t):
                    added += 1
            return added
        src_addr = source.addr if isinstance(source, Service) else source
        src_group = self._group_ser(src_addr)
        for entry in entries:
            if self._add_single(entry, src_addr, src_group, penalty, t):
                added += 1
        return added

    def good(self, service: Service, now: float) -> bool:
        """Core ``AddrMan::Good`` (``Good_`` with test-before-evict): we connected to
        ``service``.  Sets last success/try, zeroes attempts; moves it to tried unless
        its tried slot is taken, in which case it is recorded as a collision (at most
        ``ADDRMAN_SET_TRIED_COLLISION_SIZE``) for :meth:`resolve_collisions`.  Returns True
        iff it moved to tried."""
        return self._good(service, self.test_before_evict, int(now))

    def attempt(self, service: Service, count_failure: bool, now: float) -> None:
        """Core ``AddrMan::Attempt``: we try to connect to ``service`` now.  With
        ``count_failure``, attempts is incremented at most once per :meth:`good` of any
        address (``m_last_count_attempt < m_last_good``)."""
        info = self._find(service)
        if info is None:
            return
        t = int(now)
        info.last_try = t
        if count_failure and info.last_count_attempt < self._last_good:
            info.last_count_attempt = t
            info.attempts += 1

    def connected(self, service: Service, now: float) -> None:
        """Core ``AddrMan::Connected``: refresh the entry's time (only if more than 20
        minutes old).  Core calls it when it *disconnects* from a successful outbound
        peer, to not leak current connections."""
        info = self._find(service)
        if info is None:
            return
        t = int(now)
        if t - info.time > 20 * 60:
            info.time = t
            info._entry = None

    def set_services(self, service: Service, services: int) -> None:
        """Core ``AddrMan::SetServices``: overwrite the entry's service bits."""
        info = self._find(service)
        if info is not None:
            self._set_services(info, services)

    def resolve_collisions(self, now: float) -> None:
        """Core ``AddrMan::ResolveCollisions``: for each pending tried collision, keep the
        old entry if it succeeded within ``ADDRMAN_REPLACEMENT``; replace it if it was
        tried (and not successful) in that window more than 60 s ago; or replace it anyway
        if the new entry's success is older than ``ADDRMAN_TEST_WINDOW``."""
        if not self.resolve_tried_collisions:
            return
        t = int(now)
        for id_new in sorted(self._tried_collisions):
            erase = False
            info_new = self._map_info.get(id_new)
            if info_new is None or not info_new.service.addr.is_valid():
                erase = True
            else:
                old = self._vv_tried[self._tried_slot(info_new)]
                if old is None or info_new.in_tried:
                    erase = True  # Core assumes the slot is still occupied
                elif t - old.last_success < ADDRMAN_REPLACEMENT:
                    erase = True
                elif t - old.last_try < ADDRMAN_REPLACEMENT:
                    if t - old.last_try > 60:
                        self._good(info_new.service, False, t)
                        erase = True
                elif t - info_new.last_success > ADDRMAN_TEST_WINDOW:
                    self._good(info_new.service, False, t)
                    erase = True
            if erase:
                self._tried_collisions.discard(id_new)

    def select_tried_collision(self, now: float | None = None) -> tuple[AddrEntry | None, float]:
        """Core ``AddrMan::SelectTriedCollision``: a random pending collision's *occupant*
        (the tried entry to test with a feeler) and its last try time; ``(None, 0.0)``
        when there is none.  ``now`` is unused (kept for a uniform signature)."""
        if not self._tried_collisions:
            return None, 0.0
        ids = sorted(self._tried_collisions)
        id_new = ids[self.rng.randrange(len(ids))]
        info_new = self._map_info.get(id_new)
        if info_new is None:
            self._tried_collisions.discard(id_new)
            return None, 0.0
        old = self._vv_tried[self._tried_slot(info_new)]
        if old is None:
            return None, 0.0
        return old.to_entry(), float(old.last_try)

    def select(
        self,
        new_only: bool = False,
        networks: Iterable[Network] | None = None,
        *,
        now: float,
        required_services: int = 0,
        floresta: bool | None = None,
    ) -> tuple[AddrEntry | None, float]:
        """Choose an address to connect to: Core ``AddrMan::Select``, or with Floresta's
        ``get_address_to_connect`` rules.  Returns ``(entry, last_try)`` or
        ``(None, 0.0)``.

        ``floresta`` (default: on exactly when ``required_services`` is non-zero)
        chooses the rules. Off, this is plain Core ``Select`` (one draw, no state
        checks): what ConnMan's loops expect, since they apply Core's own filters.

        Each draw is Core's ``Select_``: if ``new_only`` only the new table, else new or
        tried with even odds (the one that has candidates when the other has none); a
        random bucket, a random start position, the first entry found scanning the
        bucket (of one of ``networks`` if given), accepted with probability
        ``GetChance() * chance_factor`` (``chance_factor`` grows 1.2x per rejection).

        Floresta (seed 002): up to ``FLORESTA_SELECT_TRIES`` draws.  With
        ``required_services``, a draw first looks only at entries having all those bits
        (``get_address_by_service``); if no entry has them it falls back to a draw over
        all entries (``get_random_address``).  The drawn entry is returned if it is
        never-tried or tried; an entry marked connected is drawn again; one banned, or
        whose last attempt failed (:meth:`state`), is returned only once its ban expired
        / ``FLORESTA_RETRY_TIME`` has passed since the failure, else drawn again.  After
        the last draw: ``(None, 0.0)``.  Without connected/banned marks and recent
        failures, the first draw is returned: plain Core ``Select``.
        """
        t = int(now)
        nets = None if networks is None else frozenset(_norm_net(n) for n in networks)
        if nets is not None and not nets:
            nets = None  # Core: empty set = all networks
        if not (bool(required_services) if floresta is None else floresta):
            core = self._select(new_only, nets, 0, t)
            return (None, 0.0) if core is None else (core.to_entry(), float(core.last_try))
        for _ in range(FLORESTA_SELECT_TRIES):
            info = None
            if required_services:
                n, tr = self._counts(nets, required_services)
                if (n if new_only else n + tr) > 0:
                    info = self._select(new_only, nets, required_services, t)
            if info is None:
                info = self._select(new_only, nets, 0, t)
            if info is None:
                return None, 0.0
            st = self._state(info.service, info, t)
            kind = st.kind
            if kind is AddrStateKind.NEVER_TRIED or kind is AddrStateKind.TRIED:
                return info.to_entry(), float(info.last_try)
            if kind is AddrStateKind.FAILED:
                assert st.time is not None
                if st.time + FLORESTA_RETRY_TIME < t:
                    return info.to_entry(), float(info.last_try)
            # BANNED (until > now) and CONNECTED: draw again.
        return None, 0.0

    def get_addr(
        self,
        max_addresses: int,
        max_pct: int,
        now: float,
        network: Network | None = None,
        filtered: bool = True,
    ) -> list[AddrEntry]:
        """Core ``AddrMan::GetAddr`` / ``GetAddr_``: a random sample for a ``getaddr``
        reply (``max_addresses=1000, max_pct=23``) or ``getnodeaddresses``.

        At most ``max_pct`` percent (0 = no limit; capped at 100) of all entries and at
        most ``max_addresses`` (0 = no limit).  Walks ``vRandom`` in the order of a
        partial Fisher-Yates shuffle (a uniformly random order), skipping entries of
        another ``network`` (by net class) and, when ``filtered``, terrible ones, until
        enough are found.
        """
        t = int(now)
        r = self._random
        total = len(r)
        n_nodes = total
        if max_pct != 0:
            n_nodes = min(max_pct, 100) * n_nodes // 100
        if max_addresses != 0:
            n_nodes = min(n_nodes, max_addresses)
        out: list[AddrEntry] = []
        if n_nodes <= 0:
            return out
        net = None if network is None else _norm_net(network)
        getrandbits = self.rng.getrandbits
        append = out.append
        horizon = t - ADDRMAN_HORIZON
        future = t + 600
        # Partial Fisher-Yates over vRandom, as Core, but on a virtual copy: ``moved``
        # holds the positions swapped so far, so only the entries drawn are touched
        # (Core's swaps are unobservable outside the class).  j is uniform in
        # [n, total) by rejection sampling on getrandbits, as random.Random.randrange;
        # k = total - n and bits = k.bit_length() are kept up to date incrementally.
        moved: dict[int, int] = {}
        moved_get = moved.get
        k = total
        bits = k.bit_length()
        half = 1 << (bits - 1)
        for n in range(total):
            d = getrandbits(bits)
            while d >= k:
                d = getrandbits(bits)
            k -= 1
            if k < half:
                bits -= 1
                half >>= 1
            j = n + d
            a = r[moved_get(j, j)]
            if d:
                moved[j] = moved_get(n, n)
            if net is not None and a.service.addr.get_net_class() is not net:
                continue
            if filtered and t - a.last_try > 60:
                # inline IsTerrible (src/addrman.cpp AddrInfo::IsTerrible)
                at = a.time
                if at > future or at < horizon:
                    continue
                att = a.attempts
                if att >= ADDRMAN_RETRIES and (
                    a.last_success == 0
                    or (t - a.last_success > ADDRMAN_MIN_FAIL and att >= ADDRMAN_MAX_FAILURES)
                ):
                    continue
            e = a._entry
            if e is None:
                e = a._entry = AddrEntry(a.time, a.services, a.service)
            append(e)
            if len(out) >= n_nodes:
                break
        return out

    def size(self, network: Network | None = None, in_new: bool | None = None) -> int:
        """Core ``AddrMan::Size``: entries of ``network`` (by ``GetNetwork``; None = all) in
        the new table (``in_new=True``), tried (``False``) or both (``None``)."""
        if network is None:
            if in_new is None:
                return len(self._random)
            return self._n_new if in_new else self._n_tried
        c = self._network_counts.get(_norm_net(network))
        if c is None:
            return 0
        if in_new is None:
            return c[0] + c[1]
        return c[0] if in_new else c[1]

    def __len__(self) -> int:
        return len(self._random)

    def infos(self) -> Sequence[AddrInfo]:
        """Every entry (Core's ``vRandom``), live objects for reading only: a caller that
        must know whether *any* entry passes its filters scans this instead of drawing."""
        return self._random

    @property
    def has_tried_collisions(self) -> bool:
        """True while test-before-evict collisions wait for :meth:`resolve_collisions`."""
        return bool(self._tried_collisions)

    def find(self, service: Service) -> AddrInfo | None:
        """The entry for ``service`` (a copy of Core's ``AddrInfo``), or None."""
        info = self._find(service)
        return None if info is None else info._snapshot()

    def find_position(self, service: Service) -> AddressPosition | None:
        """Core ``AddrMan::FindAddressEntry``: table, multiplicity, bucket and position (for
        a new entry, computed from its primary source)."""
        info = self._find(service)
        if info is None:
            return None
        if info.in_tried:
            slot = self._tried_slot(info)
            return AddressPosition(True, 1, slot >> ADDRMAN_BUCKET_SIZE_LOG2, slot & _POS_MASK)
        bucket = self._own_new_bucket(info)
        return AddressPosition(False, info.ref_count, bucket, self._new_pos(bucket, info))

    def entries(self) -> list[AddrEntry]:
        """Every entry as an ``AddrEntry`` (new and tried, in id order)."""
        return [info.to_entry() for info in self._map_info.values()]

    def source_of(self, service: Service) -> NetAddr | None:
        """The address that first told us about ``service`` (Core keeps no port), or
        None if unknown.  An address added with ``source=None`` is its own source."""
        info = self._find(service)
        return None if info is None else info.source

    def get_entries(self, from_tried: bool) -> list[tuple[AddrInfo, AddressPosition]]:
        """Core ``AddrMan::GetEntries``: every occupied slot of one table, by bucket then
        position (an address in several new buckets appears once per slot)."""
        table = self._vv_tried if from_tried else self._vv_new
        out: list[tuple[AddrInfo, AddressPosition]] = []
        for slot, info in enumerate(table):
            if info is not None:
                out.append(
                    (
                        info._snapshot(),
                        AddressPosition(
                            from_tried,
                            1 if from_tried else info.ref_count,
                            slot >> ADDRMAN_BUCKET_SIZE_LOG2,
                            slot & _POS_MASK,
                        ),
                    )
                )
        return out

    def occupied_slots(self, from_tried: bool) -> list[tuple[int, int, AddrInfo]]:
        """``(bucket, position, info)`` for every occupied slot of one table.

        The infos are the live entries, not copies: read them on the thread that owns
        this AddrMan and do not modify them. For the store's snapshot, where copying
        every entry (as :meth:`get_entries` does) would cost more than the dump.
        """
        table = self._vv_tried if from_tried else self._vv_new
        return [
            (slot >> ADDRMAN_BUCKET_SIZE_LOG2, slot & _POS_MASK, info)
            for slot, info in enumerate(table)
            if info is not None
        ]

    def raw_entries(self) -> dict[str, dict[str, dict[str, Any]]]:
        """What Core's ``getrawaddrman`` RPC returns (src/rpc/net.cpp
        ``AddrmanTableToJSON`` / ``AddrmanEntryToJSON``): ``{"new": {"bucket/position":
        {...}}, "tried": {...}}``; each entry has address, mapped_as (with an asmap),
        port, services, time, network, source, source_network, source_mapped_as."""
        ngm = self.netgroupman
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for name, table in (("new", self._vv_new), ("tried", self._vv_tried)):
            tab: dict[str, dict[str, Any]] = {}
            for slot, info in enumerate(table):
                if info is None:
                    continue
                addr = info.service.addr
                e: dict[str, Any] = {"address": str(addr)}
                mapped = ngm.get_mapped_as(addr)
                if mapped:
                    e["mapped_as"] = mapped
                e["port"] = info.service.port
                e["services"] = info.services
                e["time"] = info.time
                e["network"] = addr.get_net_class().rpc_name
                e["source"] = str(info.source)
                e["source_network"] = info.source.get_net_class().rpc_name
                src_mapped = ngm.get_mapped_as(info.source)
                if src_mapped:
                    e["source_mapped_as"] = src_mapped
                tab[f"{slot >> ADDRMAN_BUCKET_SIZE_LOG2}/{slot & _POS_MASK}"] = e
            out[name] = tab
        return out

    def info(self) -> dict[str, dict[str, int]]:
        """What Core's ``getaddrmaninfo`` RPC returns: per network (ipv4, ipv6, onion,
        i2p, cjdns) and ``all_networks``: ``{"new", "tried", "total"}``."""
        out: dict[str, dict[str, int]] = {}
        for net in _INFO_NETWORKS:
            out[net.rpc_name] = {
                "new": self.size(net, True),
                "tried": self.size(net, False),
                "total": self.size(net),
            }
        out["all_networks"] = {
            "new": self.size(None, True),
            "tried": self.size(None, False),
            "total": self.size(),
        }
        return out

    # --- Floresta's per-address state (seed 002) ---------------------------------------

    def mark_banned(self, service: Service, until: float, now: float) -> None:
        """Record that ``service`` is banned until ``until`` (told by the ban manager).
        Remembers at most ``81920`` bans; expired ones are forgotten first."""
        if service not in self._banned and len(self._banned) >= _MAX_BANNED:
            t = int(now)
            for s in [s for s, u in self._banned.items() if u <= t]:
                del self._banned[s]
            if len(self._banned) >= _MAX_BANNED:
                del self._banned[min(self._banned, key=self._banned.__getitem__)]
        self._banned[service] = until

    def mark_connected(self, service: Service, connected: bool) -> None:
        """Record whether we are connected to ``service`` right now (told by ConnMan)."""
        if connected:
            self._connected.add(service)
        else:
            self._connected.discard(service)

    def state(self, service: Service, now: float) -> AddrState:
        """Floresta's ``AddressState`` for ``service`` (seed 002), derived from Core's fields:

        * ``BANNED(until)`` if marked banned and ``until`` is later than ``now``;
        * ``CONNECTED`` if marked connected;
        * ``FAILED(last_try)`` if a failed attempt was counted since the last success
          (``attempts > 0``) and the last try is later than the last success;
        * ``TRIED(last_success)`` if we ever connected;
        * ``NEVER_TRIED`` otherwise, and for addresses not in the table.
        """
        return self._state(service, self._find(service), int(now))

    def _state(self, service: Service, info: AddrInfo | None, now: int) -> AddrState:
        if self._banned:
            until = self._banned.get(service)
            if until is not None and until > now:
                return AddrState.banned(until)
        if service in self._connected:
            return _CONNECTED
        if info is None:
            return _NEVER_TRIED
        if info.attempts > 0 and info.last_try > info.last_success:
            return AddrState.failed(info.last_try)
        if info.last_success > 0:
            return AddrState.tried(info.last_success)
        return _NEVER_TRIED

    # --- consistency check (src/addrman.cpp AddrManImpl::CheckAddrman) -------------------

    def check(self) -> int:
        """Core ``AddrManImpl::CheckAddrman``: 0 if every invariant holds, else Core's
        negative error code (-1 .. -21)."""
        if len(self._random) != self._n_tried + self._n_new:
            return -7
        set_tried: set[int] = set()
        map_new: dict[int, int] = {}
        local: dict[Network, list[int]] = {}
        for n, info in self._map_info.items():
            if info.in_tried:
                if not info.last_success:
                    return -1
                if info.ref_count:
                    return -2
                set_tried.add(n)
                local.setdefault(info._network, [0, 0])[1] += 1
            else:
                if info.ref_count < 0 or info.ref_count > ADDRMAN_NEW_BUCKETS_PER_ADDRESS:
                    return -3
                if not info.ref_count:
                    return -4
                map_new[n] = info.ref_count
                local.setdefault(info._network, [0, 0])[0] += 1
            if self._map_addr.get(info.service) != n:
                return -5
            rp = info.random_pos
            if rp < 0 or rp >= len(self._random) or self._random[rp] is not info:
                return -14
            if info.last_try < 0:
                return -6
            if info.last_success < 0:
                return -8
        if len(set_tried) != self._n_tried:
            return -9
        if len(map_new) != self._n_new:
            return -10
        for slot, e in enumerate(self._vv_tried):
            if e is not None:
                if e._id not in set_tried:
                    return -11
                if self._map_info.get(e._id) is not e:
                    return -17
                s = self._tried_slot(e)
                if s >> ADDRMAN_BUCKET_SIZE_LOG2 != slot >> ADDRMAN_BUCKET_SIZE_LOG2:
                    return -17
                if s != slot:
                    return -18
                set_tried.discard(e._id)
        for slot, e in enumerate(self._vv_new):
            if e is not None:
                if e._id not in map_new:
                    return -12
                bucket = slot >> ADDRMAN_BUCKET_SIZE_LOG2
                if self._map_info.get(e._id) is not e or self._new_pos(bucket, e) != (
                    slot & _POS_MASK
                ):
                    return -19
                map_new[e._id] -= 1
                if map_new[e._id] == 0:
                    del map_new[e._id]
        if set_tried:
            return -13
        if map_new:
            return -15
        if self._key == bytes(32):
            return -16
        if len(self._network_counts) < len(local):
            return -20
        for net, c in self._network_counts.items():
            lc = local.get(net, [0, 0])
            if lc[0] != c[0] or lc[1] != c[1]:
                return -21
        return 0

    # --- serialization (src/addrman.cpp AddrManImpl::Serialize / Unserialize) ------------

    def serialize(self) -> bytes:
        """Core ``AddrManImpl::Serialize``: the peers.dat body in format 4 (V4_MULTIPORT).

        ``u8 format=4``, ``u8 32+4``, ``nKey``, ``i32 nNew``, ``i32 nTried``,
        ``i32 1024 ^ (1 << 30)``, the new entries, the tried entries (each a V2 disk
        ``CAddress`` + source + ``i64 last_success`` + ``i32 attempts``), then per new bucket
        ``i32 count`` and the indexes of its entries in the new list, then the asmap
        version (32 bytes).  Entries are written in id order (the order they were read
        from disk or created), so a loaded file is written back in its own order.
        """
        parts: list[bytes] = [
            bytes((FILE_FORMAT, INCOMPATIBILITY_BASE + FILE_FORMAT)),
            self._key,
            _HEAD.pack(self._n_new, self._n_tried, ADDRMAN_NEW_BUCKET_COUNT ^ (1 << 30)),
        ]
        index: dict[int, int] = {}
        for nid, info in self._map_info.items():
            if info.ref_count:
                index[nid] = len(index)
                parts.append(_ser_addrinfo(info))
        for info in self._map_info.values():
            if info.in_tried:
                parts.append(_ser_addrinfo(info))
        vv = self._vv_new
        for bucket in range(ADDRMAN_NEW_BUCKET_COUNT):
            base = bucket << ADDRMAN_BUCKET_SIZE_LOG2
            ids = [index[e._id] for e in vv[base : base + ADDRMAN_BUCKET_SIZE] if e is not None]
            parts.append(_I32.pack(len(ids)))
            if ids:
                parts.append(struct.pack(f"<{len(ids)}i", *ids))
        parts.append(self.netgroupman.get_asmap_version())
        return b"".join(parts)

    @classmethod
    def from_records(
        cls,
        key: bytes,
        new: list[AddrInfo],
        tried: list[AddrInfo],
        new_buckets: dict[int, list[int]],
        rng: random.Random,
        *,
        asmap: bytes | None = None,
        stored_asmap_version: bytes | None = None,
    ) -> AddrMan:
        """Rebuild an AddrMan from stored records through Core's own loader.

        ``stored_asmap_version`` is the asmap version the records were bucketed with
        (32 zero bytes: none); when it differs from ``asmap``'s, Core's loader
        re-buckets the new entries.

        ``new`` / ``tried`` are the entries of each table; ``new_buckets`` maps a new
        bucket to indexes into ``new`` (an entry may be in up to 8 buckets). The
        records are written as a format-4 body and read with :meth:`deserialize`, so
        placement follows Core's ``Unserialize`` exactly (positions recomputed from
        the key; entries whose slot is taken are dropped, as in Core).
        Raises :class:`AddrManFormatError` for inconsistent records.
        """
        parts: list[bytes] = [
            bytes((FILE_FORMAT, INCOMPATIBILITY_BASE + FILE_FORMAT)),
            key,
            _HEAD.pack(len(new), len(tried), ADDRMAN_NEW_BUCKET_COUNT ^ (1 << 30)),
        ]
        parts.extend(_ser_addrinfo(info) for info in new)
        parts.extend(_ser_addrinfo(info) for info in tried)
        for bucket in range(ADDRMAN_NEW_BUCKET_COUNT):
            ids = new_buckets.get(bucket, [])
            parts.append(_I32.pack(len(ids)))
            if ids:
                parts.append(struct.pack(f"<{len(ids)}i", *ids))
        if stored_asmap_version is None:
            stored_asmap_version = NetGroupManager(asmap or b"").get_asmap_version()
        parts.append(stored_asmap_version)
        return cls.deserialize(b"".join(parts), rng, asmap=asmap)

    @classmethod
    def deserialize(
        cls,
        data: bytes | bytearray | memoryview,
        rng: random.Random,
        *,
        asmap: bytes | None = None,
    ) -> AddrMan:
        """Core ``AddrManImpl::Unserialize``: rebuild an AddrMan from a peers.dat body.

        Reads formats 0..4 (and later formats whose compat byte allows it).  New entries
        get ids in file order; tried entries are re-placed by hash (lost if invalid or
        the slot is taken); new-table positions are restored when the bucket count is
        1024 and the stored asmap version equals ours, else each entry is re-bucketed
        from its primary source; entries left in no slot are dropped; then Core's
        consistency check must pass.  Trailing bytes after the body are an error here
        (:mod:`peerkeeper.io.addrdb` reads the checksum that follows it).

        Raises:
            AddrManFormatError: for any malformed input (``AddrManVersionError`` for an
                unsupported format); nothing else.
        """
        r = Reader(data)
        am = cls._unserialize(r, rng, asmap=asmap)
        if not r.empty():
            raise AddrManFormatError(f"{r.remaining()} bytes of trailing data after addrman")
        return am

    @classmethod
    def _unserialize(
        cls,
        r: Reader,
        rng: random.Random,
        *,
        asmap: bytes | None = None,
    ) -> AddrMan:
        am = cls(rng, key=b"\x01" + bytes(31), asmap=asmap)
        try:
            am._unserialize_body(r)
        except DecodeError as e:
            truncated = str(e).startswith("short read")
            raise AddrManFormatError(
                f"{'truncated' if truncated else 'corrupt'} addrman data: {e}", truncated=truncated
            ) from e
        except AddrError as e:
            raise AddrManFormatError(f"corrupt addrman data: {e}") from e
        return am

    def _unserialize_body(self, r: Reader) -> None:
        fmt = r.u8()
        v2 = fmt >= _FORMAT_V3_BIP155
        compat = r.u8()
        if compat < INCOMPATIBILITY_BASE:
            raise AddrManFormatError(
                f"Corrupted addrman database: The compat value ({compat}) is lower than the "
                f"expected minimum value {INCOMPATIBILITY_BASE}."
            )
        lowest = compat - INCOMPATIBILITY_BASE
        if lowest > FILE_FORMAT:
            raise AddrManVersionError(
                f"Unsupported format of addrman database: {fmt}. It is compatible with "
                f"formats >={lowest}, but the maximum supported by this version of "
                f"peerkeeper is {FILE_FORMAT}."
            )
        key = r.read(32)
        n_new, n_tried, n_ubuckets = _HEAD.unpack(r.read(12))
        if fmt >= _FORMAT_V1_DETERMINISTIC:
            n_ubuckets ^= 1 << 30
        if not 0 <= n_new <= _NEW_SLOTS:
            raise AddrManFormatError(
                f"Corrupt AddrMan serialization: nNew={n_new}, should be in [0, {_NEW_SLOTS}]"
            )
        if not 0 <= n_tried <= _TRIED_SLOTS:
            raise AddrManFormatError(
                f"Corrupt AddrMan serialization: nTried={n_tried}, should be in [0, {_TRIED_SLOTS}]"
            )
        min_entry = _MIN_ENTRY_V2 if v2 else _MIN_ENTRY_V1
        if (n_new + n_tried) * min_entry > r.remaining():
            raise AddrManFormatError(
                f"truncated addrman data: {n_new} new and {n_tried} tried entries cannot "
                f"fit in {r.remaining()} bytes",
                truncated=True,
            )
        self._set_key(key)

        map_info = self._map_info
        map_addr = self._map_addr
        rnd = self._random
        for n in range(n_new):
            info = self._read_addrinfo(r, v2)
            info._id = n
            map_info[n] = info
            map_addr[info.service] = n
            info.random_pos = len(rnd)
            rnd.append(info)
            self._count(info, 1, 0)
        self._id_count = n_new
        self._n_new = n_new

        lost = 0
        for _ in range(n_tried):
            info = self._read_addrinfo(r, v2)
            slot = self._tried_slot(info)
            if info.service.addr.is_valid() and self._vv_tried[slot] is None:
                nid = info._id = self._id_count
                self._id_count += 1
                info.random_pos = len(rnd)
                info.in_tried = True
                rnd.append(info)
                map_info[nid] = info
                map_addr[info.service] = nid
                self._vv_tried[slot] = info
                self._fill_inc(True, slot, info)
                self._count(info, 0, 1)
            else:
                lost += 1
        self._n_tried = n_tried - lost

        bucket_entries: list[tuple[int, int]] = []
        for bucket in range(n_ubuckets):
            num = _I32.unpack(r.read(4))[0]
            if num <= 0:
                continue
            if num * 4 > r.remaining():
                raise AddrManFormatError(
                    f"truncated addrman data: bucket {bucket} lists {num} entries",
                    truncated=True,
                )
            for idx in struct.unpack(f"<{num}i", r.read(num * 4)):
                if 0 <= idx < n_new:
                    bucket_entries.append((bucket, idx))

        serialized_version = bytes(32)
        if fmt >= _FORMAT_V2_ASMAP:
            serialized_version = r.read(32)
        restore = (
            n_ubuckets == ADDRMAN_NEW_BUCKET_COUNT
            and serialized_version == self.netgroupman.get_asmap_version()
        )

        vv_new = self._vv_new
        for bucket, idx in bucket_entries:
            info = map_info[idx]
            if not info.service.addr.is_valid():
                continue
            if info.ref_count >= ADDRMAN_NEW_BUCKETS_PER_ADDRESS:
                continue
            pos = _cheap_hash(self._key + b"N" + _I32.pack(bucket) + info._skey) & _POS_MASK
            slot = (bucket << ADDRMAN_BUCKET_SIZE_LOG2) | pos
            if restore and vv_new[slot] is None:
                self._put_new(slot, info)
            else:
                b = self._own_new_bucket(info)
                slot = (b << ADDRMAN_BUCKET_SIZE_LOG2) | self._new_pos(b, info)
                if vv_new[slot] is None:
                    self._put_new(slot, info)

        for info in list(map_info.values()):
            if not info.in_tried and info.ref_count == 0:
                self._delete(info)

        code = self.check()
        if code != 0:
            raise AddrManFormatError(f"Corrupt data. Consistency check failed with code {code}")

    def _read_addrinfo(self, r: Reader, v2: bool) -> AddrInfo:
        """An ``AddrInfo`` as serialized on disk (src/addrman_impl.h ``SERIALIZE_METHODS``
        and src/protocol.h ``CAddress`` with ``V1_DISK``/``V2_DISK`` params)."""
        time, services, service = read_caddress_disk(r, v2)
        source = _read_netaddr_v2(r) if v2 else NetAddr.from_v1_bytes(r.read(16))
        last_success = r.i64()
        attempts = r.i32()
        info = self._make_info(service, time, services, source)
        info.last_success = last_success
        info.attempts = attempts
        return info


def _read_netaddr_v2(r: Reader) -> NetAddr:
    """Core ``CNetAddr::UnserializeV2Stream`` (src/netaddress.h): unknown network ids and
    IPv4/TORv2 embedded in IPv6 become the invalid ``::``."""
    net_id = r.u8()
    size = r.compact_size()
    if size > MAX_ADDRV2_SIZE:
        raise AddrManFormatError(f"Address too long: {size} > {MAX_ADDRV2_SIZE}")
    addr = NetAddr.from_bip155(net_id, r.read(size))
    return _IPV6_ZERO if addr is None else addr


def _ser_netaddr_v2(addr: NetAddr) -> bytes:
    """Core ``CNetAddr::SerializeV2Stream``: network id, CompactSize length, bytes."""
    net_id, payload = addr.to_bip155()
    return bytes((net_id,)) + ser_compact_size(len(payload)) + payload


def _ser_addrinfo(info: AddrInfo) -> bytes:
    """An ``AddrInfo`` in V2 disk format (src/addrman_impl.h, src/protocol.h)."""
    return b"".join(
        (
            _ENTRY_HEAD.pack(_V2_DISK_VERSION, info.time & 0xFFFFFFFF),
            ser_compact_size(info.services),
            _ser_netaddr_v2(info.service.addr),
            _PORT.pack(info.service.port),
            _ser_netaddr_v2(info.source),
            _ENTRY_TAIL.pack(info.last_success, info.attempts),
        )
    )


def ser_caddress_v2_disk(entry: AddrEntry) -> bytes:
    """A ``CAddress`` in ``V2_DISK`` format (src/protocol.h): disk version, time,
    CompactSize services, BIP155 address, big-endian port.  Used by anchors.dat."""
    t, services, service = entry
    return b"".join(
        (
            _ENTRY_HEAD.pack(_V2_DISK_VERSION, t & 0xFFFFFFFF),
            ser_compact_size(services),
            _ser_netaddr_v2(service.addr),
            _PORT.pack(service.port),
        )
    )


def read_caddress_disk(r: Reader, v2: bool = True) -> AddrEntry:
    """Read one disk ``CAddress`` (src/protocol.h): V1 or V2 per its stored version.

    Raises:
        AddrManFormatError: an unsupported stored version.
        DecodeError, AddrError: short or malformed data (callers wrap them).
    """
    version = r.u32() & ~_DISK_VERSION_IGNORE_MASK
    if version == 0:
        use_v2 = False
    elif version == _DISK_VERSION_ADDRV2 and v2:
        use_v2 = True
    else:
        raise AddrManFormatError("Unsupported CAddress disk format version")
    t = r.u32()
    if use_v2:
        services = r.compact_size(0xFFFFFFFFFFFFFFFF)
        addr = _read_netaddr_v2(r)
    else:
        services = r.u64()
        addr = NetAddr.from_v1_bytes(r.read(16))
    port = r.u16be()
    return AddrEntry(t, services, trusted_service(addr, port))
