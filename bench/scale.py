"""Inbound scale: 1,000 then 10,000 peers handshaking with one node; rate, RSS per peer, idle CPU.

A client in a separate process opens N inbound connections to a freshly started
node (``peerkeeper node --chain regtest``), each completing version/verack, keeps
them all open, and reports the wall time. While all N peers sit idle, this script
reads the node's resident memory and CPU time from /proc. Printed per N:

* handshakes per second (N / time from the first connect to the last verack);
* RSS per connected peer ((RSS with N peers - RSS before) / N), in KB;
* the node's CPU while all peers are idle (% of one core over ``--idle`` seconds).

``--bitcoind PATH`` measures a Bitcoin Core binary the same way in the same run
(the baseline; Core polls every socket each loop). Loopback only; every process
started is stopped. Raises the open-files limit to what the hard limit allows.

Run: ``python3 bench/scale.py [--counts 1000,10000] [--idle 10] [--bitcoind PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REGTEST = bytes.fromhex("fabfb5da")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM ``proc`` and wait for it; SIGKILL when it outlives ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


# -- the client (runs in its own process) --------------------------------------------------


def client_main(port: int, count: int, concurrency: int) -> None:
    from peerkeeper.wire.messages import Verack, Version
    from peerkeeper.wire.v1 import V1Transport

    t = V1Transport(REGTEST)
    t.send_message(
        Version(
            version=70016,
            services=0,
            timestamp=int(time.time()),
            nonce=12345,
            user_agent="/scale/",
            relay=False,
        )
    )
    version = t.data_to_send()
    t.send_message(Verack())
    verack = t.data_to_send()

    class Client(asyncio.Protocol):
        def __init__(self, done: asyncio.Future[bool]) -> None:
            self.done = done
            self.t = V1Transport(REGTEST)
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]
            transport.write(version)  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            self.t.receive_data(data)
            while (m := self.t.next_message()) is not None:
                if m.command == "verack" and not self.done.done():
                    assert self.transport is not None
                    self.transport.write(verack)
                    self.done.set_result(True)

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(False)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(concurrency)
        transports: list[asyncio.BaseTransport] = []
        failures = 0

        async def one() -> None:
            nonlocal failures
            async with sem:
                done: asyncio.Future[bool] = loop.create_future()
                try:
                    tr, _ = await loop.create_connection(lambda: Client(done), "127.0.0.1", port)
                except OSError:
                    failures += 1
                    return
                transports.append(tr)
                try:
                    async with asyncio.timeout(60):
                        ok = await done
                except TimeoutError:
                    ok = False
                failures += not ok

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        elapsed = time.perf_counter() - start
        print(
            json.dumps({"elapsed": elapsed, "ok": count - failures, "failures": failures}),
            flush=True,
        )
        await loop.run_in_executor(None, sys.stdin.readline)  # hold the connections until told
        for tr in transports:
            tr.close()
        await asyncio.sleep(0.2)

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


# -- the orchestrator -----------------------------------------------------------------------


def start_peerkeeper(
    port: int, rpcport: int, maxconn: int, datadir: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "peerkeeper.daemon.cli",
        "node",
        "--chain",
        "regtest",
        "--datadir",
        str(datadir),
        "--bind",
        f"127.0.0.1:{port}",
        "--rpcport",
        str(rpcport),
        "--maxconnections",
        str(maxconn),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_bitcoind(
    binary: str, port: int, rpcport: int, maxconn: int, datadir: Path
) -> subprocess.Popen[bytes]:
    cmd = [
        binary,
        "-regtest",
        f"-datadir={datadir}",
        "-listen=1",
        f"-bind=127.0.0.1:{port}",
        f"-port={port}",
        f"-rpcport={rpcport}",
        "-rpcbind=127.0.0.1",
        "-rpcallowip=127.0.0.1",
        f"-maxconnections={maxconn}",
        "-dnsseed=0",
        "-fixedseeds=0",
        "-natpmp=0",
        "-discover=0",
        # BIP324 on, as peerkeeper's default: both nodes then detect v1 from the first
        # bytes of every inbound connection (issue 17: compare like with like).
        "-v2transport=1",
        "-printtoconsole=0",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(
    kind: str, binary: str | None, count: int, idle: float, concurrency: int
) -> dict[str, float]:
    port, rpcport = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        datadir = Path(tmp)
        if kind == "peerkeeper":
            node = start_peerkeeper(port, rpcport, count + 11 + 10, datadir)
        else:
            assert binary is not None
            node = start_bitcoind(binary, port, rpcport, count + 11 + 10, datadir)
        try:
            wait_port(port)
            time.sleep(1.0)
            rss0 = rss_kb(node.pid)
            client = subprocess.Popen(
                [sys.executable, __file__, "--client", str(port), str(count), str(concurrency)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert client.stdout is not None and client.stdin is not None
            line = client.stdout.readline()
            result = json.loads(line)
            time.sleep(1.0)  # let the last messages settle
            rss1 = rss_kb(node.pid)
            cpu0 = cpu_seconds(node.pid)
            time.sleep(idle)
            cpu1 = cpu_seconds(node.pid)
            client.stdin.write(b"\n")
            client.stdin.flush()
            client.wait(timeout=60)
        finally:
            stop_process(node)
    ok = result["ok"]
    return {
        "count": count,
        "ok": ok,
        "handshakes_per_s": ok / result["elapsed"],
        "rss_kb_per_peer": (rss1 - rss0) / max(ok, 1),
        "idle_cpu_pct": 100 * (cpu1 - cpu0) / idle,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--counts", default="1000,10000")
    p.add_argument("--idle", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--bitcoind", default=None, help="a bitcoind binary to measure as the baseline")
    args = p.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    limit = raise_nofile(max(counts) * 2 + 1000)
    print(f"open-files limit: {limit}")
    kinds = [("peerkeeper", None)]
    if args.bitcoind:
        if shutil.which(args.bitcoind) is None and not Path(args.bitcoind).exists():
            sys.exit(f"no bitcoind at {args.bitcoind}")
        kinds.append(("bitcoind", args.bitcoind))
    print("| node | peers | completed | handshakes/s | RSS KB/peer | idle CPU % |")
    print("|---|---:|---:|---:|---:|---:|")
    for count in counts:
        for kind, binary in kinds:
            r = measure(kind, binary, count, args.idle, args.concurrency)
            print(
                f"| {kind} | {count:,} | {r['ok']:,} | {r['handshakes_per_s']:,.0f} | "
                f"{r['rss_kb_per_peer']:.1f} | {r['idle_cpu_pct']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        raise_nofile(int(sys.argv[3]) + 1000)
        client_main(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
