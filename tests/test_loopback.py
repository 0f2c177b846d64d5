"""Loopback integration: real peerkeeper nodes and hostile raw sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from support import (
    REGTEST,
    RawPeer,
    framed,
    handshaken,
    port_of,
    raw_handshake,
    running,
    wait_until,
)

from peerkeeper import Service
from peerkeeper.daemon.node import Node
from peerkeeper.daemon.rpc import RpcError, read_cookie, rpc_call
from peerkeeper.wire.messages import (
    MAX_ADDR_TO_SEND,
    Addr,
    AddrEntry,
    GetAddr,
    Ping,
    Pong,
    Verack,
    Version,
)
from peerkeeper.wire.v1 import V1Transport

pytestmark = pytest.mark.timeout(60)


async def test_two_nodes_handshake_ping_and_counters(tmp_path: Path) -> None:
    async with (
        running(tmp_path, "a", v2transport=False) as a,
        running(tmp_path, "b", v2transport=False) as b,
    ):
        b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        await wait_until(lambda: handshaken(a) and handshaken(b))
        out = next(iter(b.connman.peers.values()))
        inb = next(iter(a.connman.peers.values()))
        assert out.conn_type.value == "manual" and inb.conn_type.value == "inbound"
        assert inb.proto.their.user_agent == "/peerkeeper:0.1.0/"
        assert out.transport.transport_type == inb.transport.transport_type == "v1"
        # Which object carries the v1 stream is the transport's business (a v2 responder
        # delegates to its inner v1 transport): only the reported type matters.
        await wait_until(
            lambda: out.proto.ping.last_time is not None and inb.proto.ping.last_time is not None
        )
        b.connman.ping_all()
        await wait_until(lambda: out.sent_per_msg.get("ping", 0) >= 64)
        assert out.bytes_sent == sum(out.sent_per_msg.values())
        await wait_until(lambda: inb.bytes_recv == out.bytes_sent)
        assert inb.recv_per_msg["version"] == out.sent_per_msg["version"]
        assert a.connman.total_bytes_recv == inb.bytes_recv


async def test_two_nodes_speak_bip324_by_default(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a, running(tmp_path, "b") as b:
        b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        await wait_until(lambda: handshaken(a) and handshaken(b))
        out = next(iter(b.connman.peers.values()))
        inb = next(iter(a.connman.peers.values()))
        assert out.transport.transport_type == inb.transport.transport_type == "v2"
        assert (
            out.transport.session_id is not None
            and out.transport.session_id == inb.transport.session_id
        )
        assert out.proto.their.services & (1 << 11)  # NODE_P2P_V2 advertised
        # Each message is counted under its own type, with its v2 packet size.
        assert out.sent_per_msg["version"] == inb.recv_per_msg["version"]
        assert out.sent_per_msg["verack"] == 20 + 1 + 12  # no short id: the 12-byte type form
        pings = out.proto.ping
        await wait_until(lambda: pings.last_time is not None)
        await wait_until(lambda: inb.bytes_recv == out.bytes_sent)


@pytest.mark.parametrize("v2_side", ["initiator", "responder"])
async def test_v2_falls_back_to_v1_both_ways(tmp_path: Path, v2_side: str) -> None:
    async with (
        running(tmp_path, "a", v2transport=v2_side == "responder") as a,
        running(tmp_path, "b", v2transport=v2_side == "initiator") as b,
    ):
        b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        await wait_until(lambda: handshaken(a) and handshaken(b), timeout=20)
        out = next(iter(b.connman.peers.values()))
        inb = next(iter(a.connman.peers.values()))
        assert out.transport.transport_type == inb.transport.transport_type == "v1"
        # Which object carries the v1 stream is the transport's business (a v2 responder
        # delegates to its inner v1 transport): only the reported type matters.


async def test_three_nodes_exchange_addresses(tmp_path: Path) -> None:
    async with (
        running(tmp_path, "a") as a,
        running(tmp_path, "b") as b,
        running(tmp_path, "c") as c,
    ):
        known = [
            AddrEntry(int(time.time()) - 100, 9, Service.parse(f"11.{i}.0.1:8333", 8333))
            for i in range(30)
        ]
        a.addrman.add(known, None, now=a.clock())
        b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        c.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        # b and c each get a's addresses through their getaddr; 23% of the table at most.
        await wait_until(lambda: len(b.addrman) > 0 and len(c.addrman) > 0)
        for n in (b, c):
            assert 0 < len(n.addrman) <= 30 * 23 // 100
            assert {e.service for e in n.addrman.entries()} <= {e.service for e in known}
        assert handshaken(a, 2)


async def test_self_connection_rejected(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        target = f"127.0.0.1:{port_of(a)}"
        a.connman.add_node(target, "onetry")
        # Both ends of the self-connection existed, then both were dropped.
        await wait_until(lambda: a.connman.core._next_id == 2 and len(a.connman.peers) == 0)
        assert not handshaken(a)


async def test_peer_closing_mid_message_and_others_survive(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        good = await raw_handshake(port_of(a))
        bad = await RawPeer.connect(port_of(a))
        frame = framed(bad.t, Version(nonce=5, user_agent="/half/"))
        bad.writer.write(frame[: len(frame) // 2])
        await bad.writer.drain()
        await wait_until(lambda: len(a.connman.peers) == 2)
        bad.close()
        await wait_until(lambda: len(a.connman.peers) == 1)
        good.send(Ping(77))
        while (m := await good.recv()) != Pong(77):
            assert m is not None
        good.close()


async def test_wrong_magic_disconnects(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        p = await RawPeer.connect(port_of(a))
        p.writer.write(framed(V1Transport(bytes.fromhex("f9beb4d9")), Version()))
        assert await p.closed_by_peer()
        assert len(a.connman.peers) == 0


async def test_oversized_header_disconnects_without_buffering(tmp_path: Path) -> None:
    # A v1 listener: with -v2transport a first header that is not "version" reads as a v2 key.
    async with running(tmp_path, "a", v2transport=False) as a:
        p = await RawPeer.connect(port_of(a))
        p.writer.write(
            struct.pack("<4s12sI4s", REGTEST, b"block", 4_000_001, b"\0" * 4) + b"x" * 1000
        )
        assert await p.closed_by_peer()
        assert a.connman.total_bytes_recv <= 1024


async def test_bad_checksum_dropped_connection_kept(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        p = await raw_handshake(port_of(a))
        frame = bytearray(framed(p.t, Ping(1)))
        frame[-1] ^= 0xFF
        p.writer.write(bytes(frame))
        p.send(Ping(2))
        while (m := await p.recv()) != Pong(2):
            assert m != Pong(1)
        peer = next(iter(a.connman.peers.values()))
        assert peer.transport.checksum_errors == 1
        assert peer.recv_per_msg["*other*"] == len(frame)


async def test_addr_with_1001_entries_is_misbehaviour(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        p = await raw_handshake(port_of(a))
        entries = [AddrEntry(int(time.time()), 9, Service.parse("12.0.0.1:8333", 8333))] * (
            MAX_ADDR_TO_SEND + 1
        )
        p.send(Addr(entries))
        assert await p.closed_by_peer()
        assert len(a.addrman) == 0


async def test_long_user_agent_disconnects(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        p = await RawPeer.connect(port_of(a))
        p.send(Version(version=70016, nonce=3, user_agent="u" * 257))
        assert await p.closed_by_peer()


async def dropped_at_peertimeout(node: Node, p: RawPeer, peertimeout: int) -> None:
    """The one peer of ``node``, still in its handshake, stays 10 s before ``-peertimeout``
    and is dropped just after it: the node's clock is moved (setmocktime), not waited on."""
    await wait_until(lambda: len(node.connman.peers) == 1)
    setmocktime = node.rpc_methods()["setmocktime"]
    await setmocktime([int(time.time()) + peertimeout - 10])
    await asyncio.sleep(0.05)  # the connection manager's timers have run
    assert len(node.connman.peers) == 1 and not p.reader.at_eof()
    await setmocktime([int(time.time()) + peertimeout + 1])
    assert await p.closed_by_peer(timeout=10)
    assert len(node.connman.peers) == 0


async def test_silent_peer_is_timed_out(tmp_path: Path) -> None:
    async with running(tmp_path, "a", peertimeout=30) as a:
        p = await RawPeer.connect(port_of(a))
        p.send(Ping(1))  # a message before version: ignored, not answered
        await dropped_at_peertimeout(a, p, 30)


async def test_inbound_limit(tmp_path: Path) -> None:
    # 12 - 11 = 1 inbound slot; 100 % of it may relay transactions (Core's default 50 %
    # would leave int(0.5 * 1) = 0 tx-relay slots and drop the first peer after its version).
    async with running(tmp_path, "a", maxconnections=12, inboundrelaypercent=100) as a:
        first = await raw_handshake(port_of(a))
        second = await RawPeer.connect(port_of(a))
        assert await second.closed_by_peer()
        assert len(a.connman.peers) == 1
        first.close()


async def test_rpc_end_to_end(tmp_path: Path) -> None:
    async with running(tmp_path, "a", server=True) as a, running(tmp_path, "b") as b:
        user, password = read_cookie(a.datadir)
        assert (a.datadir / ".cookie").stat().st_mode & 0o777 == 0o600

        async def call(method: str, *params: object) -> object:
            return await rpc_call("127.0.0.1", a.rpc_port, user, password, method, list(params))

        await call("addnode", f"127.0.0.1:{port_of(b)}", "add")
        await wait_until(lambda: handshaken(a))
        info = await call("getpeerinfo")
        assert isinstance(info, list) and info[0]["connection_type"] == "manual"
        assert (
            info[0]["subver"] == "/peerkeeper:0.1.0/" and info[0]["transport_protocol_type"] == "v2"
        )
        assert await call("getconnectioncount") == 1
        totals = await call("getnettotals")
        assert isinstance(totals, dict) and totals["totalbytessent"] > 0
        await call("addnode", f"127.0.0.1:{port_of(b)}", "remove")
        await call("disconnectnode", "", info[0]["id"])
        await wait_until(lambda: len(b.connman.peers) == 0)
        assert await call("getnodeaddresses", 0) == []
        # The address manager's RPCs, Core's shapes. The two addresses are in different /16
        # groups: under the node's random key, two of one group share a new bucket and take
        # the same one of its 64 slots 1 time in 64, and the second add then fails.
        assert await call("addpeeraddress", "19.1.2.3", 8333) == {"success": True}
        assert await call("addpeeraddress", "19.2.2.4", 8333, True) == {"success": True}
        assert await call("addpeeraddress", "127.0.0.1", 8333) == {
            "success": False,
            "error": "failed-adding-to-new",
        }
        info2 = await call("getaddrmaninfo")
        assert isinstance(info2, dict)
        assert (
            info2["ipv4"] == {"new": 1, "tried": 1, "total": 2}
            and info2["all_networks"]["total"] == 2
        )
        raw = await call("getrawaddrman")
        assert isinstance(raw, dict) and len(raw["new"]) == 1 and len(raw["tried"]) == 1
        (entry,) = raw["tried"].values()
        assert (entry["address"], entry["port"], entry["network"]) == ("19.2.2.4", 8333, "ipv4")
        nodes = await call("getnodeaddresses", 0, "ipv4")
        assert isinstance(nodes, list) and {n["address"] for n in nodes} == {"19.1.2.3", "19.2.2.4"}


async def test_start_and_stop_repeatedly_leaves_no_tasks(tmp_path: Path) -> None:
    before = len(asyncio.all_tasks())
    stack = AsyncExitStack()
    async with stack:
        for i in range(3):
            await stack.enter_async_context(running(tmp_path, f"n{i}"))
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) <= before


async def test_ping_flood_without_reading_is_bounded(tmp_path: Path) -> None:
    """A peer that floods pings and never reads our pongs: we stop reading it (Core's fPauseSend)."""
    async with running(tmp_path, "a", maxsendbuffer=50) as a:  # 50 kB send buffer
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port_of(a)))
        reader, writer = await asyncio.open_connection(sock=sock)
        p = RawPeer(reader, writer)
        p.send(
            Version(
                version=70016, services=9, timestamp=int(time.time()), nonce=5, user_agent="/flood/"
            )
        )
        p.send(Verack())
        await wait_until(lambda: handshaken(a))
        peer = next(iter(a.connman.peers.values()))
        flood = framed(p.t, Ping(1)) * 20_000  # 640 kB of pings, no reading on our side
        for _ in range(40):
            writer.write(flood)
            if peer.reading_paused:
                break
            await asyncio.sleep(0.05)
        await wait_until(lambda: peer.reading_paused)
        assert a.connman.sockman.send_buffer_size(peer.conn_id) <= 50_000 + 65_536
        assert peer.transport.buffered <= a.connman.options.max_receive_buffer
        writer.transport.abort()
        await wait_until(lambda: len(a.connman.peers) == 0)


async def test_listen_on_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 cannot be bound here")
    async with (
        running(tmp_path, "a", bind=["[::1]:0", "127.0.0.1:0"]) as a,
        running(tmp_path, "b") as b,
    ):
        assert {h for h, _ in a.connman.listening} == {"::1", "127.0.0.1"}
        six = next(p for h, p in a.connman.listening if h == "::1")
        b.connman.add_node(f"[::1]:{six}", "add")
        await wait_until(lambda: handshaken(a) and handshaken(b))
        assert str(next(iter(a.connman.peers.values())).addr.addr) == "::1"


async def test_large_message_completes_despite_small_receive_buffer(tmp_path: Path) -> None:
    """Review finding: a message bigger than -maxreceivebuffer must still complete."""
    async with running(tmp_path, "a", maxreceivebuffer=1) as a:  # 1 kB
        p = await raw_handshake(port_of(a))
        p.t.send("block", bytes(1_500_000))
        p.writer.write(p.t.data_to_send())
        p.send(Ping(9))
        while (m := await p.recv()) != Pong(9):
            assert m is not None
        p.close()


async def test_getaddr_replies_are_cached(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        now = int(time.time())
        a.addrman.add(
            [AddrEntry(now, 9, Service.parse(f"13.{i}.0.1:8333", 8333)) for i in range(200)],
            None,
            now=a.clock(),
        )
        replies = []
        for nonce in (11, 12, 13):
            p = await raw_handshake(port_of(a), nonce=nonce)
            p.send(GetAddr())
            while not isinstance(m := await p.recv(), Addr):
                assert m is not None
            replies.append({e.service for e in m.entries})
            p.close()
        assert len(replies[0]) == len(a.addrman) * 23 // 100 > 0
        assert replies[0] == replies[1] == replies[2]  # no scraping by reconnecting


async def test_setban_refuses_inbound_disconnects_and_persists(tmp_path: Path) -> None:
    async with running(tmp_path, "a", server=True) as a:
        user, password = read_cookie(a.datadir)

        async def call(method: str, *params: object) -> object:
            return await rpc_call("127.0.0.1", a.rpc_port, user, password, method, list(params))

        p = await raw_handshake(port_of(a))
        await call("setban", "127.0.0.0/8", "add", 3600)
        assert await p.closed_by_peer()  # matching peers are disconnected
        again = await RawPeer.connect(port_of(a))
        assert await again.closed_by_peer()  # and refused
        banned = await call("listbanned")
        assert isinstance(banned, list) and banned[0]["address"] == "127.0.0.0/8"
        assert banned[0]["ban_duration"] == 3600
        with pytest.raises(RpcError, match="already banned"):
            await call("setban", "127.0.0.1", "add")
        with pytest.raises(RpcError, match="Invalid IP/Subnet"):
            await call("setban", "not-an-ip", "add")
    async with running(tmp_path, "a", server=True) as a:  # same datadir: the ban survived
        assert [b["address"] for b in a.banman.list_banned(time.time())] == ["127.0.0.0/8"]
        user, password = read_cookie(a.datadir)
        await rpc_call("127.0.0.1", a.rpc_port, user, password, "clearbanned", [])
        assert a.banman.list_banned(time.time()) == []
        p = await raw_handshake(port_of(a))
        p.close()
    async with running(tmp_path, "a") as a:
        assert len(a.banman) == 0  # clearbanned was saved too


async def test_misbehaving_routable_peer_is_discouraged(tmp_path: Path) -> None:
    from peerkeeper.net.connection_types import ConnectionType

    async with running(tmp_path, "a") as a:
        p = await raw_handshake(port_of(a))
        await wait_until(lambda: handshaken(a))
        peer = next(iter(a.connman.peers.values()))
        routable = Service.parse("11.22.33.44:8333", 8333)
        peer.addr = routable  # as if it came from a routable address
        assert peer.conn_type is ConnectionType.INBOUND
        a.connman.core._misbehaving(peer, "test")
        a.connman._control()
        assert a.banman.is_discouraged(routable.addr)
        assert await p.closed_by_peer()


async def test_v2_partial_key_then_stall_is_timed_out(tmp_path: Path) -> None:
    async with running(tmp_path, "a", peertimeout=30) as a:
        p = await RawPeer.connect(port_of(a))
        p.writer.write(os.urandom(30))  # part of an ElligatorSwift key, then nothing
        await dropped_at_peertimeout(a, p, 30)


async def test_v2_garbage_without_terminator_disconnects(tmp_path: Path) -> None:
    async with running(tmp_path, "a") as a:
        p = await RawPeer.connect(port_of(a))
        p.writer.write(
            os.urandom(64) + os.urandom(5000)
        )  # a key, then more than 4095 bytes of garbage
        assert await p.closed_by_peer()
        assert len(a.connman.peers) == 0


async def test_full_inbound_evicts_by_cores_rules(tmp_path: Path) -> None:
    async with running(
        tmp_path, "a", maxconnections=41, v2transport=False, inboundrelaypercent=100
    ) as a:  # 30 inbound slots, all of them may relay transactions
        peers = [await raw_handshake(port_of(a), nonce=1000 + i) for i in range(30)]
        await wait_until(lambda: handshaken(a, 30))
        ids_before = set(a.connman.peers)
        newcomer = await raw_handshake(port_of(a), nonce=2000)
        await wait_until(
            lambda: len(a.connman.peers) == 30 and max(a.connman.peers) not in ids_before
        )
        evicted = ids_before - set(a.connman.peers)
        assert len(evicted) == 1
        # Core protects the longest-connected half: the evicted peer is among the newer ones.
        assert min(evicted) >= sorted(ids_before)[len(ids_before) // 2]
        newcomer.close()
        for p in peers:
            p.close()


async def test_small_inbound_set_is_fully_protected(tmp_path: Path) -> None:
    async with running(
        tmp_path, "a", maxconnections=12, v2transport=False, inboundrelaypercent=100
    ) as a:  # 1 inbound slot
        first = await raw_handshake(port_of(a))
        second = await RawPeer.connect(port_of(a))
        assert await second.closed_by_peer()  # nobody evictable among so few: refused
        assert len(a.connman.peers) == 1
        first.close()


async def test_inbound_tx_relay_cap(tmp_path: Path) -> None:
    """Core's -inboundrelaypercent (EvictTxPeerIfFull): at most 50 % of the inbound slots
    relay transactions; a relaying newcomer over the cap is dropped when every relaying
    peer is protected, while peers that don't relay are still admitted."""
    async with running(tmp_path, "a", maxconnections=21, v2transport=False) as a:
        # 21 - 11 = 10 inbound slots, int(0.5 * 10) = 5 of them for tx relay
        assert a.connman.options.limits.max_inbound_full_relay == 5
        relaying = [await raw_handshake(port_of(a), nonce=3000 + i) for i in range(5)]
        await wait_until(lambda: handshaken(a, 5))
        extra = await RawPeer.connect(port_of(a))
        extra.send(Version(version=70016, services=9, timestamp=1_800_000_000, nonce=4000))
        await extra.writer.drain()
        assert await extra.closed_by_peer()  # all 5 relaying peers are protected: newcomer dropped

        def relay_count() -> int:
            return sum(1 for p in a.connman.peers.values() if p.proto.their.relay)

        assert relay_count() == 5
        quiet = await raw_handshake(port_of(a), nonce=5000, relay=False)
        await wait_until(lambda: handshaken(a, 6))
        assert relay_count() == 5 and len(a.connman.peers) == 6
        for p in [*relaying, quiet]:
            p.close()


async def test_getpeerinfo_minfeefilter_is_the_peers_last_feefilter(tmp_path: Path) -> None:
    from peerkeeper.wire.messages import FeeFilter

    async with running(tmp_path, "a", v2transport=False) as a:
        p = await raw_handshake(port_of(a))
        await wait_until(lambda: handshaken(a))
        p.send(FeeFilter(12345))  # sat/kvB
        p.send(Ping(7))
        while (m := await p.recv()) != Pong(7):
            assert m is not None
        (info,) = await a.rpc_methods()["getpeerinfo"]([])
        assert info["minfeefilter"] == 0.00012345  # BTC/kvB, as Core
        p.close()
