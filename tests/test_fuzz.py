"""Every fuzz target runs under atheris for a few hundred inputs (a smoke run: the long
runs are reported in the notes), and only the documented errors escape its decoder."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

atheris = pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fuzz.targets import TARGETS  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_list_names_every_target() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fuzz", "--list"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert listed == set(TARGETS)
    assert {"msg-version", "msg-addrv2", "v1", "v2-after-handshake", "peers-dat"} <= listed


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_runs_clean(name: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fuzz", name, "--runs", "300", "--corpus", str(tmp_path)],
        cwd=tmp_path,  # libFuzzer writes crash-* files to the working directory
        env={"PYTHONPATH": str(ROOT), **_env()},
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Done 300 runs" in out.stderr
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))


def test_each_target_refuses_what_its_decoder_does_not_document() -> None:
    """The seeds pass; an exception outside ``allowed`` would be a finding."""
    for target in TARGETS.values():
        for seed in target.seeds():
            with contextlib.suppress(target.allowed):
                target.run(seed)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
