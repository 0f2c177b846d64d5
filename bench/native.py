"""The native protocol and the peer pool against same-run baselines.

Rows:

* handshake in memory: two :class:`NativePeer` (BIP324 + identity, PoW check,
  Ed25519 sign/verify, acks) vs two bare BIP324 transports (the baseline);
* handshakes over loopback: a :class:`NativeNode` dialling another (connect, BIP324,
  identity, acks, pool bookkeeping), then closing, vs a bare asyncio TCP connect + close;
* IP greylist ``add`` and membership at 1,000,000 addresses vs a Python ``set`` (the
  baseline), and memory: the filter's fixed bytes vs the set's growth (tracemalloc);
* ``list_known_points`` over 400 points (the GC ceiling) vs ``random.sample`` of 50;
* identity creation at the default 20 bits (one-off, seconds; Octez's 26 bits would be
  64 times longer).

Run: ``python3 bench/native.py`` (about a minute).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from peerkeeper.native.greylist import IpGreylist
from peerkeeper.native.identity import DEFAULT_POW_DIFFICULTY, Identity
from peerkeeper.native.maintenance import MaintenanceConfig
from peerkeeper.native.messages import NATIVE_MAGIC
from peerkeeper.native.peer import NativePeer
from peerkeeper.native.pool import PeerPool, PoolConfig
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.shell.nativenode import NativeConfig, NativeNode
from peerkeeper.wire.v2 import V2Transport

DIFF = 8.0
A = Identity.generate(DIFF, random.Random(1))
B = Identity.generate(DIFF, random.Random(2))


def per_second(fn: Callable[[], object], min_time: float = 1.0) -> float:
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_time or n == 0:
        fn()
        n += 1
    return n / elapsed


def native_handshake() -> None:
    out = NativePeer(
        A, inbound=False, listen_port=1, private=False, difficulty=DIFF, rng=os.urandom, now=0.0
    )
    inn = NativePeer(
        B, inbound=True, listen_port=1, private=False, difficulty=DIFF, rng=os.urandom, now=0.0
    )
    for _ in range(6):
        for x, y in ((out, inn), (inn, out)):
            data = x.data_to_send()
            if data:
                for action in y.receive_data(data, 0.0):
                    if type(action).__name__ == "Authenticated":
                        y.accept(0.0)
    assert out.state == inn.state == "running"


def v2_handshake() -> None:
    a = V2Transport(NATIVE_MAGIC, initiating=True, rng=os.urandom)
    b = V2Transport(NATIVE_MAGIC, initiating=False, rng=os.urandom, allow_v1=False)
    for _ in range(3):
        b.receive_data(a.data_to_send())
        b.next_message()
        a.receive_data(b.data_to_send())
        a.next_message()
    assert a.session_id is not None and a.session_id == b.session_id


async def loopback(n: int) -> tuple[float, float]:
    tmp = Path(tempfile.mkdtemp())
    configs = [
        NativeConfig(
            datadir=tmp / f"n{i}",
            pow_difficulty=DIFF,
            maintenance=False,
            limits=MaintenanceConfig(max_connections=10_000, max_incoming_connections=10_000),
        )
        for i in range(2)
    ]
    a = NativeNode(configs[0], identity=A)
    b = NativeNode(configs[1], identity=B)
    await a.start()
    await b.start()
    host, port = b.listening[0]
    point = Service(NetAddr.parse(host), port)
    start = time.perf_counter()
    for _ in range(n):
        got = await a.connect(point)
        assert got == b.peer_id
        a.disconnect(got, "bench")
        while a.pool is not None and a.pool.known_points[point].state.value != "disconnected":
            await asyncio.sleep(0)
        a.pool.known_points[point].reconnection_end = None  # skip the 60 s back-off
        while b.pool is not None and b.pool.active_connections():
            await asyncio.sleep(0.001)
    native_rate = n / (time.perf_counter() - start)
    await a.stop()
    await b.stop()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    bport = server.sockets[0].getsockname()[1]
    start = time.perf_counter()
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", bport)
        await reader.read()
        writer.close()
    base_rate = n / (time.perf_counter() - start)
    server.close()
    return native_rate, base_rate


def greylist_rows(count: int) -> list[tuple[str, float, float, str]]:
    addrs = [
        NetAddr.parse(f"{10 + (i >> 24)}.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
        for i in range(count)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    grey = IpGreylist()
    t = time.perf_counter()
    for addr in addrs:
        grey.add(addr, 0.0)
    add_rate = count / (time.perf_counter() - t)
    t = time.perf_counter()
    hits = sum(addr in grey for addr in addrs)
    mem_rate = count / (time.perf_counter() - t)
    grey_bytes = tracemalloc.get_traced_memory()[0] - before
    assert hits == count
    before = tracemalloc.get_traced_memory()[0]
    plain: set[NetAddr] = set()
    t = time.perf_counter()
    for addr in addrs:
        plain.add(addr)
    set_add = count / (time.perf_counter() - t)
    t = time.perf_counter()
    hits = sum(addr in plain for addr in addrs)
    set_mem = count / (time.perf_counter() - t)
    set_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    t = time.perf_counter()
    grey.countdown()
    countdown_ms = (time.perf_counter() - t) * 1000
    return [
        (f"greylist add, {count:,} addresses (/s)", add_rate, set_add, "set.add"),
        (f"greylist membership, {count:,} addresses (/s)", mem_rate, set_mem, "in set"),
        (f"greylist memory after {count:,} (bytes)", grey_bytes, set_bytes, "set of them"),
        ("greylist countdown, 4 MiB filter (ms)", countdown_ms, float("nan"), ""),
    ]


def pool_rows() -> list[tuple[str, float, float, str]]:
    pool = PeerPool(PoolConfig(), my_peer_id=None, now=0.0, rng=random.Random(1))
    points = [Service(NetAddr.parse(f"11.{i >> 8}.{i & 255}.1"), 9732) for i in range(400)]
    for i, p in enumerate(points):
        pool.register_point(p, float(i)).last_disconnection = float(i)
    rng = random.Random(2)
    listed = per_second(lambda: pool.list_known_points(ignore_private=True))
    sample = per_second(lambda: rng.sample(points, 50))
    return [("list_known_points, 400 points (/s)", listed, sample, "random.sample(50)")]


def fmt(v: float) -> str:
    if v != v:
        return "n/a"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"


def main() -> None:
    rows: list[tuple[str, float, float, str]] = []
    rows.append(
        (
            "handshake in memory (/s)",
            per_second(native_handshake),
            per_second(v2_handshake),
            "BIP324 only",
        )
    )
    n = 300 if "--quick" not in sys.argv else 50
    native_rate, base_rate = asyncio.run(loopback(n))
    rows.append(
        (f"handshakes over loopback, {n} (/s)", native_rate, base_rate, "TCP connect+close")
    )
    rows += greylist_rows(200_000 if "--quick" in sys.argv else 1_000_000)
    rows += pool_rows()
    t = time.perf_counter()
    for seed in range(3):
        Identity.generate(DEFAULT_POW_DIFFICULTY, random.Random(seed))
    ident_s = (time.perf_counter() - t) / 3
    rows.append(
        (
            f"identity creation, {DEFAULT_POW_DIFFICULTY:g} bits (s, mean of 3)",
            ident_s,
            float("nan"),
            "",
        )
    )
    print("| measure | peerkeeper | baseline | ratio | baseline is |")
    print("|---|---:|---:|---:|---|")
    for name, ours, base, what in rows:
        ratio = "" if base != base or base == 0 else f"{ours / base:.2f}x"
        print(f"| {name} | {fmt(ours)} | {fmt(base)} | {ratio} | {what} |")


if __name__ == "__main__":
    main()
