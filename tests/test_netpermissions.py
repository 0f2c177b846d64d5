"""Tests for peerkeeper.net.netpermissions.

Ported from Bitcoin Core src/test/netbase_tests.cpp (``netpermissions_test``), plus the
rules of src/net_permissions.cpp (TryParsePermissionFlags, ToStrings) and src/net.cpp
(AddWhitelistPermissionFlags, CreateNodeFromAcceptedSocket, ConnectNode).
"""

from __future__ import annotations

import pytest

from peerkeeper.net.connection_types import ConnectionType
from peerkeeper.net.netaddr import NetAddr, Network, Service, SubNet
from peerkeeper.net.netpermissions import (
    NET_PERMISSIONS_DOC,
    ConnectionDirection,
    NetPermissionFlags,
    PermissionParseError,
    Permissions,
    WhitebindPermissions,
    WhitelistPermissions,
    add_implicit,
    has_flag,
    inbound_permissions,
    outbound_permissions,
    parse_permissions,
    to_strings,
)

F = NetPermissionFlags
D = ConnectionDirection
ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


# --- flag values ----------------------------------------------------------------------


def test_flag_values_match_core() -> None:
    assert int(F.NONE) == 0
    assert int(F.BLOOMFILTER) == 0x2
    assert int(F.RELAY) == 0x8
    assert int(F.FORCERELAY) == 0x4 | 0x8
    assert int(F.DOWNLOAD) == 0x40
    assert int(F.NOBAN) == 0x10 | 0x40
    assert int(F.MEMPOOL) == 0x20
    assert int(F.ADDR) == 0x80
    assert int(F.IMPLICIT) == 0x8000_0000
    assert int(F.ALL) == 0xFE
    assert not has_flag(F.ALL, F.IMPLICIT)
    assert [int(d) for d in (D.NONE, D.IN, D.OUT, D.BOTH)] == [0, 1, 2, 3]


def test_has_flag_implications() -> None:
    assert has_flag(F.FORCERELAY, F.RELAY)
    assert not has_flag(F.RELAY, F.FORCERELAY)
    assert has_flag(F.NOBAN, F.DOWNLOAD)
    assert not has_flag(F.DOWNLOAD, F.NOBAN)
    assert has_flag(F.NONE, F.NONE)
    assert not has_flag(F.NONE, F.RELAY)
    assert has_flag(F.RELAY | F.MEMPOOL, F.MEMPOOL)


# --- to_strings --------------------------------------------------------------------------


def test_to_strings_all_in_core_order() -> None:
    strings = to_strings(F.ALL)
    assert len(strings) == 7
    assert strings == [
        "bloomfilter",
        "noban",
        "forcerelay",
        "relay",
        "mempool",
        "download",
        "addr",
    ]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (F.NONE, []),
        (F.NOBAN, ["noban", "download"]),
        (F.DOWNLOAD, ["download"]),
        (F.FORCERELAY, ["forcerelay", "relay"]),
        (F.RELAY, ["relay"]),
        (F.ADDR | F.BLOOMFILTER, ["bloomfilter", "addr"]),
        (F.IMPLICIT, []),
        (F.MEMPOOL | F.IMPLICIT, ["mempool"]),
    ],
)
def test_to_strings(flags: NetPermissionFlags, expected: list[str]) -> None:
    assert to_strings(flags) == expected


def test_permissions_doc_has_one_line_per_name() -> None:
    assert [d.split(" ", 1)[0] for d in NET_PERMISSIONS_DOC] == to_strings(F.ALL)


# --- parse_permissions -------------------------------------------------------------------


def test_parse_permissions_no_at_is_implicit_in() -> None:
    assert parse_permissions("1.2.3.4") == (F.IMPLICIT, "1.2.3.4", D.IN)
    assert parse_permissions("") == (F.IMPLICIT, "", D.IN)


@pytest.mark.parametrize(
    ("s", "flags", "rest", "direction"),
    [
        ("@x", F.NONE, "x", D.IN),
        (",@x", F.NONE, "x", D.IN),
        (",,@x", F.NONE, "x", D.IN),
        ("bloom@x", F.BLOOMFILTER, "x", D.IN),
        ("bloomfilter@x", F.BLOOMFILTER, "x", D.IN),
        ("all@x", F.ALL, "x", D.IN),
        ("addr,mempool@x", F.ADDR | F.MEMPOOL, "x", D.IN),
        ("in,relay@x", F.RELAY, "x", D.IN),
        ("out,bloom@x", F.BLOOMFILTER, "x", D.OUT),
        ("in,out,bloom@x", F.BLOOMFILTER, "x", D.BOTH),
        ("out,in,out,noban@x", F.NOBAN, "x", D.BOTH),
        ("relay@a@b", F.RELAY, "a@b", D.IN),  # only the first '@' separates
        ("noban,@x", F.NOBAN, "x", D.IN),
    ],
)
def test_parse_permissions(
    s: str, flags: NetPermissionFlags, rest: str, direction: ConnectionDirection
) -> None:
    assert parse_permissions(s) == (flags, rest, direction)


@pytest.mark.parametrize(
    ("s", "message"),
    [
        ("bloom,forcerelay,oopsie@x", "Invalid P2P permission: 'oopsie'"),
        ("Noban@x", "Invalid P2P permission: 'Noban'"),  # case-sensitive
        (" noban@x", "Invalid P2P permission: ' noban'"),
        ("oops,nope@x", "Invalid P2P permission: 'oops'"),  # first error wins
        ("in@1.2.3.4", "Only direction was set, no permissions: 'in@1.2.3.4'"),
        ("out@1.2.3.4", "Only direction was set, no permissions: 'out@1.2.3.4'"),
        ("in,out,@1.2.3.4", "Only direction was set, no permissions: 'in,out,@1.2.3.4'"),
    ],
)
def test_parse_permissions_errors(s: str, message: str) -> None:
    with pytest.raises(PermissionParseError) as ei:
        parse_permissions(s)
    assert str(ei.value) == message
    assert isinstance(ei.value, ValueError)


def test_parse_permissions_out_refused_for_whitebind() -> None:
    with pytest.raises(PermissionParseError, match=r'\("out" was passed\)'):
        parse_permissions("out,forcerelay@1.2.3.4:32", allow_out=False)
    # "in" is fine for whitebind
    assert parse_permissions("in,relay@1.2.3.4:32", allow_out=False)[0] == F.RELAY


# --- whitebind (netbase_tests.cpp netpermissions_test) ----------------------------------


def test_whitebind_invalid() -> None:
    with pytest.raises(PermissionParseError, match="Cannot resolve -whitebind address"):
        WhitebindPermissions.parse("")
    with pytest.raises(
        PermissionParseError, match=r"Need to specify a port with -whitebind: '127\.0\.0\.1'"
    ):
        WhitebindPermissions.parse("127.0.0.1")
    with pytest.raises(PermissionParseError, match="Need to specify a port"):
        WhitebindPermissions.parse("noban@1.2.3.4:0")
    with pytest.raises(
        PermissionParseError, match=r"Cannot resolve -whitebind address: 'example\.com:8333'"
    ):
        WhitebindPermissions.parse("noban@example.com:8333")
    with pytest.raises(PermissionParseError, match="Cannot resolve"):
        WhitebindPermissions.parse("noban@1.2.3.4:junk")
    with pytest.raises(PermissionParseError, match="Cannot resolve"):
        WhitebindPermissions.parse("1.2.3.4:32\0")
    with pytest.raises(PermissionParseError, match=r'\("out" was passed\)'):
        WhitebindPermissions.parse("out,forcerelay@1.2.3.4:32")
    with pytest.raises(PermissionParseError, match="Invalid P2P permission"):
        WhitebindPermissions.parse("bloom,forcerelay,oopsie@1.2.3.4:32")


def test_whitebind_implicit_backward_compatible() -> None:
    wb = WhitebindPermissions.parse("1.2.3.4:32")
    assert wb.flags == F.IMPLICIT
    assert wb.service == Service(NetAddr.parse("1.2.3.4"), 32)


@pytest.mark.parametrize(
    ("s", "flags"),
    [
        ("bloom@1.2.3.4:32", F.BLOOMFILTER),
        ("@1.2.3.4:32", F.NONE),
        ("noban@1.2.3.4:32", F.NOBAN),
        ("noban,download@1.2.3.4:32", F.NOBAN),
        ("download,noban@1.2.3.4:32", F.NOBAN),
        ("download@1.2.3.4:32", F.DOWNLOAD),
        ("bloom,forcerelay@1.2.3.4:32", F.BLOOMFILTER | F.FORCERELAY | F.RELAY),
        ("bloom,relay,noban@1.2.3.4:32", F.BLOOMFILTER | F.RELAY | F.NOBAN),
        ("bloom,forcerelay,noban@1.2.3.4:32", F.BLOOMFILTER | F.FORCERELAY | F.NOBAN),
        ("all@1.2.3.4:32", F.ALL),
        ("bloom,relay,noban,noban@1.2.3.4:32", F.BLOOMFILTER | F.RELAY | F.NOBAN | F.DOWNLOAD),
        ("bloom,relay,,noban@1.2.3.4:32", F.BLOOMFILTER | F.RELAY | F.NOBAN),
        (",@1.2.3.4:32", F.NONE),
        (",,@1.2.3.4:32", F.NONE),
    ],
)
def test_whitebind_flags(s: str, flags: NetPermissionFlags) -> None:
    wb = WhitebindPermissions.parse(s)
    assert wb.flags == flags
    assert wb.service == Service(NetAddr.parse("1.2.3.4"), 32)


def test_whitebind_download_does_not_imply_noban() -> None:
    wb = WhitebindPermissions.parse("download@1.2.3.4:32")
    assert has_flag(wb.flags, F.DOWNLOAD)
    assert not has_flag(wb.flags, F.NOBAN)
    nb = WhitebindPermissions.parse("noban@1.2.3.4:32")
    assert has_flag(nb.flags, F.DOWNLOAD) and has_flag(nb.flags, F.NOBAN)


def test_whitebind_ipv6_and_onion() -> None:
    wb = WhitebindPermissions.parse("relay@[::1]:18444")
    assert wb.service == Service(NetAddr.parse("::1"), 18444)
    assert str(wb.service) == "[::1]:18444"
    wb2 = WhitebindPermissions.parse(f"mempool@{ONION}:8333")
    assert wb2.service.addr.network is Network.TORV3


# --- whitelist ---------------------------------------------------------------------------


def test_whitelist_netmask_error() -> None:
    with pytest.raises(
        PermissionParseError,
        match=r"Invalid netmask specified in -whitelist: '1\.2\.3\.4:32'",
    ):
        WhitelistPermissions.parse("bloom,forcerelay,noban@1.2.3.4:32")


@pytest.mark.parametrize(
    "s",
    ["", "noban@", "noban@1.2.3.4/33", "1.2.3.4/255.0.255.0", "noban@foo.example", "1.2.3.4\0"],
)
def test_whitelist_bad_subnets(s: str) -> None:
    with pytest.raises(PermissionParseError, match="Invalid netmask specified in -whitelist"):
        WhitelistPermissions.parse(s)


def test_whitelist_happy_path() -> None:
    wl = WhitelistPermissions.parse("noban@1.2.3.4")
    assert wl.flags == F.NOBAN
    assert str(wl.subnet) == "1.2.3.4/32"
    assert wl.direction == D.IN

    wl = WhitelistPermissions.parse("bloom,forcerelay,noban,relay@1.2.3.4/32")
    assert wl.flags == F.BLOOMFILTER | F.FORCERELAY | F.NOBAN | F.RELAY
    assert str(wl.subnet) == "1.2.3.4/32"

    wl = WhitelistPermissions.parse("bloom,forcerelay,noban,relay,mempool@1.2.3.4/32")
    assert has_flag(wl.flags, F.MEMPOOL)

    assert WhitelistPermissions.parse("in,relay@1.2.3.4").direction == D.IN
    assert WhitelistPermissions.parse("out,bloom@1.2.3.4").direction == D.OUT
    assert WhitelistPermissions.parse("in,out,bloom@1.2.3.4").direction == D.BOTH


def test_whitelist_bare_ip_and_subnets() -> None:
    wl = WhitelistPermissions.parse("10.1.2.3")
    assert wl.flags == F.IMPLICIT
    assert wl.subnet == SubNet.single(NetAddr.parse("10.1.2.3"))
    assert wl.subnet.match(NetAddr.parse("10.1.2.3"))
    assert not wl.subnet.match(NetAddr.parse("10.1.2.4"))

    wl6 = WhitelistPermissions.parse("addr@2a00:1450::/32")
    assert str(wl6.subnet) == "2a00:1450::/32"
    assert wl6.subnet.match(NetAddr.parse("2a00:1450:ffff::1"))
    assert not wl6.subnet.match(NetAddr.parse("2a00:1451::1"))
    # Core's CSubNet::Match refuses invalid addresses such as RFC 3849 documentation ones
    doc = WhitelistPermissions.parse("addr@2001:db8::/32")
    assert not doc.subnet.match(NetAddr.parse("2001:db8::1"))

    wlm = WhitelistPermissions.parse("relay@10.0.0.0/255.0.0.0")
    assert str(wlm.subnet) == "10.0.0.0/8"

    wlo = WhitelistPermissions.parse(f"noban@{ONION}")
    assert wlo.subnet.match(NetAddr.parse(ONION))


# --- implicit flags (net.cpp AddWhitelistPermissionFlags) ---------------------------------


def test_add_implicit_defaults() -> None:
    got = add_implicit(F.IMPLICIT)
    assert got == F.NOBAN | F.MEMPOOL | F.RELAY
    assert not has_flag(got, F.IMPLICIT)
    assert not has_flag(got, F.FORCERELAY)
    assert to_strings(got) == ["noban", "relay", "mempool", "download"]


def test_add_implicit_options() -> None:
    assert add_implicit(F.IMPLICIT, whitelistrelay=False) == F.NOBAN | F.MEMPOOL
    assert (
        add_implicit(F.IMPLICIT, whitelistrelay=True, whitelistforcerelay=True)
        == F.NOBAN | F.MEMPOOL | F.FORCERELAY
    )
    # forcerelay alone still carries the relay bit
    got = add_implicit(F.IMPLICIT, whitelistrelay=False, whitelistforcerelay=True)
    assert has_flag(got, F.RELAY) and has_flag(got, F.FORCERELAY)


def test_add_implicit_keeps_explicit_flags() -> None:
    assert add_implicit(F.BLOOMFILTER) == F.BLOOMFILTER
    assert add_implicit(F.NONE) == F.NONE
    # explicit flags merged with an implicit entry are kept and the default set added
    assert add_implicit(F.ADDR | F.IMPLICIT, whitelistrelay=False) == F.ADDR | F.NOBAN | F.MEMPOOL


# --- applying to connections -------------------------------------------------------------


def _wl(*entries: str) -> list[WhitelistPermissions]:
    return [WhitelistPermissions.parse(e) for e in entries]


def test_inbound_whitelist_match_and_no_match() -> None:
    wl = _wl("10.0.0.0/8", "bloom@192.168.0.0/16")
    peer = NetAddr.parse("10.2.3.4")
    assert inbound_permissions(peer, None, wl) == F.NOBAN | F.MEMPOOL | F.RELAY
    assert inbound_permissions(NetAddr.parse("192.168.1.1"), None, wl) == F.BLOOMFILTER
    assert inbound_permissions(NetAddr.parse("8.8.8.8"), None, wl) == F.NONE


def test_inbound_ignores_out_only_entries_and_unions_matches() -> None:
    wl = _wl("out,noban@10.0.0.0/8", "in,out,addr@10.0.0.0/16", "mempool@10.0.0.1")
    peer = NetAddr.parse("10.0.0.1")
    assert inbound_permissions(peer, None, wl) == F.ADDR | F.MEMPOOL


def test_inbound_onion_skips_address_whitelist_but_keeps_whitebind() -> None:
    wl = _wl("127.0.0.1")
    bind = Service(NetAddr.parse("127.0.0.1"), 8334)
    wb = [WhitebindPermissions.parse("download@127.0.0.1:8334")]
    peer = NetAddr.parse("127.0.0.1")
    assert inbound_permissions(peer, None, wl, inbound_onion=True) == F.NONE
    assert inbound_permissions(peer, bind, wl, wb, inbound_onion=True) == F.DOWNLOAD
    assert inbound_permissions(peer, bind, wl, wb) == F.DOWNLOAD | F.NOBAN | F.MEMPOOL | F.RELAY


def test_inbound_whitebind_implicit_and_other_bind() -> None:
    wb = [WhitebindPermissions.parse("127.0.0.1:18445")]
    peer = NetAddr.parse("8.8.8.8")
    bind = Service(NetAddr.parse("127.0.0.1"), 18445)
    assert inbound_permissions(peer, bind, (), wb) == F.NOBAN | F.MEMPOOL | F.RELAY
    assert (
        inbound_permissions(peer, bind, (), wb, whitelistrelay=False, whitelistforcerelay=True)
        == F.NOBAN | F.MEMPOOL | F.FORCERELAY
    )
    other = Service(NetAddr.parse("127.0.0.1"), 18444)
    assert inbound_permissions(peer, other, (), wb) == F.NONE
    assert inbound_permissions(peer, None, (), wb) == F.NONE


def test_outbound_only_manual_gets_out_entries() -> None:
    wl = _wl("out,noban@10.0.0.0/8", "relay@10.0.0.0/8", "in,out,addr@10.1.0.0/16")
    peer = NetAddr.parse("10.1.2.3")
    assert outbound_permissions(peer, wl, ConnectionType.MANUAL) == F.NOBAN | F.ADDR
    for ct in ConnectionType:
        if ct is not ConnectionType.MANUAL:
            assert outbound_permissions(peer, wl, ct) == F.NONE
    assert outbound_permissions(NetAddr.parse("8.8.8.8"), wl, ConnectionType.MANUAL) == F.NONE


def test_permissions_object() -> None:
    perms = Permissions.from_options(
        whitelist=["10.0.0.0/8", "out,download@1.2.3.4"],
        whitebind=["bloom@127.0.0.1:18445"],
        whitelistrelay=False,
    )
    bind = Service(NetAddr.parse("127.0.0.1"), 18445)
    assert perms.listen_flags(bind) == F.BLOOMFILTER
    assert perms.listen_flags(Service(NetAddr.parse("127.0.0.1"), 1)) == F.NONE
    assert perms.inbound(NetAddr.parse("10.9.9.9"), bind) == F.BLOOMFILTER | F.NOBAN | F.MEMPOOL
    assert perms.inbound(NetAddr.parse("10.9.9.9"), bind, inbound_onion=True) == F.BLOOMFILTER
    assert perms.inbound(NetAddr.parse("1.2.3.4"), None) == F.NONE
    assert perms.outbound(NetAddr.parse("1.2.3.4"), ConnectionType.MANUAL) == F.DOWNLOAD
    assert perms.outbound(NetAddr.parse("1.2.3.4"), ConnectionType.OUTBOUND_FULL_RELAY) == F.NONE


def test_permissions_from_options_bad_input() -> None:
    with pytest.raises(PermissionParseError, match="Need to specify a port"):
        Permissions.from_options(whitebind=["127.0.0.1"])
    with pytest.raises(PermissionParseError, match="Invalid netmask"):
        Permissions.from_options(whitelist=["10.0.0.0/8", "bogus"])
    with pytest.raises(PermissionParseError, match="Only direction was set"):
        Permissions.from_options(whitelist=["out@10.0.0.0/8"])
