"""Core's connection options as peerkeeper options: parsing, soft-set interactions, and
their effect on a running node (permissions, upload target, -connect=0)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_loopback import handshaken, port_of, raw_handshake, running, wait_until

from peerkeeper.daemon.cli import build_parser, config_from_args
from peerkeeper.daemon.config import Config, ConfigError, read_conf_file
from peerkeeper.net.netaddr import NetAddr
from peerkeeper.wire.messages import Addr, AddrEntry, GetAddr, Ping

pytestmark = pytest.mark.timeout(60)


def parse(*argv: str) -> Config:
    return config_from_args(build_parser().parse_args(["node", "--regtest", *argv]))


def test_connect_zero_disables_automatic_outbound_and_listening() -> None:
    c = parse("--connect", "0")
    assert c.noconnect and not c.use_addrman_outgoing and c.specified_outgoing == []
    assert not c.listening and not c.dns_seeding
    c = parse("--connect", "127.0.0.1:1")
    assert c.specified_outgoing == ["127.0.0.1:1"] and not c.use_addrman_outgoing
    c = parse()
    assert c.use_addrman_outgoing and c.listening and c.dns_seeding


def test_soft_set_order_matches_core() -> None:
    # -bind soft-sets -listen=1 before -connect can soft-set it to 0 (src/init.cpp order)
    assert parse("--connect", "127.0.0.1:1", "--bind", "127.0.0.1:0").listening
    assert not parse("--proxy", "127.0.0.1:9050").listening
    assert parse("--proxy", "127.0.0.1:9050", "--listen", "1").listening
    assert not parse("--maxconnections", "0").listening
    assert not parse("--maxconnections", "0").use_addrman_outgoing
    # -onlynet without IPv4/IPv6 turns DNS seeding off; an explicit -dnsseed wins
    assert not parse("--onlynet", "onion").dns_seeding
    assert parse("--onlynet", "onion", "--onlynet", "ipv4").dns_seeding
    assert parse("--connect", "0", "--dnsseed", "1").dns_seeding


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--whitelist", "bogus@1.2.3.4"], "Invalid P2P permission: 'bogus'"),
        (["--whitebind", "noban@1.2.3.4"], "Need to specify a port with -whitebind"),
        (["--maxuploadtarget", "12x"], "Unable to parse -maxuploadtarget: '12x'"),
        (["--onlynet", "carrier-pigeon"], "Unknown network specified in -onlynet"),
        (["--inboundrelaypercent", "101"], "-inboundrelaypercent"),
    ],
)
def test_bad_option_values(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(*argv)


def test_conf_file_keys(tmp_path: Path) -> None:
    conf = tmp_path / "bitcoin.conf"
    conf.write_text(
        "regtest=1\n[regtest]\nseednode=127.0.0.1:1\nseednode=127.0.0.1:2\ndnsseed=0\n"
        "whitelist=noban,addr@127.0.0.1\nmaxuploadtarget=5G\ninboundrelaypercent=25\n"
        f"fixedseedsfile={tmp_path}/nodes.txt\nonlynet=ipv4\nproxyrandomize=0\n"
    )
    values = read_conf_file(conf)
    assert values["seednode"] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert values["dnsseed"] is False and values["proxyrandomize"] is False
    assert values["inboundrelaypercent"] == 25
    assert values["fixedseedsfile"] == tmp_path / "nodes.txt"
    c = Config(**values)  # type: ignore[arg-type]
    c.validate()
    assert c.whitelist == ["noban,addr@127.0.0.1"] and c.onlynet == ["ipv4"]


async def test_whitelisted_peer_gets_permissions_and_is_not_punished(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False, whitelist=["noban,addr@127.0.0.1"]) as a:
        peer = await raw_handshake(port_of(a))
        await wait_until(lambda: handshaken(a))
        conn = next(iter(a.connman.peers.values()))
        info = a.peer_info(conn)
        assert info["permissions"] == ["noban", "download", "addr"]
        # 1001 addresses is Core's misbehaviour; a noban peer is neither dropped nor discouraged
        peer.send(Addr([AddrEntry(1_800_000_000, 9, conn.addr)] * 1001))
        peer.send(Ping(7))
        await peer.writer.drain()
        await wait_until(lambda: conn.proto.last_recv > 0 and conn.bytes_recv > 30_000)
        assert not conn.closed
        assert a.banman.outbound_allowed(NetAddr.parse("127.0.0.1"), a.clock())
        peer.close()


async def test_addr_permission_bypasses_the_getaddr_cache(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False, whitelist=["addr@127.0.0.1"]) as a:
        peer = await raw_handshake(port_of(a))
        await wait_until(lambda: handshaken(a))
        conn = next(iter(a.connman.peers.values()))
        assert conn.proto.addr_source.bypass  # type: ignore[attr-defined]
        peer.send(GetAddr())
        await peer.writer.drain()
        await wait_until(lambda: conn.proto.getaddr_recvd)
        assert a.connman._addr_cache == {}  # answered fresh, nothing cached
        peer.close()
    async with running(tmp_path, "b", v2transport=False) as b:
        peer = await raw_handshake(port_of(b))
        await wait_until(lambda: handshaken(b))
        peer.send(GetAddr())
        await peer.writer.drain()
        await wait_until(lambda: len(b.connman._addr_cache) == 1)
        peer.close()


async def test_upload_target_reported_and_counted(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False, maxuploadtarget="1M") as a:
        peer = await raw_handshake(port_of(a))
        await wait_until(lambda: handshaken(a))
        totals = await a.rpc_methods()["getnettotals"]([])
        up = totals["uploadtarget"]
        assert up["timeframe"] == 86400 and up["target"] == 1024 * 1024
        assert up["bytes_left_in_cycle"] == 1024 * 1024 - a.connman.total_bytes_sent
        assert 0 < up["time_left_in_cycle"] <= 86400
        assert up["target_reached"] is False
        peer.close()


async def test_getaddednodeinfo(tmp_path: Path) -> None:
    async with running(tmp_path, "a", v2transport=False) as a, running(tmp_path, "b") as b:
        target = f"127.0.0.1:{port_of(b)}"
        methods = a.rpc_methods()
        await methods["addnode"]([target, "add"])
        await wait_until(lambda: handshaken(a))
        info = await methods["getaddednodeinfo"]([])
        assert info == [
            {
                "addednode": target,
                "connected": True,
                "addresses": [{"address": target, "connected": "outbound"}],
            }
        ]
        assert await methods["getaddednodeinfo"]([target]) == info
        with pytest.raises(Exception, match="Node has not been added"):
            await methods["getaddednodeinfo"](["127.0.0.1:1"])


async def test_connect_zero_node_makes_no_outbound_attempt(tmp_path: Path) -> None:
    async with running(tmp_path, "a", connect=["0"], bind=[], listen=None) as a:
        assert a.connman.policy is None  # no automatic outbound loop at all
        assert not a.connman.options.connect
        assert not a.connman.listening  # -connect=0 soft-sets -listen=0 (bind not given)


async def test_whitebind_listens_and_grants_its_permissions(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        wb_port = s.getsockname()[1]
    async with running(
        tmp_path, "a", v2transport=False, whitebind=[f"noban,mempool@127.0.0.1:{wb_port}"]
    ) as a:
        ports = {p for _h, p in a.connman.listening}
        assert wb_port in ports and len(ports) == 2  # -bind and -whitebind both listen
        plain = next(p for p in ports if p != wb_port)
        peer_wb = await raw_handshake(wb_port, nonce=11)
        peer_plain = await raw_handshake(plain, nonce=12)
        await wait_until(lambda: handshaken(a, 2))
        perms = {p.addr_bind.port: a.peer_info(p)["permissions"] for p in a.connman.peers.values()}
        assert perms == {wb_port: ["noban", "mempool", "download"], plain: []}
        peer_wb.close()
        peer_plain.close()


async def test_flapping_manual_peer_backs_off(tmp_path: Path) -> None:
    """An -addnode peer that completes the handshake and hangs up at once is retried with a
    growing delay (Octez's back-off: only a connection that lasted 60 s resets it)."""
    import asyncio
    import time as _time

    from peerkeeper.wire.messages import Version
    from peerkeeper.wire.v1 import V1Transport, frame_v1

    accepted = 0

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        t = V1Transport(bytes.fromhex("fabfb5da"))
        version = Version(version=70016, services=9, timestamp=int(_time.time()), nonce=accepted)
        w.write(frame_v1(t.magic, "version", version.encode()) + frame_v1(t.magic, "verack", b""))
        await w.drain()
        await r.read(65536)
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    target = f"127.0.0.1:{port}"
    try:
        async with running(tmp_path, "a", v2transport=False, addnode=[target], connect=[]) as a:
            await wait_until(lambda: accepted >= 3, timeout=20)
            delay = a.connman.backoff._delay[target]
            assert delay >= 1.2  # 1 s, then x1.2 per short-lived connection
            assert not a.connman.backoff.ready(target, a.clock() - 0.5)
    finally:
        srv.close()
        await srv.wait_closed()
