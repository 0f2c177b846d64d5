"""The dashboard page (``daemon/static``) in headless Chromium, against a stub server.

The stub is a small aiohttp app that serves the package's static files, a fake
``/api/state`` (which the test edits) and a fake ``/events`` websocket (through which
the test pushes events, or which it closes or refuses), under a path prefix so that the
page's relative URLs are exercised. Skipped without playwright or Chromium
(``tests/browser.py``).

The page's 5 s poll is captured before the page runs (an init script keeps the
callbacks of ``setInterval`` calls of 5 s or more in ``window.__polls`` instead of
scheduling them): a row that appears after an event therefore appeared because of the
event, and a test that wants a poll calls ``window.__polls`` itself. Every wait is a
bounded wait on a condition (a selector, a stub-side event), never a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from browser import browser_or_skip

import peerkeeper.daemon

STATIC_DIR = Path(peerkeeper.daemon.__file__).with_name("static")
PREFIX = "/pk/"
WAIT_MS = 10_000  # every selector wait
WAIT_S = WAIT_MS / 1000
T = 1_765_000_000.0
XSS = '<img src=x onerror="window.__xss=1">/Satoshi:27.0.0/'

CAPTURE_POLLS = """
window.__polls = [];
const realSetInterval = window.setInterval.bind(window);
window.setInterval = (fn, ms, ...args) => {
  if (ms >= 5000) { window.__polls.push(fn); return 0; }
  return realSetInterval(fn, ms, ...args);
};
"""


def peer(pid: int, addr: str, *, inbound: bool, **extra: Any) -> dict[str, Any]:
    """One ``/api/state`` peer, getpeerinfo's fields."""
    p: dict[str, Any] = {
        "id": pid,
        "addr": addr,
        "network": "ipv4",
        "connection_type": "inbound" if inbound else "outbound-full-relay",
        "inbound": inbound,
        "transport_protocol_type": "v1",
        "pingtime": 0.0012,
        "minping": 0.0009,
        "bytessent": 1234,
        "bytesrecv": 5_678_901,
        "services": "0000000000000409",
        "servicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED"],
        "subver": "/Satoshi:27.0.0/",
        "conntime": int(T) - 3725,
    }
    p.update(extra)
    return p


def initial_state() -> dict[str, Any]:
    peers = [
        peer(1, "10.0.0.1:8333", inbound=False, transport_protocol_type="v2"),
        peer(2, "127.0.0.1:50001", inbound=True, subver=XSS, pingtime=None),
    ]
    del peers[1]["pingtime"]
    return {
        "time": T,
        "node": {"subversion": "/peerkeeper:0.1.0/", "chain": "regtest", "networkactive": True},
        "peers": peers,
        "counts": {
            "by_network": {"ipv4": {"in": 1, "out": 1}},
            "by_type": {"inbound": 1, "outbound-full-relay": 1},
        },
        "addrman": {
            "ipv4": {"new": 10, "tried": 3, "total": 13},
            "onion": {"new": 4, "tried": 0, "total": 4},
            "all_networks": {"new": 14, "tried": 3, "total": 17},
        },
        "banned": [
            {
                "address": "1.2.3.0/24",
                "ban_created": int(T) - 400,
                "banned_until": int(T) + 86000,
                "ban_duration": 86400,
                "time_remaining": 86000,
            }
        ],
        # one sample every 10 s for an hour: 1 KiB/s in, 512 B/s out, a burst at the end
        "traffic": [
            [T - 3600 + 10 * i, 1024 * 10 * i + (50_000 if i == 360 else 0), 512 * 10 * i]
            for i in range(361)
        ],
    }


@dataclass
class Stub:
    """The stub server's state, edited by the test."""

    state: dict[str, Any] = field(default_factory=initial_state)
    state_requests: int = 0
    filters: list[str] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    refuse: int = 0  # refuse this many next websocket handshakes (HTTP 503)
    refused: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Any) -> None:
        """Wait (bounded) until ``predicate()`` holds."""
        async with asyncio.timeout(WAIT_S), self.changed:
            await self.changed.wait_for(predicate)

    def live(self) -> list[web.WebSocketResponse]:
        return [ws for ws in self.sockets if not ws.closed]

    async def push(self, message: Any) -> None:
        """Send one frame to every open websocket: a dict as JSON, str/bytes as is."""
        await self.wait_for(lambda: self.live())
        for ws in self.live():
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message if isinstance(message, str) else json.dumps(message))

    async def drop(self) -> None:
        """Close every open websocket (as a restarting server would)."""
        for ws in self.live():
            await ws.close()

    def add_peer(self, p: dict[str, Any]) -> None:
        self.state["peers"].append(p)

    def remove_peer(self, pid: int) -> None:
        self.state["peers"] = [p for p in self.state["peers"] if p["id"] != pid]

    # -- routes -------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        path = STATIC_DIR / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def api_state(self, request: web.Request) -> web.StreamResponse:
        self.state_requests += 1
        await self._notify()
        return web.json_response(self.state)

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.filters.append(request.query.get("filter", ""))
        if self.refuse:
            self.refuse -= 1
            self.refused += 1
            await self._notify()
            return web.Response(status=503, text="not now\n")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await self._notify()
        async for _ in ws:  # the page sends nothing; wait for the close
            pass
        await self._notify()
        return ws


@contextlib.asynccontextmanager
async def stub_server() -> AsyncIterator[tuple[Stub, str]]:
    """The stub on a free loopback port, and the page's URL."""
    stub = Stub()
    app = web.Application()
    app.router.add_get(PREFIX, stub.index)
    app.router.add_get(PREFIX + "static/{name}", stub.static)
    app.router.add_get(PREFIX + "api/state", stub.api_state)
    app.router.add_get(PREFIX + "events", stub.events)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield stub, f"http://{host}:{port}{PREFIX}"
    finally:
        for ws in stub.live():
            with contextlib.suppress(Exception):
                await ws.close()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def dashboard() -> AsyncIterator[tuple[Stub, Any, list[str], list[str]]]:
    """The page open and live: (stub, page, page errors, console messages)."""
    async with stub_server() as (stub, url), browser_or_skip() as browser:
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        console: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: console.append(m.text))
        await page.add_init_script(CAPTURE_POLLS)
        await page.goto(url)
        await page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        await page.wait_for_selector('tr[data-peer-id="2"]', timeout=WAIT_MS)
        try:
            yield stub, page, errors, console
        finally:
            await page.close()


async def rows(page: Any) -> list[str]:
    return await page.eval_on_selector_all(
        "#peers tbody tr", "rows => rows.map(r => r.dataset.peerId)"
    )


async def test_peers_follow_connection_events(tmp_path: Path) -> None:
    async with dashboard() as (stub, page, errors, _console):
        assert await rows(page) == ["1", "2"]
        assert stub.filters == ["net:*,ban,discourage"]
        cells = await page.eval_on_selector_all(
            'tr[data-peer-id="1"] td', "tds => tds.map(td => td.textContent)"
        )
        assert cells == [
            "1",
            "10.0.0.1:8333",
            "ipv4",
            "outbound-full-relay",
            "v2",
            "1.2",
            "1.21 KiB",
            "5.42 MiB",
            "NETWORK WITNESS NETWORK_LIMITED",
            "/Satoshi:27.0.0/",
            "1h 2m",
        ]
        # a user agent is text, never markup
        assert await page.text_content('tr[data-peer-id="2"] td:nth-child(10)') == XSS
        assert await page.text_content('tr[data-peer-id="2"] td:nth-child(6)') == "—"
        assert await page.locator("#peers img").count() == 0
        assert await page.evaluate("window.__xss") is None
        # the other panels
        assert await page.text_content("#node") == "/peerkeeper:0.1.0/ · regtest"
        assert await page.locator("#by-network tbody tr").count() == 1
        assert await page.locator("#by-type tbody tr").count() == 2
        addrman = await page.eval_on_selector_all(
            "#addrman tbody tr td:first-child", "tds => tds.map(td => td.textContent)"
        )
        assert addrman == ["ipv4", "onion", "all"]
        assert await page.text_content("#bans tbody td") == "1.2.3.0/24"
        assert await page.text_content("#rate-in") == "5.88 KiB/s"
        assert await page.text_content("#rate-out") == "512 B/s"

        # a third peer connects: the page re-fetches on the event
        stub.add_peer(peer(7, "127.0.0.1:50000", inbound=True, subver="/btcwire:0.5.0/"))
        await stub.push(
            {
                "event": "net:inbound_connection",
                "time": T + 1,
                "id": 7,
                "addr": "127.0.0.1:50000",
                "conn_type": "inbound",
                "network": "ipv4",
                "existing": 1,
            }
        )
        await page.wait_for_selector('tr[data-peer-id="7"]', timeout=WAIT_MS)
        assert await rows(page) == ["1", "2", "7"]
        await page.wait_for_selector("#events li", timeout=WAIT_MS)
        assert "net:inbound_connection" in await page.text_content("#events li b")

        # and leaves
        stub.remove_peer(7)
        await stub.push(
            {
                "event": "net:closed_connection",
                "time": T + 2,
                "id": 7,
                "addr": "127.0.0.1:50000",
                "conn_type": "inbound",
                "network": "ipv4",
                "time_established": int(T + 1),
                "reason": "peer closed",
            }
        )
        await page.wait_for_selector('tr[data-peer-id="7"]', state="detached", timeout=WAIT_MS)
        assert await rows(page) == ["1", "2"]
        assert await page.locator("#events li").count() == 2

        shot = tmp_path / "dashboard.png"
        await page.screenshot(path=str(shot), full_page=True)
        data = shot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 10_000
        assert errors == []


async def test_poll_updates_counters() -> None:
    async with dashboard() as (stub, page, errors, _console):
        assert await page.evaluate("window.__polls.length") == 1
        stub.state["peers"][0]["bytessent"] = 3 * 1024 * 1024
        before = stub.state_requests
        await page.evaluate("window.__polls[0]()")
        await page.wait_for_function(
            """() => document.querySelector('tr[data-peer-id="1"] td:nth-child(7)')
                 .textContent === '3.00 MiB'""",
            timeout=WAIT_MS,
        )
        assert stub.state_requests == before + 1
        assert errors == []


async def test_survives_malformed_events() -> None:
    async with dashboard() as (stub, page, errors, console):
        for bad in ("not json {", "[1, 2]", '"text"', "null", '{"event": 5}', b"\x00\xff"):
            await stub.push(bad)
        stub.add_peer(peer(9, "127.0.0.1:50009", inbound=True))
        await stub.push({"event": "net:inbound_connection", "time": T, "id": 9})
        await page.wait_for_selector('tr[data-peer-id="9"]', timeout=WAIT_MS)
        assert await page.locator("#events li").count() == 1  # only the good one
        assert sum("malformed" in m for m in console) == 5  # the binary frame is ignored
        assert await page.get_attribute("#status", "data-state") == "live"
        assert errors == []


async def test_reconnects_with_backoff() -> None:
    async with dashboard() as (stub, page, errors, console):
        # the server goes away, and refuses the first reconnection attempt
        stub.refuse = 1
        stub.add_peer(peer(5, "127.0.0.1:50005", inbound=True))  # missed while away
        await stub.drop()
        await page.wait_for_selector('#status[data-state="reconnecting"]', timeout=WAIT_MS)
        await stub.wait_for(lambda: stub.refused == 1 and len(stub.live()) == 1)
        await page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        # back on line, the page catches up on what it missed, without any event
        await page.wait_for_selector('tr[data-peer-id="5"]', timeout=WAIT_MS)
        delays = [int(m.split()[-2]) for m in console if m.startswith("events: reconnecting in")]
        assert len(delays) == 2
        assert 400 <= delays[0] <= 600  # 0.5 s ± 20 %
        assert 800 <= delays[1] <= 1200  # then 1 s ± 20 %
        # and events flow again on the new socket
        stub.remove_peer(5)
        await stub.push({"event": "net:closed_connection", "time": T, "id": 5})
        await page.wait_for_selector('tr[data-peer-id="5"]', state="detached", timeout=WAIT_MS)
        assert stub.filters == ["net:*,ban,discourage"] * 3
        assert errors == []


async def test_real_node_dashboard(tmp_path: Path) -> None:
    """The page of a real node (``-web``) with two peers shows both rows; a third peer's
    row appears when it connects and goes when it leaves (issue 15's check)."""
    from support import free_port, handshaken, port_of, running, wait_until

    port = free_port()
    async with (
        running(tmp_path, "hub", web=f"127.0.0.1:{port}") as hub,
        running(tmp_path, "p1") as p1,
        running(tmp_path, "p2") as p2,
        running(tmp_path, "p3") as p3,
        browser_or_skip() as browser,
    ):
        for p in (p1, p2):
            p.connman.add_node(f"127.0.0.1:{port_of(hub)}", "add")
        await wait_until(lambda: handshaken(hub, 2))
        ids = sorted(hub.connman.peers)
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
        for pid in ids:
            await page.wait_for_selector(f'tr[data-peer-id="{pid}"]', timeout=WAIT_MS)
        assert await page.locator("tr[data-peer-id]").count() == 2
        row = page.locator(f'tr[data-peer-id="{ids[0]}"]')
        assert "/peerkeeper:0.1.0/" in (await row.inner_text())
        p3.connman.add_node(f"127.0.0.1:{port_of(hub)}", "add")
        await wait_until(lambda: handshaken(hub, 3))
        (third,) = set(hub.connman.peers) - set(ids)
        await page.wait_for_selector(f'tr[data-peer-id="{third}"]', timeout=WAIT_MS)
        assert await page.locator("tr[data-peer-id]").count() == 3
        shot = tmp_path / "dashboard-3-peers.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        p3.connman.add_node(f"127.0.0.1:{port_of(hub)}", "remove")
        hub.connman.disconnect_node(peer_id=third)
        await page.wait_for_selector(
            f'tr[data-peer-id="{third}"]', state="detached", timeout=WAIT_MS
        )
        assert await page.locator("tr[data-peer-id]").count() == 2
        assert errors == []
