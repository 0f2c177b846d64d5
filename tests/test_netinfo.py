"""bitcoin-cli's -netinfo, -getinfo and -addrinfo reports (peerkeeper.daemon.netinfo).

The expected texts below were printed by Core's own code: NetinfoRequestHandler,
GetinfoRequestHandler + ParseGetInfoResult and AddrinfoRequestHandler copied out of
src/bitcoin-cli.cpp, compiled with Core's univalue and tinyformat, and fed the same
getpeerinfo / getnetworkinfo / getblockchaininfo / getaddrmaninfo replies as here (as
JSON text written as Core's server writes it), with the same clock, chain and client
name. Their layout follows test/functional/interface_bitcoin_cli.py's checks too (the
header starts with "<client> client ", level 0 has a "Local services:" line with
"network", levels above 0 move the services into the header as "services nwl2").
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

import pytest

from peerkeeper.daemon.netinfo import (
    NETINFO_MAX_LEVEL,
    NetinfoHelp,
    addrinfo_result,
    check_no_args,
    format_addrinfo,
    format_getinfo,
    format_netinfo,
    getinfo_result,
    netinfo_help,
    parse_netinfo_args,
    std_sort,
    univalue_write,
)

NOW = 1_700_000_000


def _peer(
    id: int,
    addr: str,
    network: str,
    conn_type: str,
    *,
    inbound: bool = False,
    services: tuple[str, ...] = ("NETWORK", "WITNESS", "NETWORK_LIMITED"),
    transport: str = "v1",
    minping: float | None = None,
    pingtime: float | None = None,
    lastsend: int = NOW - 5,
    lastrecv: int = NOW - 7,
    last_transaction: int = 0,
    last_block: int = 0,
    hb_to: bool = False,
    hb_from: bool = False,
    addr_relay: bool = True,
    addr_processed: int = 0,
    addr_rate_limited: int = 0,
    conntime: int = NOW - 3600,
    version: int = 70016,
    subver: str = "/Satoshi:27.0.0/",
    relaytxes: bool = True,
    mapped_as: int | None = None,
) -> dict[str, Any]:
    """One getpeerinfo entry with Core's field names (src/rpc/net.cpp getpeerinfo)."""
    p: dict[str, Any] = {
        "id": id,
        "addr": addr,
        "network": network,
        "services": "0000000000000c09",
        "servicesnames": list(services),
        "relaytxes": relaytxes,
        "last_inv_sequence": 0,
        "inv_to_send": 0,
        "lastsend": lastsend,
        "lastrecv": lastrecv,
        "last_transaction": last_transaction,
        "last_block": last_block,
        "bytessent": 1000,
        "bytesrecv": 2000,
        "conntime": conntime,
        "timeoffset": 0,
        "version": version,
        "subver": subver,
        "inbound": inbound,
        "bip152_hb_to": hb_to,
        "bip152_hb_from": hb_from,
        "presynced_headers": -1,
        "synced_headers": -1,
        "synced_blocks": -1,
        "inflight": [],
        "addr_relay_enabled": addr_relay,
        "addr_processed": addr_processed,
        "addr_rate_limited": addr_rate_limited,
        "permissions": [],
        "minfeefilter": 0.00001,
        "bytessent_per_msg": {},
        "bytesrecv_per_msg": {},
        "connection_type": conn_type,
        "transport_protocol_type": transport,
        "session_id": "",
    }
    if minping is not None:
        p["minping"] = minping
    if pingtime is not None:
        p["pingtime"] = pingtime
    if mapped_as is not None:
        p["mapped_as"] = mapped_as
    return p


ONION = "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion:8333"

#: Inbound and outbound; ipv4, ipv6, onion, not publicly routable; full relay, block
#: relay only, manual, feeler, addr-fetch; v1, v2 and detecting transports.
PEERS = [
    _peer(0, "203.0.113.5:8333", "ipv4", "outbound-full-relay", transport="v2",
          services=("NETWORK", "BLOOM", "WITNESS", "COMPACT_FILTERS", "NETWORK_LIMITED", "P2P_V2"),
          minping=0.0421, pingtime=0.0533, last_transaction=NOW - 125, last_block=NOW - 610,
          hb_to=True, addr_processed=1234, addr_rate_limited=17, conntime=NOW - 7260),
    _peer(1, "[2001:db8::1]:8333", "ipv6", "block-relay-only", minping=0.1105, pingtime=0.2,
          relaytxes=False, addr_relay=False, last_block=NOW - 60, hb_from=True, conntime=NOW - 600),
    _peer(2, ONION, "onion", "manual", transport="v2", minping=0.3331, pingtime=1.5,
          conntime=NOW - 125000, addr_processed=5, subver="/Satoshi:26.1.0/"),
    _peer(3, "198.51.100.7:51234", "ipv4", "inbound", inbound=True, minping=0.0105,
          pingtime=0.012, last_transaction=NOW - 30, conntime=NOW - 86400),
    _peer(4, "192.0.2.77:8333", "ipv4", "feeler", lastsend=0, lastrecv=0, conntime=NOW - 2,
          version=0, subver="", services=(), transport="detecting"),
    _peer(5, "127.0.0.1:40000", "not_publicly_routable", "inbound", inbound=True,
          minping=0.0005, pingtime=0.0007, services=("NETWORK", "WITNESS"), addr_relay=False),
    _peer(6, "[2001:db8::2]:38333", "ipv6", "addr-fetch", minping=0.09, pingtime=0.09,
          conntime=0),
]  # fmt: skip


def _network(name: str, reachable: bool, proxy: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "limited": not reachable,
        "reachable": reachable,
        "proxy": proxy,
        "proxy_randomize_credentials": bool(proxy),
    }


#: getnetworkinfo with Core's field names (src/rpc/net.cpp getnetworkinfo).
NETWORKINFO: dict[str, Any] = {
    "version": 280000,
    "subversion": "/Satoshi:28.0.0/",
    "protocolversion": 70016,
    "localservices": "0000000000000c09",
    "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
    "localrelay": True,
    "timeoffset": -1,
    "networkactive": True,
    "connections": 7,
    "connections_in": 2,
    "connections_out": 5,
    "networks": [
        _network("ipv4", True),
        _network("ipv6", True),
        _network("onion", True, "127.0.0.1:9050"),
        _network("i2p", False),
        _network("cjdns", False),
    ],
    "relayfee": 0.00001,
    "incrementalfee": 0.00001,
    "localaddresses": [
        {"address": "203.0.113.1", "port": 8333, "score": 4},
        {"address": "2001:db8::ff", "port": 8333, "score": 1},
    ],
    "warnings": [],
}

#: getblockchaininfo (src/rpc/blockchain.cpp), regtest after 101 blocks.
BLOCKCHAININFO: dict[str, Any] = {
    "chain": "regtest",
    "blocks": 101,
    "headers": 101,
    "bestblockhash": "3" * 64,
    "bits": "207fffff",
    "target": "7fffff" + "0" * 58,
    "difficulty": 4.656542373906925e-10,
    "time": NOW,
    "mediantime": NOW - 600,
    "verificationprogress": 1,
    "initialblockdownload": False,
    "chainwork": "0" * 62 + "cc",
    "size_on_disk": 30000,
    "pruned": False,
    "warnings": [],
}

ADDRMANINFO = {
    "ipv4": {"new": 1021, "tried": 45, "total": 1066},
    "ipv6": {"new": 310, "tried": 7, "total": 317},
    "onion": {"new": 2000, "tried": 12, "total": 2012},
    "i2p": {"new": 0, "tried": 0, "total": 0},
    "cjdns": {"new": 3, "tried": 0, "total": 3},
    "all_networks": {"new": 3334, "tried": 64, "total": 3398},
}


def netinfo(args: list[str], peers: list[dict[str, Any]] | None = None, **kw: Any) -> str:
    level, outonly = parse_netinfo_args(args)
    kw.setdefault("now", NOW)
    kw.setdefault("chain", "main")
    networkinfo = kw.pop("networkinfo", NETWORKINFO)
    return format_netinfo(level, outonly, PEERS if peers is None else peers, networkinfo, **kw)


# EXPECTED (generated by Core's code, see the module docstring)
#: bitcoin-cli -netinfo (main)
NETINFO_0 = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local services: network, witness, network limited, p2p v2",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -netinfo 1
NETINFO_1 = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age id ",
        " in          npr     nw  1      1      1    5    7                   .         60  5 ",
        " in         ipv4    nwl  1     11     12    5    7    0                      1440  3 ",
        "out feeler  ipv4                                                                0  4 ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  0 ",
        "out   addr  ipv6    nwl  1     90     90    5    7                                 6 ",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10  1 ",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083  2 ",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -netinfo 2
NETINFO_2 = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age id address                                                             ",
        " in          npr     nw  1      1      1    5    7                   .         60  5 127.0.0.1:40000                                                     ",
        " in         ipv4    nwl  1     11     12    5    7    0                      1440  3 198.51.100.7:51234                                                  ",
        "out feeler  ipv4                                                                0  4 192.0.2.77:8333                                                     ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  0 203.0.113.5:8333                                                    ",
        "out   addr  ipv6    nwl  1     90     90    5    7                                 6 [2001:db8::2]:38333                                                 ",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10  1 [2001:db8::1]:8333                                                  ",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083  2 vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion:8333 ",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -netinfo 3
NETINFO_3 = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age id version",
        " in          npr     nw  1      1      1    5    7                   .         60  5 70016/Satoshi:27.0.0/",
        " in         ipv4    nwl  1     11     12    5    7    0                      1440  3 70016/Satoshi:27.0.0/",
        "out feeler  ipv4                                                                0  4 ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  0 70016/Satoshi:27.0.0/",
        "out   addr  ipv6    nwl  1     90     90    5    7                                 6 70016/Satoshi:27.0.0/",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10  1 70016/Satoshi:27.0.0/",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083  2 70016/Satoshi:26.1.0/",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -regtest -netinfo 4
NETINFO_4_REGTEST = "\n".join(
    [
        "peerkeeper client v0.1.0 regtest - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age id address                                                             version",
        " in          npr     nw  1      1      1    5    7                   .         60  5 127.0.0.1:40000                                                     70016/Satoshi:27.0.0/",
        " in         ipv4    nwl  1     11     12    5    7    0                      1440  3 198.51.100.7:51234                                                  70016/Satoshi:27.0.0/",
        "out feeler  ipv4                                                                0  4 192.0.2.77:8333                                                     ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  0 203.0.113.5:8333                                                    70016/Satoshi:27.0.0/",
        "out   addr  ipv6    nwl  1     90     90    5    7                                 6 [2001:db8::2]:38333                                                 70016/Satoshi:27.0.0/",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10  1 [2001:db8::1]:8333                                                  70016/Satoshi:27.0.0/",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083  2 vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion:8333 70016/Satoshi:26.1.0/",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -netinfo 4 outonly
NETINFO_4_OUTONLY = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age id address                                                             version",
        "out feeler  ipv4                                                                0  4 192.0.2.77:8333                                                     ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  0 203.0.113.5:8333                                                    70016/Satoshi:27.0.0/",
        "out   addr  ipv6    nwl  1     90     90    5    7                                 6 [2001:db8::2]:38333                                                 70016/Satoshi:27.0.0/",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10  1 [2001:db8::1]:8333                                                  70016/Satoshi:27.0.0/",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083  2 vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd.onion:8333 70016/Satoshi:26.1.0/",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -netinfo 1, two peers with a mapped AS (-asmap)
NETINFO_1_ASMAP = "\n".join(
    [
        "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "<->   type   net   serv  v  mping   ping send recv  txn  blk  hb addrp addrl  age  asmap id ",
        " in          npr     nw  1      1      1    5    7                   .         60         5 ",
        " in         ipv4    nwl  1     11     12    5    7    0                      1440  13335  3 ",
        "out feeler  ipv4                                                                0         4 ",
        "out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .   1234    17  121  64496  0 ",
        "out   addr  ipv6    nwl  1     90     90    5    7                                        6 ",
        "out  block  ipv6    nwl  1    111    200    5    7    *    1   *     .         10         1 ",
        "out manual onion    nwl  2    333   1500    5    7                   5       2083         2 ",
        "                               ms     ms  sec  sec  min  min                  min",
        "",
        "         ipv4    ipv6   onion     npr   total   block  manual",
        "in          1       0       0       1       2",
        "out         2       2       1       0       5       1       1",
        "total       3       2       1       1       7",
        "",
        "Local addresses",
        "203.0.113.1      port   8333    score      4",
        "2001:db8::ff     port   8333    score      1",
    ]
)

#: bitcoin-cli -testnet4 -netinfo 4: no peer, no local address
NETINFO_EMPTY = "\n".join(
    [
        "peerkeeper client v0.1.0 testnet4 - server 70016/Satoshi:28.0.0/ - services nwl2",
        "",
        "         ipv4    ipv6   onion   total   block",
        "in          0       0       0       0",
        "out         0       0       0       0       0",
        "total       0       0       0       0",
        "",
        "Local addresses: n/a",
        "",
    ]
)

#: bitcoin-cli -regtest -getinfo -color=never, no wallet
GETINFO = "\n".join(
    [
        "Chain: regtest",
        "Blocks: 101",
        "Headers: 101",
        "Verification progress: 100.0000%",
        "Difficulty: 4.656542373906925e-10",
        "",
        "Network: in 2, out 5, total 7",
        "Version: 280000",
        "Time offset (s): -1",
        "Proxies: 127.0.0.1:9050 (onion)",
        "Min tx relay fee rate (BTC/kvB): 0.00001000",
        "",
        "Warnings: (none)",
    ]
)

#: bitcoin-cli -getinfo -color=always: in IBD, proxies, a warning (the deprecated string form)
GETINFO_IBD_COLOR = "\n".join(
    [
        "\u001b[34mChain: main\u001b[0m",
        "Blocks: 101",
        "Headers: 101",
        "Verification progress: \u2592\u2592\u2592\u2592\u2592\u2592\u2592\u2592\u2592\u2592\u2591\u2591\u2591\u2591\u2591\u2591\u2591\u2591\u2591\u2591\u2591 45.6700%",
        "Difficulty: 110568428300952.7",
        "",
        "\u001b[32mNetwork: in 2, out 5, total 7\u001b[0m",
        "Version: 280000",
        "Time offset (s): -1",
        "Proxies: 127.0.0.1:9050 (ipv4, ipv6, onion, cjdns), 127.0.0.1:7656 (i2p)",
        "Min tx relay fee rate (BTC/kvB): 0.00001000",
        "",
        "\u001b[33mWarnings:\u001b[0m This is a pre-release test build - use at your own risk",
    ]
)

#: bitcoin-cli -addrinfo
ADDRINFO = "\n".join(
    [
        "{",
        '  "addresses_known": {',
        '    "ipv4": 1066,',
        '    "ipv6": 317,',
        '    "onion": 2012,',
        '    "i2p": 0,',
        '    "cjdns": 3,',
        '    "total": 3398',
        "  }",
        "}",
    ]
)

#: sha256 of Core's -netinfo help text (NetinfoRequestHandler::m_help_doc)
NETINFO_HELP_SHA256 = "449f367661af90d436f33f23dbecac70fe4d336ca2738907137803f37e6a24f1"


#: The order in which GCC's std::sort (compiled, run) leaves test_std_sort_is_libstdcxx's 20 keys
STD_SORT_20 = [19, 1, 18, 15, 12, 9, 6, 3, 8, 5, 11, 14, 17, 2, 7, 10, 4, 13, 16, 0]


# -- -netinfo ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "chain", "expected"),
    [
        ([], "main", NETINFO_0),
        (["1"], "main", NETINFO_1),
        (["2"], "main", NETINFO_2),
        (["3"], "main", NETINFO_3),
        (["4"], "regtest", NETINFO_4_REGTEST),
        (["4", "outonly"], "main", NETINFO_4_OUTONLY),
    ],
)
def test_netinfo_levels_match_core(args: list[str], chain: str, expected: str) -> None:
    assert netinfo(args, chain=chain) == expected


def test_netinfo_level_0_counts_services_and_addresses() -> None:
    out = NETINFO_0.split("\n")
    # Core's functional test: header, then a "Local services:" line naming "network".
    assert netinfo([]).split("\n") == out
    assert out[0] == "peerkeeper client v0.1.0 - server 70016/Satoshi:28.0.0/"
    assert any(re.match(r"^Local services:.+network", line) for line in out)
    # Reachable networks as columns, then npr (one not publicly routable peer), then
    # total/block/manual; the outbound row has the block-relay and manual counts.
    assert out[2] == "         ipv4    ipv6   onion     npr   total   block  manual"
    assert out[4] == "out         2       2       1       0       5       1       1"


def test_netinfo_details_move_services_into_header() -> None:
    for level in ("1", "2", "3", "4"):
        lines = netinfo([level]).split("\n")
        assert re.match(r"^peerkeeper client.+services nwl2?$", lines[0])
        assert not any(line.startswith("Local services:") for line in lines)


def test_netinfo_sorts_by_direction_then_min_ping() -> None:
    rows = netinfo(["1"]).split("\n")[3:10]
    ids = [int(r.split()[-1]) for r in rows]
    # Inbound first (5: 0.5 ms, 3: 10.5 ms), then outbound by minping, the feeler
    # without a ping (-1) first.
    assert ids == [5, 3, 4, 0, 6, 1, 2]


def test_netinfo_columns_and_units() -> None:
    rows = {int(r.split()[-1]): r for r in netinfo(["1"]).split("\n")[3:10]}
    full = rows[0]
    assert full.startswith("out   full  ipv4 nbwcl2  2     42     53    5    7    2   10  .")
    block = rows[1]
    assert " *    1   *     ." in block  # no tx relay, hb from, no addr relay
    assert rows[4].startswith("out feeler  ipv4        ")  # detecting transport: blank v
    assert rows[6].rstrip().endswith("6")  # addr-fetch with conntime 0: no age


def test_netinfo_outonly_keeps_counts_of_inbound() -> None:
    out = netinfo(["4", "o"])
    assert out == NETINFO_4_OUTONLY
    assert " in " not in out.split("\n\n")[1]
    assert "in          1       0       0       1       2" in out


def test_netinfo_asmap_column() -> None:
    peers = copy.deepcopy(PEERS)
    peers[0]["mapped_as"] = 64496
    peers[3]["mapped_as"] = 13335
    assert netinfo(["1"], peers) == NETINFO_1_ASMAP
    assert "  asmap " in NETINFO_1_ASMAP.split("\n")[2]


def test_netinfo_no_peers_no_local_address() -> None:
    networkinfo = copy.deepcopy(NETWORKINFO)
    networkinfo["localaddresses"] = []
    out = netinfo(["4"], [], chain="testnet4", networkinfo=networkinfo)
    assert out == NETINFO_EMPTY
    assert out.endswith("Local addresses: n/a\n")
    assert "<->" not in out


def test_netinfo_levels_above_max_read_as_max() -> None:
    assert NETINFO_MAX_LEVEL == 4
    assert netinfo(["255"], chain="regtest") == NETINFO_4_REGTEST
    assert format_netinfo(9, False, PEERS, NETWORKINFO, now=NOW, chain="regtest") == (
        NETINFO_4_REGTEST
    )


def test_netinfo_ping_rounding_and_large_values() -> None:
    peers = [
        _peer(
            7, "203.0.113.9:8333", "ipv4", "outbound-full-relay", minping=0.0005, pingtime=1000.0
        ),
        _peer(8, "203.0.113.10:8333", "ipv4", "outbound-full-relay", minping=0.0015, pingtime=0.0),
    ]
    rows = netinfo(["1"], peers).split("\n")[3:5]
    # Half away from zero: 0.5 ms -> 1, 1.5 ms -> 2; past 999999 ms: "-".
    assert rows[0].split()[5:7] == ["1", "-"]
    assert rows[1].split()[5:7] == ["2", "0"]


def test_netinfo_refuses_old_servers_as_core() -> None:
    old = dict(NETWORKINFO, version=209899)
    with pytest.raises(
        ValueError, match=r"^-netinfo requires bitcoind server to be running v0\.21\.0 and up$"
    ):
        netinfo([], networkinfo=old)
    # peerkeeperd reports version 100 (0.1.0): the caller can skip Core's check.
    ours = dict(NETWORKINFO, version=100)
    assert netinfo([], networkinfo=ours, check_server_version=False) == NETINFO_0


def test_netinfo_client_version_and_unknown_networks() -> None:
    peers = [*PEERS, _peer(9, "x:1", "weird", "inbound", inbound=True)]  # skipped, as Core
    out = netinfo([], peers, client_name="Bitcoin Core", client_version="v28.0.0")
    assert out.split("\n")[0] == "Bitcoin Core client v28.0.0 - server 70016/Satoshi:28.0.0/"
    assert out.split("\n")[1:] == NETINFO_0.split("\n")[1:]


def test_format_netinfo_bad_arguments() -> None:
    message = (
        "invalid -netinfo level argument: 256\nFor more information, run: bitcoin-cli -netinfo help"
    )
    with pytest.raises(ValueError) as e:
        format_netinfo(256, False, PEERS, NETWORKINFO, now=NOW, chain="main")
    assert str(e.value) == message
    with pytest.raises(ValueError, match="invalid -netinfo level argument: -1"):
        format_netinfo(-1, False, PEERS, NETWORKINFO, now=NOW, chain="main")
    with pytest.raises(ValueError, match="only valid for a level greater than 0"):
        format_netinfo(0, True, PEERS, NETWORKINFO, now=NOW, chain="main")
    with pytest.raises(ValueError, match=r"^Unknown chain mainnet\.$"):
        format_netinfo(0, False, PEERS, NETWORKINFO, now=NOW, chain="mainnet")


# -- -netinfo arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (0, False)),
        (["0"], (0, False)),
        (["1"], (1, False)),
        (["4"], (4, False)),
        (["5"], (4, False)),
        (["007"], (4, False)),
        (["255"], (4, False)),
        (["2", "o"], (2, True)),
        (["3", "outonly"], (3, True)),
        (["1", "outonly", "ignored", "too"], (1, True)),
    ],
)
def test_parse_netinfo_args(args: list[str], expected: tuple[int, bool]) -> None:
    assert parse_netinfo_args(args) == expected


@pytest.mark.parametrize("level", ["256", "-1", "+1", " 1", "1 ", "x", "", "1.0", "0x1", "\u0661"])
def test_parse_netinfo_args_bad_level(level: str) -> None:
    """ToIntegral<uint8_t>: plain ASCII digits, 0-255; Core errors out (no help)."""
    with pytest.raises(ValueError) as e:
        parse_netinfo_args([level, "o"])
    assert str(e.value) == (
        f"invalid -netinfo level argument: {level}\n"
        "For more information, run: bitcoin-cli -netinfo help"
    )


def test_parse_netinfo_args_bad_outonly() -> None:
    with pytest.raises(ValueError) as e:
        parse_netinfo_args(["2", "out"])
    assert str(e.value) == (
        "invalid -netinfo outonly argument: out\nFor more information, run: bitcoin-cli -netinfo help"
    )
    with pytest.raises(ValueError) as e:
        parse_netinfo_args(["0", "outonly"], cli="peerkeeper rpc")
    assert str(e.value) == (
        "invalid -netinfo outonly argument: outonly\n"
        "The outonly argument is only valid for a level greater than 0 (the first argument). "
        "For more information, run: peerkeeper rpc -netinfo help"
    )


@pytest.mark.parametrize("args", [["help"], ["h"], ["h", "x"], ["help", "4"]])
def test_parse_netinfo_args_help(args: list[str]) -> None:
    with pytest.raises(NetinfoHelp) as e:
        parse_netinfo_args(args)
    text = e.value.text
    assert text == netinfo_help()
    assert hashlib.sha256(text.encode()).hexdigest() == NETINFO_HELP_SHA256
    lines = text.split("\n")
    assert lines[0] == "-netinfo (level [outonly]) | help"
    assert (
        "An optional argument from 0 to 4 can be passed for different peers listings; "
        "values above 4 up to 255 are parsed as 4."
    ) in lines
    assert (
        '           "priv"   - private broadcast; short-lived connection for broadcasting our transactions'
        in lines
    )
    assert text.endswith("See this help\n> bitcoin-cli -netinfo help\n")


def test_netinfo_help_with_our_cli_name() -> None:
    text = netinfo_help("peerkeeper rpc")
    assert "bitcoin-cli" not in text
    assert text.endswith("> peerkeeper rpc -netinfo help\n")
    assert "> watch --interval 1 --no-title peerkeeper rpc -netinfo 4\n" in text


# -- -getinfo -----------------------------------------------------------------------------


def test_getinfo_matches_core() -> None:
    assert format_getinfo(BLOCKCHAININFO, NETWORKINFO) == GETINFO
    lines = GETINFO.split("\n")
    assert "Balance" not in GETINFO and "Wallet" not in GETINFO  # no wallet loaded
    assert lines[3] == "Verification progress: 100.0000%"  # no bar from 99% on
    assert lines[-1] == "Warnings: (none)"


def test_getinfo_ibd_proxies_warning_and_color() -> None:
    blockchaininfo = dict(BLOCKCHAININFO, verificationprogress=0.4567, chain="main")
    blockchaininfo["difficulty"] = 110568428300952.7
    networkinfo = copy.deepcopy(NETWORKINFO)
    networkinfo["warnings"] = "This is a pre-release test build - use at your own risk"
    for n in networkinfo["networks"]:
        n["proxy"] = "127.0.0.1:7656" if n["name"] == "i2p" else "127.0.0.1:9050"
    out = format_getinfo(blockchaininfo, networkinfo, color=True)
    assert out == GETINFO_IBD_COLOR
    # interface_bitcoin_cli.py: "-getinfo and bitcoin-cli return all proxies"
    assert "Proxies: 127.0.0.1:9050 (ipv4, ipv6, onion, cjdns), 127.0.0.1:7656 (i2p)" in out
    assert "\x1b[0m" in out
    assert "\x1b[" not in format_getinfo(blockchaininfo, networkinfo)


def test_getinfo_fields_as_functional_test() -> None:
    """interface_bitcoin_cli.py's cli_get_info_string_to_dict checks, on our replies."""
    info: dict[str, str] = {}
    for line in format_getinfo(BLOCKCHAININFO, NETWORKINFO).splitlines():
        if ": " in line:
            key, value = line.split(": ")
            info[key.strip()] = value.strip()
    assert int(info["Version"]) == NETWORKINFO["version"]
    assert info["Verification progress"] == "%.4f%%" % (
        BLOCKCHAININFO["verificationprogress"] * 100
    )
    assert int(info["Blocks"]) == BLOCKCHAININFO["blocks"]
    assert int(info["Headers"]) == BLOCKCHAININFO["headers"]
    assert int(info["Time offset (s)"]) == NETWORKINFO["timeoffset"]
    assert info["Network"] == "in 2, out 5, total 7"
    assert float(info["Difficulty"]) == BLOCKCHAININFO["difficulty"]
    assert info["Chain"] == BLOCKCHAININFO["chain"]
    assert float(info["Min tx relay fee rate (BTC/kvB)"]) == NETWORKINFO["relayfee"]


def test_getinfo_result_is_cores_object() -> None:
    result = getinfo_result(BLOCKCHAININFO, NETWORKINFO)
    assert list(result) == [
        "version",
        "blocks",
        "headers",
        "verificationprogress",
        "timeoffset",
        "connections",
        "networks",
        "difficulty",
        "chain",
        "relayfee",
        "warnings",
    ]
    assert result["connections"] == {"in": 2, "out": 5, "total": 7}
    assert result["networks"] is NETWORKINFO["networks"]
    assert "has_wallet" not in result and "balance" not in result


def test_getinfo_progress_bar_steps() -> None:
    def bar(progress: float) -> str:
        line = format_getinfo(dict(BLOCKCHAININFO, verificationprogress=progress), NETWORKINFO)
        return line.split("\n")[3]

    assert bar(0) == "Verification progress: " + "\u2591" * 20 + " 0.0000%"
    assert bar(0.05) == "Verification progress: \u2592" + "\u2591" * 19 + " 5.0000%"
    assert bar(0.989) == "Verification progress: " + "\u2592" * 20 + "\u2591" + " 98.9000%"
    assert bar(0.99) == "Verification progress: 99.0000%"


def test_getinfo_and_addrinfo_take_no_arguments() -> None:
    check_no_args("-getinfo", [])
    with pytest.raises(ValueError, match=r"^-getinfo takes no arguments$"):
        check_no_args("-getinfo", ["help"])
    with pytest.raises(ValueError, match=r"^-addrinfo takes no arguments$"):
        check_no_args("-addrinfo", ["x"])


# -- -addrinfo ----------------------------------------------------------------------------


def test_addrinfo_matches_core() -> None:
    assert format_addrinfo(ADDRMANINFO) == ADDRINFO
    assert addrinfo_result(ADDRMANINFO) == {
        "addresses_known": {
            "ipv4": 1066,
            "ipv6": 317,
            "onion": 2012,
            "i2p": 0,
            "cjdns": 3,
            "total": 3398,
        }
    }


def test_addrinfo_keeps_reply_order_and_empty_layout() -> None:
    reply = {"all_networks": {"total": 0}, "onion": {"total": 2}}
    assert list(addrinfo_result(reply)["addresses_known"]) == ["total", "onion"]
    assert format_addrinfo({}) == '{\n  "addresses_known": {\n  }\n}'


# -- helpers ------------------------------------------------------------------------------


def test_univalue_write() -> None:
    value = {"a": [1, 2.5, True, None, 'x"\\\x7f\n\u00e9'], "b": {}, "c": []}
    assert (
        univalue_write(value) == '{"a":[1,2.5,true,null,"x\\"\\\\\\u007f\\n\u00e9"],"b":{},"c":[]}'
    )
    assert univalue_write(value, 2) == (
        '{\n  "a": [\n    1,\n    2.5,\n    true,\n    null,\n    "x\\"\\\\\\u007f\\n\u00e9"\n  ],\n'
        '  "b": {\n  },\n  "c": [\n  ]\n}'
    )
    assert univalue_write(4.656542373906925e-10) == "4.656542373906925e-10"


def test_std_sort_is_libstdcxx() -> None:
    """Ties: insertion sort keeps order up to 16 elements; past that, introsort moves
    them as GCC's std::sort does (checked against a compiled std::sort)."""
    small = [(k, i) for i, k in enumerate([1, 0, 1, 0, 1])]
    std_sort(small, lambda a, b: a[0] < b[0])
    assert [i for _, i in small] == [1, 3, 0, 2, 4]
    big = [
        (k, i) for i, k in enumerate([3, 1, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1, 3, 2, 1, 0])
    ]
    std_sort(big, lambda a, b: a[0] < b[0])
    assert [k for k, _ in big] == sorted(k for k, _ in big)
    assert [i for _, i in big] == STD_SORT_20
