"""Suite-wide safety net: no test ever opens a socket outside loopback.

Nodes started in-process open automatic outbound connections to whatever their
address table holds, and tests fill those tables with routable addresses. Every
direct dial is checked here: with no dial map (the virtual-address map tests use to
reach loopback nodes) and no proxy, a destination outside 127.0.0.0/8 and ::1 is
refused with a ``ConnectError`` before any socket exists, and recorded in
``REFUSED_DIALS`` so a test can assert on it.

Tests marked ``@pytest.mark.debian("tor")`` run a real component from a Debian package;
it is installed once before the first test runs (never while collecting, and outside
any test's timeout), and the test skips with the reason when it cannot be had.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from support import REFUSED_DIALS, debian_binary

from peerkeeper.daemon.cli import LOG_CATEGORIES
from peerkeeper.daemon.debuglog import set_mocktime_source
from peerkeeper.io.sockman import ConnectError, SockMan
from peerkeeper.net.netaddr import AddrError, Service

_original_connect = SockMan.connect


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "debian(command): runs Debian's COMMAND, installed before the run if missing"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Install what the selected tests' ``debian`` marks name, before any of them runs."""
    if session.config.option.collectonly:
        return
    for command in sorted({m.args[0] for i in session.items for m in i.iter_markers("debian")}):
        debian_binary(command)


def _outside_loopback(service: Service) -> bool:
    """An IP destination outside loopback (others never reach a socket without a proxy)."""
    addr = service.addr
    return (addr.is_ipv4() or addr.is_ipv6()) and not addr.is_local()


async def _guarded_connect(self: SockMan, service: Service | str, *args: Any, **kwargs: Any) -> int:
    if isinstance(service, str):
        try:
            parsed: Service | None = Service.parse(service, 0)
        except AddrError:
            parsed = None  # a host name: SockMan refuses it without a proxy
    else:
        parsed = service
    if (
        self.dial_map is None
        and kwargs.get("proxy") is None
        and parsed is not None
        and _outside_loopback(parsed)
    ):
        REFUSED_DIALS.append(parsed)
        raise ConnectError(parsed, "tests dial loopback only")
    return await _original_connect(self, service, *args, **kwargs)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(SockMan, "connect", _guarded_connect)
    yield


@pytest.fixture
def daemon_logging() -> Iterator[None]:
    """For a test that installs the daemon's logging (``debuglog.install``, or a
    ``main()`` that gets as far as the log file): give the "peerkeeper" loggers back
    afterwards, so pytest's log capture sees them again in later tests."""
    yield
    root = logging.getLogger("peerkeeper")
    for handler in root.handlers:
        handler.close()
    root.handlers.clear()
    root.propagate = True
    root.setLevel(logging.NOTSET)
    for category in LOG_CATEGORIES:
        logging.getLogger(f"peerkeeper.{category}").setLevel(logging.NOTSET)
    set_mocktime_source(None)
