"""Throughput between two processes: one peerkeeper node pushes 1 MB messages to another.

Two library ``Node`` processes on uvloop, connected over 127.0.0.1 through SockMan and
the whole stack (ConnManCore, the v1 or BIP324 transport, the application API). The
sender pushes ``--megabytes`` messages of 1 MB (a ``bench`` command, which Core's rules
ignore), awaiting :meth:`Node.drain` between pushes as Core's message handler pauses for
a peer whose send buffer passed ``-maxsendbuffer``. The receiver's transport checks each
frame (v1: the sha256d checksum; v2: the ChaCha20-Poly1305 tag), and its handler checks
every byte of every message against the body it must be (``POOL`` distinct bodies,
built once on each side, so no 1 MB copy per message is the application's). Reported per
transport: MB/s at the receiver (first message to last) and each process's CPU seconds
per GB.

Both nodes call :func:`peerkeeper.tune_malloc` first, as the daemons do; the last two
rows leave glibc's malloc as it is. Baselines in the same run: raw uvloop between two
processes (1 MB writes, no framing), and one sha256d over 1 MB in this process (the v1
bound: each side hashes every byte once, the second SHA-256 is over 32 bytes).

Loopback only; both processes stop by themselves (bounded count, 120 s bound).
Run: ``python3 bench/throughput.py [--megabytes 2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

MB = 1_000_000
DEADLINE = 120.0  # seconds any one process may run


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


#: Distinct message bodies, built once on each side: the sender pushes body
#: ``seq % POOL`` (so the bench measures the node, not an application copying 1 MB per
#: message) and the receiver compares every byte of each message with it.
POOL = 16


def body(seq: int, filler: bytes) -> bytes:
    """Message ``seq``: its number in 8 bytes, then the filler (1 MB in all)."""
    return seq.to_bytes(8, "little") + filler


def bodies(filler: bytes) -> list[bytes]:
    return [body(i, filler) for i in range(POOL)]


def run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


# -- the peerkeeper processes --------------------------------------------------------------


async def receiver(v2: bool, count: int, filler: bytes) -> None:
    from peerkeeper import Config, Node, Peer
    from peerkeeper.wire.messages import UnknownMessage

    port = free_port()
    config = Config(chain="regtest", listen=True, bind=[f"127.0.0.1:{port}"], v2transport=v2)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    state = {"next": 0, "bytes": 0, "t0": 0.0, "cpu0": 0.0}
    expected = bodies(filler)

    def on_bench(peer: Peer, msg: UnknownMessage) -> None:
        if msg.command != "bench" or done.done():
            return
        n = state["next"]
        if msg.payload != expected[n % POOL]:
            done.set_exception(AssertionError(f"message {n} differs ({len(msg.payload)} bytes)"))
            return
        if n == 0:
            state["t0"], state["cpu0"] = time.perf_counter(), cpu()
        state["next"] += 1
        state["bytes"] += len(msg.payload)
        if state["next"] == count:
            done.set_result(None)

    async with Node(config) as node:
        node.on(UnknownMessage, on_bench)
        print(json.dumps({"port": port}), flush=True)
        async with asyncio.timeout(DEADLINE):
            await done
        elapsed = time.perf_counter() - state["t0"]
        peer = node.peers()[0]
        print(
            json.dumps(
                {
                    "bytes": state["bytes"],
                    "elapsed": elapsed,
                    "cpu": cpu() - state["cpu0"],
                    "transport": peer.transport,
                }
            ),
            flush=True,
        )


async def sender(v2: bool, port: int, count: int, filler: bytes) -> None:
    from peerkeeper import Config, Node
    from peerkeeper.wire.messages import UnknownMessage

    config = Config(chain="regtest", connect=["0"], v2transport=v2)
    async with Node(config) as node, asyncio.timeout(DEADLINE):
        peer = await node.connect(f"127.0.0.1:{port}")
        pool = [UnknownMessage("bench", b) for b in bodies(filler)]
        cpu0 = cpu()
        for seq in range(count):
            node.push_message(peer, pool[seq % POOL])
            await node.drain(peer)
        print(json.dumps({"cpu": cpu() - cpu0, "transport": peer.transport}), flush=True)
        # Stay until the receiver has it all (the orchestrator ends us).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# -- the raw baseline ----------------------------------------------------------------------


async def raw_receiver(total: int) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    state = {"bytes": 0, "t0": 0.0, "cpu0": 0.0}

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            if not state["bytes"]:
                state["t0"], state["cpu0"] = time.perf_counter(), cpu()
            state["bytes"] += len(data)
            if state["bytes"] >= total and not done.done():
                done.set_result(None)

    server = await loop.create_server(Sink, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    async with asyncio.timeout(DEADLINE):
        await done
    print(
        json.dumps(
            {
                "bytes": state["bytes"],
                "elapsed": time.perf_counter() - state["t0"],
                "cpu": cpu() - state["cpu0"],
                "transport": "raw",
            }
        ),
        flush=True,
    )
    server.close()


async def raw_sender(port: int, count: int, filler: bytes) -> None:
    loop = asyncio.get_running_loop()
    drained = asyncio.Event()
    drained.set()

    class Source(asyncio.Protocol):
        def pause_writing(self) -> None:
            drained.clear()

        def resume_writing(self) -> None:
            drained.set()

    transport, _ = await loop.create_connection(Source, "127.0.0.1", port)
    transport.set_write_buffer_limits(high=MB)
    pool = bodies(filler)
    cpu0 = cpu()
    async with asyncio.timeout(DEADLINE):
        for seq in range(count):
            transport.write(pool[seq % POOL])
            await drained.wait()
    print(json.dumps({"cpu": cpu() - cpu0, "transport": "raw"}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    transport.close()


# -- the orchestrator ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(kind: str, count: int, *, tuned: bool = True) -> dict[str, float | str]:
    """Run one receiver and one sender process of ``kind`` (raw, v1, v2)."""
    me = [sys.executable, __file__, *([] if tuned else ["--untuned"])]
    recv = subprocess.Popen(
        [*me, "--role", "receiver", "--kind", kind, "--count", str(count)],
        stdout=subprocess.PIPE,
    )
    send: subprocess.Popen[bytes] | None = None
    try:
        assert recv.stdout is not None
        port = json.loads(recv.stdout.readline())["port"]
        send = subprocess.Popen(
            [*me, "--role", "sender", "--kind", kind, "--count", str(count), "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert send.stdout is not None and send.stdin is not None
        got = recv.stdout.readline()
        sent = send.stdout.readline()
        if not got or not sent:
            raise RuntimeError(f"the {kind} run failed (see the processes' errors above)")
        r, s = json.loads(got), json.loads(sent)
        send.stdin.write(b"\n")
        send.stdin.flush()
        gb = r["bytes"] / 1e9
        return {
            "transport": r["transport"],
            "mb_s": r["bytes"] / r["elapsed"] / MB,
            "recv_cpu_s_per_gb": r["cpu"] / gb,
            "send_cpu_s_per_gb": s["cpu"] / gb,
        }
    finally:
        for proc in (send, recv):
            if proc is None:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sha256d_mb_s(filler: bytes, seconds: float = 1.0) -> float:
    data = body(0, filler)
    n = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        hashlib.sha256(hashlib.sha256(data).digest()).digest()
        n += 1
    return n * len(data) / elapsed / MB


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--megabytes", type=int, default=2000, help="1 MB messages per row")
    p.add_argument("--role", choices=["receiver", "sender"])
    p.add_argument("--kind", choices=["raw", "v1", "v2"])
    p.add_argument("--untuned", action="store_true", help="leave glibc malloc as it is")
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    filler = bytes(range(256)) * ((MB - 8) // 256) + bytes((MB - 8) % 256)
    if args.role and not args.untuned:
        from peerkeeper import tune_malloc

        tune_malloc()  # as the daemons do (peerkeeper/io/malloc.py)
    if args.role == "receiver":
        if args.kind == "raw":
            run(raw_receiver(args.count * MB))
        else:
            run(receiver(args.kind == "v2", args.count, filler))
        return
    if args.role == "sender":
        if args.kind == "raw":
            run(raw_sender(args.port, args.count, filler))
        else:
            run(sender(args.kind == "v2", args.port, args.count, filler))
        return

    print(f"{args.megabytes:,} messages of 1 MB per row, two processes over 127.0.0.1")
    print("| row | transport | MB/s at the receiver | receiver CPU s/GB | sender CPU s/GB |")
    print("|---|---|---:|---:|---:|")
    rows: dict[str, dict[str, Any]] = {}
    for kind, tuned in [("raw", True), ("v1", True), ("v2", True), ("v1", False), ("v2", False)]:
        name = kind if tuned else f"{kind}, glibc malloc defaults"
        r = rows[name] = measure(kind, args.megabytes, tuned=tuned)
        print(
            f"| {name} | {r['transport']} | {r['mb_s']:,.0f} | {r['recv_cpu_s_per_gb']:.2f} | "
            f"{r['send_cpu_s_per_gb']:.2f} |",
            flush=True,
        )
    hashed = sha256d_mb_s(filler)
    print(f"\nsha256d over 1 MB in this process: {hashed:,.0f} MB/s")
    for kind in ("v1", "v2"):
        print(
            f"{kind}: {rows[kind]['mb_s'] / rows['raw']['mb_s']:.2f}x raw uvloop, "
            f"{rows[kind]['mb_s'] / hashed:.2f}x one sha256d pass, "
            f"{rows[kind]['mb_s'] / rows[kind + ', glibc malloc defaults']['mb_s']:.2f}x "
            "with glibc's malloc defaults"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
