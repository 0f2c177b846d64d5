"""Interoperability with a real Bitcoin Core on regtest, over loopback.

Skipped unless ``PEERKEEPER_BITCOIND`` names a bitcoind binary (Core is not on
PyPI or in Debian, so CI cannot install it; build it yourself and point this
variable at it). The Core node is started with automatic outbound connections,
DNS seeds, fixed seeds, NAT-PMP and discovery off, so it only ever talks to
127.0.0.1, and it is stopped at the end.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support import free_port
from support import wait_until as _wait_until

from peerkeeper import Config, Node
from peerkeeper.daemon.rpc import rpc_call

BITCOIND = os.environ.get("PEERKEEPER_BITCOIND")
pytestmark = [
    pytest.mark.skipif(not BITCOIND, reason="set PEERKEEPER_BITCOIND to a bitcoind binary to run"),
    pytest.mark.timeout(120),
]

#: Bitcoin Core takes longer than our own nodes: every wait here allows 30 seconds.
wait_until = functools.partial(_wait_until, timeout=30.0)


@asynccontextmanager
async def bitcoind(
    tmp: Path, *, automatic: bool = False, extra: Sequence[str] = ()
) -> AsyncIterator[tuple[int, Callable[..., Any]]]:
    """A regtest bitcoind on loopback. ``automatic`` drops -connect=0 so Core opens
    automatic connections (it then has only what the test gives it: -dnsseed=0,
    -fixedseeds=0, and an empty or test-written address table)."""
    assert BITCOIND is not None
    tmp.mkdir(parents=True, exist_ok=True)
    p2p, rpcport = free_port(), free_port()
    proc = subprocess.Popen(
        [BITCOIND, "-regtest", f"-datadir={tmp}", "-listen=1", "-bind=127.0.0.1", f"-port={p2p}",
         f"-rpcport={rpcport}", "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-rpcuser=u", "-rpcpassword=p",
         *([] if automatic else ["-connect=0"]),
         "-dnsseed=0", "-fixedseeds=0", "-natpmp=0", "-discover=0", "-printtoconsole=0", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    async def call(method: str, *params: Any) -> Any:
        return await rpc_call("127.0.0.1", rpcport, "u", "p", method, list(params))

    try:
        async with asyncio.timeout(60):
            while True:
                try:
                    await call("getnetworkinfo")
                    break
                except Exception:
                    assert proc.poll() is None, "bitcoind exited"
                    await asyncio.sleep(0.2)
        yield p2p, call
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def connecting_to(core_port: int, datadir: Path, v2transport: bool = True) -> Config:
    """A regtest node that connects only to Core and listens on a free loopback port."""
    return Config(
        chain="regtest",
        datadir=datadir,
        connect=[f"127.0.0.1:{core_port}"],
        listen=True,
        bind=["127.0.0.1:0"],
        server=False,
        v2transport=v2transport,
    )


async def test_handshake_both_directions_and_getaddr(tmp_path: Path) -> None:
    async with bitcoind(tmp_path / "core") as (core_port, core):
        for i in range(1, 21):
            result = await core("addpeeraddress", f"1.{i}.2.3", 8333)
            assert result["success"]
        async with Node(connecting_to(core_port, tmp_path / "pk")) as node:
            await wait_until(
                lambda: any(p.proto.successfully_connected for p in node.connman.peers.values())
            )
            peer = next(iter(node.connman.peers.values()))
            assert peer.proto.their.user_agent.startswith("/Satoshi:")
            # Core's getaddr reply: at most 23% of its 20 addresses.
            await wait_until(lambda: len(node.addrman) > 0)
            assert {str(e.service.addr) for e in node.addrman.entries()} <= {
                f"1.{i}.2.3" for i in range(1, 21)
            }
            # Core dials us too; both directions speak BIP324 v2 (Core's default).
            ours = node.connman.listening[0][1]
            await core("addnode", f"127.0.0.1:{ours}", "add")

            async def core_sees() -> list[dict[str, Any]]:
                return [p for p in await core("getpeerinfo") if p["subver"] == "/peerkeeper:0.1.0/"]

            async with asyncio.timeout(60):
                while len(seen := await core_sees()) < 2:
                    await asyncio.sleep(0.2)
            assert {p["connection_type"] for p in seen} == {"inbound", "manual"}
            assert all(p["transport_protocol_type"] == "v2" for p in seen)
            await wait_until(lambda: len(node.connman.peers) == 2)
            ours_ids = {
                p.transport.session_id.hex()
                for p in node.connman.peers.values()
                if p.transport.session_id
            }
            assert {p["session_id"] for p in seen} == ours_ids  # the same BIP324 sessions
            # Pings both ways complete.
            await core("ping")
            node.connman.ping_all()
            async with asyncio.timeout(30):
                while not all("pingtime" in p for p in await core_sees()):
                    await asyncio.sleep(0.2)
            await wait_until(
                lambda: all(p.proto.ping.last_time is not None for p in node.connman.peers.values())
            )


async def test_core_loads_our_peers_dat(tmp_path: Path) -> None:
    """A peers.dat we write loads in Bitcoin Core with every entry where we put it."""
    import random

    from peerkeeper.bitcoin.addrman import AddrMan
    from peerkeeper.io.addrdb import write_peers_dat
    from peerkeeper.net.netaddr import Service
    from peerkeeper.wire.messages import AddrEntry

    now = 1_795_000_000
    am = AddrMan(random.Random(5))
    rng = random.Random(6)
    for s in range(20):
        source = Service.parse(f"21.{s}.0.1:8333", 0)
        entries = [
            AddrEntry(now, 1033, Service.parse(f"{22 + s}.{rng.randrange(256)}.{i}.1:8333", 0))
            for i in range(20)
        ]
        am.add(entries, source, 0, now=now)
    for e in am.entries()[:30]:
        am.good(e.service, now=now)
    core_dir = tmp_path / "core"
    (core_dir / "regtest").mkdir(parents=True)
    write_peers_dat(core_dir / "regtest" / "peers.dat", am, bytes.fromhex("fabfb5da"))
    async with bitcoind(core_dir) as (_port, core):
        assert await core("getaddrmaninfo") == am.info()
        raw = await core("getrawaddrman")
    ours = am.raw_entries()
    for table in ("new", "tried"):
        assert {k: (v["address"], v["port"]) for k, v in raw[table].items()} == {
            k: (v["address"], v["port"]) for k, v in ours[table].items()
        }


async def test_v1_only_peerkeeper_still_talks_to_core(tmp_path: Path) -> None:
    async with (
        bitcoind(tmp_path / "core") as (core_port, core),
        Node(connecting_to(core_port, tmp_path / "pk", v2transport=False)) as node,
    ):
        await wait_until(
            lambda: any(p.proto.successfully_connected for p in node.connman.peers.values())
        )
        await core("addnode", f"127.0.0.1:{node.connman.listening[0][1]}", "onetry")
        async with asyncio.timeout(60):
            while True:
                seen = [p for p in await core("getpeerinfo") if p["subver"] == "/peerkeeper:0.1.0/"]
                if len(seen) == 2 and all(p["transport_protocol_type"] == "v1" for p in seen):
                    break
                await asyncio.sleep(0.2)


async def test_anchors_dat_both_ways_and_block_relay_only_from_core(tmp_path: Path) -> None:
    """Core reads an anchors.dat we wrote, deletes it, and dials the anchor (us) as a
    block-relay-only peer; at shutdown Core writes its anchors.dat, which we read back."""
    from peerkeeper.io.addrdb import read_anchors, write_anchors
    from peerkeeper.net.netaddr import Service
    from peerkeeper.wire.messages import AddrEntry

    magic = bytes.fromhex("fabfb5da")
    config = Config(
        chain="regtest",
        datadir=tmp_path / "pk",
        connect=["0"],
        listen=True,
        bind=["127.0.0.1:0"],
        server=False,
        services=9,  # NODE_NETWORK | NODE_WITNESS: what Core wants from a block-relay peer
    )
    async with Node(config) as node:
        port = node.connman.listening[0][1]
        anchor = AddrEntry(1_795_000_000, 9 | 2048, Service.parse(f"127.0.0.1:{port}", 0))
        core_dir = tmp_path / "core"
        (core_dir / "regtest").mkdir(parents=True)
        anchors_path = core_dir / "regtest" / "anchors.dat"
        write_anchors(anchors_path, [anchor], magic)
        async with bitcoind(core_dir, automatic=True) as (_core_port, core):
            await wait_until(lambda: len(node.connman.peers) == 1)
            assert not anchors_path.exists()  # Core reads anchors once, then deletes them

            async def core_peer() -> dict[str, Any]:
                peers = await core("getpeerinfo")
                return peers[0] if peers else {}

            async with asyncio.timeout(30):
                while (await core_peer()).get("connection_type") != "block-relay-only":
                    await asyncio.sleep(0.1)
            ours = next(iter(node.connman.peers.values()))
            await wait_until(lambda: ours.proto.successfully_connected)
            assert ours.inbound and not ours.proto.their.relay  # block-relay-only: no txs
            assert ours.proto.addr_relay_enabled is False  # and no addr relay with us
        # Core's clean shutdown saved its block-relay-only peer as its anchor
        saved = read_anchors(anchors_path, magic)
        assert [e.service for e in saved] == [anchor.service]


async def test_automatic_outbound_to_core_through_virtual_addresses(tmp_path: Path) -> None:
    """Our automatic loop picks addresses from addrman (virtual 11.x addresses mapped to
    Core's loopback port) and opens full-relay connections Core accepts, over BIP324."""
    import time

    from peerkeeper.net.netaddr import NetAddr, Service
    from peerkeeper.wire.messages import AddrEntry

    async with bitcoind(tmp_path / "core") as (core_port, core):
        config = Config(
            chain="regtest",
            datadir=tmp_path / "pk",
            listen=True,
            bind=["127.0.0.1:0"],
            server=False,
            dnsseed=False,
            fixedseeds=False,
        )
        node = Node(config)
        virtual = [Service.parse(f"11.{i}.0.1:18444", 0) for i in (1, 2, 3)]
        node.connman.sockman.dial_map = lambda s: ("127.0.0.1", core_port) if s in virtual else None
        now = int(time.time())
        for s in virtual:
            node.addrman.add(
                [AddrEntry(now - 600, 9 | 2048, s)], NetAddr.parse("12.0.0.1"), now=node.clock()
            )
        async with node:
            await wait_until(
                lambda: (
                    sum(
                        1
                        for p in node.connman.peers.values()
                        if p.conn_type.value == "outbound-full-relay"
                        and p.proto.successfully_connected
                    )
                    == 3
                )
            )
            peers = await core("getpeerinfo")
            assert len(peers) == 3
            assert {p["connection_type"] for p in peers} == {"inbound"}
            assert {p["transport_protocol_type"] for p in peers} == {"v2"}
            assert {p["subver"] for p in peers} == {"/peerkeeper:0.1.0/"}
            # Core's addrman moved nothing for inbound; ours marked the three as tried
            assert node.addrman.size(in_new=False) == 3


# -- the application API, the examples and the crawler against Core ------------------------


async def test_crawler_finds_core_and_the_addresses_it_hands_out(tmp_path: Path) -> None:
    """Core (with -connect=0) behind a virtual address: the crawl records it (v2, its user
    agent) and every address its getaddr answer held, which the dial map keeps from
    being dialled for real."""
    import io
    import json

    from peerkeeper.bitcoin.crawl import CrawlTimeouts
    from peerkeeper.daemon.crawler import CrawlOptions, run_crawl
    from peerkeeper.io.dialmap import write_dialmap
    from peerkeeper.net.netaddr import Service

    async with bitcoind(tmp_path / "core") as (core_port, core):
        for i in range(1, 41):
            assert (await core("addpeeraddress", f"1.{i}.2.3", 8333))["success"]
        virtual = Service.parse("11.0.0.1:18444", 18444)
        dm = tmp_path / "dm.json"
        write_dialmap(dm, {virtual: ("127.0.0.1", core_port)})
        out = tmp_path / "crawl.json"
        summary = await run_crawl(
            CrawlOptions(
                chain="regtest",
                seeds=[str(virtual)],
                dialmap=dm,
                timeouts=CrawlTimeouts(5.0, 10.0, 30.0),
            ),
            json_out=out,
            summary_out=io.StringIO(),
        )
    recs = {r["address"]: r for r in json.loads(out.read_text())}
    me = recs[str(virtual)]
    assert me["reachable"] and me["user_agent"].startswith("/Satoshi:")
    assert me["transport"] == "v2" and me["version"] >= 70016
    handed = {a for a in recs if a.startswith("1.")}
    assert me["addrs_returned"] == len(handed) >= 1  # Core: at most 23% of its 40
    assert handed <= {f"1.{i}.2.3:8333" for i in range(1, 41)}
    assert all(not recs[a]["reachable"] for a in handed)  # never dialled for real
    assert summary["reachable"] == 1


async def test_examples_against_core(tmp_path: Path) -> None:
    """The examples/ scripts against a regtest Core: headers, inv announcements, and a
    transaction Core asks for after our inv."""
    import sys

    async with bitcoind(tmp_path / "core") as (core_port, core):
        address = "bcrt1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq3xueyj"  # Core ADDRESS_BCRT1_UNSPENDABLE
        hashes = await core("generatetoaddress", 5, address)
        peer = f"127.0.0.1:{core_port}"
        root = Path(__file__).resolve().parents[1] / "examples"

        async def run(script: str, *args: str) -> str:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(root / script), *args,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0, out.decode()
            return out.decode()

        text = await run("fetch_headers.py", "--peer", peer)
        assert "5 headers from" in text and hashes[-1] in text
        text = await run("broadcast_tx.py", "--peer", peer, "--seconds", "8")
        assert "1 of 1 asked for it" in text


async def test_i2p_both_ways_with_core_through_one_sam_router(tmp_path: Path) -> None:
    """Core and peerkeeper on one SAM router (tests/fakesam.py): each SAM client is the
    other's peer over "I2P". We dial Core's advertised .b32.i2p address, and Core knows
    us by the address we advertise (our persistent session dials); then Core dials ours
    by name (port 0). Both connections are BIP324, and each side knows the other by its
    I2P address. (One at a time: Core refuses to dial an address it is connected to.)"""
    from fakesam import FakeSamRouter

    from peerkeeper.net.connection_types import ConnectionType

    async with FakeSamRouter() as router:
        extra = [f"-i2psam={router.proxy}", "-debug=i2p"]
        async with bitcoind(tmp_path / "core", extra=extra) as (_, core):

            async def core_i2p() -> str | None:
                info = await core("getnetworkinfo")
                found = [a for a in info["localaddresses"] if a["address"].endswith(".b32.i2p")]
                return found[0]["address"] if found else None

            async with asyncio.timeout(30):
                while (core_addr := await core_i2p()) is None:
                    await asyncio.sleep(0.2)
            config = Config(
                chain="regtest",
                datadir=tmp_path / "pk",
                listen=True,
                bind=["127.0.0.1:0"],
                i2psam=router.proxy,
                connect=["0"],
            )
            async with Node(config) as node:
                assert node.connman.i2p is not None
                await wait_until(lambda: node.connman.i2p.listening_as is not None)  # type: ignore[union-attr]
                ours = node.connman.i2p.listening_as
                assert ours is not None
                peer = await node.connman.open_connection(core_addr, ConnectionType.MANUAL)
                assert peer is not None
                await wait_until(lambda: peer.proto.successfully_connected)
                assert peer.proto.their.user_agent.startswith("/Satoshi:")

                async def core_sees() -> list[dict[str, Any]]:
                    return [p for p in await core("getpeerinfo") if p["network"] == "i2p"]

                async with asyncio.timeout(30):
                    while not (seen := await core_sees()) or not seen[0]["subver"]:
                        await asyncio.sleep(0.2)
                # Our persistent session dialled: Core knows us by the address we advertise.
                [inbound] = seen
                assert inbound["connection_type"] == "inbound"
                assert inbound["addr"] == f"{ours}" and inbound["addrbind"] == f"{core_addr}:0"
                assert inbound["transport_protocol_type"] == "v2"
                node.connman.disconnect_node(peer_id=peer.id)
                async with asyncio.timeout(30):
                    while await core_sees():
                        await asyncio.sleep(0.2)
                # Now Core dials us, by name without a port (Core's default for I2P: 0).
                await core("addnode", str(ours.addr), "onetry")
                async with asyncio.timeout(30):
                    while not (seen := await core_sees()) or not seen[0]["subver"]:
                        await asyncio.sleep(0.2)
                [manual] = seen
                assert manual["connection_type"] == "manual"
                assert manual["subver"] == "/peerkeeper:0.1.0/"
                assert manual["transport_protocol_type"] == "v2"
                await wait_until(lambda: len(node.connman.peers) == 1)
                [back] = node.connman.peers.values()
                assert back.inbound and str(back.addr) == f"{core_addr}:0"
                assert back.proto.their.user_agent.startswith("/Satoshi:")


async def test_the_crawler_visits_core_over_i2p(tmp_path: Path) -> None:
    """peerkeeper crawl --i2psam: Core's .b32.i2p address, named without a port, is
    visited through a transient SAM session; Core sees an inbound I2P peer, the handshake
    is BIP324, and Core's getaddr answer comes back."""
    import io
    import json

    from fakesam import FakeSamRouter

    from peerkeeper.bitcoin.crawl import CrawlTimeouts
    from peerkeeper.daemon.crawler import CrawlOptions, run_crawl

    async with FakeSamRouter() as router:
        extra = [f"-i2psam={router.proxy}"]
        async with bitcoind(tmp_path / "core", extra=extra) as (_, core):
            for i in range(1, 21):
                await core("addpeeraddress", f"13.{i}.0.1", 18444)
            async with asyncio.timeout(30):
                while not (
                    found := [
                        a["address"]
                        for a in (await core("getnetworkinfo"))["localaddresses"]
                        if a["address"].endswith(".b32.i2p")
                    ]
                ):
                    await asyncio.sleep(0.2)
            out = tmp_path / "crawl.json"
            summary = await run_crawl(
                CrawlOptions(
                    chain="regtest",
                    seeds=[found[0]],
                    i2psam=router.proxy,
                    timeouts=CrawlTimeouts(5.0, 5.0, 5.0),
                    max_nodes=1,
                ),
                json_out=out,
                summary_out=io.StringIO(),
            )
            [rec] = json.loads(out.read_text())
    assert summary["reachable"] == 1, rec
    assert rec["address"] == f"{found[0]}:0" and rec["network"] == "i2p"
    assert rec["transport"] == "v2" and rec["user_agent"].startswith("/Satoshi:")
    assert rec["addrs_returned"] >= 1  # Core's 23 % of its table
