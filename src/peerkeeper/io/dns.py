"""Name resolution (IO): DNS seeds with dnspython, peer host names with the loop's resolver.

The IO half of :mod:`peerkeeper.bitcoin.seeds` (the pure schedule, driven by
:class:`~peerkeeper.bitcoin.connman.ConnManCore`): :func:`make_resolver` builds a
dnspython async resolver, :func:`resolve_seed` asks a seed's A and AAAA records (Core
``LookupHost``, src/netbase.cpp; failures are an empty list); :func:`resolve_service`
turns ``host[:port]`` into a Service for a dial (Core ``Lookup``); :func:`lookup_host`
is the blocking lookup Core does once at startup for a proxy given by name. Nothing
here opens a connection to a resolved address.

Names under the special-use domain ``invalid.`` (RFC 6761 section 6.4: "name resolution
APIs and libraries SHOULD recognize 'invalid' names as special and SHOULD always return
immediate negative responses") are answered locally, so regtest's DNS seed
``dummySeed.invalid.`` and test names such as ``fakenodeaddr.fakedomain.invalid.`` never
reach a nameserver.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from peerkeeper.bitcoin.seeds import (
    DNS_SEED_LOOKUP_TIMEOUT,
    MAX_IPS_PER_DNS_SEED,
)
from peerkeeper.net.netaddr import AddrError, NetAddr, Service

__all__ = ["is_invalid_name", "lookup_host", "make_resolver", "resolve_seed", "resolve_service"]

logger = logging.getLogger("peerkeeper.seeds")


def is_invalid_name(name: str) -> bool:
    """True for ``invalid`` and any name under it, any case, with or without the final
    dot (RFC 6761 section 6.4): such a name has no address, and is not looked up."""
    labels = name.rstrip(".").lower().rsplit(".", 1)
    return labels[-1] == "invalid"


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
    if is_invalid_name(name):
        logger.debug("DNS seed %s: a .invalid name has no address (RFC 6761)", name)
        return []
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


async def resolve_service(name: str, default_port: int) -> Service:
    """Turn ``"host[:port]"`` into a :class:`~peerkeeper.net.netaddr.Service`.

    Numeric forms parse directly; a host name is resolved with the event loop's
    resolver (first result); a ``.invalid`` name is refused without a lookup. Raises
    ``ValueError`` when nothing resolves.
    """
    try:
        return Service.parse(name, default_port)
    except AddrError:
        pass
    host, _, port_s = name.rpartition(":")
    if not host or not port_s.isdigit():
        host, port = name, default_port
    else:
        port = int(port_s)
    host = host.strip("[]")
    if is_invalid_name(host):
        raise ValueError(f"cannot resolve {name!r}: a .invalid name has no address (RFC 6761)")
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ValueError(f"cannot resolve {name!r}: {e}") from None
    for _family, _type, _proto, _canon, sockaddr in infos:
        try:
            return Service(NetAddr.parse(str(sockaddr[0])), int(sockaddr[1]))
        except AddrError:
            continue
    raise ValueError(f"cannot resolve {name!r}")


def lookup_host(name: str) -> NetAddr | None:
    """The first address of host ``name``, or None: Core's ``Lookup(name, port, true)``
    as ``AppInitMain`` calls it for ``-proxy``, ``-onion`` and ``-i2psam`` given by name
    (src/init.cpp), through ``WrappedGetAddrInfo`` (src/netbase.cpp).

    Blocking (the system's ``getaddrinfo``: glibc's timeout is 5 s x 2 attempts), so it
    is for startup only. Asks for TCP addresses of any family with ``AI_ADDRCONFIG``, and
    once more without it when that fails (it may hide loopback-only addresses); internal
    addresses are skipped (Core ``LookupIntern``). A ``.invalid`` name gets None
    without a lookup. Nothing is raised.
    """
    if is_invalid_name(name):
        return None
    for flags in (socket.AI_ADDRCONFIG, 0):
        try:
            infos = socket.getaddrinfo(
                name, None, socket.AF_UNSPEC, socket.SOCK_STREAM, socket.IPPROTO_TCP, flags
            )
        except (OSError, UnicodeError):
            continue
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                addr = NetAddr.parse(str(sockaddr[0]))
            except AddrError:
                continue
            if not addr.is_internal():
                return addr
        return None
    return None
