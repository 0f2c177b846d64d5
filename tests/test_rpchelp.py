"""Core's RPC help for the methods a peerkeeper node serves (peerkeeper.daemon.rpchelp).

The expected texts were printed by Core's own code: the RPCMethod definitions of
src/rpc/net.cpp, node.cpp, server.cpp, blockchain.cpp, mempool.cpp and mining.cpp (their
implementations cut away) and the help layout of src/rpc/util.cpp (RPCMethod::ToString,
Sections, RPCArg, RPCResult::ToSections), compiled and run; the listing as
src/rpc/server.cpp CRPCTable::help builds it. Core was given our CLIENT_NAME and our
logging categories, the two strings that are not Core's.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from typing import Any

import pytest

from peerkeeper.daemon.config import Config
from peerkeeper.daemon.node import Node
from peerkeeper.daemon.rpchelp import (
    METHODS,
    Arg,
    Default,
    DefaultHint,
    Example,
    MethodHelp,
    Result,
    help_listing,
    help_text,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The node's RPC table: method name -> handler."""
    node = Node(Config(datadir=tmp_path_factory.mktemp("rpchelp"), chain="regtest"))
    return node.rpc_methods()


#: Core's `help addnode`
ADDNODE_HELP = "\n".join(
    [
        'addnode "node" "command" ( v2transport )',
        "",
        "Attempts to add or remove a node from the addnode list.",
        "Or try a connection to a node once.",
        "Nodes added using addnode (or -connect) are protected from DoS disconnection and are not required to be",
        "full nodes/support SegWit as other outbound peers are (though such peers will not be synced from).",
        "Addnode connections are limited to 8 at a time and are counted separately from the -maxconnections limit.",
        "",
        "Arguments:",
        "1. node           (string, required) The IP address/hostname optionally followed by :port of the peer to connect to",
        "2. command        (string, required) 'add' to add a node to the list, 'remove' to remove a node from the list, 'onetry' to try a connection to the node once",
        "3. v2transport    (boolean, optional, default=set by -v2transport) Attempt to connect using BIP324 v2 transport protocol (ignored for 'remove' command)",
        "",
        "Result:",
        "null    (json null)",
        "",
        "Examples:",
        '> bitcoin-cli addnode "192.168.0.6:8333" "onetry" true',
        '> curl --user myusername --data-binary \'{"jsonrpc": "2.0", "id": "curltest", "method": "addnode", "params": ["192.168.0.6:8333", "onetry" true]}\' -H \'content-type: application/json\' http://127.0.0.1:8332/',
        "",
    ]
)

#: Core's `help getpeerinfo`
GETPEERINFO_HELP = "\n".join(
    [
        "getpeerinfo",
        "",
        "Returns data about each connected network peer as a json array of objects.",
        "",
        "Result:",
        "[                                         (json array)",
        "  {                                       (json object)",
        '    "id" : n,                             (numeric) Peer index',
        '    "addr" : "str",                       (string) (host:port) The IP address/hostname optionally followed by :port of the peer',
        '    "addrbind" : "str",                   (string, optional) (ip:port) Bind address of the connection to the peer',
        '    "addrlocal" : "str",                  (string, optional) (ip:port) Local address as reported by the peer',
        '    "network" : "str",                    (string) Network (ipv4, ipv6, onion, i2p, cjdns, not_publicly_routable)',
        '    "mapped_as" : n,                      (numeric, optional) Mapped AS (Autonomous System) number at the end of the BGP route to the peer, used for diversifying',
        "                                          peer selection (only displayed if the -asmap config option is set)",
        '    "services" : "hex",                   (string) The services offered',
        '    "servicesnames" : [                   (json array) the services offered, in human-readable form',
        '      "str",                              (string) the service name if it is recognised',
        "      ...",
        "    ],",
        '    "relaytxes" : true|false,             (boolean) Whether we relay transactions to this peer',
        '    "last_inv_sequence" : n,              (numeric) Mempool sequence number of this peer\'s last INV',
        '    "inv_to_send" : n,                    (numeric) How many txs we have queued to announce to this peer',
        '    "lastsend" : xxx,                     (numeric) The UNIX epoch time of the last send',
        '    "lastrecv" : xxx,                     (numeric) The UNIX epoch time of the last receive',
        '    "last_transaction" : xxx,             (numeric) The UNIX epoch time of the last valid transaction received from this peer',
        '    "last_block" : xxx,                   (numeric) The UNIX epoch time of the last block received from this peer',
        '    "bytessent" : n,                      (numeric) The total bytes sent',
        '    "bytesrecv" : n,                      (numeric) The total bytes received',
        '    "conntime" : xxx,                     (numeric) The UNIX epoch time of the connection',
        '    "timeoffset" : n,                     (numeric) The time offset in seconds',
        '    "pingtime" : n,                       (numeric, optional) The last ping time in seconds, if any',
        '    "minping" : n,                        (numeric, optional) The minimum observed ping time in seconds, if any',
        '    "pingwait" : n,                       (numeric, optional) The duration in seconds of an outstanding ping (if non-zero)',
        '    "version" : n,                        (numeric) The peer version, such as 70001',
        '    "subver" : "str",                     (string) The string version',
        '    "inbound" : true|false,               (boolean) Inbound (true) or Outbound (false)',
        '    "bip152_hb_to" : true|false,          (boolean) Whether we selected peer as (compact blocks) high-bandwidth peer',
        '    "bip152_hb_from" : true|false,        (boolean) Whether peer selected us as (compact blocks) high-bandwidth peer',
        '    "presynced_headers" : n,              (numeric) The current height of header pre-synchronization with this peer, or -1 if no low-work sync is in progress',
        '    "synced_headers" : n,                 (numeric) The last header we have in common with this peer',
        '    "synced_blocks" : n,                  (numeric) The last block we have in common with this peer',
        '    "inflight" : [                        (json array)',
        "      n,                                  (numeric) The heights of blocks we're currently asking from this peer",
        "      ...",
        "    ],",
        '    "addr_relay_enabled" : true|false,    (boolean) Whether we participate in address relay with this peer',
        '    "addr_processed" : n,                 (numeric) The total number of addresses processed, excluding those dropped due to rate limiting',
        '    "addr_rate_limited" : n,              (numeric) The total number of addresses dropped due to rate limiting',
        '    "permissions" : [                     (json array) Any special permissions that have been granted to this peer',
        '      "str",                              (string) bloomfilter (allow requesting BIP37 filtered blocks and transactions),',
        "                                          noban (do not ban for misbehavior; implies download),",
        "                                          forcerelay (relay transactions that are already in the mempool; implies relay),",
        "                                          relay (relay even in -blocksonly mode, and unlimited transaction announcements),",
        "                                          mempool (allow requesting BIP35 mempool contents),",
        "                                          download (allow getheaders during IBD, no disconnect after maxuploadtarget limit),",
        "                                          addr (responses to GETADDR avoid hitting the cache and contain random records with the most up-to-date info).",
        "                                          ",
        "      ...",
        "    ],",
        '    "minfeefilter" : n,                   (numeric) The minimum fee rate for transactions this peer accepts',
        '    "bytessent_per_msg" : {               (json object)',
        '      "msg" : n,                          (numeric) The total bytes sent aggregated by message type',
        "                                          When a message type is not listed in this json object, the bytes sent are 0.",
        "                                          Only known message types can appear as keys in the object.",
        "      ...",
        "    },",
        '    "bytesrecv_per_msg" : {               (json object)',
        '      "msg" : n,                          (numeric) The total bytes received aggregated by message type',
        "                                          When a message type is not listed in this json object, the bytes received are 0.",
        "                                          Only known message types can appear as keys in the object and all bytes received",
        "                                          of unknown message types are listed under '*other*'.",
        "      ...",
        "    },",
        '    "connection_type" : "str",            (string) Type of connection: ',
        "                                          outbound-full-relay (default automatic connections),",
        "                                          block-relay-only (does not relay transactions or addresses),",
        "                                          inbound (initiated by the peer),",
        "                                          manual (added via addnode RPC or -addnode/-connect configuration options),",
        "                                          addr-fetch (short-lived automatic connection for soliciting addresses),",
        "                                          feeler (short-lived automatic connection for testing addresses),",
        "                                          private-broadcast (short-lived automatic connection for broadcasting privacy-sensitive transactions).",
        "                                          Please note this output is unlikely to be stable in upcoming releases as we iterate to",
        "                                          best capture connection behaviors.",
        '    "transport_protocol_type" : "str",    (string) Type of transport protocol: ',
        "                                          detecting (peer could be v1 or v2),",
        "                                          v1 (plaintext transport protocol),",
        "                                          v2 (BIP324 encrypted transport protocol).",
        "                                          ",
        '    "session_id" : "str"                  (string) The session ID for this connection, or "" if there is none ("v2" transport protocol only).',
        "                                          ",
        "  },",
        "  ...",
        "]",
        "",
        "Examples:",
        "> bitcoin-cli getpeerinfo ",
        '> curl --user myusername --data-binary \'{"jsonrpc": "2.0", "id": "curltest", "method": "getpeerinfo", "params": []}\' -H \'content-type: application/json\' http://127.0.0.1:8332/',
        "",
    ]
)

#: Core's `help` for the same methods (getnetmsgstats aside: not in Core)
CORE_LISTING = "\n".join(
    [
        "== Blockchain ==",
        "getbestblockhash",
        'getblock "blockhash" ( verbosity )',
        "getblockchaininfo",
        "getblockcount",
        "getblockhash height",
        'getblockheader "blockhash" ( verbose )',
        "getchaintips",
        "getmempoolinfo",
        "getrawmempool ( verbose mempool_sequence )",
        "",
        "== Control ==",
        "getrpcinfo",
        'help ( "command" )',
        'logging ( ["include_category",...] ["exclude_category",...] )',
        "stop",
        "uptime",
        "",
        "== Mining ==",
        'submitblock "hexdata" ( "dummy" )',
        "",
        "== Network ==",
        'addnode "node" "command" ( v2transport )',
        "clearbanned",
        'disconnectnode ( "address" nodeid )',
        'getaddednodeinfo ( "node" )',
        "getaddrmaninfo",
        "getconnectioncount",
        "getnettotals",
        "getnetworkinfo",
        'getnodeaddresses ( count "network" )',
        "getpeerinfo",
        "listbanned",
        "ping",
        'setban "subnet" "command" ( bantime absolute )',
        "setnetworkactive state",
    ]
)

#: sha256 of Core's `help NAME` for each of our methods Core has (RPCMethod::ToString)
CORE_HELP_SHA256 = {
    "addconnection": "e5567303ce1654ae9d140c2a0d87497d0b2778e9ebbdbb43293f245ec9923268",
    "addnode": "0ee5b3a5c9f3c9f1e22e5ef6549dc2b44a211d1f60486ee932042deb5b3183d3",
    "addpeeraddress": "00f36acf9a6d89ccb76974a01a04d607e21629eddccda316647ead3d09226e42",
    "clearbanned": "c11e321d5b53f621e34971af017cfa98caa78b18a25a3d58f533b22219639143",
    "disconnectnode": "b7f08bd75be36b105cb122baf264b55eb4b26aed81bc739e67802b3e2ea091fc",
    "echo": "88a71955d3222b0673471f6b0b05d20a87201f4d88645c119ff32225de9a1b9f",
    "generatetoaddress": "1eb97730bcbfd595c90a72f6f08574f5c2d808e2076c7010394e789d0c0b1ed9",
    "getaddednodeinfo": "9d52eec57809bbeca4b14225ab671ee844139cf449af2eabfc1fba724a9a6271",
    "getaddrmaninfo": "eff62e080a23af84503975b68333eef3f2b1dd1c3c6001a924a047f5737541b4",
    "getbestblockhash": "03174c0e139fe2203699db026e0e8d135aa3a231c913be8b5b51e55e7f12f697",
    "getblock": "53bbfa8df7f763fd0b77faa6677199c6b395665f64a47566e534e5d57efb530d",
    "getblockchaininfo": "26079f9b134c23a855191632fd9aa8b643eb4715073014c252d304d1ace72514",
    "getblockcount": "83b5da742a07dfbc2629fbc616b0d93c6f5b23844adf9a6f05f9703da1fa03a9",
    "getblockhash": "a250add4f1efef2ea5d1847a7fc37e00e5d0399dcd681031ebdb3b9e95b7e951",
    "getblockheader": "123bcb3c3c56b38b2a426f7a745a188aa24286eb73aad2822f7adf93dd2f9492",
    "getconnectioncount": "63647fa84b03d66f5d613ba32a08e7d768c08f17e0154a0eb145a956abfe7bf2",
    "getmempoolinfo": "aab295ef86b91c9a61211288bdd9b9078dd922c9d99658ec25f7c4816314e6f0",
    "getnettotals": "d1adc7618963a2883825a32d762dc6c3840dfea0725edbf12ee4e50ba25780a9",
    "getnetworkinfo": "f2af6c7c6457f0fd747a13493b3d1bd618aee308503de9a3e01520ba079dae3a",
    "getnodeaddresses": "3bf8088989066cfc6f4ff9871d02bd13c9f6a1a9f2066cc8b995c30cd387a2f9",
    "getpeerinfo": "891fcfabc4845e16539eba6519d230a9bdc4ba49aa653a829caf476fbf54c4de",
    "getrawaddrman": "46f9ab80a1d1faa481f4324e6ede66d0ed74bab868ee291d8a812a7012b4569a",
    "getrawmempool": "67bd10105077cd70ace34e3e0539fe97c7e94bd21d24413154acf0e6aa5b78a2",
    "getrpcinfo": "380c1b1c5b41949037f7377bda2e15cbd774324eb97dccea5423f21032227e14",
    "help": "d1916929ecdeb5bf938a28222e0b08afcfed56d7f6b196733c2051ce2bff378a",
    "listbanned": "b204bf4ec433e4a229e89b6d724542fc80d96128437e5cde8e1310bd89a3b281",
    # "i2p" joined the categories with issue 18 (Core has it: BCLog::I2P).
    "logging": "e282f498aab1f5e4fbd93601548a30f95b1db433e6586c759b8393405907c7d4",
    "mockscheduler": "15dd17d0bd8fde84d37c371189075705652e40a0c26d78f1797c1d9a986b76a8",
    "ping": "7be1bc7e08e6f0d8d5d9020e14afdfff05b6921f45572ad34534b4e88ac5786d",
    "setban": "0e8f864c3a7e68da38dd66ddb80121f1819e376693999a8b58ce168bf2320168",
    "setmocktime": "6537ef8f3466c78051130e7116814d102500bbef5d18be40297cc4ebd4920ae2",
    "setnetworkactive": "75c402e2a0a9f6fd1aaba9f8c91ff2f2b774aa582a0c801e721d33ece502d4ef",
    "stop": "f68b54873705012390e158b7585242616b663d3f514098cadfadd611330b4502",
    "submitblock": "00c4508d2d4cb0717e71186ac89915729db4d18ea5d29cff7b67416695429cde",
    "syncwithvalidationinterfacequeue": "e2aa9e11695189bd0d6e021c1ff46033eff022c52b98019603e759d5f889518f",
    "uptime": "d1f28304b261fe6da1544e19ccd06e477df01e182ecc613fdb229d899bb4f950",
}


def test_every_served_method_has_help(served: dict[str, Any]) -> None:
    missing = sorted(set(served) - set(METHODS))
    assert missing == []
    assert "getnetmsgstats" in served and "getnetmsgstats" in METHODS


def test_no_help_for_methods_not_served(served: dict[str, Any]) -> None:
    assert sorted(set(METHODS) - set(served)) == []


def test_help_texts_match_core() -> None:
    # getchaintips and waitforblockheight came after the run against Core's code: their
    # texts are Core's RPCMethod definitions copied, checked by eye, not by digest.
    assert set(CORE_HELP_SHA256) == set(METHODS) - {
        "getnetmsgstats",
        "getchaintips",
        "waitforblockheight",
    }
    for name, digest in CORE_HELP_SHA256.items():
        assert hashlib.sha256(help_text(name).encode()).hexdigest() == digest, name


def test_help_addnode() -> None:
    text = help_text("addnode")
    assert text == ADDNODE_HELP
    lines = text.split("\n")
    assert lines[0] == 'addnode "node" "command" ( v2transport )'
    assert lines[8] == "Arguments:"
    assert lines[11] == (
        "3. v2transport    (boolean, optional, default=set by -v2transport) Attempt to connect "
        "using BIP324 v2 transport protocol (ignored for 'remove' command)"
    )
    assert lines[13:15] == ["Result:", "null    (json null)"]
    assert text.endswith("\n")  # Core's help text ends with the last example's newline


def test_help_getpeerinfo() -> None:
    text = help_text("getpeerinfo")
    assert text == GETPEERINFO_HELP
    lines = text.split("\n")
    assert lines[:5] == [
        "getpeerinfo",
        "",
        "Returns data about each connected network peer as a json array of objects.",
        "",
        "Result:",
    ]
    assert lines[5].startswith("[ ") and lines[5].endswith("(json array)")
    assert lines[7].startswith('    "id" : n,') and lines[7].endswith("(numeric) Peer index")
    assert "> bitcoin-cli getpeerinfo " in lines  # Core's trailing space: no argument


def test_help_listing_matches_core() -> None:
    assert help_listing(set(METHODS) - {"getnetmsgstats"}) == CORE_LISTING
    ours = help_listing(METHODS).split("\n")
    assert ours.index('getnetmsgstats ( ["aggregate_by",...] )') == (
        ours.index("getconnectioncount") + 1
    )
    assert ours[-1] == "setnetworkactive state"  # no final newline


def test_help_listing_layout() -> None:
    listing = help_listing(["uptime", "ping", "getblockcount", "setmocktime", "nosuch"])
    # Categories sorted, capitalized, a blank line between; hidden and unknown left out.
    assert (
        listing == "== Blockchain ==\ngetblockcount\n\n== Control ==\nuptime\n\n== Network ==\nping"
    )
    assert help_listing([]) == "help: unknown command: "


def test_help_unknown_command() -> None:
    assert help_text("nosuch") == "help: unknown command: nosuch"
    assert help_text("getpeerinfo", names=["ping"]) == "help: unknown command: getpeerinfo"
    # Hidden methods have help when asked by name, as in Core.
    assert help_text("setmocktime").startswith("setmocktime timestamp\n\nSet the local time")


def test_help_hidden_argument_and_no_examples() -> None:
    text = help_text("stop")
    assert text == (
        "stop\n\nRequest a graceful shutdown of peerkeeper.\n\n"
        "Result:\n\"str\"    (string) A string with the content 'peerkeeper stopping'\n"
    )


def test_help_with_our_cli_name() -> None:
    text = help_text("getblockhash", cli="peerkeeper rpc")
    assert "> peerkeeper rpc getblockhash 1000\n" in text
    assert text.replace("peerkeeper rpc", "bitcoin-cli") == help_text("getblockhash")


def test_help_getnetmsgstats_shape() -> None:
    m = METHODS["getnetmsgstats"]
    assert m.category == "network" and m.title == "Network"
    assert [a.name for a in m.args] == ["aggregate_by"]
    assert m.args[0].type == "ARR" and m.args[0].optional
    keys = []
    r: Result | None = m.results[0]
    while r is not None and r.inner:
        r = r.inner[0]
        keys.append(r.key)
    assert keys == ["direction", "network", "connection_type", "message_type", "bytes"]
    assert [f.key for f in m.results[0].inner[0].inner[0].inner[0].inner[0].inner] == [
        "bytes",
        "count",
    ]


def test_method_help_structure() -> None:
    setban = METHODS["setban"]
    assert setban.source == "src/rpc/net.cpp"
    assert [(a.name, a.optional) for a in setban.args] == [
        ("subnet", False),
        ("command", False),
        ("bantime", True),
        ("absolute", True),
    ]
    assert setban.args[2].fallback == Default(0)
    assert METHODS["addnode"].args[2].fallback == DefaultHint("set by -v2transport")
    assert METHODS["getblock"].args[1].names == "verbosity|verbose"
    assert {m.category for m in METHODS.values()} == {
        "blockchain",
        "control",
        "hidden",
        "mining",
        "network",
    }


def test_custom_entry_layout() -> None:
    """The layout rules on a made-up method: required after optional reopens the
    parenthesis, nested objects in arguments, a result case, and a text example."""
    m = MethodHelp(
        "demo",
        "util",
        "\n  A demo.  \n",
        (
            Arg("first", "STR", "required", "The first"),
            Arg("opt", "NUM", Default(7), "Optional"),
            Arg("req", "BOOL", "required", "Required again"),
            Arg(
                "obj",
                "OBJ",
                "omitted",
                "",
                (Arg("k", "STR_HEX", "required", "a key"), Arg("n", "AMOUNT", "omitted", "")),
            ),
        ),
        (Result("OBJ_DYN", "", "", (Result("NUM", "x", "line one\n   line two"),), cond="always"),),
        (Example("text", text="Some words\n"), Example("cli", "demo", '"a"')),
        "nowhere",
    )
    # As Core prints it (the same definition compiled with src/rpc/util.cpp).
    assert m.text() == "\n".join(
        [
            'demo "first" ( opt ) req ( {"k":"hex","n":amount} )',
            "",
            "A demo.",
            "",
            "Arguments:",
            "1. first               (string, required) The first",
            "2. opt                 (numeric, optional, default=7) Optional",
            "3. req                 (boolean, required) Required again",
            "4. obj                 (json object, optional)",
            "     {",
            '       "k": "hex",     (string, required) a key',
            '       "n": amount,    (numeric or string, optional)',
            "     }",
            "",
            "Result (always):",
            "{             (json object)",
            '  "x" : n,    (numeric) line one',
            "              line two",
            "  ...",
            "}",
            "",
            "Examples:",
            "Some words",
            '> bitcoin-cli demo "a"',
            "",
        ]
    )


def test_handler_argument_names_match_core(served: dict[str, Any]) -> None:
    """Each ``rpc_param(params, i, "name")`` in our handlers reads Core's argument i."""
    checked = 0
    for name, handler in served.items():
        source = inspect.getsource(handler)
        for index, arg_name in re.findall(r'rpc_param\(\s*params,\s*(\d+),\s*"(\w+)"', source):
            args = METHODS[name].args
            assert int(index) < len(args), (name, arg_name)
            assert arg_name in args[int(index)].names.split("|"), (name, index, arg_name)
            checked += 1
    assert checked >= 25


def test_served_node_help_would_list_everything(served: dict[str, Any]) -> None:
    listing = help_listing(served)
    hidden = {n for n, m in METHODS.items() if m.category == "hidden"}
    for name in set(served) - hidden:
        assert METHODS[name].synopsis() in listing.split("\n"), name
    for name in hidden:
        assert not any(line.split(" ")[0] == name for line in listing.split("\n")), name
