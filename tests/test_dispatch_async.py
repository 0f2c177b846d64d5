"""The dispatcher on asyncio, over two native nodes on loopback."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support import Blob, Ping, Sink, Text, VirtualNet, native, registry, vpoint

from peerkeeper import NativeNode
from peerkeeper.dispatch.dispatcher import Conversation, Dispatcher, DispatchError, Incoming
from peerkeeper.shell.dispatch import AsyncDispatcher, RequestFailed

pytestmark = pytest.mark.timeout(60)


@asynccontextmanager
async def pair(
    tmp: Path,
) -> AsyncIterator[tuple[NativeNode, NativeNode, AsyncDispatcher, AsyncDispatcher]]:
    net = VirtualNet()
    async with native(net, tmp, 1) as a, native(net, tmp, 2) as b:
        da = AsyncDispatcher.for_native(a, Dispatcher(registry(), now=0.0))
        db = AsyncDispatcher.for_native(b, Dispatcher(registry(), now=0.0))
        assert await a.connect(vpoint(2)) == b.peer_id
        try:
            yield a, b, da, db
        finally:
            da.close()
            db.close()


async def test_request_reply_timeout_and_close(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b, da, db):
        db.dispatcher.on("ping", lambda inc: inc.reply(Ping(inc.message.n * 2)))
        db.dispatcher.on("text", lambda inc: None)  # never answers
        assert await da.request(b.peer_id, Ping(21), timeout=5) == Ping(42)
        with pytest.raises(RequestFailed, match="timeout"):
            await da.request(b.peer_id, Text("?"), timeout=0.2)
        waiting = asyncio.ensure_future(da.request(b.peer_id, Text("?"), timeout=30))
        await asyncio.sleep(0.05)
        assert b.disconnect(a.peer_id)
        with pytest.raises(RequestFailed, match="closed"):
            await waiting
        assert len(da.dispatcher.pending) == 0


async def test_request_timeout_follows_the_node_clock(tmp_path: Path) -> None:
    """A request's timeout is the node's clock, not wall time: moving a simulated clock
    past it and waking the node fails the request at once; before it, nothing."""

    class SimClock:
        def __init__(self) -> None:
            self.now = 1_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = SimClock()
    net = VirtualNet()
    async with native(net, tmp_path, 1, clock=clock) as a, native(net, tmp_path, 2) as b:
        assert await a.connect(vpoint(2)) == b.peer_id
        assert a.dispatch is not None and b.dispatch is not None
        b.dispatcher.codecs.register(Text)
        a.dispatcher.codecs.register(Text)
        b.dispatcher.on("text", lambda inc: None)  # never answers
        waiting = asyncio.ensure_future(a.dispatch.request(b.peer_id, Text("?"), timeout=30))
        await asyncio.sleep(0.05)
        clock.now += 29.9
        a.wake()
        await asyncio.sleep(0.05)
        assert not waiting.done()
        clock.now += 0.2
        a.wake()
        with pytest.raises(RequestFailed, match="timeout"):
            await asyncio.wait_for(waiting, 5)


async def test_cancelling_the_caller_cancels_the_request(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b, da, db):
        db.dispatcher.on("text", lambda inc: None)
        task = asyncio.ensure_future(da.request(b.peer_id, Text("?"), timeout=30))
        await asyncio.sleep(0.05)
        assert len(da.dispatcher.pending) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(da.dispatcher.pending) == 0


async def test_sender_without_credit_waits_not_the_connection(tmp_path: Path) -> None:
    class Slow(Sink):
        auto_credit = False

    async with pair(tmp_path) as (a, b, da, db):
        sinks: list[Slow] = []

        def start(inc: Incoming) -> None:
            sinks.append(inc.start(Slow()))  # type: ignore[arg-type]

        db.dispatcher.on("text", start)
        db.dispatcher.on("ping", lambda inc: inc.reply(Ping(0)))
        src = Conversation()
        da.dispatcher.start_conversation(b.peer_id, src, Text("upload"))
        da.kick()
        for _ in range(7):  # the 7th overshoots the 65,536-byte window
            await da.send_with_credit(src, Blob(b"x" * 10_000))
        blocked = asyncio.ensure_future(da.send_with_credit(src, Blob(b"y" * 10_000)))
        await asyncio.sleep(0.1)
        assert not blocked.done()
        # The connection still carries other traffic.
        assert await da.request(b.peer_id, Ping(1), timeout=5) == Ping(0)
        sinks[0].consumed(40_000)
        db.kick()
        await asyncio.wait_for(blocked, 5)
        await asyncio.sleep(0.05)
        assert sinks[0].bytes == 80_000
        # A conversation that ends while a send waits: the sender hears it.
        waiting = asyncio.ensure_future(da.send_with_credit(src, Blob(b"z" * 100_000)))
        more = asyncio.ensure_future(da.send_with_credit(src, Blob(b"w" * 10)))
        await asyncio.sleep(0.05)
        src.end()
        await asyncio.wait_for(waiting, 2)
        with pytest.raises(DispatchError):
            await asyncio.wait_for(more, 2)


async def test_handlers_reach_the_database_thread(tmp_path: Path) -> None:
    async with pair(tmp_path) as (a, b, da, db):
        rows: list[Any] = []

        def handler(inc: Incoming) -> None:
            async def work() -> None:
                def query(conn: sqlite3.Connection) -> Any:
                    return conn.execute("SELECT count(*) FROM native_peers").fetchone()[0]

                count = await db.in_db(query)
                rows.append(count)
                inc.reply(Text(str(count)))
                db.kick()

            asyncio.ensure_future(work())

        db.dispatcher.on("text", handler)
        assert await da.request(b.peer_id, Text("count"), timeout=5) == Text("0")
        assert rows == [0]
