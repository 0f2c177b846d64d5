"""The dispatch layer against same-run baselines.

Rows:

* routed messages/s through two dispatchers in memory (encode, queue, poll, decode,
  route to a handler) vs envelope encode + decode alone;
* routed messages/s between two native nodes over loopback (dispatcher on both ends)
  vs the same envelopes sent raw through the native protocol (no dispatcher);
* request/reply round trips/s over loopback (``await request``, one at a time) vs the
  same round trips between two dispatchers in memory;
* fairness: messages sent ahead of a ping queued behind a 6 MB bulk conversation (100
  messages of 60 KB), and without the bulk transfer (baseline).

Run: ``python3 bench/dispatch.py`` (about 20 seconds).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from peerkeeper.dispatch.dispatcher import CodecRegistry, Conversation, Dispatcher, Envelope
from peerkeeper.native.identity import Identity
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.shell.dispatch import AsyncDispatcher
from peerkeeper.shell.nativenode import NativeConfig, NativeNode


@dataclass(frozen=True)
class Note:
    type: ClassVar[str] = "note"
    body: bytes

    def encode(self) -> bytes:
        return self.body

    @classmethod
    def decode(cls, payload: bytes) -> Note:
        return cls(payload)


def codecs() -> CodecRegistry:
    reg = CodecRegistry()
    reg.register(Note)
    return reg


BODY = b"x" * 100


def in_memory(n: int) -> tuple[float, float]:
    a = Dispatcher(codecs(), now=0.0)
    b = Dispatcher(codecs(), now=0.0)
    got = [0]

    def handler(inc: object) -> None:
        got[0] += 1

    b.on("note", handler)
    start = time.perf_counter()
    for _ in range(n):
        a.send("b", Note(BODY))
    for _, data in a.poll(0.0):
        b.receive("a", data, 0.0)
    routed = n / (time.perf_counter() - start)
    assert got[0] == n
    start = time.perf_counter()
    for i in range(n):
        Envelope.decode(Envelope(i + 1, "note", BODY).encode())
    base = n / (time.perf_counter() - start)
    return routed, base


def round_trips_in_memory(n: int) -> float:
    a = Dispatcher(codecs(), now=0.0)
    b = Dispatcher(codecs(), now=0.0)
    b.on("note", lambda inc: inc.reply(Note(b"ok")))  # type: ignore[attr-defined]
    done = [0]
    start = time.perf_counter()
    for _ in range(n):
        a.request("b", Note(BODY), timeout=5, on_reply=lambda m: done.__setitem__(0, done[0] + 1))
        for _, data in a.poll(0.0):
            b.receive("a", data, 0.0)
        for _, data in b.poll(0.0):
            a.receive("b", data, 0.0)
    assert done[0] == n
    return n / (time.perf_counter() - start)


async def loopback(n: int, trips: int) -> tuple[float, float, float]:
    tmp = Path(tempfile.mkdtemp())
    nodes = []
    for i in range(2):
        node = NativeNode(
            NativeConfig(datadir=tmp / f"n{i}", pow_difficulty=8.0, maintenance=False),
            identity=Identity.generate(8.0, random.Random(i)),
        )
        await node.start()
        nodes.append(node)
    a, b = nodes
    host, port = b.listening[0]
    assert await a.connect(Service(NetAddr.parse(host), port)) == b.peer_id
    da = AsyncDispatcher.for_native(a, Dispatcher(codecs(), now=a.clock()))
    db = AsyncDispatcher.for_native(b, Dispatcher(codecs(), now=b.clock()))
    got = [0]
    finished = asyncio.Event()

    def handler(inc: object) -> None:
        got[0] += 1
        if got[0] == n:
            finished.set()

    db.dispatcher.on("note", handler)
    start = time.perf_counter()
    for i in range(n):
        da.send(b.peer_id, Note(BODY))
        if i % 1000 == 999:
            await asyncio.sleep(0)
    await asyncio.wait_for(finished.wait(), 60)
    routed = n / (time.perf_counter() - start)
    # Baseline: the same envelopes straight through the native protocol.
    raw_got = [0]
    raw_done = asyncio.Event()

    def raw_handler(peer: object, payload: bytes) -> None:
        raw_got[0] += 1
        if raw_got[0] == n:
            raw_done.set()

    b.on_envelope = raw_handler
    data = Envelope(1, "note", BODY).encode()
    start = time.perf_counter()
    for i in range(n):
        a.send_envelope(b.peer_id, data)
        if i % 1000 == 999:
            await asyncio.sleep(0)
    await asyncio.wait_for(raw_done.wait(), 60)
    raw = n / (time.perf_counter() - start)
    b.on_envelope = lambda peer, payload: db.feed(peer, payload)
    db.dispatcher.on("note", lambda inc: inc.reply(Note(b"ok")))  # type: ignore[attr-defined]
    start = time.perf_counter()
    for _ in range(trips):
        await da.request(b.peer_id, Note(BODY), timeout=5)
    rtt = trips / (time.perf_counter() - start)
    da.close()
    db.close()
    for node in nodes:
        await node.stop()
    return routed, raw, rtt


def fairness(bulk: bool) -> int:
    d = Dispatcher(codecs(), now=0.0)
    if bulk:
        conv = Conversation()
        d.start_conversation("p", conv, Note(b"start"))
        d.poll(0.0)
        conv.send_credit = 10**9  # the receiver granted enough for the whole transfer
        for _ in range(100):
            conv.send(Note(b"b" * 60_000))
    d.request("p", Note(b"ping"), timeout=5, on_reply=lambda m: None)
    order = [Envelope.decode(x).payload[:4] for _, x in d.poll(0.0)]
    return order.index(b"ping")


def fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"


def main() -> None:
    rows: list[tuple[str, float, float, str]] = []
    routed, base = in_memory(100_000)
    rows.append(("routed messages in memory (/s)", routed, base, "envelope encode+decode"))
    rt_mem = round_trips_in_memory(20_000)
    routed_lo, raw_lo, rt_lo = asyncio.run(loopback(20_000, 1_000))
    rows.append(("routed messages over loopback (/s)", routed_lo, raw_lo, "raw native envelopes"))
    rows.append(("request/reply round trips over loopback (/s)", rt_lo, rt_mem, "in memory"))
    rows.append(
        (
            "messages ahead of a ping, behind 6 MB of bulk",
            fairness(True),
            fairness(False),
            "no bulk",
        )
    )
    print("| measure | dispatch | baseline | ratio | baseline is |")
    print("|---|---:|---:|---:|---|")
    for name, ours, b, what in rows:
        ratio = f"{ours / b:.2f}x" if b else "n/a"
        print(f"| {name} | {fmt(ours)} | {fmt(b)} | {ratio} | {what} |")


if __name__ == "__main__":
    main()
