"""Bootstrapping the address book: DNS seeds and fixed seeds, as Bitcoin Core does it.

The sans-IO part (time and randomness are arguments, nothing is read or resolved here):

* **Fixed seeds** (Core ``contrib/seeds/nodes_*.txt``, compiled by
  ``contrib/seeds/generate-seeds.py`` into ``src/chainparamsseeds.h``): :func:`parse_fixed_seeds`
  reads the text format; :func:`fixed_seed_entries` is Core's ``ConvertSeeds`` plus the
  network filter of the fixed-seed block in ``CConnman::ThreadOpenConnections``
  (src/net.cpp); :func:`fixed_seeds_reason` is that block's "when" rule.
* **DNS seeds** (Core ``CConnman::ThreadDNSAddressSeed``, src/net.cpp):
  :class:`DnsSeedSchedule` is the thread's loop as a state machine fed with ``now`` and a
  snapshot (addrman size, full-outbound count, network active) that answers
  :class:`Wait`, :class:`QuerySeed` or :class:`Done`; :func:`dns_seed_entries` turns the
  resolved addresses into ``AddrEntry`` values the way the thread builds its ``CAddress``es.

:class:`~peerkeeper.bitcoin.connman.ConnManCore` drives the schedule and asks its driver
to resolve each seed; :mod:`peerkeeper.io.dns` resolves (``resolve_seed``) and
:func:`peerkeeper.io.addrdb.load_fixed_seeds` reads a ``nodes_*.txt`` file.

Nothing in this module opens a connection to a seeded address; it only hands addresses
(and addr-fetch host names) to its caller.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from peerkeeper.net.chains import CHAINS
from peerkeeper.net.netaddr import AddrError, NetAddr, Network, Service, split_host_port
from peerkeeper.wire import corelog
from peerkeeper.wire.messages import AddrEntry, ServiceFlags

__all__ = [
    "ADD_NEXT_SEEDNODE",
    "DNSSEEDS_DELAY_FEW_PEERS",
    "DNSSEEDS_DELAY_MANY_PEERS",
    "DNSSEEDS_DELAY_PEER_THRESHOLD",
    "DNSSEEDS_TO_QUERY_AT_ONCE",
    "DNS_SEEDS",
    "DNS_SEED_LOOKUP_TIMEOUT",
    "FIXED_SEEDS_AFTER_DELAY_MSG",
    "FIXED_SEEDS_DELAY",
    "FIXED_SEEDS_DISABLED_MSG",
    "FIXED_SEEDS_FILES",
    "FIXED_SEEDS_NO_OTHER_SOURCE_MSG",
    "MAX_IPS_PER_DNS_SEED",
    "SEEDNODE_POLL_INTERVAL",
    "SEEDNODE_TIMEOUT",
    "SEEDS_ASSUMED_SERVICE_FLAGS",
    "SEEDS_SERVICE_FLAGS",
    "SEED_OUTBOUND_CONNECTION_THRESHOLD",
    "DnsSeedSchedule",
    "Done",
    "QuerySeed",
    "SeedFileError",
    "SeedStep",
    "Wait",
    "dns_seed_entries",
    "dns_seed_source",
    "fixed_seed_entries",
    "fixed_seeds_reason",
    "fixed_seeds_source",
    "parse_fixed_seeds",
    "seed_query_name",
]

# --- Core's constants (src/net.cpp unless noted) -----------------------------------------

DNSSEEDS_TO_QUERY_AT_ONCE = 3
"""Seeds queried per batch when connections are low (Core ``DNSSEEDS_TO_QUERY_AT_ONCE``)."""
SEED_OUTBOUND_CONNECTION_THRESHOLD = 2
"""Full-outbound peers at which seeding stops (Core ``SEED_OUTBOUND_CONNECTION_THRESHOLD``)."""
DNSSEEDS_DELAY_FEW_PEERS = 11
"""Seconds to wait before a batch when addrman is small (Core ``DNSSEEDS_DELAY_FEW_PEERS``)."""
DNSSEEDS_DELAY_MANY_PEERS = 300
"""Seconds to wait before a batch when addrman holds many addresses (Core
``DNSSEEDS_DELAY_MANY_PEERS``, 5 minutes)."""
DNSSEEDS_DELAY_PEER_THRESHOLD = 1000
"""Addrman size from which the "many peers" delay applies (Core ``DNSSEEDS_DELAY_PEER_THRESHOLD``)."""
SEEDNODE_TIMEOUT = 30
"""Seconds given to ``-seednode`` peers before DNS seeding starts (Core ``SEEDNODE_TIMEOUT``,
local to ``ThreadDNSAddressSeed``)."""
SEEDNODE_POLL_INTERVAL = 0.5
"""Seconds between checks while waiting for seed nodes (Core ``sleep_for(500ms)``)."""
FIXED_SEEDS_DELAY = 60
"""Seconds after start after which fixed seeds are added (Core ``start + std::chrono::minutes{1}``
in ``ThreadOpenConnections``)."""
ADD_NEXT_SEEDNODE = 10
"""Seconds between two ``-seednode`` addr-fetches while full-outbound peers are few (Core
``ADD_NEXT_SEEDNODE``, local to ``ThreadOpenConnections``)."""
MAX_IPS_PER_DNS_SEED = 32
"""Most addresses taken from one DNS seed (Core ``nMaxIPs`` in ``ThreadDNSAddressSeed``)."""
DNS_SEED_LOOKUP_TIMEOUT = 10.0
"""Seconds allowed for one seed's A and AAAA lookups.  Not a Core constant: Core calls the
system's ``getaddrinfo``, whose timeout is the resolver's (glibc: 5 s x 2 attempts)."""

SEEDS_SERVICE_FLAGS = int(ServiceFlags.NODE_NETWORK | ServiceFlags.NODE_WITNESS)
"""Service bits asked of DNS seeds, 0x9 (Core ``SeedsServiceFlags()``, src/protocol.h)."""
SEEDS_ASSUMED_SERVICE_FLAGS = SEEDS_SERVICE_FLAGS | int(ServiceFlags.NODE_P2P_V2)
"""Service bits assumed for seeded addresses, 0x809 (Core ``SeedsAssumedServiceFlags()``,
src/protocol.h)."""

_ONE_DAY = 24 * 60 * 60

DNS_SEEDS: dict[str, tuple[str, ...]] = {
    name: tuple(f"{seed}." for seed in chain.dns_seeds) for name, chain in CHAINS.items()
}
"""DNS seed host names per chain (keys as in :data:`peerkeeper.net.chains.CHAINS`, built from
its ``dns_seeds``), Core ``vSeeds`` in src/kernel/chainparams.cpp, in Core's order and
spelled as Core spells them, with the trailing dot: the dot is part of the query name ``x9.<seed>`` and so of the
internal source address addrman hashes (:func:`dns_seed_source`).  Signet's seeds apply
to the default signet only (Core sets none for a custom ``-signetchallenge``).  Regtest
has Core's unresolvable ``dummySeed.invalid.``, there so that Core's functional tests can
exercise the seeding thread and its addr-fetch fallback; a ``.invalid`` name is answered
"no such name" locally (:mod:`peerkeeper.io.dns`), so it never leaves the machine."""

FIXED_SEEDS_FILES: dict[str, str | None] = {
    "main": "nodes_main.txt",
    "test": "nodes_test.txt",
    "testnet4": "nodes_testnet4.txt",
    "signet": "nodes_signet.txt",
    "regtest": None,
}
"""The ``contrib/seeds`` file each chain's fixed seeds are generated from (Core
``chainparams_seed_*`` in src/chainparamsseeds.h, used by src/kernel/chainparams.cpp;
default signet only; regtest has none)."""


# --- fixed seeds: the nodes_*.txt format -------------------------------------------------


class SeedFileError(ValueError):
    """A fixed-seed list could not be read (a ``ValueError``).

    Attributes: ``source`` (file name or ``"<text>"``), ``lineno`` (1-based line number,
    ``None`` if the error is not tied to a line), ``line`` (the line's text without its
    end-of-line, ``""`` if none) and ``reason``.  Core's ``generate-seeds.py`` likewise stops
    at the first bad line.
    """

    def __init__(self, source: str, lineno: int | None, line: str, reason: str) -> None:
        self.source = source
        self.lineno = lineno
        self.line = line
        self.reason = reason
        where = source if lineno is None else f"{source}:{lineno}"
        super().__init__(f"{where}: {reason}" + (f": {line!r}" if line else ""))


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")
_SEED_NETWORKS = frozenset({Network.IPV4, Network.IPV6, Network.TORV3, Network.I2P, Network.CJDNS})


def _is_torv2(host: str) -> bool:
    """A Tor v2 name (16 base32 characters + ".onion"), which Core's generator skips."""
    if not host.endswith(".onion"):
        return False
    try:
        return len(base64.b32decode(host[:-6], casefold=True)) == 10
    except (binascii.Error, ValueError):
        return False


def _parse_seed_line(line: str, default_port: int) -> Service | None:
    """One non-empty, comment-free line -> a Service, ``None`` to skip it (Tor v2).

    Raises ValueError (AddrError) with a reason."""
    if "%" in line:
        raise AddrError("an IPv6 zone index has no meaning in a seed list")
    if any(c.isspace() for c in line):
        raise AddrError("more than one field on the line")
    host, _, _ = split_host_port(line, default_port)
    if _is_torv2(host):
        return None
    svc = Service.parse(line, default_port, cjdns=True)
    if svc.addr.network not in _SEED_NETWORKS:  # pragma: no cover - parse yields no others
        raise AddrError(f"{svc.addr.network.name} is not a seed network")
    return svc


def parse_fixed_seeds(
    text: str | bytes, default_port: int = 0, *, source: str = "<text>"
) -> list[Service]:
    """Parse a fixed-seed list in Core's ``contrib/seeds/nodes_*.txt`` format.

    The rules of Core's ``contrib/seeds/generate-seeds.py`` (``process_nodes``,
    ``parse_spec``, ``name_to_bip155``): everything from a ``#`` to the end of the line is
    a comment; surrounding whitespace is stripped; blank lines are skipped; every other
    line is one endpoint::

        1.2.3.4:8333    [2001:db8::1]:8333    2001:db8::1    <56 base32>.onion:8333
        <52 base32>.b32.i2p:0    [fc32:17ea:e415:c3bf:9808:149d:b5a2:c9aa]:8333

    IPv6 addresses in fc00::/8 are CJDNS (``Network.CJDNS``), as the generator assumes.
    Tor v2 names are skipped (the generator drops them: no longer supported).  A line
    without a port gets ``default_port`` (the generator writes 0 there; the shipped lists
    always give one).  Unroutable addresses are kept: addrman refuses them later, as in
    Core.  Stricter than the generator, which trusts its input: Tor v3 checksums are
    checked, and a bare ``:`` without a port, an IPv6 zone index (``%``), a host name or
    a second field on the line is an error.

    Args:
        text: the file's text (``\\n``, ``\\r\\n`` or ``\\r`` line ends), or its bytes,
            which must be UTF-8.
        default_port: TCP port (0..65535) for lines that give none.
        source: a name for error messages (a path).

    Returns:
        The endpoints in file order (duplicates kept, as the generator keeps them).

    Raises:
        SeedFileError: on the first malformed line, naming its line number (a
            ``ValueError``; nothing is returned for the other lines), or bytes that are
            not UTF-8 (``lineno`` is where the bad byte is).
    """
    if isinstance(text, bytes):
        data = text
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            lineno = data.count(b"\n", 0, e.start) + 1
            raise SeedFileError(source, lineno, "", "not valid UTF-8") from e
    if not 0 <= default_port <= 0xFFFF:
        raise SeedFileError(source, None, "", f"default port {default_port} out of range")
    out: list[Service] = []
    for lineno, raw in enumerate(_LINE_SPLIT.split(text), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            svc = _parse_seed_line(line, default_port)
        except ValueError as e:
            raise SeedFileError(source, lineno, raw, str(e)) from e
        if svc is not None:
            out.append(svc)
    return out


# --- fixed seeds: when and what to add ---------------------------------------------------


def fixed_seeds_source() -> NetAddr:
    """The source address fixed seeds are added to addrman with: Core's
    ``local.SetInternal("fixedseeds")`` in ``ThreadOpenConnections`` (src/net.cpp)."""
    return NetAddr.internal("fixedseeds")


def fixed_seed_entries(
    seeds: Sequence[Service],
    networks: set[Network] | frozenset[Network] | None,
    now: float,
    rng: random.Random,
) -> list[AddrEntry]:
    """The addrman entries for the fixed seeds: Core ``ConvertSeeds`` (src/net.cpp) then the
    ``remove_if`` on ``fixed_seed_networks`` in ``ThreadOpenConnections``.

    Every seed gets ``SEEDS_ASSUMED_SERVICE_FLAGS`` (NODE_NETWORK | NODE_WITNESS |
    NODE_P2P_V2, Core ``SeedsAssumedServiceFlags()``) and a last-seen time between one and
    two weeks ago: ``floor(now) - 7 d - U[0, 7 d)`` in whole seconds (Core
    ``rng.rand_uniform_delay(Now<NodeSeconds>() - one_week, -one_week)``), i.e. in
    ``(now - 14 d, now - 7 d]``.  Like Core, times are drawn for every seed before the
    filter, and the order is the list's (Core does not shuffle).

    Args:
        seeds: the fixed seeds (from :func:`parse_fixed_seeds` or
            :func:`peerkeeper.io.addrdb.load_fixed_seeds`).
        networks: keep only seeds whose ``addr.get_network()`` is in this set -- Core's
            ``GetReachableEmptyNetworks()``: reachable networks with no address in
            addrman.  ``None`` keeps every seed.
        now: the current time, unix seconds.
        rng: the random source for the times.

    Returns:
        ``AddrEntry(time, services, service)`` per kept seed.
    """
    base = math.floor(now) - 7 * _ONE_DAY
    entries = [
        AddrEntry(base - rng.randrange(7 * _ONE_DAY), SEEDS_ASSUMED_SERVICE_FLAGS, svc)
        for svc in seeds
    ]
    if networks is None:
        return entries
    return [e for e in entries if e.service.addr.get_network() in networks]


FIXED_SEEDS_DISABLED_MSG = "Fixed seeds are disabled"
FIXED_SEEDS_AFTER_DELAY_MSG = (
    "Adding fixed seeds as 60 seconds have passed and addrman is empty for at least one "
    "reachable network"
)
FIXED_SEEDS_NO_OTHER_SOURCE_MSG = (
    "Adding fixed seeds as -dnsseed=0 (or IPv4/IPv6 connections are disabled via -onlynet) "
    "and neither -addnode nor -seednode are provided"
)


def fixed_seeds_reason(
    now: float,
    start_time: float,
    *,
    fixedseeds_enabled: bool,
    already_added: bool,
    empty_reachable_networks: set[Network] | frozenset[Network],
    dnsseed: bool,
    seednodes: bool,
    addnodes: bool,
) -> str | None:
    """Whether to add the fixed seeds now, with Core's log line as the reason; ``None`` if not.

    Core ``ThreadOpenConnections`` (src/net.cpp), each 500 ms loop turn: nothing unless
    ``-fixedseeds`` is on, they were not added yet (Core clears ``add_fixed_seeds``
    after adding) and some reachable network is empty in addrman.  Then they are added if
    more than ``FIXED_SEEDS_DELAY`` (60 s) have passed since the loop started (Core
    compares whole seconds, ``GetTime<seconds>() > start + 1 min``), or at once when no
    other source of addresses is configured: ``-dnsseed=0``, no ``-seednode`` and no
    added node (``-addnode`` or the ``addnode`` RPC).

    Args:
        now, start_time: unix seconds; ``start_time`` is when the open-connections loop
            began.
        fixedseeds_enabled: ``-fixedseeds``.
        already_added: the fixed seeds were added before.
        empty_reachable_networks: Core ``GetReachableEmptyNetworks()``.
        dnsseed: ``-dnsseed`` (after parameter interaction).
        seednodes: any ``-seednode`` configured.
        addnodes: any added node (Core ``m_added_node_params`` not empty).
    """
    if not fixedseeds_enabled or already_added or not empty_reachable_networks:
        return None
    if math.floor(now) > start_time + FIXED_SEEDS_DELAY:
        return FIXED_SEEDS_AFTER_DELAY_MSG
    if not dnsseed and not seednodes and not addnodes:
        return FIXED_SEEDS_NO_OTHER_SOURCE_MSG
    return None


# --- DNS seeds: names, sources, entries --------------------------------------------------


def seed_query_name(seed: str, flags: int = SEEDS_SERVICE_FLAGS) -> str:
    """The name asked of a DNS seed: ``"x%x.%s" % (flags, seed)``, e.g.
    ``"x9.dnsseed.bluematt.me."`` (Core ``strprintf("x%x.%s", SeedsServiceFlags(), seed)``
    in ``ThreadDNSAddressSeed``, src/net.cpp).  ``flags`` is a service-bit mask >= 0."""
    return f"x{flags:x}.{seed}"


def dns_seed_source(query_name: str) -> NetAddr:
    """The source address of a DNS seed's results: an internal address naming the query
    name (Core ``resolveSource.SetInternal(host)`` in ``ThreadDNSAddressSeed``).

    Raises:
        AddrError: ``query_name`` is empty.
    """
    return NetAddr.internal(query_name)


def dns_seed_entries(
    addrs: Sequence[NetAddr], port: int, now: float, rng: random.Random
) -> list[AddrEntry]:
    """The addrman entries for one DNS seed's answer (Core ``ThreadDNSAddressSeed``).

    Internal addresses are dropped and at most ``MAX_IPS_PER_DNS_SEED`` (32) are kept, in
    order (Core ``LookupIntern`` with ``nMaxIPs``, src/netbase.cpp).  Each gets ``port``
    (the chain's default port), ``SEEDS_ASSUMED_SERVICE_FLAGS`` (0x809) and a time
    between 3 and 7 days ago: ``floor(now) - 3 d - U[0, 4 d)`` whole seconds (Core
    ``rng.rand_uniform_delay(Now<NodeSeconds>() - 3 * 24h, -4 * 24h)``), i.e. in
    ``(now - 7 d, now - 3 d]``.

    Args:
        addrs: the resolved addresses.
        port: TCP port, 0..65535.
        now: unix seconds.
        rng: the random source for the times.

    Raises:
        AddrError: ``port`` out of range.
    """
    base = math.floor(now) - 3 * _ONE_DAY
    out: list[AddrEntry] = []
    for ip in addrs:
        if len(out) >= MAX_IPS_PER_DNS_SEED:
            break
        if ip.is_internal():
            continue
        out.append(
            AddrEntry(
                base - rng.randrange(4 * _ONE_DAY), SEEDS_ASSUMED_SERVICE_FLAGS, Service(ip, port)
            )
        )
    return out


# --- DNS seeds: the schedule (sans-IO ThreadDNSAddressSeed) ------------------------------


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep until ``until`` (unix seconds), then call ``next_step`` again.

    ``messages``: log lines (Core's wording) to emit before sleeping."""

    until: float
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuerySeed:
    """Query one DNS seed now, then report with :meth:`DnsSeedSchedule.seed_done`.

    ``seed`` is the seed's host name (what addr-fetch gets), ``query_name`` the name to
    resolve (``x9.<seed>``).  ``messages``: log lines to emit first."""

    seed: str
    query_name: str
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Done:
    """DNS seeding is over; ``messages`` are the final log lines."""

    messages: tuple[str, ...] = ()


SeedStep = Wait | QuerySeed | Done


class _Phase(enum.Enum):
    START = enum.auto()
    SEEDNODE_WAIT = enum.auto()
    NEXT_SEED = enum.auto()
    BATCH_WAIT = enum.auto()
    NETWORK_WAIT = enum.auto()
    QUERYING = enum.auto()
    DONE = enum.auto()


class DnsSeedSchedule:
    """Core ``CConnman::ThreadDNSAddressSeed`` (src/net.cpp) as a sans-IO state machine.

    Call :meth:`next_step` with the current time and a snapshot; it answers :class:`Wait`
    (sleep, then call again), :class:`QuerySeed` (resolve it, hand the addresses to
    addrman or make an addr-fetch, then call :meth:`seed_done`) or :class:`Done`.  A call
    before a ``Wait``'s ``until`` returns the same wait.  The branches, in Core's order:

    1. ``-seednode`` configured: log "-seednode enabled...", then every 0.5 s
       (``sleep_for(500ms)`` first): if more than ``SEEDNODE_TIMEOUT`` (30 s) have passed,
       log "Couldn't connect to enough peers via seed nodes..." and go on; if the
       full-outbound count reaches ``SEED_OUTBOUND_CONNECTION_THRESHOLD`` (2), remember it,
       log "P2P peers available. Finished fetching data from seed nodes." and go on.
    2. The seeds were shuffled (constructor, Core ``std::shuffle``).  ``seeds_right_now``
       is every seed if ``-forcednsseed`` or addrman is empty, else 0.  If the count from
       step 1 reached 2 and ``seeds_right_now`` is 0: :class:`Done` ("Skipping DNS seeds.
       Enough peers have been found").  The batch delay is ``DNSSEEDS_DELAY_MANY_PEERS``
       (300 s) if addrman holds at least ``DNSSEEDS_DELAY_PEER_THRESHOLD`` (1000)
       addresses, else ``DNSSEEDS_DELAY_FEW_PEERS`` (11 s), fixed here.
    3. Per seed: when ``seeds_right_now`` is 0 a new batch of ``DNSSEEDS_TO_QUERY_AT_ONCE``
       (3) starts, and if addrman is not empty, log "Waiting %d seconds before querying
       DNS seeds." and wait the delay in slices of at most 11 s; after each slice, if
       the full-outbound count is >= 2, :class:`Done` ("P2P peers available. Skipped DNS
       seeding." or, if some were found, "%d addresses found from DNS seeds" and
       "P2P peers available. Finished DNS seeding.").
    4. If the network is inactive: log "Waiting for network to be reactivated before
       querying DNS seeds." and wait 1 s at a time (at least once) until it is active.
    5. :class:`QuerySeed` ("Loading addresses from DNS seed %s"); the caller reports how
       many addresses it found (0 when it made an addr-fetch instead).
    6. After the last seed: :class:`Done` ("%d addresses found from DNS seeds").

    Args:
        seeds: the DNS seed host names (:data:`DNS_SEEDS`); copied and shuffled with ``rng``.
        rng: the random source for the shuffle.
        forcednsseed: ``-forcednsseed``.
        seednode_configured: any ``-seednode`` given.
        service_flags: the bits in the query name (``SEEDS_SERVICE_FLAGS``).

    Attributes: ``seeds`` (the shuffled list), ``found`` (addresses found so far).
    """

    def __init__(
        self,
        seeds: Sequence[str],
        rng: random.Random,
        *,
        forcednsseed: bool = False,
        seednode_configured: bool = False,
        service_flags: int = SEEDS_SERVICE_FLAGS,
    ) -> None:
        self.seeds: list[str] = list(seeds)
        rng.shuffle(self.seeds)
        self.found = 0
        self._forced = forcednsseed
        self._seednode = seednode_configured
        self._flags = service_flags
        self._phase = _Phase.START
        self._wake_at: float | None = None
        self._seednode_start = 0.0
        self._outbound = 0
        self._right_now = 0
        self._wait_time = DNSSEEDS_DELAY_FEW_PEERS
        self._to_wait = 0
        self._index = 0

    @property
    def done(self) -> bool:
        """True once :class:`Done` was returned."""
        return self._phase is _Phase.DONE

    def next_step(
        self,
        now: float,
        *,
        addrman_size: int,
        full_outbound_count: int,
        network_active: bool,
    ) -> SeedStep:
        """The next action at ``now`` (unix seconds) given addrman's size, the number of
        full-outbound peers and whether the network is active (see the class docstring).

        Raises:
            RuntimeError: the last :class:`QuerySeed` was not reported with :meth:`seed_done`.
        """
        phase = self._phase
        if phase is _Phase.QUERYING:
            raise RuntimeError("seed_done() was not called for the last QuerySeed")
        if phase is _Phase.DONE:
            return Done()
        if self._wake_at is not None:
            if now < self._wake_at:
                return Wait(self._wake_at)
            self._wake_at = None
        msgs: list[str] = []
        snap = (addrman_size, full_outbound_count, network_active)
        if phase is _Phase.START:
            if self._seednode:
                self._seednode_start = now
                msgs.append(corelog.SEEDNODE_ENABLED % SEEDNODE_TIMEOUT)
                self._phase = _Phase.SEEDNODE_WAIT
                return self._wait(now + SEEDNODE_POLL_INTERVAL, msgs)
            return self._begin_dns(now, msgs, snap)
        if phase is _Phase.SEEDNODE_WAIT:
            if now > self._seednode_start + SEEDNODE_TIMEOUT:
                msgs.append(corelog.SEEDNODE_GAVE_UP)
                return self._begin_dns(now, msgs, snap)
            self._outbound = full_outbound_count
            if self._outbound >= SEED_OUTBOUND_CONNECTION_THRESHOLD:
                msgs.append(corelog.SEEDNODE_FINISHED)
                return self._begin_dns(now, msgs, snap)
            return self._wait(now + SEEDNODE_POLL_INTERVAL, msgs)
        if phase is _Phase.BATCH_WAIT:
            if full_outbound_count >= SEED_OUTBOUND_CONNECTION_THRESHOLD:
                if self.found > 0:
                    msgs.append(corelog.DNS_ADDRESSES_FOUND % self.found)
                    msgs.append(corelog.DNS_FINISHED)
                else:
                    msgs.append(corelog.DNS_SKIPPED)
                return self._done(msgs)
            if self._to_wait > 0:
                return self._batch_slice(now, msgs)
            return self._check_network(now, msgs, network_active)
        if phase is _Phase.NETWORK_WAIT:
            if not network_active:
                return self._wait(now + 1, msgs)
            return self._query(msgs)
        return self._next_seed(now, msgs, snap)  # NEXT_SEED

    def seed_done(self, found: int) -> None:
        """Report the :class:`QuerySeed` just carried out: ``found`` addresses (>= 0; 0 when
        the seed answered nothing and an addr-fetch was made).

        Raises:
            RuntimeError: no query is outstanding.
            ValueError: ``found`` is negative.
        """
        if self._phase is not _Phase.QUERYING:
            raise RuntimeError("seed_done() without an outstanding QuerySeed")
        if found < 0:
            raise ValueError(f"found must be >= 0, got {found}")
        self.found += found
        self._right_now -= 1
        self._index += 1
        self._phase = _Phase.NEXT_SEED

    # -- branches ---------------------------------------------------------------------

    def _wait(self, until: float, msgs: list[str]) -> Wait:
        self._wake_at = until
        return Wait(until, tuple(msgs))

    def _done(self, msgs: list[str]) -> Done:
        self._phase = _Phase.DONE
        return Done(tuple(msgs))

    def _begin_dns(self, now: float, msgs: list[str], snap: tuple[int, int, bool]) -> SeedStep:
        addrman_size = snap[0]
        if self._forced or addrman_size == 0:
            self._right_now = len(self.seeds)
        if self._outbound >= SEED_OUTBOUND_CONNECTION_THRESHOLD and not self._right_now:
            msgs.append(corelog.DNS_SKIPPING)
            return self._done(msgs)
        self._wait_time = (
            DNSSEEDS_DELAY_MANY_PEERS
            if addrman_size >= DNSSEEDS_DELAY_PEER_THRESHOLD
            else DNSSEEDS_DELAY_FEW_PEERS
        )
        return self._next_seed(now, msgs, snap)

    def _next_seed(self, now: float, msgs: list[str], snap: tuple[int, int, bool]) -> SeedStep:
        if self._index >= len(self.seeds):
            msgs.append(corelog.DNS_ADDRESSES_FOUND % self.found)
            return self._done(msgs)
        if self._right_now == 0:
            self._right_now += DNSSEEDS_TO_QUERY_AT_ONCE
            if snap[0] > 0:
                msgs.append(corelog.DNS_WAITING % self._wait_time)
                self._to_wait = self._wait_time
                return self._batch_slice(now, msgs)
        return self._check_network(now, msgs, snap[2])

    def _batch_slice(self, now: float, msgs: list[str]) -> Wait:
        w = min(DNSSEEDS_DELAY_FEW_PEERS, self._to_wait)
        self._to_wait -= w
        self._phase = _Phase.BATCH_WAIT
        return self._wait(now + w, msgs)

    def _check_network(self, now: float, msgs: list[str], network_active: bool) -> SeedStep:
        if not network_active:
            msgs.append(corelog.DNS_WAITING_FOR_NETWORK)
            self._phase = _Phase.NETWORK_WAIT
            return self._wait(now + 1, msgs)
        return self._query(msgs)

    def _query(self, msgs: list[str]) -> QuerySeed:
        seed = self.seeds[self._index]
        msgs.append(corelog.DNS_LOADING % seed)
        self._phase = _Phase.QUERYING
        return QuerySeed(seed, seed_query_name(seed, self._flags), tuple(msgs))
