"""Bitcoin Core's own functional tests against peerkeeperd (issue 13).

Core's test framework takes its node binary from ``BITCOIND``; ``../shared/core-functional``
holds Core's ``test/functional`` tree and ``run.py``, which runs a test and prints ``PASS``
or ``FAIL``. The tests below pass against peerkeeperd today and are kept passing: the
issue's thirteen and the others that passed when the rest of Core's p2p/feature/rpc_net
tests were tried.
Skipped with the reason when the shared tree or the
``peerkeeperd`` command is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[2] / "shared" / "core-functional" / "run.py"
PASSING = [
    "p2p_ping",
    "p2p_timeouts",
    "rpc_setban",
    "p2p_addrv2_relay",
    "feature_bind_extra",
    "p2p_addrfetch",
    "p2p_add_connections",
    "p2p_addr_relay",
    "p2p_seednode",
    "p2p_getaddr_caching",
    "p2p_disconnect_ban",
    "p2p_dns_seeds",
    "feature_proxy",
    # Beyond the thirteen: the others of Core's p2p_*, feature_* and rpc_net
    # tests that pass against peerkeeperd.
    "feature_dirsymlinks",
    "feature_discover",
    "feature_framework_startup_failures",
    "feature_help",
    "feature_includeconf",
    "feature_logging",
    "feature_port",
    "feature_uacomment",
    "p2p_handshake",
    "p2p_v2_misbehaving",
    # The HTTP server (issue 15, on aiohttp): Core's own checks of its status codes,
    # limits, keep-alive, pipelining, chunked bodies and timeouts.
    "interface_http",
    # Tor's control port (issue 18): auth, ADD_ONION, partial and malformed replies.
    "feature_torcontrol",
    # I2P through SAM (issue 18): port 0 only; persistent or transient sessions.
    "p2p_i2p_ports",
    "p2p_i2p_sessions",
]

pytestmark = [
    pytest.mark.skipif(not RUNNER.exists(), reason=f"Core's functional tests not at {RUNNER}"),
    pytest.mark.skipif(
        shutil.which("peerkeeperd") is None, reason="the peerkeeperd command is not installed"
    ),
    pytest.mark.timeout(300),
]


@pytest.mark.parametrize("test", PASSING)
def test_cores_functional_test_passes(test: str) -> None:
    binary = shutil.which("peerkeeperd")
    assert binary is not None
    out = subprocess.run(
        [sys.executable, str(RUNNER), "--timeout", "240", test],
        env={**os.environ, "BITCOIND": binary},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert f"PASS {test}" in out.stdout, out.stdout + out.stderr + failure_excerpt(out.stdout)
    assert "1 passed, 0 failed" in out.stdout


def failure_excerpt(stdout: str, limit: int = 6000) -> str:
    """The framework's traceback and the node's last debug.log lines, from the log
    directory run.py names on a failure: CI keeps only this message."""
    found = re.search(r"logs: (\S+)", stdout)
    if found is None:
        return ""
    logs = Path(found.group(1))
    parts: list[str] = []
    framework = logs / "test_framework.log"
    if framework.exists():
        text = framework.read_text(errors="replace")
        start = text.find("Traceback")
        start = max(0, start - 3000) if start >= 0 else max(0, len(text) - limit)
        parts.append("\n--- test_framework.log ---\n" + text[start : start + limit])
    for debug in sorted(logs.glob("node*/regtest/debug.log")):
        tail = debug.read_text(errors="replace")[-limit:]
        parts.append(f"\n--- {debug.relative_to(logs)} (tail) ---\n{tail}")
    return "".join(parts)
