"""Every script in examples/ runs against a local network, and the README shows them verbatim.

A ``peerkeeper lab`` (in this process) is the network: each Bitcoin example reaches it
through the lab's dial map, as a user would with ``peerkeeper lab --write-dialmap``.
The native example starts its own two nodes. A script that raises fails the test.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from peerkeeper.daemon.lab import Lab, LabOptions

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


async def run(script: str, *args: str, timeout: float = 60, status: int = 0) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == status, f"{script} exited {proc.returncode}:\n{text}"
    return text


def test_the_readme_shows_each_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = dict(re.findall(r"<!-- (examples/\w+\.py) -->\n```python\n(.*?)```", readme, re.S))
    assert sorted(Path(name).name for name in shown) == SCRIPTS
    for name, code in shown.items():
        assert code == (ROOT / name).read_text(), f"README's copy of {name} differs from the file"


async def test_bitcoin_examples_against_a_lab(tmp_path: Path) -> None:
    async with Lab(LabOptions(nodes=3, rpc=False, outbound=False, datadir=tmp_path)) as lab:
        dm = tmp_path / "dm.json"
        lab.write_dialmap(dm)
        peer = str(lab.virtual[0])
        common = ("--dialmap", str(dm))
        text = await run("fetch_headers.py", "--peer", peer, *common)
        assert "10 headers from 11.1.0.1:18444" in text
        text = await run("listen_inv.py", "--peer", peer, "--seconds", "1", *common)
        assert "connected to 11.1.0.1:18444: /peerkeeper:" in text
        text = await run(
            "broadcast_tx.py", "--peer", peer, "--peer", str(lab.virtual[1]), "--seconds", "1",
            *common,
        )  # fmt: skip
        assert "announced" in text and "to 2 peers" in text
        assert "0 of 2 asked for it" in text  # peerkeeper nodes keep no mempool


async def test_native_example() -> None:
    text = await run("native_echo.py", "--text", "hello")
    assert "answered 'HELLO'" in text


async def test_examples_fail_with_a_message_not_a_traceback() -> None:
    from support import free_port

    refused = f"127.0.0.1:{free_port()}"
    for script, args in (
        ("fetch_headers.py", ("--peer", refused)),
        ("listen_inv.py", ("--peer", refused, "--seconds", "1")),
        ("broadcast_tx.py", ("--peer", refused, "--tx", "zz")),
        ("listen_inv.py", ("--peer", refused, "--dialmap", "/no/such/file.json")),
    ):
        text = await run(script, *args, status=1)
        assert text.startswith("error: ") and "Traceback" not in text, text
