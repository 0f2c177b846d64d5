"""Events, per-message statistics, Prometheus metrics and the -web server (issue 15).

Event names and fields are Core's tracepoints (doc/tracing.md); getnetmsgstats is Core
PR #29418's shape; /metrics is parsed with prometheus-client's own parser.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import VirtualNet, handshaken, native, port_of, running, vpoint, wait_until

from peerkeeper.bitcoin.netstats import NetStats
from peerkeeper.daemon.config import Config, ConfigError
from peerkeeper.daemon.metrics import registry_for, render
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.shell.events import EventHub, EventLog, SubscriberTooSlow
from peerkeeper.wire.events import Event, EventFilter

# -- pure pieces ---------------------------------------------------------------------------


def test_event_filter() -> None:
    f = EventFilter("net:*, ban")
    assert f.matches("net:inbound_connection") and f.matches("ban")
    assert not f.matches("discourage") and not f.matches("addrman:add")
    # Per-message events only when named, never through a wildcard.
    assert not EventFilter("*").matches("net:inbound_message")
    assert not f.matches("net:outbound_message") and not f.wants_messages
    g = EventFilter("net:inbound_message")
    assert g.matches("net:inbound_message") and g.wants_messages
    assert EventFilter("pool:*").matches("pool:new_peer")
    for bad in ("", "net:*,", "nosuch", "net:**", "a b", "x" * 100, "<script>"):
        with pytest.raises(ValueError):
            EventFilter(bad)


def test_netstats_aggregate() -> None:
    s = NetStats()
    s.message("sent", "ipv4", "inbound", "ping", 32)
    s.message("sent", "ipv4", "inbound", "ping", 32)
    s.message("received", "onion", "manual", "pong", 32)
    assert s.aggregate() == {
        "received": {"onion": {"manual": {"pong": {"count": 1, "bytes": 32}}}},
        "sent": {"ipv4": {"inbound": {"ping": {"count": 2, "bytes": 64}}}},
    }
    assert s.aggregate(["network", "connection_type"]) == {
        "received": {"pong": {"count": 1, "bytes": 32}},
        "sent": {"ping": {"count": 2, "bytes": 64}},
    }
    assert s.aggregate(["direction", "network", "connection_type", "message_type"]) == {
        "count": 3,
        "bytes": 96,
    }
    assert NetStats().aggregate(["direction", "network", "connection_type", "message_type"]) == {
        "count": 0,
        "bytes": 0,
    }
    with pytest.raises(ValueError):
        s.aggregate(["colour"])
    with pytest.raises(ValueError):
        s.aggregate(["network", "network"])
    s.handshake(0.003)
    s.handshake(100.0)
    assert s.handshake_counts[0] == 1 and s.handshake_counts[-1] == 1
    assert s.counters["handshakes"] == 2


async def test_hub_drops_a_slow_subscriber_and_never_blocks() -> None:
    changes: list[bool] = []
    hub = EventHub(on_change=changes.append)
    fast = hub.subscribe("*")
    slow = hub.subscribe("net:*", maxlen=3)
    msgs = hub.subscribe("net:inbound_message")
    assert changes[-1] is True  # a subscriber names a message event
    for i in range(5):
        hub.publish(Event("net:inbound_connection", float(i), {"id": i}))
    hub.publish(Event("ban", 9.0, {"address": "1.2.3.4"}))
    assert [(await anext(fast)).fields.get("id") for _ in range(5)] == [0, 1, 2, 3, 4]
    assert (await anext(fast)).name == "ban"
    # The slow one got 3, then was let go: the queued ones, then the error.
    assert [(await anext(slow)).fields["id"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(SubscriberTooSlow):
        await anext(slow)
    assert hub.slow_dropped == 1 and hub.subscribers == 2
    msgs.close()
    assert changes[-1] is False
    with pytest.raises(StopAsyncIteration):
        await anext(msgs)


def test_eventlog_rotates(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    elog = EventLog(path, max_bytes=400, backups=2)
    for i in range(40):
        elog(Event("net:closed_connection", 1.5, {"id": i, "addr": "1.2.3.4:8333"}))
    elog.close()
    assert elog.written == 40
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1]) == {
        "event": "net:closed_connection",
        "time": 1.5,
        "id": 39,
        "addr": "1.2.3.4:8333",
    }
    assert (tmp_path / "events.jsonl.1").exists() and (tmp_path / "events.jsonl.2").exists()
    assert not (tmp_path / "events.jsonl.3").exists()
    assert path.stat().st_size <= 400


def test_web_option() -> None:
    assert Config(web="8335").web_endpoint() == ("127.0.0.1", 8335)
    assert Config(web="[::1]:80").web_endpoint() == ("::1", 80)
    assert Config().web_endpoint() is None
    for bad in ("host", ":80", "1.2.3.4:99999", "1.2.3.4:x"):
        with pytest.raises(ConfigError, match="-web"):
            Config(web=bad).validate()


# -- a node ----------------------------------------------------------------------------------


async def test_node_events_and_netmsgstats(tmp_path: Path) -> None:
    async with (
        running(tmp_path, "a", v2transport=False) as a,
        running(tmp_path, "b", v2transport=False) as b,
    ):
        events = a.events("net:*")
        messages = a.events("net:inbound_message")
        assert a.connman.core.message_events and a.connman.core.on_event is not None
        b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
        await wait_until(lambda: handshaken(a) and handshaken(b))
        async with asyncio.timeout(5):
            first = await anext(events)
            handshake = await anext(events)
            msg = await anext(messages)
        assert first.name == "net:inbound_connection"
        assert (
            first.fields["conn_type"] == "inbound"
            and first.fields["network"] == "not_publicly_routable"
        )
        assert first.fields["existing"] == 1 and first.fields["addr"].startswith("127.0.0.1:")
        assert handshake.name == "net:handshake" and handshake.fields["transport"] == "v1"
        assert msg.fields["msg_type"] == "version" and msg.fields["size"] > 80
        messages.close()
        assert not a.connman.core.message_events
        a.connman.disconnect_node(peer_id=first.fields["id"])
        async with asyncio.timeout(5):
            closed = await anext(events)
        assert closed.name == "net:closed_connection" and closed.fields["id"] == first.fields["id"]
        stats = await a.rpc_methods()["getnetmsgstats"]([])
        assert stats["received"]["not_publicly_routable"]["inbound"]["version"]["count"] == 1
        assert stats["sent"]["not_publicly_routable"]["inbound"]["verack"]["count"] == 1
        # Kept after the peer left.
        await wait_until(lambda: not a.connman.peers)
        totals = await a.rpc_methods()["getnetmsgstats"](
            [["network", "connection_type", "message_type"]]
        )
        assert totals["received"]["bytes"] == a.connman.total_bytes_recv
        events.close()
        assert a.connman.core.on_event is None  # nobody listens: no events are built


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_web_metrics_events_and_state(tmp_path: Path) -> None:
    port = free_port()
    async with (
        running(tmp_path, "a", web=f"127.0.0.1:{port}") as a,
        running(tmp_path, "b") as b,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{port}"
        async with http.get(f"{base}/events?filter=no:such:thing") as r:
            assert r.status == 400 and "malformed" in await r.text()
        # Another site open in the operator's browser may not read the peers.
        evil = {"Origin": "https://evil.example"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/events", headers=evil)
        assert refused.value.status == 403
        same = {"Origin": base}
        async with http.ws_connect(f"{base}/events?filter=ban", headers=same) as ws:
            assert not ws.closed
        async with http.ws_connect(f"{base}/events?filter=net:*") as ws:
            b.connman.add_node(f"127.0.0.1:{port_of(a)}", "add")
            async with asyncio.timeout(5):
                frame = json.loads((await ws.receive()).data)
            assert frame["event"] == "net:inbound_connection" and frame["conn_type"] == "inbound"
            await wait_until(lambda: handshaken(a) and handshaken(b))
        async with http.get(f"{base}/metrics") as r:
            assert r.status == 200
            text = await r.text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        peers = families["peerkeeper_peers"].samples
        assert sum(s.value for s in peers) == 1
        assert peers[0].labels["direction"] == "inbound"
        assert peers[0].labels["transport"] == "v2"
        hist = families["peerkeeper_handshake_duration_seconds"].samples
        assert any(s.name.endswith("_count") and s.value == 1 for s in hist)
        received = families["peerkeeper_messages_received"].samples
        assert any(s.labels["msg_type"] == "version" and s.value == 1 for s in received)
        async with http.get(f"{base}/api/state") as r:
            state = await r.json()
        assert [p["connection_type"] for p in state["peers"]] == ["inbound"]
        assert state["counts"]["by_network"] == {"not_publicly_routable": {"in": 1, "out": 0}}
        assert "all_networks" in state["addrman"] and state["traffic"]
        async with http.get(f"{base}/") as r:
            assert r.status == 200 and "<html" in (await r.text()).lower()
        async with http.get(f"{base}/static/..%2Fnode.py") as r:
            assert r.status == 404


async def test_web_port_in_use_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The address is taken: the error names it, and the node runs on without -web."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="peerkeeper"):
            async with running(tmp_path, "a", web=f"127.0.0.1:{port}") as a:
                assert a.web is None and a.connman.network_active
                assert await a.rpc_methods()["getconnectioncount"]([]) == 0
        assert f"web port {port} on 127.0.0.1 is in use: choose another with --web" in caplog.text
        assert "running without -web" in caplog.text


async def test_slow_websocket_client_is_dropped(tmp_path: Path) -> None:
    """A client that never reads loses its stream; the node's peers are not slowed."""
    port = free_port()
    async with running(tmp_path, "a", web=f"127.0.0.1:{port}") as a:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /events?filter=* HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        await wait_until(lambda: a.event_hub.subscribers == 1)
        # Flood far more than the socket buffers and the 1,000-event queue hold.
        big = "x" * 2000
        for i in range(20_000):
            a.event_hub.publish(Event("ban", float(i), {"address": big}))
            if i % 500 == 0:
                await asyncio.sleep(0)
        await wait_until(lambda: a.event_hub.subscribers == 0, timeout=15)
        assert a.event_hub.slow_dropped == 1
        writer.close()


async def test_native_node_metrics(tmp_path: Path) -> None:
    net = VirtualNet()
    async with native(net, tmp_path, 1) as a, native(net, tmp_path, 2) as b:
        registry = registry_for(b)
        assert await a.connect(vpoint(2)) == b.peer_id
        await wait_until(lambda: b.pool is not None and b.pool.active_connections() == 1)
        families = {f.name: f for f in text_string_to_metric_families(render(registry).decode())}
        running = [
            s for s in families["peerkeeper_pool_peers"].samples if s.labels["state"] == "running"
        ]
        assert [s.value for s in running] == [1.0]
        assert families["peerkeeper_pool_ip_greylist_fill_ratio"].samples[0].value == 0.0
        assert families["peerkeeper_pool_swaps"].samples[0].value == 0.0
        assert "peerkeeper_dispatch_pending_requests" in families


async def test_native_node_web_metrics_and_pool_events(tmp_path: Path) -> None:
    from peerkeeper.daemon.web import WebServer

    net = VirtualNet()
    async with (
        native(net, tmp_path, 1) as a,
        native(net, tmp_path, 2) as b,
        aiohttp.ClientSession() as http,
    ):
        server = WebServer(b, "127.0.0.1", 0)
        await server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            async with http.ws_connect(f"{base}/events?filter=pool:*") as ws:
                await wait_until(lambda: b.event_hub.subscribers == 1)
                assert await a.connect(vpoint(2)) == b.peer_id
                kinds = []
                async with asyncio.timeout(5):
                    while "pool:connection_established" not in kinds:
                        kinds.append(json.loads((await ws.receive()).data)["event"])
            async with http.get(f"{base}/metrics") as r:
                families = {f.name: f for f in text_string_to_metric_families(await r.text())}
            assert "peerkeeper_pool_points" in families
            async with http.get(f"{base}/") as r:
                assert r.status == 404  # the dashboard is the Bitcoin node's
        finally:
            await server.stop()


async def test_getpeerinfo_mapped_as_with_asmap(tmp_path: Path) -> None:
    """Core's getpeerinfo "mapped_as": shown with -asmap when the peer's AS is known."""
    from peerkeeper.io.addrdb import atomic_write
    from peerkeeper.net.asmap import encode_asmap

    asmap = tmp_path / "asmap.dat"
    atomic_write(asmap, encode_asmap([("11.0.0.0/8", 64512)]))
    net = VirtualNet()
    async with running(tmp_path, "a", asmap=asmap) as a, running(tmp_path, "b") as b:
        a.connman.sockman.accept_map = net.accept_map  # b arrives as 11.2.0.1
        target = Service(NetAddr.parse("11.1.0.1"), 18444)
        net.ports[target] = port_of(a)
        b.connman.sockman.dial_map = net.dial_map(2)
        b.connman.add_node(str(target), "add")
        await wait_until(lambda: handshaken(a))
        (info,) = await a.rpc_methods()["getpeerinfo"]([])
        assert info["addr"].startswith("11.2.0.1:") and info["mapped_as"] == 64512
        assert list(info)[list(info).index("network") + 1] == "mapped_as"  # Core's order
        (theirs,) = await b.rpc_methods()["getpeerinfo"]([])
        assert "mapped_as" not in theirs  # no -asmap there
