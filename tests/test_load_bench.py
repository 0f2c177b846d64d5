"""The load and throughput benches end by themselves, on loopback, and leave no process.

Tiny runs of bench/load.py (P001 with 5 peers for 1 s; P002 with 300 dialers) and of
bench/throughput.py (20 messages of 1 MB per row): each must finish well inside its
bound, print its rows, and its P002 row must hold exactly the inbound slots with no
errors and no timeouts. Speed is never asserted here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(240)


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def run_bench(*args: str) -> str:
    before = children_of(os.getpid())
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=200,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not children_of(os.getpid()) - before, "a bench left a process behind"
    return proc.stdout


@pytest.mark.skipif(not Path("/proc").exists(), reason="the benches read /proc")
def test_load_bench_rows_end_and_hold_exactly_the_inbound_slots() -> None:
    out = run_bench(
        "bench/load.py", "--peers", "5", "--seconds", "1", "--dialers", "300",
        "--storm-concurrency", "50",
    )  # fmt: skip
    p001 = re.search(r"^\| peerkeeper \| 5 \| 5 \| ([\d,]+) \|", out, re.M)
    assert p001 is not None, out
    assert int(p001.group(1).replace(",", "")) > 0  # pongs came back
    row = re.search(
        r"^\| peerkeeper \| [\d,]+ \| ([\d,]+) \| (\d+) \|.*$", out.split("P002")[1], re.M
    )
    assert row is not None, out
    cells = [c.strip() for c in row.group(0).strip("|").split("|")]
    held, errors, timeouts, honest_evicted = (
        int(cells[3]),
        int(cells[6]),
        int(cells[7]),
        int(cells[10]),
    )
    assert (held, errors, timeouts, honest_evicted) == (39, 0, 0, 0), row.group(0)


@pytest.mark.skipif(not Path("/proc").exists(), reason="the benches read /proc")
def test_throughput_bench_moves_and_checks_every_message() -> None:
    out = run_bench("bench/throughput.py", "--megabytes", "20")
    for kind in ("v1", "v2"):
        assert re.search(rf"^\| {kind} \| {kind} \| [\d,]+ \|", out, re.M), out
