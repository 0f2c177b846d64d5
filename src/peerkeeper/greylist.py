"""Octez's greylists: a time-decaying IP filter of fixed size and a peer-id FIFO.

Sources: tezos/tezos-mirror ``src/lib_p2p/p2p_acl.ml`` (``create``, ``IPGreylist``,
``PeerFIFOCache``) and its ``Bloomer`` (``src/lib_bloomer/bloomer.ml``), defaults from
``src/lib_p2p_services/p2p_limits.ml``.

:class:`IpGreylist` is a generational counting Bloom filter exactly as Octez builds it:

* ``index_bits = numbits(size_in_kilobytes * 8 * 1024 / 4)`` (2048 KB gives 23 bits,
  2^23 cells), 4-bit cells (``countdown_bits = 4``) packed two per byte, so the filter
  takes ``2^index_bits / 2`` bytes whatever is added (4 MiB at the default 2048: the
  ``/ 4`` in Octez's formula is per cell bits, and ``numbits`` rounds up a power of two).
* 5 hashes: consecutive ``index_bits``-bit fields of Blake2b-256 of the address's 16
  IPv6 octets (IPv4 as ``::ffff:a.b.c.d``, as ``Ipaddr.V6``), read little-endian
  (Octez ``peek``). Non-IP addresses (Tor, I2P, CJDNS) hash their BIP155 network id and
  bytes.
* ``add`` sets the 5 cells to 15; ``countdown`` decrements every non-zero cell; a value
  is a member while all its cells are non-zero, so an address fades after 15-16
  countdowns (collisions can extend that; false positives are possible). ``remove``
  zeroes the cells, which may also remove other addresses sharing one of them.
* A countdown runs every ``cleanup_delay / 16`` seconds (1 day / 16 = 90 min by
  default): :meth:`IpGreylist.tick` runs those due at ``now``.
* A bounded FIFO of the latest additions serves listing only (Octez keeps one for the
  RPC); when it overflows ``fifo_not_reliable_since`` records when.

:class:`PeerGreylist` is a FIFO of peer ids (1023 by default, "historical value") with
no time decay: an id leaves only when newer ones push it out.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

from peerkeeper.netaddr import NetAddr

__all__ = [
    "DEFAULT_IP_GREYLIST_CLEANUP_DELAY",
    "DEFAULT_IP_GREYLIST_SIZE_KB",
    "DEFAULT_PEER_GREYLIST_SIZE",
    "IP_GREYLIST_LISTING_SIZE",
    "IpGreylist",
    "PeerGreylist",
]

#: Octez ``ip_greylist_size_in_kilobytes`` ("two megabytes has shown good properties").
DEFAULT_IP_GREYLIST_SIZE_KB = 2048
#: Octez ``greylist_timeout`` = ``ip_greylist_cleanup_delay``: one day, in seconds.
DEFAULT_IP_GREYLIST_CLEANUP_DELAY = 86_400.0
#: Octez ``peer_greylist_size``.
DEFAULT_PEER_GREYLIST_SIZE = 1023
#: Entries kept for listing the IP greylist.
IP_GREYLIST_LISTING_SIZE = 1024
_HASHES = 5
_COUNTDOWN_BITS = 4
_CELL_MAX = (1 << _COUNTDOWN_BITS) - 1
_GENERATIONS = 16
# Countdown of two packed 4-bit cells at once: byte -> byte with both nibbles minus 1.
_COUNTDOWN_TABLE = bytes((max((b >> 4) - 1, 0) << 4) | max((b & 0xF) - 1, 0) for b in range(256))


def _key(addr: NetAddr) -> bytes:
    if addr.is_ipv4():
        return b"\x00" * 10 + b"\xff\xff" + addr.addr
    if addr.is_ipv6():
        return addr.addr
    net_id, raw = addr.to_bip155()
    return bytes([net_id]) + raw


class IpGreylist:
    """The IP greylist (see the module docstring).

    ``IpGreylist(size_in_kilobytes=2048, *, cleanup_delay=86400.0)``; raises ValueError
    for a non-positive size or delay, or a size whose ``index_bits`` exceeds Octez's 24.
    """

    def __init__(
        self,
        size_in_kilobytes: int = DEFAULT_IP_GREYLIST_SIZE_KB,
        *,
        cleanup_delay: float = DEFAULT_IP_GREYLIST_CLEANUP_DELAY,
        listing_size: int = IP_GREYLIST_LISTING_SIZE,
    ) -> None:
        if size_in_kilobytes <= 0:
            raise ValueError("ip greylist size must be positive")
        if not cleanup_delay > 0 or math.isinf(cleanup_delay):
            raise ValueError("ip greylist cleanup delay must be a positive number of seconds")
        index_bits = (size_in_kilobytes * 8 * 1024 // 4).bit_length()  # OCaml Bits.numbits
        if index_bits > 24:
            raise ValueError("ip greylist above Octez's 24 index bits")
        self.index_bits = index_bits
        self.cleanup_delay = float(cleanup_delay)
        self._mask = (1 << index_bits) - 1
        self._filter = bytearray(((1 << index_bits) * _COUNTDOWN_BITS + 7) // 8)
        self._listing: OrderedDict[NetAddr, None] = OrderedDict()
        self._listing_size = listing_size
        #: When the listing FIFO first overflowed (it then misses entries), or None.
        self.fifo_not_reliable_since: float | None = None
        self._last_countdown: float | None = None

    @property
    def memory_bytes(self) -> int:
        """Bytes of the filter (fixed at creation)."""
        return len(self._filter)

    @property
    def countdown_interval(self) -> float:
        """Seconds between countdowns: ``cleanup_delay / 16``."""
        return self.cleanup_delay / _GENERATIONS

    def _cells(self, addr: NetAddr) -> list[int]:
        h = int.from_bytes(hashlib.blake2b(_key(addr), digest_size=32).digest(), "little")
        bits, mask = self.index_bits, self._mask
        return [(h >> (bits * i)) & mask for i in range(_HASHES)]

    def add(self, addr: NetAddr, now: float) -> None:
        """Greylist ``addr``: its cells to 15 (Octez ``Bloomer.add``)."""
        f = self._filter
        for j in self._cells(addr):
            i = j >> 1
            f[i] = (f[i] | 0x0F) if j & 1 == 0 else (f[i] | 0xF0)
        self._listing.pop(addr, None)
        self._listing[addr] = None
        if len(self._listing) > self._listing_size:
            self._listing.popitem(last=False)
            if self.fifo_not_reliable_since is None:
                self.fifo_not_reliable_since = now

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, NetAddr):
            return False
        f = self._filter
        for j in self._cells(addr):
            cell = f[j >> 1] >> 4 if j & 1 else f[j >> 1] & 0x0F
            if cell == 0:
                return False
        return True

    def remove(self, addr: NetAddr) -> None:
        """Zero ``addr``'s cells (Octez ``Bloomer.rem``; may drop addresses sharing one)."""
        f = self._filter
        for j in self._cells(addr):
            i = j >> 1
            f[i] &= 0xF0 if j & 1 == 0 else 0x0F
        self._listing.pop(addr, None)

    def countdown(self) -> None:
        """One generation: every non-zero cell minus one (Octez ``Bloomer.countdown``)."""
        self._filter[:] = self._filter.translate(_COUNTDOWN_TABLE)

    def clear(self) -> None:
        """Forget everything (also resets ``fifo_not_reliable_since``)."""
        self._filter[:] = bytes(len(self._filter))
        self._listing.clear()
        self.fifo_not_reliable_since = None

    def tick(self, now: float) -> int:
        """Run the countdowns due at ``now`` (one per ``countdown_interval`` since the
        last); the first call only starts the clock. Returns how many ran."""
        if self._last_countdown is None or now < self._last_countdown:
            self._last_countdown = now
            return 0
        due = int((now - self._last_countdown) // self.countdown_interval)
        if due <= 0:
            return 0
        self._last_countdown += due * self.countdown_interval
        for _ in range(min(due, _GENERATIONS)):
            self.countdown()
        return due

    def listed(self) -> list[NetAddr]:
        """The most recent greylisted addresses still in the filter, oldest first."""
        return [a for a in self._listing if a in self]


class PeerGreylist:
    """Bounded FIFO of greylisted peer ids (Octez ``PeerFIFOCache``, no time decay).

    ``PeerGreylist(size=1023)``; raises ValueError for ``size <= 0``. Adding an id that
    is already there leaves it where it is.
    """

    def __init__(self, size: int = DEFAULT_PEER_GREYLIST_SIZE) -> None:
        if size <= 0:
            raise ValueError("peer greylist size must be positive")
        self.size = size
        self._fifo: OrderedDict[bytes, None] = OrderedDict()

    def add(self, peer_id: bytes) -> None:
        """Greylist ``peer_id``; the oldest entry leaves when full."""
        if peer_id in self._fifo:
            return
        self._fifo[peer_id] = None
        if len(self._fifo) > self.size:
            self._fifo.popitem(last=False)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._fifo

    def __len__(self) -> int:
        return len(self._fifo)

    def remove(self, peer_id: bytes) -> None:
        """Un-greylist ``peer_id`` (no error when absent)."""
        self._fifo.pop(peer_id, None)

    def clear(self) -> None:
        """Forget every id."""
        self._fifo.clear()

    def listed(self) -> list[bytes]:
        """The greylisted ids, oldest first."""
        return list(self._fifo)
