"""bitcoin-cli's client-side reports, rebuilt from RPC results: ``-netinfo``, ``-getinfo``,
``-addrinfo``.

bitcoin-cli computes these three reports itself (src/bitcoin-cli.cpp): it calls one or
more RPCs (``getpeerinfo`` + ``getnetworkinfo``; ``getnetworkinfo`` +
``getblockchaininfo``; ``getaddrmaninfo``) and formats the replies. The functions here
take those replies, already decoded from JSON, and return the text bitcoin-cli prints
(without the final newline bitcoin-cli adds when printing): column widths, sort order,
units and quirks are Core's. Nothing here does IO or reads the clock: the caller passes
``now``.

Sources, all src/bitcoin-cli.cpp: ``NetinfoRequestHandler`` (``PrepareRequest`` for the
arguments, ``ProcessReply`` for the dashboard, ``m_help_doc`` for ``-netinfo help``),
``GetinfoRequestHandler`` and ``ParseGetInfoResult``, ``AddrinfoRequestHandler``;
JSON layout from src/univalue/lib/univalue_write.cpp.

Where Core's behaviour is not reproducible exactly:

* Core sorts the peers listing with ``std::sort`` on (direction, minimum ping), which
  is not stable: :func:`std_sort` is GCC's libstdc++ algorithm, so peers that tie come
  out as from a Core built with GCC (Linux releases); a build on libc++ (macOS) may
  order ties differently once there are more than 16 peers.
* Core reads ``mapped_as`` with ``getInt<int>``, so an AS number above 2**31 - 1 makes
  bitcoin-cli fail ("JSON integer out of range"); here it is printed.
* Numbers in ``-getinfo`` are printed by Core as the server wrote them in its JSON
  (``UniValue::getValStr``). Decoded Python numbers have lost that text, so they are
  written as Core's server writes them: amounts (``relayfee``) with 8 decimals
  (``ValueFromAmount``), other floats as ``%.16g`` (``UniValue::setFloat``).
"""

# The printf-style formats below are Core's strprintf format strings, kept verbatim so
# that each line can be checked against src/bitcoin-cli.cpp: hence no str.format.
# ruff: noqa: UP031

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from peerkeeper import __version__

__all__ = [
    "ADDRINFO_NEEDS_GETADDRMANINFO",
    "CLIENT_NAME",
    "CLIENT_VERSION",
    "MIN_NETINFO_SERVER_VERSION",
    "NETINFO_MAX_LEVEL",
    "NetinfoHelp",
    "addrinfo_result",
    "check_no_args",
    "format_addrinfo",
    "format_getinfo",
    "format_netinfo",
    "getinfo_result",
    "netinfo_help",
    "parse_netinfo_args",
    "render_getinfo",
    "std_sort",
    "univalue_write",
]

#: Core's ``NETINFO_MAX_LEVEL``: the highest ``-netinfo`` level.
NETINFO_MAX_LEVEL = 4
#: Core's ``CLIENT_NAME``, for the ``-netinfo`` header: here, this client.
CLIENT_NAME = "peerkeeper"
#: Core's ``FormatFullVersion()`` ("v29.0.0", "v29.99.0-abcdef"): this client's version.
CLIENT_VERSION = f"v{__version__}"
#: ``-netinfo`` refuses servers older than v0.21.0 (``networkinfo["version"] < 209900``).
MIN_NETINFO_SERVER_VERSION = 209900
#: Core's ``CURRENCY_UNIT`` (src/policy/feerate.h).
CURRENCY_UNIT = "BTC"
#: What bitcoin-cli -addrinfo says when the server has no ``getaddrmaninfo``
#: (RPC_METHOD_NOT_FOUND): the caller raises it.
ADDRINFO_NEEDS_GETADDRMANINFO = (
    "-addrinfo requires bitcoind v26.0 or later which supports getaddrmaninfo RPC. "
    "Please upgrade your node or use bitcoin-cli from the same version."
)

# See GetNetworkName() in src/netbase.cpp; indexes are Core's network ids.
_NETWORKS = ("not_publicly_routable", "ipv4", "ipv6", "onion", "i2p", "cjdns", "internal")
_NETWORK_SHORT_NAMES = ("npr", "ipv4", "ipv6", "onion", "i2p", "cjdns", "int")
_UNREACHABLE_NETWORK_IDS = (0, 6)  # not_publicly_routable, internal
_CHAIN_SUFFIX = {
    "main": "",
    "test": " testnet",
    "testnet4": " testnet4",
    "signet": " signet",
    "regtest": " regtest",
}
_DIGITS = re.compile(r"[0-9]+")
_T = TypeVar("_T")


class NetinfoHelp(Exception):
    """``-netinfo help`` (or ``h``) was asked for: bitcoin-cli prints :attr:`text` (with a
    newline) and exits 0 without calling the server (src/bitcoin-cli.cpp
    ``CommandLineRPC``). Raised by :func:`parse_netinfo_args`."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def netinfo_help(cli: str = "bitcoin-cli") -> str:
    """The ``-netinfo help`` text (src/bitcoin-cli.cpp ``NetinfoRequestHandler::m_help_doc``),
    with ``cli`` in place of ``bitcoin-cli`` in its examples."""
    text = _NETINFO_HELP_DOC
    return text if cli == "bitcoin-cli" else text.replace("bitcoin-cli", cli)


def parse_netinfo_args(args: Sequence[str], *, cli: str = "bitcoin-cli") -> tuple[int, bool]:
    """``-netinfo [level] [outonly]`` as bitcoin-cli parses it: returns ``(level,
    outonly)`` (src/bitcoin-cli.cpp ``CommandLineRPC`` and
    ``NetinfoRequestHandler::PrepareRequest``).

    * no argument: level 0;
    * first argument ``help`` or ``h``: raises :class:`NetinfoHelp` with the help text;
    * the level is a decimal integer 0-255 (``ToIntegral<uint8_t>``: digits only, no
      sign or spaces); above :data:`NETINFO_MAX_LEVEL` it is read as
      :data:`NETINFO_MAX_LEVEL`. Anything else raises ``ValueError`` with Core's
      "invalid -netinfo level argument" message (Core does not print the help for it);
    * a second argument must be ``outonly`` or ``o``, and only after a level above 0;
      otherwise ``ValueError`` with Core's "invalid -netinfo outonly argument" message;
    * further arguments are ignored.

    ``cli`` replaces ``bitcoin-cli`` in the messages.
    """
    if args and args[0] in ("h", "help"):
        raise NetinfoHelp(netinfo_help(cli))
    if not args:
        return 0, False
    n = _parse_uint8(args[0])
    if n is None:
        raise ValueError(
            f"invalid -netinfo level argument: {args[0]}\n"
            f"For more information, run: {cli} -netinfo help"
        )
    outonly = False
    if len(args) > 1:
        s = args[1]
        if n and s in ("o", "outonly"):
            outonly = True
        elif n:
            raise ValueError(
                f"invalid -netinfo outonly argument: {s}\n"
                f"For more information, run: {cli} -netinfo help"
            )
        else:
            raise ValueError(_outonly_needs_level(s, cli))
    return min(n, NETINFO_MAX_LEVEL), outonly


def check_no_args(option: str, args: Sequence[str]) -> None:
    """``-getinfo`` and ``-addrinfo`` take no arguments: ``ValueError("-getinfo takes no
    arguments")`` otherwise (src/bitcoin-cli.cpp ``GetinfoRequestHandler`` /
    ``AddrinfoRequestHandler::PrepareRequest``). ``option`` is ``"-getinfo"`` or
    ``"-addrinfo"``."""
    if args:
        raise ValueError(f"{option} takes no arguments")


def _parse_uint8(text: str) -> int | None:
    """Core's ``ToIntegral<uint8_t>``: ``std::from_chars`` over the whole string."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= 0xFF else None


def _outonly_needs_level(arg: str, cli: str) -> str:
    return (
        f"invalid -netinfo outonly argument: {arg}\n"
        "The outonly argument is only valid for a level greater than 0 (the first argument). "
        f"For more information, run: {cli} -netinfo help"
    )


# -- -netinfo ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Peer:
    """One row of the peers listing (Core's ``NetinfoRequestHandler::Peer``)."""

    addr: str
    sub_version: str
    conn_type: str
    network: str
    age: str
    services: str
    transport_protocol_type: str
    min_ping: float
    ping: float
    addr_processed: int
    addr_rate_limited: int
    last_blck: int
    last_recv: int
    last_send: int
    last_trxn: int
    id: int
    mapped_as: int
    version: int
    is_addr_relay_enabled: bool
    is_bip152_hb_from: bool
    is_bip152_hb_to: bool
    is_outbound: bool
    is_tx_relay: bool


def format_netinfo(
    level: int,
    outonly: bool,
    peers: Sequence[Mapping[str, Any]],
    networkinfo: Mapping[str, Any],
    *,
    now: float,
    chain: str,
    client_name: str = CLIENT_NAME,
    client_version: str = CLIENT_VERSION,
    check_server_version: bool = True,
) -> str:
    """bitcoin-cli ``-netinfo [level] [outonly]`` from ``getpeerinfo`` (``peers``) and
    ``getnetworkinfo`` (``networkinfo``): src/bitcoin-cli.cpp
    ``NetinfoRequestHandler::ProcessReply``.

    The header is ``"<client_name> client <client_version>[ <chain>] - server
    <protocolversion><subversion>[ - services <flags>]"``; levels 1-4 add the peers
    listing (sorted by direction, then minimum ping; 2 and 4 with addresses, 3 and 4 with
    versions), ``outonly`` keeps only outbound peers in it. Then the peer counts per
    reachable network (plus ``npr``/``int`` columns when such peers exist) with the
    block-relay and manual counts, the local services (level 0 only: the header has them
    otherwise) and the local addresses. ``now`` is the unix time (bitcoin-cli uses the
    system clock, not the server's mock time); ``chain`` is Core's chain name (main,
    test, testnet4, signet, regtest).

    Raises ``ValueError`` with Core's message for a level outside 0-255 (values above
    :data:`NETINFO_MAX_LEVEL` are read as it), for ``outonly`` at level 0, for an
    unknown chain, and, with ``check_server_version``, for a server older than v0.21.0
    (``networkinfo["version"] < 209900``), which Core refuses.
    """
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 0xFF:
        raise ValueError(
            f"invalid -netinfo level argument: {level}\n"
            "For more information, run: bitcoin-cli -netinfo help"
        )
    if outonly and level == 0:
        raise ValueError(_outonly_needs_level("outonly", "bitcoin-cli"))
    if chain not in _CHAIN_SUFFIX:
        raise ValueError(f"Unknown chain {chain}.")
    if check_server_version and int(networkinfo["version"]) < MIN_NETINFO_SERVER_VERSION:
        raise ValueError("-netinfo requires bitcoind server to be running v0.21.0 and up")
    details = min(level, NETINFO_MAX_LEVEL)
    time_now = int(now)

    # Peer counts by (in/out/total, network/total); uint16_t and uint8_t in Core.
    counts = [[0] * (len(_NETWORKS) + 1) for _ in range(3)]
    block_relay = manual = 0
    rows: list[_Peer] = []
    for peer in peers:
        network_id = _network_id(str(peer["network"]))
        if network_id is None:
            continue
        is_outbound = not peer["inbound"]
        conn_type = str(peer["connection_type"])
        for row in (int(is_outbound), 2):
            counts[row][network_id] += 1
            counts[row][len(_NETWORKS)] += 1
        block_relay += conn_type == "block-relay-only"
        manual += conn_type == "manual"
        if outonly and not is_outbound:
            continue
        if details:
            rows.append(_peer_row(peer, network_id, is_outbound, conn_type, time_now))
    block_relay &= 0xFF
    manual &= 0xFF

    services = (
        f" - services {_format_services(networkinfo['localservicesnames'])}" if details else ""
    )
    result = "%s client %s%s - server %i%s%s\n\n" % (
        client_name,
        client_version,
        _CHAIN_SUFFIX[chain],
        int(networkinfo["protocolversion"]),
        networkinfo["subversion"],
        services,
    )
    if details and rows:
        result += _peers_listing(rows, details, time_now)
    result += _counts_table(counts, networkinfo, block_relay, manual)
    if not details:
        result += "\n\nLocal services: " + _services_list(networkinfo["localservicesnames"])
    result += "\n\nLocal addresses"
    local_addrs = list(networkinfo["localaddresses"])
    if not local_addrs:
        result += ": n/a\n"
    else:
        width = max(len(str(a["address"])) + 1 for a in local_addrs)
        for a in local_addrs:
            result += "\n%-*s    port %6i    score %6i" % (
                width,
                a["address"],
                int(a["port"]),
                int(a["score"]),
            )
    return result


def _network_id(name: str) -> int | None:
    """Core's ``NetworkStringToId`` (None for ``UNKNOWN_NETWORK``)."""
    try:
        return _NETWORKS.index(name)
    except ValueError:
        return None


def _int_or(peer: Mapping[str, Any], key: str, default: int) -> int:
    value = peer.get(key)
    return default if value is None else int(value)


def _div(a: int, b: int) -> int:
    """C++ integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _peer_row(
    peer: Mapping[str, Any], network_id: int, is_outbound: bool, conn_type: str, time_now: int
) -> _Peer:
    conn_time = int(peer["conntime"])
    relaytxes = peer.get("relaytxes")
    min_ping = peer.get("minping")
    ping = peer.get("pingtime")
    transport = peer.get("transport_protocol_type")
    addr_relay = peer.get("addr_relay_enabled")
    return _Peer(
        addr=str(peer["addr"]),
        sub_version=str(peer["subver"]),
        conn_type=conn_type,
        network=_NETWORK_SHORT_NAMES[network_id],
        age="" if conn_time == 0 else str(_div(time_now - conn_time, 60)),
        services=_format_services(peer["servicesnames"]),
        transport_protocol_type="v1" if transport is None else str(transport),
        min_ping=-1.0 if min_ping is None else float(min_ping),
        ping=-1.0 if ping is None else float(ping),
        addr_processed=_int_or(peer, "addr_processed", 0),
        addr_rate_limited=_int_or(peer, "addr_rate_limited", 0),
        last_blck=int(peer["last_block"]),
        last_recv=int(peer["lastrecv"]),
        last_send=int(peer["lastsend"]),
        last_trxn=int(peer["last_transaction"]),
        id=int(peer["id"]),
        mapped_as=_int_or(peer, "mapped_as", 0),
        version=int(peer["version"]),
        is_addr_relay_enabled=False if addr_relay is None else bool(addr_relay),
        is_bip152_hb_from=bool(peer["bip152_hb_from"]),
        is_bip152_hb_to=bool(peer["bip152_hb_to"]),
        is_outbound=is_outbound,
        is_tx_relay=True if relaytxes is None else bool(relaytxes),
    )


def _peers_listing(peers: list[_Peer], details: int, time_now: int) -> str:
    """The peers table of levels 1-4, its header and its units line."""
    ordered = list(peers)
    std_sort(ordered, lambda a, b: (a.is_outbound, a.min_ping) < (b.is_outbound, b.min_ping))
    address_selected = details in (2, 4)
    version_selected = details in (3, 4)
    max_addr = max(len(p.addr) + 1 for p in peers)
    max_addrp = max([5] + [len(str(p.addr_processed)) for p in peers])
    max_addrl = max([6] + [len(str(p.addr_rate_limited)) for p in peers])
    max_age = max([5] + [len(p.age) for p in peers])
    max_id = max([2] + [len(str(p.id)) for p in peers])
    max_services = max([6] + [len(p.services) for p in peers])
    asmap_on = any(p.mapped_as != 0 for p in peers)

    out = "<->   type   net %*s  v  mping   ping send recv  txn  blk  hb %*s%*s%*s " % (
        max_services,
        "serv",
        max_addrp,
        "addrp",
        max_addrl,
        "addrl",
        max_age,
        "age",
    )
    if asmap_on:
        out += " asmap "
    out += "%*s %-*s%s\n" % (
        max_id,
        "id",
        max_addr if address_selected else 0,
        "address" if address_selected else "",
        "version" if version_selected else "",
    )
    for p in ordered:
        version = str(p.version) + p.sub_version
        transport = p.transport_protocol_type
        out += "%3s %6s %5s %*s %2s%7s%7s%5s%5s%5s%5s  %2s %*s%*s%*s%*s %*s %-*s%s\n" % (
            "out" if p.is_outbound else "in",
            _connection_type_for_netinfo(p.conn_type),
            p.network,
            max_services,
            p.services,
            transport[1] if len(transport) == 2 and transport[0] == "v" else " ",
            _ping_time_to_string(p.min_ping),
            _ping_time_to_string(p.ping),
            time_now - p.last_send if p.last_send else "",
            time_now - p.last_recv if p.last_recv else "",
            _minutes(time_now, p.last_trxn, "" if p.is_tx_relay else "*"),
            _minutes(time_now, p.last_blck, ""),
            ("." if p.is_bip152_hb_to else " ") + ("*" if p.is_bip152_hb_from else " "),
            max_addrp,
            p.addr_processed if p.addr_processed else ("" if p.is_addr_relay_enabled else "."),
            max_addrl,
            p.addr_rate_limited if p.addr_rate_limited else "",
            max_age,
            p.age,
            7 if asmap_on else 0,
            p.mapped_as if asmap_on and p.mapped_as else "",
            max_id,
            p.id,
            max_addr if address_selected else 0,
            p.addr if address_selected else "",
            version if version_selected and version != "0" else "",
        )
    out += "                %*s         ms     ms  sec  sec  min  min                %*s\n\n" % (
        max_services,
        "",
        max_age,
        "min",
    )
    return out


def _minutes(time_now: int, t: int, otherwise: str) -> str:
    """Minutes since ``t`` (C++ integer division), or ``otherwise`` when ``t`` is 0."""
    return str(_div(time_now - t, 60)) if t else otherwise


def _counts_table(
    counts: list[list[int]], networkinfo: Mapping[str, Any], block_relay: int, manual: int
) -> str:
    """The in/out/total peer counts per reachable network, with block and manual."""
    out = "     "
    reachable: list[int] = []
    for network in networkinfo["networks"]:
        if network["reachable"]:
            name = str(network["name"])
            network_id = _network_id(name)
            if network_id is None:
                continue
            out += "%8s" % name
            reachable.append(network_id)
    for network_id in _UNREACHABLE_NETWORK_IDS:
        if counts[2][network_id] & 0xFFFF == 0:
            continue
        out += "%8s" % _NETWORK_SHORT_NAMES[network_id]
        reachable.append(network_id)
    out += "   total   block"
    if manual:
        out += "  manual"
    for i, row in enumerate(("in", "out", "total")):
        out += "\n%-5s" % row
        for n in reachable:
            out += "%8i" % (counts[i][n] & 0xFFFF)
        out += "   %5i" % (counts[i][len(_NETWORKS)] & 0xFFFF)
        if i == 1:  # the outbound row has the block relay and manual peer counts
            out += "   %5i" % block_relay
            if manual:
                out += "   %5i" % manual
    return out


def _connection_type_for_netinfo(conn_type: str) -> str:
    """Core's ``ConnectionTypeForNetinfo``."""
    if conn_type == "outbound-full-relay":
        return "full"
    if conn_type == "block-relay-only":
        return "block"
    if conn_type in ("manual", "feeler"):
        return conn_type
    if conn_type == "addr-fetch":
        return "addr"
    if conn_type == "private-broadcast":
        return "priv"
    return ""


def _ping_time_to_string(seconds: float) -> str:
    """Core's ``PingTimeToString``: milliseconds, rounded half away from zero; "-" past
    999999 ms; "" when there is no ping (negative)."""
    if seconds < 0:
        return ""
    x = 1000 * seconds
    ms = math.floor(x)
    if x - ms >= 0.5:
        ms += 1
    if ms > 999999:
        return "-"
    return "-0" if ms == 0 and math.copysign(1.0, x) < 0 else str(ms)


def _ascii_lower(s: str) -> str:
    """Core's ``ToLower``: ASCII letters only."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


def _format_services(services: Iterable[Any]) -> str:
    """Core's ``FormatServices``: one letter per service name."""
    out = ""
    for name in services:
        s = str(name)
        out += "l" if s == "NETWORK_LIMITED" else "2" if s == "P2P_V2" else _ascii_lower(s[:1])
    return out


def _services_list(services: Iterable[Any]) -> str:
    """Core's ``ServicesList``: the names, comma-separated, lowercase, ``_`` as spaces."""
    return ", ".join(_ascii_lower(str(s)).replace("_", " ") for s in services)


# -- std::sort -------------------------------------------------------------------------


def std_sort(items: list[_T], less: Callable[[_T, _T], bool]) -> None:
    """Sort ``items`` in place exactly as GCC's libstdc++ ``std::sort`` does (introsort:
    median-of-three quicksort down to runs of 16, heapsort past 2*log2(n) levels, then
    insertion sort), so that elements that compare equal end up in the same order as in
    Core built with GCC: ``std::sort`` is not stable and -netinfo sorts with it."""
    n = len(items)
    if n > 1:
        _introsort_loop(items, 0, n, 2 * (n.bit_length() - 1), less)
        _final_insertion_sort(items, 0, n, less)


_S_THRESHOLD = 16


def _introsort_loop(
    v: list[_T], first: int, last: int, depth: int, less: Callable[[_T, _T], bool]
) -> None:
    while last - first > _S_THRESHOLD:
        if depth == 0:
            _heap_sort(v, first, last, less)
            return
        depth -= 1
        mid = first + (last - first) // 2
        _move_median_to_first(v, first, first + 1, mid, last - 1, less)
        cut = _unguarded_partition(v, first + 1, last, first, less)
        _introsort_loop(v, cut, last, depth, less)
        last = cut


def _move_median_to_first(
    v: list[_T], result: int, a: int, b: int, c: int, less: Callable[[_T, _T], bool]
) -> None:
    if less(v[a], v[b]):
        if less(v[b], v[c]):
            pick = b
        elif less(v[a], v[c]):
            pick = c
        else:
            pick = a
    elif less(v[a], v[c]):
        pick = a
    elif less(v[b], v[c]):
        pick = c
    else:
        pick = b
    v[result], v[pick] = v[pick], v[result]


def _unguarded_partition(
    v: list[_T], first: int, last: int, pivot: int, less: Callable[[_T, _T], bool]
) -> int:
    while True:
        while less(v[first], v[pivot]):
            first += 1
        last -= 1
        while less(v[pivot], v[last]):
            last -= 1
        if not first < last:
            return first
        v[first], v[last] = v[last], v[first]
        first += 1


def _final_insertion_sort(
    v: list[_T], first: int, last: int, less: Callable[[_T, _T], bool]
) -> None:
    if last - first > _S_THRESHOLD:
        _insertion_sort(v, first, first + _S_THRESHOLD, less)
        for i in range(first + _S_THRESHOLD, last):
            _unguarded_linear_insert(v, i, less)
    else:
        _insertion_sort(v, first, last, less)


def _insertion_sort(v: list[_T], first: int, last: int, less: Callable[[_T, _T], bool]) -> None:
    for i in range(first + 1, last):
        if less(v[i], v[first]):
            v[first : i + 1] = [v[i], *v[first:i]]
        else:
            _unguarded_linear_insert(v, i, less)


def _unguarded_linear_insert(v: list[_T], last: int, less: Callable[[_T, _T], bool]) -> None:
    val = v[last]
    while less(val, v[last - 1]):
        v[last] = v[last - 1]
        last -= 1
    v[last] = val


def _heap_sort(v: list[_T], first: int, last: int, less: Callable[[_T, _T], bool]) -> None:
    """libstdc++ ``__partial_sort(first, last, last)``: make_heap, then sort_heap."""
    length = last - first
    if length >= 2:
        parent = (length - 2) // 2
        while True:
            _adjust_heap(v, first, parent, length, v[first + parent], less)
            if parent == 0:
                break
            parent -= 1
    while last - first > 1:
        last -= 1
        value = v[last]
        v[last] = v[first]
        _adjust_heap(v, first, 0, last - first, value, less)


def _adjust_heap(
    v: list[_T], first: int, hole: int, length: int, value: _T, less: Callable[[_T, _T], bool]
) -> None:
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if less(v[first + child], v[first + child - 1]):
            child -= 1
        v[first + hole] = v[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        v[first + hole] = v[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(v[first + parent], value):
        v[first + hole] = v[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    v[first + hole] = value


# -- -getinfo ---------------------------------------------------------------------------


def getinfo_result(
    blockchaininfo: Mapping[str, Any], networkinfo: Mapping[str, Any]
) -> dict[str, Any]:
    """The object bitcoin-cli ``-getinfo`` builds from ``getnetworkinfo`` and
    ``getblockchaininfo`` before formatting it (src/bitcoin-cli.cpp
    ``GetinfoRequestHandler::ProcessReply``), in Core's key order: version, blocks,
    headers, verificationprogress, timeoffset, connections (in, out, total), networks,
    difficulty, chain, relayfee, warnings. Without a wallet (``getwalletinfo`` and
    ``getbalances`` fail), Core adds none of has_wallet, keypoolsize, walletname,
    unlocked_until, balance: neither does this. A missing field is ``None`` (Core's
    null)."""
    return {
        "version": networkinfo.get("version"),
        "blocks": blockchaininfo.get("blocks"),
        "headers": blockchaininfo.get("headers"),
        "verificationprogress": blockchaininfo.get("verificationprogress"),
        "timeoffset": networkinfo.get("timeoffset"),
        "connections": {
            "in": networkinfo.get("connections_in"),
            "out": networkinfo.get("connections_out"),
            "total": networkinfo.get("connections"),
        },
        "networks": networkinfo.get("networks"),
        "difficulty": blockchaininfo.get("difficulty"),
        "chain": blockchaininfo.get("chain"),
        "relayfee": networkinfo.get("relayfee"),
        "warnings": networkinfo.get("warnings"),
    }


def format_getinfo(
    blockchaininfo: Mapping[str, Any], networkinfo: Mapping[str, Any], *, color: bool = False
) -> str:
    """bitcoin-cli ``-getinfo`` from ``getblockchaininfo`` and ``getnetworkinfo``, no
    wallet loaded: :func:`render_getinfo` of :func:`getinfo_result`. ``color`` is
    ``-color=always`` (ANSI colours), off is ``-color=never`` (src/bitcoin-cli.cpp)."""
    return render_getinfo(getinfo_result(blockchaininfo, networkinfo), color=color)


def render_getinfo(result: Mapping[str, Any], *, color: bool = False) -> str:
    """The human-readable ``-getinfo`` text of a :func:`getinfo_result` object
    (src/bitcoin-cli.cpp ``ParseGetInfoResult``): chain, blocks, headers, verification
    progress (with a progress bar below 99%), difficulty; network connections, version,
    time offset, proxies grouped by proxy, minimum relay fee; wallet lines when the
    object has them; warnings.

    As Core, ``warnings`` is printed only when it is a string (the ``-deprecatedrpc=
    warnings`` form): Core's ``getValStr`` of the array form is empty, so the line reads
    "(none)" whatever the array holds.
    """
    reset = green = blue = yellow = magenta = cyan = ""
    if color:
        reset, green, blue, yellow = "\x1b[0m", "\x1b[32m", "\x1b[34m", "\x1b[33m"
        magenta, cyan = "\x1b[35m", "\x1b[36m"
    connections = result.get("connections") or {}

    out = f"{blue}Chain: {_val_str(result.get('chain'))}{reset}\n"
    out += f"Blocks: {_val_str(result.get('blocks'))}\n"
    out += f"Headers: {_val_str(result.get('headers'))}\n"
    progress = float(result["verificationprogress"])
    bar = ""
    if progress < 0.99:  # the progress bar only below 99%
        bar = _progress_bar(progress) + " "
    out += "Verification progress: %s%.4f%%\n" % (bar, progress * 100)
    out += f"Difficulty: {_val_str(result.get('difficulty'))}\n\n"
    out += "%sNetwork: in %s, out %s, total %s%s\n" % (
        green,
        _val_str(connections.get("in")),
        _val_str(connections.get("out")),
        _val_str(connections.get("total")),
        reset,
    )
    out += f"Version: {_val_str(result.get('version'))}\n"
    out += f"Time offset (s): {_val_str(result.get('timeoffset'))}\n"
    out += f"Proxies: {_proxies(result.get('networks') or [])}\n"
    out += "Min tx relay fee rate (%s/kvB): %s\n\n" % (
        CURRENCY_UNIT,
        _amount_str(result.get("relayfee")),
    )
    if result.get("has_wallet") is not None:
        name = _val_str(result.get("walletname"))
        out += f"{magenta}Wallet: {name if name else chr(34) * 2}{reset}\n"
        out += f"Keypool size: {_val_str(result.get('keypoolsize'))}\n"
        if result.get("unlocked_until") is not None:
            out += f"Unlocked until: {_val_str(result.get('unlocked_until'))}\n"
    if result.get("balance") is not None:
        out += f"{cyan}Balance:{reset} {_amount_str(result.get('balance'))}\n\n"
    balances = result.get("balances")
    if balances is not None:
        out += f"{cyan}Balances{reset}\n"
        width = max([10] + [len(_amount_str(v)) for v in balances.values()])
        for wallet, balance in balances.items():
            out += "%*s %s\n" % (width, _amount_str(balance), wallet if wallet else '""')
        out += "\n"
    warnings = _val_str(result.get("warnings"))
    out += f"{yellow}Warnings:{reset} {warnings if warnings else '(none)'}"
    return out


def _progress_bar(progress: float) -> str:
    """Core's ``GetProgressBar``: 5% steps of ▒ then ░ (nothing outside 0..1)."""
    if progress < 0 or progress > 1:
        return ""
    increment = 0.05
    bar = ""
    i = 0
    while i < progress / increment:
        bar += "\u2592"
        i += 1
    i = 0
    while i < (1 - progress) / increment:
        bar += "\u2591"
        i += 1
    return bar


def _proxies(networks: Iterable[Mapping[str, Any]]) -> str:
    """Each proxy once, in order of first use, with the networks using it."""
    by_proxy: dict[str, list[str]] = {}
    for network in networks:
        proxy = _val_str(network.get("proxy"))
        if proxy:
            by_proxy.setdefault(proxy, []).append(_val_str(network.get("name")))
    if not by_proxy:
        return "n/a"
    return ", ".join(f"{proxy} ({', '.join(names)})" for proxy, names in by_proxy.items())


def _val_str(value: Any) -> str:
    """Core's ``UniValue::getValStr`` of a decoded JSON value: strings as they are,
    numbers as Core's server writes them, "1"/"" for booleans, "" for null, arrays and
    objects."""
    if value is None or isinstance(value, list | dict):
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_str(value)
    return str(value)


def _float_str(value: float) -> str:
    """``UniValue::setFloat``: ``std::setprecision(16)``, i.e. ``%.16g``."""
    return "%.16g" % value


def _amount_str(value: Any) -> str:
    """An amount as Core's server writes it (``ValueFromAmount``: 8 decimals); strings
    (already Core's text) as they are."""
    if value is None or isinstance(value, bool | list | dict):
        return _val_str(value)
    if isinstance(value, str):
        return value
    sats = round(float(value) * 100_000_000) if isinstance(value, float) else value * 10**8
    sign = "-" if sats < 0 else ""
    q, r = divmod(abs(int(sats)), 100_000_000)
    return f"{sign}{q}.{r:08d}"


# -- -addrinfo --------------------------------------------------------------------------


def addrinfo_result(addrmaninfo: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """bitcoin-cli ``-addrinfo`` from ``getaddrmaninfo`` (current Core asks
    ``getaddrmaninfo``, no longer ``getnodeaddresses 0``): ``{"addresses_known":
    {network: total, ..., "total": all}}`` in the reply's key order, ``all_networks``
    renamed ``total`` (src/bitcoin-cli.cpp ``AddrinfoRequestHandler::ProcessReply``)."""
    known: dict[str, int] = {}
    for network, counts in addrmaninfo.items():
        known["total" if network == "all_networks" else network] = int(counts["total"])
    return {"addresses_known": known}


def format_addrinfo(addrmaninfo: Mapping[str, Mapping[str, Any]]) -> str:
    """The text bitcoin-cli ``-addrinfo`` prints: :func:`addrinfo_result` as JSON
    indented by 2 (src/bitcoin-cli.cpp ``ParseResult``, ``UniValue::write(2)``)."""
    return univalue_write(addrinfo_result(addrmaninfo), 2)


def univalue_write(value: Any, indent: int = 0) -> str:
    """JSON text as Core writes it (src/univalue/lib/univalue_write.cpp
    ``UniValue::write``): with ``indent``, one member per line and ``{\\n}`` for an
    empty object; floats as ``%.16g``; control characters, ``"``, ``\\`` and DEL
    escaped, other characters as they are."""
    return _write(value, indent, 1)


def _escape(s: str) -> str:
    out = []
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            short = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code)
            out.append(short if short else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _write(value: Any, indent: int, level: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_str(value)
    if isinstance(value, str):
        return f'"{_escape(value)}"'
    if isinstance(value, Mapping):
        items = [
            f'"{_escape(str(k))}":' + (" " if indent else "") + _write(v, indent, level + 1)
            for k, v in value.items()
        ]
        return _join("{", "}", items, indent, level)
    if isinstance(value, Iterable):
        return _join("[", "]", [_write(v, indent, level + 1) for v in value], indent, level)
    raise TypeError(f"not JSON: {value!r}")


def _join(open_: str, close: str, items: list[str], indent: int, level: int) -> str:
    if not indent:
        return open_ + ",".join(items) + close
    pad = " " * (indent * level)
    body = "".join(
        f"{pad}{item}{',' if i < len(items) - 1 else ''}\n" for i, item in enumerate(items)
    )
    return f"{open_}\n{body}{' ' * (indent * (level - 1))}{close}"


# -- -netinfo help ----------------------------------------------------------------------

#: src/bitcoin-cli.cpp ``NetinfoRequestHandler::m_help_doc``, built as Core builds it.
_NETINFO_HELP_DOC = (
    "-netinfo (level [outonly]) | help\n\n"
    "Returns a network peer connections dashboard with information from the remote server.\n"
    "This human-readable interface will change regularly and is not intended to be a stable API.\n"
    "Under the hood, -netinfo fetches the data by calling getpeerinfo and getnetworkinfo.\n"
    + (
        "An optional argument from 0 to %d can be passed for different peers listings; values above %d up to 255 are parsed as %d.\n"
        % (
            NETINFO_MAX_LEVEL,
            NETINFO_MAX_LEVEL,
            NETINFO_MAX_LEVEL,
        )
    )
    + 'If that argument is passed, an optional additional "outonly" argument may be passed to obtain the listing with outbound peers only.\n'
    'Pass "help" or "h" to see this detailed help documentation.\n'
    "If more than two arguments are passed, only the first two are read and parsed.\n"
    "Suggestion: use -netinfo with the Linux watch(1) command for a live dashboard; see example below.\n\n"
    "Arguments:\n"
    + (
        "1. level (integer 0-%d, optional)  Specify the info level of the peers dashboard (default 0):\n"
        % (NETINFO_MAX_LEVEL,)
    )
    + "                                  0 - Peer counts for each reachable network as well as for block relay peers\n"
    "                                      and manual peers, and the list of local addresses and ports\n"
    "                                  1 - Like 0 but preceded by a peers listing (without address and version columns)\n"
    "                                  2 - Like 1 but with an address column\n"
    "                                  3 - Like 1 but with a version column\n"
    "                                  4 - Like 1 but with both address and version columns\n"
    '2. outonly ("outonly" or "o", optional) Return the peers listing with outbound peers only, i.e. to save screen space\n'
    "                                        when a node has many inbound peers. Only valid if a level is passed.\n\n"
    'help ("help" or "h", optional) Print this help documentation instead of the dashboard.\n\n'
    "Result:\n\n"
    + (
        "* The peers listing in levels 1-%d displays all of the peers sorted by direction and minimum ping time:\n\n"
        % (NETINFO_MAX_LEVEL,)
    )
    + "  Column   Description\n"
    "  ------   -----------\n"
    "  <->      Direction\n"
    '           "in"  - inbound connections are those initiated by the peer\n'
    '           "out" - outbound connections are those initiated by us\n'
    "  type     Type of peer connection\n"
    '           "full"   - full relay, the default\n'
    '           "block"  - block relay; like full relay but does not relay transactions or addresses\n'
    '           "manual" - peer we manually added using RPC addnode or the -addnode/-connect config options\n'
    '           "feeler" - short-lived connection for testing addresses\n'
    '           "addr"   - address fetch; short-lived connection for requesting addresses\n'
    '           "priv"   - private broadcast; short-lived connection for broadcasting our transactions\n'
    '  net      Network the peer connected through ("ipv4", "ipv6", "onion", "i2p", "cjdns", or "npr" (not publicly routable))\n'
    "  serv     Services offered by the peer\n"
    '           "n" - NETWORK: peer can serve the full block chain\n'
    '           "b" - BLOOM: peer can handle bloom-filtered connections (see BIP 111)\n'
    '           "w" - WITNESS: peer can be asked for blocks and transactions with witness data (SegWit)\n'
    '           "c" - COMPACT_FILTERS: peer can handle basic block filter requests (see BIPs 157 and 158)\n'
    '           "l" - NETWORK_LIMITED: peer limited to serving only the last 288 blocks (~2 days)\n'
    '           "2" - P2P_V2: peer supports version 2 P2P transport protocol, as defined in BIP 324\n'
    '           "u" - UNKNOWN: unrecognized bit flag\n'
    "  v        Version of transport protocol used for the connection\n"
    "  mping    Minimum observed ping time, in milliseconds (ms)\n"
    "  ping     Last observed ping time, in milliseconds (ms)\n"
    "  send     Time since last message sent to the peer, in seconds\n"
    "  recv     Time since last message received from the peer, in seconds\n"
    "  txn      Time since last novel transaction received from the peer and accepted into our mempool, in minutes\n"
    '           "*" - we do not relay transactions to this peer (getpeerinfo "relaytxes" is false)\n'
    "  blk      Time since last novel block passing initial validity checks received from the peer, in minutes\n"
    "  hb       High-bandwidth BIP152 compact block relay\n"
    '           "." (to)   - we selected the peer as a high-bandwidth peer\n'
    '           "*" (from) - the peer selected us as a high-bandwidth peer\n'
    "  addrp    Total number of addresses processed, excluding those dropped due to rate limiting\n"
    '           "." - we do not relay addresses to this peer (getpeerinfo "addr_relay_enabled" is false)\n'
    "  addrl    Total number of addresses dropped due to rate limiting\n"
    "  age      Duration of connection to the peer, in minutes\n"
    "  asmap    Mapped AS (Autonomous System) number at the end of the BGP route to the peer, used for diversifying\n"
    "           peer selection (only displayed if the -asmap config option is set)\n"
    "  id       Peer index, in increasing order of peer connections since node startup\n"
    "  address  IP address and port of the peer\n"
    '  version  Peer version and subversion concatenated, e.g. "70016/Satoshi:21.0.0/"\n\n'
    "* The peer counts table displays the number of peers for each reachable network as well as\n"
    "  the number of block relay peers and manual peers.\n\n"
    "* The local addresses table lists each local address broadcast by the node, the port, and the score.\n\n"
    "Examples:\n\n"
    "Peer counts table of reachable networks and list of local addresses\n"
    "> bitcoin-cli -netinfo\n\n"
    "The same, preceded by a peers listing without address and version columns\n"
    "> bitcoin-cli -netinfo 1\n\n"
    "Full dashboard\n"
    + ("> bitcoin-cli -netinfo %d\n\n" % (NETINFO_MAX_LEVEL,))
    + "Full dashboard, but with outbound peers only\n"
    + ("> bitcoin-cli -netinfo %d outonly\n\n" % (NETINFO_MAX_LEVEL,))
    + "Full live dashboard, adjust --interval or --no-title as needed (Linux)\n"
    + ("> watch --interval 1 --no-title bitcoin-cli -netinfo %d\n\n" % (NETINFO_MAX_LEVEL,))
    + "See this help\n"
    "> bitcoin-cli -netinfo help\n"
)
