"""Core's debug.log format (src/logging.cpp) and logging options (src/init/common.cpp)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from peerkeeper.daemon.debuglog import (
    TRACE,
    CoreLogFormatter,
    LogOptions,
    LogSetupError,
    escape_message,
    install,
    logging_rpc,
    set_mocktime_source,
)
from peerkeeper.daemon.peerkeeperd import main

T = 1_800_000_000.25  # 2027-01-15T08:00:00.250000Z


def record(level: int, msg: str, name: str = "peerkeeper.net") -> logging.LogRecord:
    r = logging.LogRecord(name, level, "/x/src/peerkeeper/bitcoin/peer.py", 824, msg, (), None)
    r.created = T
    r.funcName = "_on_getaddr"
    r.threadName = "MainThread"
    return r


def line(level: int, msg: str = "m", name: str = "peerkeeper.net", **opts: object) -> str:
    return CoreLogFormatter(LogOptions(**opts)).format(record(level, msg, name))  # type: ignore[arg-type]


def test_cores_prefix_table() -> None:
    """GetLogPrefix: info has no prefix; a category shows on debug/trace lines only."""
    assert line(logging.INFO) == "2027-01-15T08:00:00Z m"
    assert line(logging.DEBUG) == "2027-01-15T08:00:00Z [net] m"
    assert line(TRACE) == "2027-01-15T08:00:00Z [net:trace] m"
    assert line(logging.WARNING) == "2027-01-15T08:00:00Z [warning] m"
    assert line(logging.ERROR) == "2027-01-15T08:00:00Z [error] m"
    assert line(logging.CRITICAL) == "2027-01-15T08:00:00Z [error] m"
    always = {"always_print_category_level": True}
    assert line(logging.INFO, **always) == "2027-01-15T08:00:00Z [all:info] m"
    assert line(logging.DEBUG, **always) == "2027-01-15T08:00:00Z [net:debug] m"
    assert line(logging.WARNING, **always) == "2027-01-15T08:00:00Z [all:warning] m"


def test_the_frameworks_options_make_cores_line() -> None:
    got = line(
        logging.DEBUG,
        'Ignoring repeated "getaddr". peer=9',
        time_micros=True,
        thread_names=True,
        source_locations=True,
    )
    assert got == (
        "2027-01-15T08:00:00.250000Z [MainThread] [bitcoin/peer.py:824] [_on_getaddr] "
        '[net] Ignoring repeated "getaddr". peer=9'
    )
    assert line(logging.INFO, timestamps=False) == "m"


def test_mocktime_is_stamped_while_set() -> None:
    mock = [0.0]
    set_mocktime_source(lambda: mock[0])
    try:
        assert line(logging.INFO) == "2027-01-15T08:00:00Z m"
        mock[0] = 1_900_000_000
        assert line(logging.INFO) == "2027-01-15T08:00:00Z (mocktime: 2030-03-17T17:46:40Z) m"
    finally:
        set_mocktime_source(None)
    assert line(logging.INFO) == "2027-01-15T08:00:00Z m"


def test_control_characters_from_peers_are_escaped() -> None:
    """LogEscapeMessage: a peer's command name cannot write terminal codes or a fake line."""
    assert escape_message("ok\n") == "ok\n"
    assert escape_message("a\x1b[31mb\rc\x00\x7f") == "a\\x1b[31mb\\x0dc\\x00\\x7f"
    assert line(logging.DEBUG, "received: ver\x07sion") == (
        "2027-01-15T08:00:00Z [net] received: ver\\x07sion"
    )


def test_levels_and_categories() -> None:
    opts = LogOptions(categories={"net", "rpc"}, exclude={"rpc"})
    assert opts.level_for("net") == logging.DEBUG
    assert opts.level_for("rpc") == logging.INFO  # -debugexclude wins over -debug
    assert opts.level_for("addrman") == logging.INFO
    level, per = LogOptions.parse_levels(["trace", "net:info"], ["net", "rpc"])
    assert (level, per) == (TRACE, {"net": logging.INFO})
    opts = LogOptions(categories={"all"}, level=level, category_levels=per)
    assert (opts.level_for("net"), opts.level_for("rpc")) == (logging.INFO, TRACE)
    with pytest.raises(LogSetupError, match="Unsupported global logging level -loglevel=loud"):
        LogOptions.parse_levels(["loud"], ["net"])
    with pytest.raises(LogSetupError, match="Unsupported category-specific logging level"):
        LogOptions.parse_levels(["nope:debug"], ["net"])


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("-loglevel=loud", "Error: Unsupported global logging level -loglevel=loud."),
        ("-loglevel=net:loud", "Error: Unsupported category-specific logging level"),
        ("-debugexclude=nope", "Error: Unsupported logging category -debugexclude=nope."),
    ],
)
def test_bad_logging_options_are_init_errors_that_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arg: str, message: str
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    assert main([f"-datadir={data}", "-regtest", arg], default_datadir=tmp_path) == 1
    assert capsys.readouterr().err.startswith(message)
    assert list(data.iterdir()) == []


def test_the_logging_rpc_turns_categories_on_and_off(daemon_logging: None) -> None:
    """Core's ``logging`` RPC: include, then exclude (which wins); ``all``; unknown names
    are refused; the loggers' levels follow at once."""
    install(LogOptions(categories={"net"}), ["net", "rpc", "addrman"])
    state = logging_rpc()
    assert state["net"] and not state["rpc"] and "leveldb" in state and "node" in state
    state = logging_rpc(["rpc"], ["net"])
    assert state["rpc"] and not state["net"]
    assert logging.getLogger("peerkeeper.net").level == logging.INFO
    assert logging.getLogger("peerkeeper.rpc").level == logging.DEBUG
    state = logging_rpc(["all"], ["addrman"])
    assert state["net"] and state["leveldb"] and not state["addrman"]
    assert not any(logging_rpc([], ["all"]).values())
    with pytest.raises(LogSetupError, match="unknown logging category abc"):
        logging_rpc(["abc"])
