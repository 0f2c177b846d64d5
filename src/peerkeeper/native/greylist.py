"""Octez's greylists: a time-decaying IP filter of fixed size and a peer-id FIFO.

Sources (tezos/tezos-mirror): ``src/lib_p2p/p2p_acl.ml`` (``create``, ``IPGreylist``,
``PeerGreylist``, ``unban_addr``, ``clear``), the ``Bloomer`` it builds on
(``src/lib_stdlib/bloomer.ml`` / ``bloomer.mli``: ``create``, ``peek``, ``add``, ``mem``,
``rem``, ``countdown``, ``clear``, ``fill_percentage``), ``Bits.numbits``
(``src/lib_stdlib/bits.ml``) and the defaults of ``src/lib_p2p_services/p2p_limits.ml``.
The FIFOs are Ringo caches built with ``~replacement:FIFO ~overflow:Strong
~accounting:Precise``; Ringo's ``CACHE_SET.add`` documents that "after the add c v call
returns, v is the most recent element in the cache ... whether or not the element was
already in the cache", and ``fold`` runs newest to oldest (so Octez's ``list``, which
conses while folding, returns oldest first).

:class:`IpGreylist` is a generational counting Bloom filter in Octez's exact shape:

* ``index_bits = numbits(size_in_kilobytes * 8 * 1024 / 4)`` where ``numbits`` is the
  bit length (2048 KB -> 2^22 -> 23 bits). The filter holds ``2^index_bits`` cells of
  ``countdown_bits = 4`` bits, packed two per byte as Octez packs them (cell ``j`` is
  bits ``4j .. 4j+3``, so the low nibble of byte ``j // 2`` for even ``j``). That is
  ``2^index_bits / 2`` bytes, fixed at creation and more than 1x but at most 2x the
  configured kilobytes: 4 MiB for the default 2048 (``numbits`` of an exact power of
  two rounds up to the next one). Octez's ``Bloomer.create`` refuses ``index_bits > 24``,
  so at most 8191 KB is accepted.
* 5 hashes (``~hashes:5``): consecutive ``index_bits``-wide fields of the 32-byte
  Blake2b digest (``Tezos_crypto.Blake2B.hash_string``) of the address's 16 IPv6 octets
  (``Ipaddr.V6.to_octets``), read least-significant bit first as ``Bloomer.peek`` does.
  An IPv4 address is keyed as ``::ffff:a.b.c.d`` (Octez stores every address as
  ``Ipaddr.V6``), so IPv4 and IPv4-mapped IPv6 are one key. Addresses Octez cannot
  have (Tor, I2P, CJDNS, internal) hash their BIP155 network id byte followed by the
  BIP155 payload, which never collides with a 16-byte IPv6 key.
* ``add`` sets the 5 cells to 15; ``countdown`` decrements every non-zero cell; a value
  is a member while all its cells are non-zero, so without collisions an address is a
  member for exactly 15 countdowns (collisions can extend that; false positives are
  possible). ``remove`` zeroes the 5 cells (``Bloomer.rem``), which also drops any other
  address sharing one of them.
* The cleanup loop of ``P2p_acl.create`` runs a countdown every ``cleanup_delay / 16``
  seconds (90 min for the 1-day default); here :meth:`IpGreylist.tick` runs those due
  at a caller-given ``now``.
* A bounded FIFO of the latest additions exists only to list the greylist (Octez
  ``IpFIFOCache``, created with capacity ``ip_size``, i.e. the kilobyte figure). When
  it overflows, ``fifo_not_reliable_since`` records the first time; only ``clear``
  resets it. Each countdown drops listed addresses that are no longer members (Octez
  ``IPGreylist.gc``).

:class:`PeerGreylist` is Octez's ``PeerFIFOCache``: a FIFO of peer ids (1023 by default,
"historical value") with no time decay.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

from peerkeeper.net.netaddr import NetAddr, Network

__all__ = [
    "DEFAULT_IP_GREYLIST_CLEANUP_DELAY",
    "DEFAULT_IP_GREYLIST_SIZE_KB",
    "DEFAULT_PEER_GREYLIST_SIZE",
    "IP_GREYLIST_COUNTDOWN_BITS",
    "IP_GREYLIST_GENERATIONS",
    "IP_GREYLIST_HASHES",
    "IP_GREYLIST_MAX_INDEX_BITS",
    "GreylistError",
    "IpGreylist",
    "PeerGreylist",
    "ip_greylist_index_bits",
]

#: Octez ``P2p_limits.default.ip_greylist_size_in_kilobytes`` ("two megabytes has shown
#: good properties in simulation").
DEFAULT_IP_GREYLIST_SIZE_KB = 2048
#: Octez ``greylist_timeout`` = ``ip_greylist_cleanup_delay``: one day, in seconds.
DEFAULT_IP_GREYLIST_CLEANUP_DELAY = 86_400.0
#: Octez ``P2p_limits.default.peer_greylist_size`` ("historical value").
DEFAULT_PEER_GREYLIST_SIZE = 1023
#: Octez ``P2p_acl.create``: ``~hashes:5``.
IP_GREYLIST_HASHES = 5
#: Octez ``P2p_acl.create``: ``~countdown_bits:4`` ("16 steps to 0").
IP_GREYLIST_COUNTDOWN_BITS = 4
#: ``2^countdown_bits``: the cleanup delay is split into this many countdowns.
IP_GREYLIST_GENERATIONS = 1 << IP_GREYLIST_COUNTDOWN_BITS
#: Octez ``Bloomer.create`` refuses ``index_bits`` above 24.
IP_GREYLIST_MAX_INDEX_BITS = 24

_CELL_MAX = IP_GREYLIST_GENERATIONS - 1  # 15: the value ``add`` writes
_DIGEST_SIZE = 32  # Tezos_crypto.Blake2B: 32-byte digests
_IPV4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"
# One countdown of two packed cells at once: each nibble minus one, floored at zero.
_COUNTDOWN_TABLE = bytes((max((b >> 4) - 1, 0) << 4) | max((b & 0x0F) - 1, 0) for b in range(256))
# Number of non-zero cells in a byte (0, 1 or 2), for fill_ratio.
_NONZERO_CELLS = bytes(((b & 0x0F) != 0) + ((b >> 4) != 0) for b in range(256))
_LOW_NIBBLE = bytes(b & 0x0F for b in range(256))
_HIGH_NIBBLE = bytes(b >> 4 for b in range(256))
_blake2b = hashlib.blake2b
_IPV4 = Network.IPV4
_IPV6 = Network.IPV6
_from_le = int.from_bytes


class GreylistError(ValueError):
    """A bad greylist argument: a size, delay or time out of range, or a wrong type."""


def ip_greylist_index_bits(size_in_kilobytes: int) -> int:
    """``Bits.numbits(size_in_kilobytes * 8 * 1024 / 4)`` (Octez ``P2p_acl.create``).

    Returns the index width in bits; the filter has ``2^index_bits`` 4-bit cells.

    Raises:
        GreylistError: if ``size_in_kilobytes`` is not a positive int (Octez
            ``invalid_arg "bad value for ip_size"``) or gives more than 24 index bits
            (Octez ``Bloomer.create``: "invalid value for index_bits"), i.e. above 8191.
    """
    if type(size_in_kilobytes) is not int or size_in_kilobytes <= 0:
        raise GreylistError(
            f"ip greylist size must be a positive int of kilobytes, got {size_in_kilobytes!r}"
        )
    bits = (size_in_kilobytes * 8 * 1024 // 4).bit_length()
    if bits > IP_GREYLIST_MAX_INDEX_BITS:
        raise GreylistError(
            f"ip greylist of {size_in_kilobytes} KB needs {bits} index bits, "
            f"Octez's Bloomer allows at most {IP_GREYLIST_MAX_INDEX_BITS}"
        )
    return bits


def _ipv6_key(addr: NetAddr) -> bytes:
    """The bytes hashed for ``addr``: 16 IPv6 octets, or BIP155 id + payload."""
    net = addr.network
    if net is Network.IPV4:
        return _IPV4_MAPPED_PREFIX + addr.addr
    if net is Network.IPV6:
        return addr.addr
    net_id, payload = addr.to_bip155()
    return bytes((net_id,)) + payload


class IpGreylist:
    """Octez's IP greylist: a generational counting Bloom filter plus a listing FIFO.

    See the module docstring for the exact shape. Memory is fixed at creation:
    :attr:`memory_bytes` (``2^index_bits / 2`` bytes) plus a listing of at most
    ``listing_size`` addresses.

    Args:
        size_in_kilobytes: Octez ``ip_greylist_size_in_kilobytes`` (int, 1..8191).
        cleanup_delay: Octez ``ip_greylist_cleanup_delay``, seconds (finite, > 0); an
            address added once stops being a member after ``15/16`` of it (no collisions).
        listing_size: capacity of the listing FIFO, entries (int > 0); Octez creates it
            with ``ip_size``, so the default is ``size_in_kilobytes``.

    Raises:
        GreylistError: for any argument out of range (see above).
    """

    def __init__(
        self,
        size_in_kilobytes: int = DEFAULT_IP_GREYLIST_SIZE_KB,
        *,
        cleanup_delay: float = DEFAULT_IP_GREYLIST_CLEANUP_DELAY,
        listing_size: int | None = None,
    ) -> None:
        index_bits = ip_greylist_index_bits(size_in_kilobytes)
        if (
            isinstance(cleanup_delay, bool)
            or not isinstance(cleanup_delay, int | float)
            or not 0 < cleanup_delay < math.inf
        ):
            raise GreylistError(
                f"ip greylist cleanup delay must be a positive finite number of seconds, "
                f"got {cleanup_delay!r}"
            )
        if listing_size is None:
            listing_size = size_in_kilobytes
        if type(listing_size) is not int or listing_size <= 0:
            raise GreylistError(
                f"ip greylist listing size must be a positive int, got {listing_size!r}"
            )
        #: Index width in bits (Octez ``index_bits``).
        self.index_bits = index_bits
        #: Configured size, kilobytes.
        self.size_in_kilobytes = size_in_kilobytes
        #: Seconds over which 16 countdowns run (Octez ``ip_cleanup_delay``).
        self.cleanup_delay = float(cleanup_delay)
        #: Capacity of the listing FIFO, entries.
        self.listing_size = listing_size
        #: When the listing FIFO first dropped an entry (so :meth:`listed` may miss
        #: members), or None; reset by :meth:`clear` only (Octez
        #: ``fifo_not_reliable_since``).
        self.fifo_not_reliable_since: float | None = None
        self._mask = (1 << index_bits) - 1
        self._filter = bytearray(((1 << index_bits) * IP_GREYLIST_COUNTDOWN_BITS + 7) // 8)
        # Listing FIFO keyed by the hashed key bytes (so IPv4 and its mapped IPv6 form are
        # one entry), oldest first.
        self._listing: OrderedDict[bytes, NetAddr] = OrderedDict()
        self._clock_start: float | None = None  # time the countdown schedule counts from
        self._countdowns_done = 0  # countdowns run since _clock_start

    @property
    def memory_bytes(self) -> int:
        """Bytes of the filter: ``2^index_bits * 4 / 8``, fixed at creation."""
        return len(self._filter)

    @property
    def countdown_interval(self) -> float:
        """Seconds between two countdowns: ``cleanup_delay / 16`` (Octez ``P2p_acl.create``)."""
        return self.cleanup_delay / IP_GREYLIST_GENERATIONS

    def _digest(self, addr: NetAddr) -> tuple[bytes, int]:
        """``(key, h)``: the hashed key bytes and its Blake2b digest as a little-endian int,
        whose ``index_bits``-wide fields are the cell indexes (Octez ``Bloomer.peek``)."""
        if not isinstance(addr, NetAddr):
            raise GreylistError(f"ip greylist keys are NetAddr, got {type(addr).__name__}")
        key = _ipv6_key(addr)
        return key, _from_le(_blake2b(key, digest_size=_DIGEST_SIZE).digest(), "little")

    def _cells(self, h: int) -> list[int]:
        """The 5 cell indexes in digest ``h``."""
        bits, mask = self.index_bits, self._mask
        return [(h >> (bits * i)) & mask for i in range(IP_GREYLIST_HASHES)]

    def add(self, addr: NetAddr, now: float) -> None:
        """Greylist ``addr`` (Octez ``IPGreylist.add``): its 5 cells to 15 (``Bloomer.add``)
        and ``addr`` to the newest end of the listing FIFO (Ringo: re-adding refreshes).

        ``now`` (seconds) is only recorded in ``fifo_not_reliable_since`` when this add
        pushes the oldest listed address out (Octez records the first overflow). Raises
        GreylistError if ``addr`` is not a NetAddr.
        """
        # _digest inlined: this is the flood path.
        if not isinstance(addr, NetAddr):
            raise GreylistError(f"ip greylist keys are NetAddr, got {type(addr).__name__}")
        net = addr.network
        if net is _IPV4:
            key = _IPV4_MAPPED_PREFIX + addr.addr
        elif net is _IPV6:
            key = addr.addr
        else:
            key = _ipv6_key(addr)
        h = _from_le(_blake2b(key, digest_size=_DIGEST_SIZE).digest(), "little")
        bits, mask, f = self.index_bits, self._mask, self._filter
        # Cell j is the nibble (j & 1) of byte j >> 1; unrolled for the 5 hashes.
        j = h & mask
        f[j >> 1] |= 0x0F << ((j & 1) << 2)
        j = (h >> bits) & mask
        f[j >> 1] |= 0x0F << ((j & 1) << 2)
        j = (h >> 2 * bits) & mask
        f[j >> 1] |= 0x0F << ((j & 1) << 2)
        j = (h >> 3 * bits) & mask
        f[j >> 1] |= 0x0F << ((j & 1) << 2)
        j = (h >> 4 * bits) & mask
        f[j >> 1] |= 0x0F << ((j & 1) << 2)
        listing = self._listing
        if key in listing:
            listing.move_to_end(key)
            return
        listing[key] = addr
        if len(listing) > self.listing_size:
            listing.popitem(last=False)
            if self.fifo_not_reliable_since is None:
                self.fifo_not_reliable_since = now

    def __contains__(self, addr: object) -> bool:
        """True iff all 5 cells of ``addr`` are non-zero (Octez ``Bloomer.mem``); False for
        anything that is not a NetAddr."""
        if not isinstance(addr, NetAddr):
            return False
        f = self._filter
        for j in self._cells(self._digest(addr)[1]):
            byte = f[j >> 1]
            if (byte >> 4 if j & 1 else byte & 0x0F) == 0:
                return False
        return True

    def remove(self, addr: NetAddr) -> None:
        """Un-greylist ``addr`` (Octez ``unban_addr``): zero its 5 cells (``Bloomer.rem``)
        and drop it from the listing.

        Any other address sharing one of those cells stops being a member too ("may
        remove others in case of collisions"); it leaves the listing at the next
        countdown and is already hidden by :meth:`listed`. Raises GreylistError if
        ``addr`` is not a NetAddr.
        """
        f = self._filter
        key, h = self._digest(addr)
        for j in self._cells(h):
            f[j >> 1] &= 0x0F if j & 1 else 0xF0
        self._listing.pop(key, None)

    def countdown(self) -> None:
        """One generation (Octez ``IPGreylist.gc``): every non-zero cell minus one
        (``Bloomer.countdown``), then drop listed addresses that are no longer members."""
        self._filter[:] = self._filter.translate(_COUNTDOWN_TABLE)
        self._prune_listing()

    def _prune_listing(self) -> None:
        gone = [k for k, a in self._listing.items() if a not in self]
        for k in gone:
            del self._listing[k]

    def clear(self) -> None:
        """Forget every address and reset ``fifo_not_reliable_since`` (Octez
        ``P2p_acl.clear``: ``Bloomer.clear``, FIFO cleared, "the fifo is reliable")."""
        self._filter[:] = bytes(len(self._filter))
        self._listing.clear()
        self.fifo_not_reliable_since = None

    def next_countdown(self) -> float:
        """When (seconds) the next countdown is due: ``start + (k + 1) * interval``
        (Octez ``P2p_acl.create``'s cleanup loop); ``-inf`` before the first
        :meth:`tick`, which starts the schedule."""
        if self._clock_start is None:
            return float("-inf")
        return self._clock_start + (self._countdowns_done + 1) * self.countdown_interval

    def tick(self, now: float) -> int:
        """Run the countdowns due at ``now`` (seconds, simulated time); returns how many.

        Countdowns fall every :attr:`countdown_interval` after the first call, which only
        starts the schedule and returns 0 (Octez's cleanup loop sleeps first). The
        schedule is ``start + k * interval`` (no drift). After a long pause all due
        countdowns are counted, but at most 15 are computed: after 15 every cell is zero
        and further countdowns change nothing. A ``now`` earlier than the last countdown
        (a clock stepped back) restarts the schedule at ``now`` and returns 0.

        Raises:
            GreylistError: if ``now`` is not a finite number.
        """
        if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
            raise GreylistError(f"now must be a finite number of seconds, got {now!r}")
        interval = self.countdown_interval
        start = self._clock_start
        if start is None or now < start + self._countdowns_done * interval:
            self._clock_start = float(now)
            self._countdowns_done = 0
            return 0
        due = int((now - start) // interval) - self._countdowns_done
        if due <= 0:
            return 0
        self._countdowns_done += due
        if due >= _CELL_MAX:
            self._filter[:] = bytes(len(self._filter))
            self._listing.clear()
        else:
            for _ in range(due):
                self._filter[:] = self._filter.translate(_COUNTDOWN_TABLE)
            self._prune_listing()
        return due

    def listed(self) -> list[NetAddr]:
        """Listed addresses that are still members, oldest first (Octez
        ``IPGreylist.list``). Bounded by ``listing_size``; when
        ``fifo_not_reliable_since`` is set, members may be missing."""
        return [a for a in self._listing.values() if a in self]

    def fill_ratio(self) -> float:
        """Fraction of non-zero cells, 0.0..1.0 (Octez ``Bloomer.fill_percentage``)."""
        nonzero = sum(self._filter.translate(_NONZERO_CELLS))
        return nonzero / (1 << self.index_bits)

    def life_expectancy_histogram(self) -> list[int]:
        """16 counts: entry ``v`` is how many cells hold ``v`` (0..15), i.e. have ``v``
        countdowns left (Octez ``Bloomer.life_expectancy_histogram``)."""
        low = self._filter.translate(_LOW_NIBBLE)
        high = self._filter.translate(_HIGH_NIBBLE)
        return [low.count(v) + high.count(v) for v in range(IP_GREYLIST_GENERATIONS)]


class PeerGreylist:
    """Octez's peer-id greylist (``P2p_acl.PeerFIFOCache``): a bounded FIFO, no decay.

    Ringo FIFO semantics (``~replacement:FIFO ~overflow:Strong ~accounting:Precise``):
    adding an id already present makes it the newest again (it counts once); adding a
    new id to a full cache drops the oldest. An id leaves only by that eviction,
    :meth:`remove` or :meth:`clear`.

    Args:
        size: capacity in peer ids (int > 0); Octez ``peer_greylist_size``, 1023.

    Raises:
        GreylistError: if ``size`` is not a positive int (Octez ``P2p_acl.create``:
            "bad value for peer_id_size").
    """

    def __init__(self, size: int = DEFAULT_PEER_GREYLIST_SIZE) -> None:
        if type(size) is not int or size <= 0:
            raise GreylistError(f"peer greylist size must be a positive int, got {size!r}")
        #: Capacity, peer ids.
        self.size = size
        self._fifo: OrderedDict[bytes, None] = OrderedDict()

    def add(self, peer_id: bytes) -> None:
        """Greylist ``peer_id`` as the newest entry (Octez ``PeerGreylist.add``); when
        full, the oldest id leaves. Raises GreylistError if ``peer_id`` is not bytes."""
        if type(peer_id) is not bytes:
            raise GreylistError(f"peer ids are bytes, got {type(peer_id).__name__}")
        fifo = self._fifo
        if peer_id in fifo:
            fifo.move_to_end(peer_id)
            return
        fifo[peer_id] = None
        if len(fifo) > self.size:
            fifo.popitem(last=False)

    def __contains__(self, peer_id: object) -> bool:
        """Octez ``PeerGreylist.mem`` (no reordering, as in a FIFO cache)."""
        return peer_id in self._fifo

    def __len__(self) -> int:
        return len(self._fifo)

    def remove(self, peer_id: bytes) -> None:
        """Un-greylist ``peer_id`` (Octez ``unban_peer``); absent ids are ignored."""
        self._fifo.pop(peer_id, None)

    def clear(self) -> None:
        """Forget every id (Octez ``P2p_acl.clear``)."""
        self._fifo.clear()

    def listed(self) -> list[bytes]:
        """The greylisted ids, oldest first (Octez ``PeerGreylist.list``)."""
        return list(self._fifo)
