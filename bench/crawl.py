"""Crawl a lab network: visits per second and memory, beside a bare TCP connect loop.

Starts ``peerkeeper lab --nodes N`` (default 1,000; no RPC, no automatic connections)
in its own process, then in this process:

* the baseline: a bare asyncio connect + close to every lab node, ``--concurrency`` at
  a time (what the loopback and the lab's accept loop allow, no protocol);
* the crawl: ``peerkeeper crawl``'s :func:`run_crawl` from one seed through the dial
  map (BIP324 handshake, getaddr, record, disconnect for each node).

Printed: both rates, their ratio, the crawl's nodes found, and this process's RSS
before and after the crawl. Issue 16's aim: at least 200 handshakes+getaddr per second.
Loopback only; the lab is stopped at the end.

Run: ``python3 bench/crawl.py [--nodes 1000] [--concurrency 256]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from peerkeeper.bitcoin.crawl import CrawlTimeouts
from peerkeeper.daemon.crawler import CrawlOptions, run_crawl
from peerkeeper.io.dialmap import load_dialmap


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def bare_connects(targets: list[tuple[str, int]], concurrency: int) -> float:
    """Connect and close to every target; returns connections per second."""
    sem = asyncio.Semaphore(concurrency)

    async def one(host: str, port: int) -> None:
        async with sem:
            _, w = await asyncio.open_connection(host, port)
            w.close()
            await w.wait_closed()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(h, p) for h, p in targets))
    return len(targets) / (time.perf_counter() - t0)


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-crawl-"))
    dm = tmp / "dm.json"
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "peerkeeper.daemon.cli",
            "lab",
            "--nodes",
            str(args.nodes),
            "--rpc",
            "0",
            "--outbound",
            "0",
            "--seconds",
            "3600",
            "--write-dialmap",
            str(dm),
            "--datadir",
            str(tmp / "lab"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        t0 = time.monotonic()
        while not dm.exists():
            if lab.poll() is not None or time.monotonic() - t0 > 600:
                print("the lab did not start", file=sys.stderr)
                return 1
            await asyncio.sleep(0.1)
        print(f"lab of {args.nodes} nodes up in {time.monotonic() - t0:.1f} s")
        mapping = load_dialmap(dm)
        base = await bare_connects(list(mapping.values()), args.concurrency)
        print(f"baseline: bare TCP connect+close {base:,.0f}/s")
        seed = sorted(mapping, key=str)[0]
        before = rss_mb()
        t1 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        summary = await run_crawl(
            CrawlOptions(
                chain="regtest",
                seeds=[str(seed)],
                dialmap=dm,
                concurrency=args.concurrency,
                timeouts=CrawlTimeouts(3.0, 5.0, 10.0),
            ),
            summary_out=io.StringIO(),
        )
        wall = time.perf_counter() - t1
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        rate = summary["visited"] / wall
        print(
            f"crawl: {summary['reachable']}/{args.nodes} reachable of {summary['visited']} "
            f"visited in {wall:.2f} s = {rate:,.0f} nodes/s "
            f"({rate / base:.2f}x the bare connect rate); crawler CPU {cpu:.2f} s "
            f"({summary['visited'] / max(cpu, 1e-9):,.0f} visits per CPU second)"
        )
        print(f"crawler RSS: {before:.0f} MB before, {rss_mb():.0f} MB after")
        print(f"transports: {summary['transports']}")
    finally:
        lab.terminate()
        lab.wait(timeout=60)
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=256)
    sys.exit(asyncio.run(main(p.parse_args())))
