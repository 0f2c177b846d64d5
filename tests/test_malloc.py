"""tune_malloc: glibc's mallopt set once, left alone when the user chose by environment."""

from __future__ import annotations

import platform
import sys

import pytest

from peerkeeper import tune_malloc
from peerkeeper.io.malloc import ENV_VARS


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt's settings are glibc's",
)
def test_sets_all_three_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert tune_malloc() is True
    big = [bytes(1 << 20) for _ in range(8)]  # allocations still work after it
    assert sum(map(len, big)) == 8 << 20


@pytest.mark.parametrize("var", ENV_VARS)
def test_a_users_environment_wins(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "1")
    assert tune_malloc() is False


def test_off_linux_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_malloc() is False
