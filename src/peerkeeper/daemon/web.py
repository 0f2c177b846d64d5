"""``-web=HOST:PORT``: metrics, the event stream and the dashboard, on aiohttp.

Read-only and without secrets (no RPC, no cookie, no datadir paths), so it needs no
authentication; it binds loopback unless told a routable address. Routes:

* ``GET /``: the dashboard (``daemon/static``: plain HTML, one script, one style sheet;
  no build step, nothing fetched from elsewhere);
* ``GET /static/<file>``: those files;
* ``GET /api/state``: what the dashboard draws (peers as getpeerinfo's fields, counts
  per network and connection type, getaddrmaninfo, listbanned, and the byte totals
  sampled every 10 s over the last hour);
* ``GET /metrics``: Prometheus text exposition (:mod:`peerkeeper.daemon.metrics`);
* ``GET /events?filter=net:*,ban``: a websocket, one JSON event per text frame
  (:mod:`peerkeeper.wire.events`). A malformed filter gets ``400`` with the reason, a
  browser page from another origin ``403``, a 17th client ``503``. A client that reads
  too slowly is dropped once its queue holds 1,000 events or a send waits 10 s (close
  code 1008, "too slow"): the node's peers never wait for it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from peerkeeper.daemon.metrics import CONTENT_TYPE, registry_for, render
from peerkeeper.shell.events import SubscriberTooSlow
from peerkeeper.shell.nativenode import NativeNode
from peerkeeper.wire.events import EventFilter

if TYPE_CHECKING:
    from peerkeeper.daemon.node import Node

__all__ = ["STATIC_DIR", "WebServer"]

log = logging.getLogger("peerkeeper.web")

#: The dashboard's files (shipped in the package).
STATIC_DIR = Path(__file__).with_name("static")
#: A websocket subscriber's queue bound (events), the longest a send may wait (s), and
#: the most /events clients at once (each costs a filter check per event on the P2P path).
WS_MAXLEN = 1000
WS_SEND_TIMEOUT = 10.0
WS_MAX_CLIENTS = 16
#: Byte totals are sampled this often (s), and kept for this many samples (1 hour).
TRAFFIC_INTERVAL = 10.0
TRAFFIC_SAMPLES = 360
_PEER_FIELDS = (
    "id",
    "addr",
    "network",
    "connection_type",
    "inbound",
    "transport_protocol_type",
    "pingtime",
    "minping",
    "bytessent",
    "bytesrecv",
    "services",
    "servicesnames",
    "subver",
    "conntime",
    "version",
)


class WebServer:
    """The ``-web`` HTTP server of one :class:`~peerkeeper.daemon.node.Node`, or of a
    :class:`~peerkeeper.shell.nativenode.NativeNode` (then ``/metrics`` and ``/events``,
    whose events are the pool's ``pool:<kind>``; the dashboard and ``/api/state`` are
    the Bitcoin node's and answer 404).

    :param node: the running node.
    :param host: address to bind.
    :param port: TCP port (0: any free one, see :attr:`port` after :meth:`start`).
    """

    def __init__(self, node: Node | NativeNode, host: str, port: int) -> None:
        self.node = node
        self.bitcoin: Node | None = None if isinstance(node, NativeNode) else node
        self.host = host
        self.port = port
        self.registry = registry_for(node)
        self.traffic: collections.deque[tuple[float, int, int]] = collections.deque(
            maxlen=TRAFFIC_SAMPLES
        )
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._sockets: dict[
            web.WebSocketResponse, tuple[asyncio.Task[None], asyncio.Transport | None]
        ] = {}

    async def start(self) -> None:
        """Bind and serve.

        :raises OSError: the address is in use or cannot be bound (the message says
            which); nothing is left running.
        """
        app = web.Application()
        if self.bitcoin is not None:
            app.router.add_get("/", self._index)
            app.router.add_get("/static/{name}", self._static)
            app.router.add_get("/api/state", self._state)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/events", self._events)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise OSError(
                e.errno, f"-web: cannot bind {self.host}:{self.port}: {e.strerror}"
            ) from e
        self._runner = runner
        server = site._server  # aiohttp keeps the asyncio server there
        if isinstance(server, asyncio.Server) and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        if self.bitcoin is not None:
            self._sample()
            self._sampler = asyncio.get_running_loop().create_task(self._sample_loop())
        log.info("Web (metrics, events, dashboard) on http://%s:%d/", self.host, self.port)

    async def stop(self) -> None:
        """Close every websocket and stop serving. Idempotent."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        for ws, (sender, transport) in list(self._sockets.items()):
            sender.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"node stopping")
            if transport is not None:
                transport.abort()  # a client that reads nothing cannot hold the stop
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- traffic samples ------------------------------------------------------------------

    def _sample(self) -> None:
        assert self.bitcoin is not None
        core = self.bitcoin.connman.core
        self.traffic.append((self.bitcoin.clock(), core.total_bytes_recv, core.total_bytes_sent))

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(TRAFFIC_INTERVAL)
            self._sample()

    # -- routes -----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = STATIC_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=render(self.registry), headers={"Content-Type": CONTENT_TYPE})

    async def state(self) -> dict[str, Any]:
        """The ``/api/state`` object (see the module docstring)."""
        node = self.bitcoin
        assert node is not None
        now = node.clock()
        peers = []
        for peer in sorted(node.connman.peers.values(), key=lambda p: p.id):
            info = node.peer_info(peer)  # getpeerinfo's entry
            peers.append({k: info[k] for k in _PEER_FIELDS if k in info})
        by_network: dict[str, dict[str, int]] = {}
        by_type: dict[str, int] = {}
        for p in peers:
            row = by_network.setdefault(p["network"], {"in": 0, "out": 0})
            row["in" if p["inbound"] else "out"] += 1
            by_type[p["connection_type"]] = by_type.get(p["connection_type"], 0) + 1
        core = node.connman.core
        traffic = [list(t) for t in self.traffic]
        traffic.append([now, core.total_bytes_recv, core.total_bytes_sent])
        return {
            "time": now,
            "node": {
                "subversion": node.subversion,
                "chain": node.config.chain,
                "networkactive": node.connman.network_active,
            },
            "peers": peers,
            "counts": {"by_network": by_network, "by_type": by_type},
            "addrman": node.addrman.info(),
            "banned": node.banman.list_banned(now),  # listbanned's entries
            "traffic": traffic,
        }

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self.state())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            # Only the page this server serves (or a non-browser client) may subscribe:
            # another site open in the operator's browser must not read the peers.
            return web.Response(status=403, text="cross-origin /events refused\n")
        if len(self._sockets) >= WS_MAX_CLIENTS:
            return web.Response(status=503, text="too many /events clients\n")
        try:
            filt = EventFilter(request.query.get("filter", "*"))
        except ValueError as e:
            return web.Response(status=400, text=f"{e}\n")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        await ws.prepare(request)
        sub = self.node.event_hub.subscribe(filt, maxlen=WS_MAXLEN)

        async def pump() -> None:
            try:
                async for event in sub:
                    text = json.dumps(event.to_json(), separators=(",", ":"), default=str)
                    async with asyncio.timeout(WS_SEND_TIMEOUT):
                        await ws.send_str(text)
            except (SubscriberTooSlow, TimeoutError):
                log.info("web: dropped a slow /events client %s", request.remote)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")
            except ConnectionError:
                pass
            finally:
                # However the stream ended, the connection goes with it (its unsent bytes
                # too), so the handler below stops waiting for the client.
                if request.transport is not None:
                    request.transport.abort()

        sender = asyncio.get_running_loop().create_task(pump())
        self._sockets[ws] = (sender, request.transport)
        try:
            async for msg in ws:  # nothing is expected from the client: wait for its close
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            sub.close()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self._sockets.pop(ws, None)
        return ws
