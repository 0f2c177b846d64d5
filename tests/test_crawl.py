"""The lab network and the crawler: the frontier's rules alone, then real crawls on loopback.

A lab (:mod:`peerkeeper.daemon.lab`) gives each node a routable virtual address dialled
through a dial map; the crawler (:mod:`peerkeeper.daemon.crawler`) must find every
node, record each one, survive peers that never answer, talk garbage or flood addr,
and continue an interrupted crawl from its database.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peerkeeper.bitcoin.crawl import (
    IP_TIMEOUTS,
    OVERLAY_TIMEOUTS,
    CrawlFrontier,
    CrawlTimeouts,
    NodeRecord,
    summarize,
    timeouts_for,
)
from peerkeeper.daemon.crawler import CrawlOptions, run_crawl
from peerkeeper.daemon.lab import Lab, LabOptions, source_host, virtual_address
from peerkeeper.io.crawldb import CrawlDB, CrawlDBError
from peerkeeper.io.dialmap import DialMapError, load_dialmap, write_dialmap
from peerkeeper.net.netaddr import NetAddr, Network, Service
from peerkeeper.wire.messages import (
    Addr,
    AddrEntry,
    GetAddr,
    Verack,
    Version,
    decode_message,
)
from peerkeeper.wire.v1 import V1Transport

pytestmark = pytest.mark.timeout(120)

REGTEST = bytes.fromhex("fabfb5da")
FAST = CrawlTimeouts(2.0, 2.0, 3.0)


def svc(text: str) -> Service:
    return Service.parse(text, 18444)


# -- the frontier (pure) --------------------------------------------------------------------


def test_frontier_visits_each_address_once_breadth_first() -> None:
    f = CrawlFrontier(reachable=frozenset({Network.IPV4}))
    assert f.add([svc("1.1.1.1"), svc("2.2.2.2"), svc("1.1.1.1")]) == 2
    first = f.next_visit(0.0)
    assert first == svc("1.1.1.1")
    f.add([svc("3.3.3.3"), svc("2.2.2.2")])  # learned from 1.1.1.1: queued behind 2.2.2.2
    assert f.next_visit(0.0) == svc("2.2.2.2")
    assert f.next_visit(0.0) == svc("3.3.3.3")
    assert f.next_visit(0.0) is None
    assert not f.done  # three in flight
    for a in ("1.1.1.1:18444", "2.2.2.2:18444", "3.3.3.3:18444"):
        f.finish(NodeRecord(a, "ipv4", reachable=True))
    assert f.done and len(f.records) == 3


def test_frontier_records_unreachable_networks_without_a_dial() -> None:
    f = CrawlFrontier(reachable=frozenset({Network.IPV4}))
    onion = Service(
        NetAddr.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"), 8333
    )
    f.add([onion])
    got = f.next_visit(0.0)
    assert isinstance(got, tuple)
    assert got[1].failure == "network not reachable" and not got[1].reachable
    assert f.done  # nothing in flight


def test_frontier_rate_limit_spaces_the_visits() -> None:
    f = CrawlFrontier(reachable=frozenset({Network.IPV4}), rate=2.0)
    f.start(100.0)
    f.add([svc(f"1.1.1.{i}") for i in range(1, 6)])
    assert f.next_visit(100.0) is not None
    assert f.next_visit(100.0) is not None  # burst of 2
    assert f.next_visit(100.0) is None
    assert f.wait(100.0) == pytest.approx(0.5)
    assert f.next_visit(100.5) is not None


def test_timeouts_are_virtus_defaults() -> None:
    assert timeouts_for(Network.IPV4) == IP_TIMEOUTS == CrawlTimeouts(3.0, 5.0, 30.0)
    assert timeouts_for(Network.TORV3) == OVERLAY_TIMEOUTS == CrawlTimeouts(30.0, 60.0, 120.0)


def test_summary_counts_reachable_nodes_by_network_agent_and_failure() -> None:
    recs = [
        NodeRecord("1.1.1.1:8333", "ipv4", True, user_agent="/a/", version=70016, services=9),
        NodeRecord("2.2.2.2:8333", "ipv4", True, user_agent="/a/", version=70015, services=9),
        NodeRecord("[2001:db8::1]:8333", "ipv6", False, failure="timeout"),
    ]
    s = summarize(recs)
    assert s["visited"] == 3 and s["reachable"] == 2
    assert s["reachable_per_network"] == {"ipv4": 2}
    assert s["user_agents"] == {"/a/": 2}
    assert s["failures"] == {"timeout": 1}


# -- files ----------------------------------------------------------------------------------


def test_dialmap_round_trip_and_bad_files(tmp_path: Path) -> None:
    m = {svc("11.1.0.1"): ("127.0.0.1", 4000), svc("11.2.0.1"): ("127.0.0.1", 4002)}
    path = tmp_path / "dm.json"
    write_dialmap(path, m)
    assert load_dialmap(path) == m
    twice = '{"11.1.0.1:1": "127.0.0.1:1", "11.1.0.1:1": "127.0.0.1:2"}'
    for text in ("[1, 2]", '{"11.1.0.1": "127.0.0.1:1"}', '{"x": "127.0.0.1:1"}', "{", twice):
        path.write_text(text)
        with pytest.raises(DialMapError, match=str(path)):
            load_dialmap(path)


def test_crawldb_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "crawl.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(CrawlDBError, match="crawl.sqlite"):
        CrawlDB(bad).open()
    assert bad.read_bytes() == b"not a database" * 100  # nothing lost


def test_virtual_addresses_are_routable_distinct_groups() -> None:
    addrs = [virtual_address(i, 18444) for i in range(600)]
    assert len({a.addr for a in addrs}) == 600
    assert all(a.addr.is_routable() for a in addrs)
    assert len({bytes(a.addr.addr[:2]) for a in addrs}) == 600  # one /16 each
    assert source_host(0) == "127.1.0.1" and source_host(300) == "127.2.44.1"


# -- crawls on loopback ---------------------------------------------------------------------


async def test_crawl_of_a_200_node_lab_finds_every_node(tmp_path: Path) -> None:
    async with Lab(LabOptions(nodes=200, rpc=False, outbound=False, datadir=tmp_path)) as lab:
        dm = tmp_path / "dm.json"
        lab.write_dialmap(dm)
        out = tmp_path / "crawl.json"
        summary = await run_crawl(
            CrawlOptions(chain="regtest", seeds=[str(lab.virtual[0])], dialmap=dm, timeouts=FAST),
            json_out=out,
            summary_out=io.StringIO(),
        )
    assert summary["reachable"] == 200
    records = json.loads(out.read_text())
    assert {r["address"] for r in records} == {str(v) for v in lab.virtual}
    r0 = next(r for r in records if r["address"] == str(lab.virtual[0]))
    assert r0["transport"] == "v2" and r0["user_agent"].startswith("/peerkeeper:")
    assert r0["start_height"] == 10 and r0["addrs_returned"] > 0
    assert r0["services_names"] == ["NETWORK", "WITNESS", "P2P_V2"]


class _Liar:
    """A v1-only peer on loopback: ``mode`` "flood" answers getaddr with 1000 junk
    addresses three times, "garbage" answers the version with random bytes, "silent"
    accepts and says nothing."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        t = V1Transport(REGTEST)
        try:
            if self.mode == "silent":
                await r.read(1 << 20)
                return
            while True:
                data = await r.read(65536)
                if not data:
                    return
                if not data.startswith(REGTEST) and t.buffered == 0:
                    return  # a BIP324 key: hang up, so the crawler retries in v1
                t.receive_data(data)
                while (raw := t.next_message()) is not None:
                    msg = decode_message(raw.command, raw.payload)
                    if isinstance(msg, Version):
                        if self.mode == "garbage":
                            w.write(os.urandom(4000))
                            await w.drain()
                            continue
                        t.send_message(
                            Version(version=70016, services=9, nonce=7, user_agent="/liar/")
                        )
                        t.send_message(Verack())
                    elif isinstance(msg, GetAddr):
                        now = int(time.time())
                        for k in range(3):
                            t.send_message(
                                Addr(
                                    [
                                        AddrEntry(
                                            now,
                                            9,
                                            Service.parse(f"{20 + k}.{i >> 8}.{i & 255}.1", 8333),
                                        )
                                        for i in range(1000)
                                    ]
                                )
                            )
                    w.write(t.data_to_send())
        except (ConnectionError, OSError):
            return
        finally:
            w.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_crawl_survives_silent_garbage_and_flooding_peers(tmp_path: Path) -> None:
    liars = {mode: _Liar(mode) for mode in ("silent", "garbage", "flood")}
    for liar in liars.values():
        await liar.start()
    try:
        async with Lab(
            LabOptions(nodes=5, rpc=False, outbound=False, datadir=tmp_path / "lab")
        ) as lab:
            mapping = dict(lab.dialmap)
            names = {}
            for i, (mode, liar) in enumerate(liars.items()):
                v = svc(f"31.{i}.0.1")
                mapping[v] = ("127.0.0.1", liar.port)
                names[mode] = str(v)
            dm = tmp_path / "dm.json"
            write_dialmap(dm, mapping)
            out = tmp_path / "crawl.json"
            t0 = time.monotonic()
            summary = await run_crawl(
                CrawlOptions(
                    chain="regtest",
                    seeds=[*names.values(), *map(str, lab.virtual)],  # too few to gossip
                    dialmap=dm,
                    timeouts=FAST,
                ),
                json_out=out,
                summary_out=io.StringIO(),
            )
            elapsed = time.monotonic() - t0
    finally:
        for liar in liars.values():
            await liar.stop()
    recs = {r["address"]: r for r in json.loads(out.read_text())}
    assert not recs[names["silent"]]["reachable"] and recs[names["silent"]]["failure"]
    assert not recs[names["garbage"]]["reachable"] and recs[names["garbage"]]["failure"]
    flood = recs[names["flood"]]
    assert flood["reachable"] and flood["transport"] == "v1" and flood["user_agent"] == "/liar/"
    # the flood is capped per node, and its junk is recorded as failed visits, never dialled
    assert flood["addrs_returned"] <= 2500
    assert all(recs[str(v)]["reachable"] for v in lab.virtual)
    junk = [r for r in recs.values() if r["address"].startswith(("20.", "21.", "22."))]
    assert junk and all(not r["reachable"] and r["failure"] for r in junk)
    assert summary["reachable"] == 6
    assert elapsed < 100  # bounded by the timeouts, not hung on a peer


async def test_an_interrupted_crawl_continues_from_its_database(tmp_path: Path) -> None:
    async with Lab(
        LabOptions(nodes=40, rpc=False, outbound=False, datadir=tmp_path / "lab")
    ) as lab:
        dm = tmp_path / "dm.json"
        lab.write_dialmap(dm)
        db = tmp_path / "crawl.sqlite"
        opts = CrawlOptions(
            chain="regtest",
            seeds=[str(lab.virtual[0])],
            dialmap=dm,
            out=db,
            max_nodes=10,
            concurrency=4,
            timeouts=FAST,
        )
        first = await run_crawl(opts, summary_out=io.StringIO())
        assert first["visited"] < 40
        opts.max_nodes = 0
        out = tmp_path / "all.csv"
        second = await run_crawl(opts, csv_out=out, summary_out=io.StringIO())
    assert second["reachable"] == 40
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and {r["address"] for r in rows} == {str(v) for v in lab.virtual}


def test_lab_and_crawl_commands(tmp_path: Path) -> None:
    """What a user runs: ``peerkeeper lab`` in one process, ``peerkeeper crawl`` in another."""
    dm = tmp_path / "dm.json"
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peerkeeper.daemon.cli",
            "lab",
            "--nodes",
            "12",
            "--seconds",
            "60",
            "--write-dialmap",
            str(dm),
            "--datadir",
            str(tmp_path / "lab"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not dm.exists() and time.monotonic() < deadline and lab.poll() is None:
            time.sleep(0.05)
        assert dm.exists(), "the lab wrote no dial map"
        out = tmp_path / "c.json"
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "peerkeeper.daemon.cli",
                "crawl",
                "--regtest",
                "--dialmap",
                str(dm),
                "--seed",
                "11.1.0.1:18444",
                "--json",
                str(out),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["reachable"] == 12
        # each node's RPC port is in its datadir's bitcoin.conf, for `peerkeeper rpc`
        rpc = subprocess.run(
            [sys.executable, "-m", "peerkeeper.daemon.entry", "rpc", "--regtest", "--datadir",
             str(tmp_path / "lab" / "node3"), "getconnectioncount"],
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        assert rpc.returncode == 0, rpc.stderr
        assert int(rpc.stdout) >= 0
        assert len(json.loads(out.read_text())) == 12
    finally:
        lab.terminate()
        text, _ = lab.communicate(timeout=30)
    assert "11.12.0.1:18444" in text  # the table names every node


async def test_crawl_through_a_socks5_proxy_with_a_progress_line(tmp_path: Path) -> None:
    """-proxy is honoured: the visit goes through a real SOCKS5 server (pproxy); the
    progress line is drawn while the crawl runs."""
    from support import pproxy_server

    with pproxy_server() as proxy_port:
        async with Lab(LabOptions(nodes=1, rpc=False, outbound=False, datadir=tmp_path)) as lab:
            port = lab.dialmap[lab.virtual[0]][1]
            progress = io.StringIO()
            summary = await run_crawl(
                CrawlOptions(
                    chain="regtest",
                    seeds=[f"127.0.0.1:{port}"],
                    proxy=[f"127.0.0.1:{proxy_port}"],
                    timeouts=FAST,
                    max_nodes=1,  # the node's own virtual address is not dialled out
                ),
                progress=progress,
                summary_out=io.StringIO(),
            )
    assert summary["reachable"] == 1
    assert "tried 1  reachable 1" in progress.getvalue()


def test_dialmap_option_of_both_command_lines(tmp_path: Path) -> None:
    from peerkeeper.daemon.cli import build_parser, config_from_args
    from peerkeeper.daemon.peerkeeperd import build_config

    args = build_parser().parse_args(
        ["node", "--chain", "regtest", "--datadir", str(tmp_path), "--dialmap", "lab.json"]
    )
    config = config_from_args(args)
    assert config.dialmap == Path("lab.json") and config.daemon and config.rpc_server
    config, _ = build_config(["-regtest", f"-datadir={tmp_path}", "-dialmap=lab.json"], tmp_path)
    assert config.dialmap == Path("lab.json") and config.listening


async def test_two_nodes_answering_one_address_each_end_by_quiet(tmp_path: Path) -> None:
    """In a lab of two, each getaddr answer holds one address: the visit ends after a
    quiet spell, not at the 30 s getaddr limit (virtu's defaults are used here)."""
    async with Lab(LabOptions(nodes=2, rpc=False, outbound=False, datadir=tmp_path)) as lab:
        dm = tmp_path / "dm.json"
        lab.write_dialmap(dm)
        out = tmp_path / "c.json"
        async with asyncio.timeout(20):  # the 30 s limit would fail this
            summary = await run_crawl(
                CrawlOptions(chain="regtest", seeds=[str(lab.virtual[0])], dialmap=dm),
                json_out=out,
                summary_out=io.StringIO(),
            )
    assert summary["reachable"] == 2
    recs = json.loads(out.read_text())
    # the other node and its own self-announcement: distinct addresses, not messages
    assert all(r["addrs_returned"] == 2 for r in recs)


async def test_bad_arguments_and_unwritable_exports_fail_before_the_crawl(tmp_path: Path) -> None:
    for bad in ({"concurrency": 0}, {"rate": -1.0}, {"max_nodes": -1}):
        with pytest.raises(ValueError):
            await run_crawl(CrawlOptions(chain="regtest", seeds=["127.0.0.1:1"], **bad))  # type: ignore[arg-type]
    t0 = time.monotonic()
    with pytest.raises(OSError):
        await run_crawl(
            CrawlOptions(chain="regtest", seeds=["127.0.0.1:1"]),
            json_out=tmp_path / "no" / "such" / "dir.json",
        )
    assert time.monotonic() - t0 < 5  # refused at once, nothing dialled


def test_a_foreign_database_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(CrawlDBError, match="not a crawl database"):
        CrawlDB(path).open()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]


def test_lab_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM (a service manager, `kill`) stops every node and removes the temporary datadir."""
    import signal

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    lab = subprocess.Popen(
        [sys.executable, "-m", "peerkeeper.daemon.cli", "lab", "--nodes", "3", "--rpc", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert lab.stdout is not None
        for line in lab.stdout:
            if "running" in line:
                break
        assert any(p.name.startswith("peerkeeper-lab-") for p in tmp_path.iterdir())
        lab.send_signal(signal.SIGTERM)
        assert lab.wait(timeout=30) == 0
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    assert not any(p.name.startswith("peerkeeper-lab-") for p in tmp_path.iterdir())


async def test_crawl_from_a_dns_seed(tmp_path: Path) -> None:
    """--dns-seed: the seed's A records (a real DNS server on loopback, dnslib) start
    the crawl, at the chain's port, through the lab's dial map."""
    from support import SeedZone, dns_server

    async with Lab(LabOptions(nodes=3, rpc=False, outbound=False, datadir=tmp_path)) as lab:
        zone = SeedZone({"seed.lab.example.": [("A", str(lab.virtual[1].addr))]})
        dm = tmp_path / "dm.json"
        lab.write_dialmap(dm)
        with dns_server(zone) as port:
            summary = await run_crawl(
                CrawlOptions(
                    chain="regtest",
                    dns_seeds=["seed.lab.example"],
                    dnsserver=[f"127.0.0.1:{port}"],
                    dialmap=dm,
                    timeouts=FAST,
                ),
                summary_out=io.StringIO(),
            )
        assert any(q[0] == "seed.lab.example." for q in zone.queries)
    assert summary["reachable"] == 3


async def test_crawl_visits_an_i2p_node_through_the_sam_bridge(tmp_path: Path) -> None:
    """--i2psam: an I2P seed given by name alone gets port 0 (Core's GetDefaultPort) and
    is visited through a transient SAM session; the I2P node answers getaddr. Without a
    bridge the same seed is recorded as an unreachable network, never dialled."""
    from fakesam import FakeSamRouter
    from support import free_port, wait_until

    from peerkeeper import Config, Node
    from peerkeeper.bitcoin.addrman import AddrEntry

    async with FakeSamRouter() as router:
        cfg = Config(
            chain="regtest",
            datadir=tmp_path / "a",
            bind=[f"127.0.0.1:{free_port()}"],
            i2psam=router.proxy,
            connect=["0"],
            services=9,  # NODE_NETWORK | NODE_WITNESS: what an addr-fetch expects
        )
        async with Node(cfg) as node:
            assert node.connman.i2p is not None
            await wait_until(lambda: node.connman.i2p.listening_as is not None, 10)  # type: ignore[union-attr]
            me = node.connman.i2p.listening_as
            assert me is not None
            now = int(time.time())
            known = [Service.parse(f"13.{i}.0.1:18444", 0) for i in range(5)]
            node.addrman.add([AddrEntry(now - 600, 9, s) for s in known], None, now=node.clock())
            out = tmp_path / "c.json"
            summary = await run_crawl(
                CrawlOptions(
                    chain="regtest",
                    seeds=[str(me.addr)],
                    i2psam=router.proxy,
                    timeouts=FAST,
                    max_nodes=1,
                ),
                json_out=out,
                summary_out=io.StringIO(),
            )
            [rec] = json.loads(out.read_text())
            assert summary["reachable"] == 1, rec
            assert rec["address"] == f"{me.addr}:0" and rec["network"] == "i2p"
            assert rec["reachable"] and rec["transport"] == "v2"
            assert rec["addrs_returned"] >= 1  # 23 % of its table (Core's getaddr share)
            sessions = [r for r in router.requests if r.startswith("SESSION CREATE")]
            assert any("DESTINATION=TRANSIENT" in r for r in sessions)  # the crawler's

            summary = await run_crawl(
                CrawlOptions(chain="regtest", seeds=[str(me.addr)], timeouts=FAST),
                json_out=out,
                summary_out=io.StringIO(),
            )
            [rec] = json.loads(out.read_text())
            assert not rec["reachable"] and rec["network"] == "i2p"
            assert summary["reachable"] == 0
