"""DNS for seeding: resolving DNS seeds and Core's ``ThreadDNSAddressSeed`` on asyncio.

The IO half of :mod:`peerkeeper.bitcoin.seeds` (which holds the pure schedule and the
conversion rules): :func:`make_resolver` builds a dnspython async resolver,
:func:`resolve_seed` asks a seed's A and AAAA records (Core ``LookupHost``,
src/netbase.cpp; failures are an empty list), and :class:`DnsSeeder` drives a
:class:`~peerkeeper.bitcoin.seeds.DnsSeedSchedule` with injected callbacks, clock and sleep
(Core ``CConnman::ThreadDNSAddressSeed``, src/net.cpp).

Nothing here opens a connection to a seeded address; addresses (and addr-fetch host
names) only go to the callbacks.  Log lines go to the ``peerkeeper.seeds`` logger.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from peerkeeper.bitcoin.seeds import (
    DNS_SEED_LOOKUP_TIMEOUT,
    MAX_IPS_PER_DNS_SEED,
    DnsSeedSchedule,
    QuerySeed,
    Wait,
    dns_seed_entries,
    dns_seed_source,
)
from peerkeeper.net.netaddr import NetAddr
from peerkeeper.wire.messages import AddrEntry

__all__ = ["DnsSeeder", "make_resolver", "resolve_seed"]

logger = logging.getLogger("peerkeeper.seeds")


def make_resolver(
    nameservers: Sequence[str] | None = None, port: int = 53
) -> dns.asyncresolver.Resolver:
    """A dnspython async resolver.

    With ``nameservers`` (IP address strings) it asks those, on UDP/TCP ``port``; without,
    it uses the system configuration (/etc/resolv.conf), falling back to 127.0.0.1 when
    there is none, as glibc's resolver does.

    Raises:
        ValueError: a nameserver is not an IP address.
    """
    if nameservers is None:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = list(nameservers)
    resolver.port = port
    return resolver


async def _query_type(
    resolver: dns.asyncresolver.Resolver, name: str, rdtype: str, timeout: float
) -> list[NetAddr]:
    try:
        async with asyncio.timeout(timeout):
            answer = await resolver.resolve(
                name, rdtype, search=False, lifetime=timeout, raise_on_no_answer=False
            )
    except (dns.exception.DNSException, TimeoutError, OSError) as e:
        logger.debug("DNS seed %s %s lookup failed: %s", name, rdtype, e.__class__.__name__)
        return []
    out: list[NetAddr] = []
    for rr in answer.rrset or ():
        if rr.rdtype == dns.rdatatype.A:
            out.append(NetAddr.parse(rr.address))
        elif rr.rdtype == dns.rdatatype.AAAA:
            # Core builds CNetAddr(in6_addr): v4-mapped -> IPv4, internal/torv2 prefixes
            # decoded the legacy way (SetLegacyIPv6).
            out.append(NetAddr.from_v1_bytes(ipaddress.IPv6Address(rr.address).packed))
    return out


async def resolve_seed(
    resolver: dns.asyncresolver.Resolver,
    name: str,
    *,
    timeout: float = DNS_SEED_LOOKUP_TIMEOUT,
    max_solutions: int = MAX_IPS_PER_DNS_SEED,
) -> list[NetAddr]:
    """Resolve a DNS seed's query name to addresses (Core ``LookupHost(host, nMaxIPs, true)``,
    src/netbase.cpp, which calls ``getaddrinfo``).

    Asks A and AAAA at once, each bounded by ``timeout`` seconds; returns the IPv4 results
    then the IPv6 ones (an AAAA holding ``::ffff:a.b.c.d`` is IPv4, as in Core), without
    internal addresses (Core ``LookupIntern`` refuses them), at most ``max_solutions``
    (0 = no limit).  NXDOMAIN, no answer, SERVFAIL, timeouts and socket errors give an
    empty list for that type and a debug log; nothing is raised for them.

    Args:
        resolver: a dnspython async resolver (see :func:`make_resolver`).
        name: the name, e.g. ``"x9.dnsseed.bluematt.me."``.
        timeout: seconds, > 0.
        max_solutions: the most addresses returned (Core ``nMaxIPs`` = 32).
    """
    v4, v6 = await asyncio.gather(
        _query_type(resolver, name, "A", timeout),
        _query_type(resolver, name, "AAAA", timeout),
    )
    out: list[NetAddr] = []
    for addr in v4 + v6:
        if max_solutions > 0 and len(out) >= max_solutions:
            break
        if not addr.is_internal():
            out.append(addr)
    return out


class DnsSeeder:
    """Core ``ThreadDNSAddressSeed`` (src/net.cpp) on asyncio: drives a
    :class:`DnsSeedSchedule` with injected callbacks and resolves with dnspython.

    For each :class:`QuerySeed`: if ``have_name_proxy()`` (a ``-proxy`` that resolves
    names), no DNS query is made and ``add_addr_fetch(seed)`` is called (Core
    ``AddAddrFetch(seed)``); otherwise ``x9.<seed>`` is resolved (:func:`resolve_seed`);
    addresses found go to ``add_addresses(entries, dns_seed_source(query_name))``
    (:func:`dns_seed_entries`, chain default port), and a seed that answers nothing gets
    ``add_addr_fetch(seed)``.  Log lines are Core's, at INFO.

    Args:
        seeds: DNS seed host names (``DNS_SEEDS[chain]``).
        default_port: the chain's P2P port, given to every resolved address.
        full_outbound_count: () -> number of full-relay outbound peers.
        addrman_size: () -> number of addresses in addrman.
        add_addresses: (entries, source) -> None; Core ``addrman.Add(vAdd, resolveSource)``.
        add_addr_fetch: (seed host name) -> None; Core ``AddAddrFetch``.
        network_active: () -> bool; Core ``fNetworkActive``.
        have_name_proxy: () -> bool; Core ``HaveNameProxy()``.
        forcednsseed: ``-forcednsseed``.
        seednode_configured: any ``-seednode`` given.
        resolver: a dnspython async resolver; ``None`` builds one with :func:`make_resolver`
            from ``nameservers`` and ``nameserver_port`` when :meth:`run` starts.
        nameservers, nameserver_port: see :func:`make_resolver`.
        timeout: seconds per seed lookup.
        clock: () -> unix seconds (``time.time``); used for the schedule and entry times.
        sleep: async (seconds) -> None (``asyncio.sleep``).
        rng: random source for the shuffle and the entry times.
    """

    def __init__(
        self,
        seeds: Sequence[str],
        *,
        default_port: int,
        full_outbound_count: Callable[[], int],
        addrman_size: Callable[[], int],
        add_addresses: Callable[[list[AddrEntry], NetAddr], None],
        add_addr_fetch: Callable[[str], None],
        network_active: Callable[[], bool] = lambda: True,
        have_name_proxy: Callable[[], bool] = lambda: False,
        forcednsseed: bool = False,
        seednode_configured: bool = False,
        resolver: dns.asyncresolver.Resolver | None = None,
        nameservers: Sequence[str] | None = None,
        nameserver_port: int = 53,
        timeout: float = DNS_SEED_LOOKUP_TIMEOUT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.Random()
        self.schedule = DnsSeedSchedule(
            seeds,
            self._rng,
            forcednsseed=forcednsseed,
            seednode_configured=seednode_configured,
        )
        self._port = default_port
        self._full_outbound_count = full_outbound_count
        self._addrman_size = addrman_size
        self._add_addresses = add_addresses
        self._add_addr_fetch = add_addr_fetch
        self._network_active = network_active
        self._have_name_proxy = have_name_proxy
        self._resolver = resolver
        self._nameservers = nameservers
        self._nameserver_port = nameserver_port
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep

    async def run(self) -> None:
        """Run until the schedule is :class:`Done`; cancel the task to stop early (Core's
        interrupt).  Exceptions from the callbacks propagate."""
        sched = self.schedule
        while True:
            now = self._clock()
            step = sched.next_step(
                now,
                addrman_size=self._addrman_size(),
                full_outbound_count=self._full_outbound_count(),
                network_active=self._network_active(),
            )
            for msg in step.messages:
                logger.info("%s", msg)
            if isinstance(step, Wait):
                await self._sleep(max(0.0, step.until - now))
            elif isinstance(step, QuerySeed):
                sched.seed_done(await self._query(step))
            else:
                return

    async def _query(self, step: QuerySeed) -> int:
        if self._have_name_proxy():
            self._add_addr_fetch(step.seed)
            return 0
        if self._resolver is None:
            self._resolver = make_resolver(self._nameservers, self._nameserver_port)
        addrs = await resolve_seed(self._resolver, step.query_name, timeout=self._timeout)
        if not addrs:
            logger.debug("DNS seed %s answered nothing; adding it as addr-fetch", step.seed)
            self._add_addr_fetch(step.seed)
            return 0
        entries = dns_seed_entries(addrs, self._port, self._clock(), self._rng)
        self._add_addresses(entries, dns_seed_source(step.query_name))
        return len(entries)
