"""An adversarial RPC batch against a node that is serving a peer: memory and ping RTT.

Starts a node (``peerkeeper node --chain regtest``) in its own process, connects one P2P
peer (this process: version/verack, then a ping every 20 ms), and sends one authenticated
JSON-RPC batch of ``--calls`` (default 100,000) ``getnetworkinfo`` calls, reading the
reply as it streams. Printed:

* the batch's wall time and the number of replies checked (ids in order);
* the node's RSS before and its peak during the batch (sampled from /proc every 20 ms);
* P2P ping round trips while the batch runs (max, p99, median) beside the same pings
  measured before the batch in the same run (the baseline);
* the refusals: a body over Core's 32 MiB limit (413, the node keeps running).

Issue 15's bound: RSS up by at most 50 MB, ping RTT under 100 ms during the batch.
Loopback only; the node is stopped at the end.

Run: ``python3 bench/rpcbatch.py [--calls 100000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REGTEST = bytes.fromhex("fabfb5da")
USER, PASSWORD = "bench", "bench"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pinger(asyncio.Protocol):
    """A v1 peer: handshakes, then pings and records each round trip (seconds)."""

    def __init__(self) -> None:
        from peerkeeper.wire.v1 import V1Transport

        self.t = V1Transport(REGTEST)
        self.ready = asyncio.get_running_loop().create_future()
        self.sent: dict[int, float] = {}
        self.rtts: list[tuple[float, float]] = []  # (sent at, rtt)
        self.transport: asyncio.Transport | None = None

    def send(self, msg: object) -> None:
        self.t.send_message(msg)  # type: ignore[arg-type]
        assert self.transport is not None
        self.transport.write(self.t.data_to_send())

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from peerkeeper.wire.messages import Version

        self.transport = transport  # type: ignore[assignment]
        self.send(
            Version(
                version=70016,
                timestamp=int(time.time()),
                nonce=7,
                user_agent="/bench/",
                relay=False,
            )
        )

    def data_received(self, data: bytes) -> None:
        from peerkeeper.wire.messages import Pong, Verack

        self.t.receive_data(data)
        while (m := self.t.next_message()) is not None:
            if m.command == "verack" and not self.ready.done():
                self.send(Verack())
                self.ready.set_result(None)
            elif m.command == "pong":
                msg = Pong.decode(m.payload)
                at = self.sent.pop(msg.nonce, None)
                if at is not None:
                    self.rtts.append((at, time.perf_counter() - at))

    async def ping_loop(self, stop: asyncio.Event) -> None:
        from peerkeeper.wire.messages import Ping

        nonce = 1000
        while not stop.is_set():
            nonce += 1
            self.sent[nonce] = time.perf_counter()
            self.send(Ping(nonce))
            await asyncio.sleep(0.02)


def summary(rtts: list[float]) -> dict[str, float]:
    if not rtts:
        return {"n": 0}
    s = sorted(rtts)
    return {
        "n": len(s),
        "median_ms": round(statistics.median(s) * 1000, 2),
        "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] * 1000, 2),
        "max_ms": round(s[-1] * 1000, 2),
    }


def start_node(datadir: Path, port: int, rpcport: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "peerkeeper.daemon.cli", "node", "--chain", "regtest"]
    cmd += ["--datadir", str(datadir), "--bind", f"127.0.0.1:{port}", "--rpcport", str(rpcport)]
    cmd += ["--rpcuser", USER, "--rpcpassword", PASSWORD]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(calls: int) -> dict[str, object]:
    datadir = Path(tempfile.mkdtemp(prefix="pk-rpcbatch-"))
    port, rpcport = free_port(), free_port()
    proc = start_node(datadir, port, rpcport)
    url = f"http://127.0.0.1:{rpcport}/"
    auth = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with http.post(url, json={"method": "uptime", "id": 0}) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("node did not start")
                await asyncio.sleep(0.1)
            loop = asyncio.get_running_loop()
            _, peer = await loop.create_connection(Pinger, "127.0.0.1", port)
            await asyncio.wait_for(peer.ready, 10)
            stop = asyncio.Event()
            pinging = asyncio.create_task(peer.ping_loop(stop))
            await asyncio.sleep(1.0)  # the baseline: pings with no batch
            baseline = [rtt for _, rtt in peer.rtts]
            rss_before = rss_kb(proc.pid)
            peak = rss_before
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, rss_kb(proc.pid))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            body = json.dumps(
                [{"method": "getnetworkinfo", "params": [], "id": i} for i in range(calls)]
            ).encode()
            started = time.perf_counter()
            decoder = json.JSONDecoder()
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                status = r.status
                chunked = r.headers.get("Transfer-Encoding", "") == "chunked"
                # Check the replies as they stream: ids in order, each with a result.
                buf, pos, expected = "", 1, 0
                async for chunk in r.content.iter_any():
                    buf += chunk.decode()
                    while True:
                        while pos < len(buf) and buf[pos] in ", \n":
                            pos += 1
                        try:
                            obj, end = decoder.raw_decode(buf, pos)
                        except json.JSONDecodeError:
                            break
                        assert obj["id"] == expected and obj["result"]["connections"] >= 1, obj
                        expected += 1
                        pos = end
                    buf, pos = buf[pos:], 0
            elapsed = time.perf_counter() - started
            sampling = False
            await sampler
            during = [rtt for at, rtt in peer.rtts if started <= at <= started + elapsed]
            stop.set()
            await pinging
            # Over Core's body limit: refused with 413 before the body is read.
            big = {"Content-Length": str(32 * 1024 * 1024 + 1)}
            async with http.post(url, data=b"x" * (32 * 1024 * 1024 + 1), headers=big) as r:
                over_limit = r.status
            async with http.post(url, json={"method": "getconnectioncount", "id": 1}) as r:
                alive = (await r.json())["result"]
        return {
            "calls": calls,
            "status": status,
            "streamed": chunked,
            "replies_checked": expected,
            "batch_seconds": round(elapsed, 2),
            "calls_per_second": round(calls / elapsed),
            "rss_before_mb": round(rss_before / 1024, 1),
            "rss_peak_increase_mb": round((peak - rss_before) / 1024, 1),
            "ping_baseline": summary(baseline),
            "ping_during_batch": summary(during),
            "over_limit_status": over_limit,
            "connections_after": alive,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(datadir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.calls)), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
