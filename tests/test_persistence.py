"""The address book in SQLite: incremental dumps, restarts, SIGKILL at any moment, Core files via the CLI."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peerkeeper.bitcoin.addrman import AddrMan
from peerkeeper.daemon.cli import main as cli_main
from peerkeeper.io.addrdb import read_peers_dat
from peerkeeper.io.store import (
    AddrBookSnapshot,
    Store,
    addrman_from_snapshot,
    load_addrbook,
    save_addrbook,
    snapshot_addrman,
)
from peerkeeper.net.netaddr import Service
from peerkeeper.wire.messages import AddrEntry

HERE = Path(__file__).resolve().parent
CORE_FILES = HERE.parents[1] / "shared" / "data" / "core_files"
needs_core_files = pytest.mark.skipif(
    not (CORE_FILES / "peers.dat").exists(), reason=f"Core's recorded files are not at {CORE_FILES}"
)
REGTEST = bytes.fromhex("fabfb5da")
NOW = 1_800_000_000

sys.path.insert(0, str(HERE))
import crashdump_child  # noqa: E402


def book(n: int) -> AddrMan:
    am = AddrMan(random.Random(3), key=bytes(range(1, 33)))
    rng = random.Random(n)
    entries = [
        AddrEntry(NOW - 100, 9, Service.parse(f"15.{rng.randrange(256)}.{i % 256}.1:8333", 0))
        for i in range(n)
    ]
    am.add(entries, Service.parse("16.0.0.1:8333", 0), 0, now=NOW)
    return am


def test_roundtrip_and_incremental_dump(tmp_path: Path) -> None:
    am = book(500)
    store = Store(tmp_path)
    store.open()
    try:
        first = snapshot_addrman(am)
        written = store.call_sync(lambda c: save_addrbook(c, first, None))
        assert written == len(first.rows) + len(first.refs)
        again = store.call_sync(lambda c: save_addrbook(c, first, first))
        assert again == 0  # nothing changed, nothing written
        some = [e.service for e in am.entries()[:5]]
        for s in some:
            am.good(s, now=NOW + 10)
        second = snapshot_addrman(am)
        written = store.call_sync(lambda c: save_addrbook(c, second, first))
        assert 5 <= written < 50  # only the moved entries and their slots
        loaded = store.call_sync(load_addrbook)
        assert loaded is not None and loaded.rows == second.rows and loaded.refs == second.refs
        rebuilt = addrman_from_snapshot(loaded, random.Random(1))
        assert rebuilt.raw_entries() == am.raw_entries()
        assert rebuilt.info() == am.info()
        assert rebuilt.check() == 0
    finally:
        store.close()


@needs_core_files
def test_core_peers_dat_through_the_store(tmp_path: Path) -> None:
    core = read_peers_dat(CORE_FILES / "peers.dat", REGTEST, random.Random(1))
    store = Store(tmp_path)
    store.open()
    try:
        snap = snapshot_addrman(core)
        store.call_sync(lambda c: save_addrbook(c, snap, None))
        loaded = store.call_sync(load_addrbook)
        assert loaded is not None
        rebuilt = addrman_from_snapshot(loaded, random.Random(2))
    finally:
        store.close()
    # Every entry at the same table, bucket and position as Core's getrawaddrman.
    expected = json.loads((CORE_FILES / "getrawaddrman.json").read_text())
    assert rebuilt.raw_entries() == expected


def test_node_restart_keeps_the_address_book(tmp_path: Path) -> None:
    import asyncio

    from peerkeeper.daemon.config import Config
    from peerkeeper.daemon.node import Node

    config = Config(chain="regtest", datadir=tmp_path, bind=["127.0.0.1:0"], server=False)

    async def first() -> dict[str, dict[str, int]]:
        async with Node(config) as node:
            node.addrman.add(
                [
                    AddrEntry(int(time.time()), 9, Service.parse(f"17.{i}.0.1:8333", 0))
                    for i in range(50)
                ],
                None,
                now=node.clock(),
            )
            return node.addrman.info()

    async def second() -> dict[str, dict[str, int]]:
        async with Node(config) as node:
            return node.addrman.info()

    info = asyncio.run(first())
    assert info["all_networks"]["total"] > 40
    assert asyncio.run(second()) == info


def test_sigkill_at_any_moment_loses_nothing_committed(tmp_path: Path) -> None:
    rng = random.Random(1234)
    # expected(k) is crashdump_child.book_after(k).rows, built round by round on one book.
    book = crashdump_child.fresh()
    expected_rows = [dict(snapshot_addrman(book).rows)]

    def expected(k: int) -> dict[bytes, object]:
        while len(expected_rows) <= k:
            crashdump_child.apply_round(book, len(expected_rows))
            expected_rows.append(dict(snapshot_addrman(book).rows))
        return expected_rows[k]

    rebuilt: list[AddrBookSnapshot] = []  # loaded books already rebuilt into an AddrMan

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    # One fork server for all trials: each trial's writer is a fresh process, forked
    # with the imports done (an interpreter start per trial cost most of the test).
    server = subprocess.Popen(
        [sys.executable, str(HERE / "crashdump_child.py"), "--fork-server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert server.stdin is not None and server.stdout is not None
    writer = None
    try:
        for trial in range(12):
            datadir = tmp_path / f"t{trial}"
            server.stdin.write(f"{datadir}\n")
            server.stdin.flush()
            # The store must be open before any kill: else a kill during Store.open()
            # would test nothing about committed dumps.
            first = server.stdout.readline().split()
            assert first[:1] == ["open"], "the writer died before opening its store"
            writer = int(first[1])
            # Wait for a random number of committed dumps (0-6), then a random extra
            # delay, then kill.
            want = rng.randrange(0, 7)
            committed = 0
            while committed < want:
                line = server.stdout.readline()
                assert line and line != "reaped\n", "the writer died on its own"
                committed = int(line)
            time.sleep(rng.random() * 0.05)
            os.kill(writer, signal.SIGKILL)
            while (line := server.stdout.readline()) != "reaped\n":
                assert line, "the fork server died"
                committed = int(line)
            writer = None
            store = Store(datadir)
            store.open()
            try:
                loaded = store.call_sync(load_addrbook)
            finally:
                store.close()
            assert store.moved_aside is None  # a killed writer never corrupts the database
            rows = {} if loaded is None else loaded.rows
            # Exactly one complete dump: the last one reported, or the one committed
            # just before the kill.
            assert rows in (expected(committed), expected(committed + 1)), (
                f"trial {trial}: {len(rows)} rows"
            )
            if loaded is not None and loaded not in rebuilt:
                addrman_from_snapshot(loaded, random.Random(0))
                rebuilt.append(loaded)
    finally:
        if writer is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(writer, signal.SIGKILL)
        server.stdin.close()
        server.kill()
        server.wait()
        server.stdout.close()


def test_cli_import_export_and_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    am = book(300)
    from peerkeeper.io.addrdb import write_peers_dat

    src = tmp_path / "in.dat"
    write_peers_dat(src, am, REGTEST)
    common = ["--chain", "regtest", "--datadir", str(tmp_path / "d")]
    assert cli_main(["import-peers-dat", *common, str(src)]) == 0
    out = tmp_path / "out.dat"
    assert cli_main(["export-peers-dat", *common, str(out)]) == 0
    assert read_peers_dat(out, REGTEST, random.Random(1)).raw_entries() == am.raw_entries()
    assert cli_main(["export-peers-json", *common, str(tmp_path / "peers.json")]) == 0
    floresta = json.loads((tmp_path / "peers.json").read_text())
    assert (
        len(floresta) == len(am)
        and floresta[0]["state"] == "NeverTried"
        and "V4" in floresta[0]["address"]
    )
    raw = src.read_bytes()
    bad_files = {
        "truncated": raw[: len(raw) // 2],
        "bit-flipped": raw[:100] + bytes([raw[100] ^ 1]) + raw[101:],
        "wrong magic": bytes.fromhex("f9beb4d9") + raw[4:],
        "wrong checksum": raw[:-1] + bytes([raw[-1] ^ 0xFF]),
    }
    for problem, data in bad_files.items():
        f = tmp_path / "bad.dat"
        f.write_bytes(data)
        capsys.readouterr()
        assert cli_main(["import-peers-dat", *common, str(f)]) == 1, problem
        err = capsys.readouterr().err
        assert "bad.dat" in err, problem
        # The address book is untouched.
        assert cli_main(["export-peers-dat", *common, str(out)]) == 0
        assert read_peers_dat(out, REGTEST, random.Random(1)).raw_entries() == am.raw_entries()


@needs_core_files
def test_cli_banlist_roundtrip(tmp_path: Path) -> None:
    common = ["--chain", "regtest", "--datadir", str(tmp_path)]
    assert cli_main(["import-banlist", *common, str(CORE_FILES / "banlist.json")]) == 0
    out = tmp_path / "banlist.json"
    assert cli_main(["export-banlist", *common, str(out)]) == 0
    ours = {e["address"] for e in json.loads(out.read_text())["banned_nets"]}
    theirs = json.loads((CORE_FILES / "banlist.json").read_text())["banned_nets"]
    assert ours == {e["address"] for e in theirs if e["banned_until"] > time.time()}


def test_cli_anchors_roundtrip_and_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from peerkeeper.io.addrdb import dumps_anchors, loads_anchors
    from peerkeeper.net.netaddr import Service
    from peerkeeper.wire.messages import AddrEntry

    common = ["--chain", "regtest", "--datadir", str(tmp_path)]
    entries = [
        AddrEntry(1_795_000_000, 9, Service.parse(f"{20 + i}.1.2.3:18444", 0)) for i in range(3)
    ]
    src = tmp_path / "in.dat"
    src.write_bytes(dumps_anchors(entries, REGTEST))
    assert cli_main(["import-anchors-dat", *common, str(src)]) == 0
    assert src.exists()  # the user's file is left alone
    out = tmp_path / "anchors.dat"
    assert cli_main(["export-anchors-dat", *common, str(out)]) == 0
    assert loads_anchors(out.read_bytes(), REGTEST) == entries[:2]  # Core keeps 2
    assert cli_main(["export-anchors-dat", *common, str(out)]) == 0  # export does not consume
    assert len(loads_anchors(out.read_bytes(), REGTEST)) == 2
    bad = tmp_path / "bad.dat"
    bad.write_bytes(src.read_bytes()[:-3])
    capsys.readouterr()
    assert cli_main(["import-anchors-dat", *common, str(bad)]) == 1
    assert "bad.dat" in capsys.readouterr().err
    assert cli_main(["export-anchors-dat", *common, str(out)]) == 0
    assert loads_anchors(out.read_bytes(), REGTEST) == entries[:2]  # untouched by the bad import


def _node_config(path: Path) -> object:
    from peerkeeper.daemon.config import Config

    return Config(chain="regtest", datadir=path, bind=["127.0.0.1:0"], server=False)


def test_services_with_bit_63_survive_a_dump(tmp_path: Path) -> None:
    import asyncio

    from peerkeeper.daemon.node import Node

    services = 1 | 8 | (1 << 63)

    async def first() -> None:
        async with Node(_node_config(tmp_path)) as node:  # type: ignore[arg-type]
            node.addrman.add(
                [AddrEntry(int(time.time()), services, Service.parse("23.0.0.1:8333", 0))],
                None,
                now=node.clock(),
            )

    async def second() -> list[AddrEntry]:
        async with Node(_node_config(tmp_path)) as node:  # type: ignore[arg-type]
            return node.addrman.entries()

    asyncio.run(first())
    assert [e.services for e in asyncio.run(second())] == [services]


def test_unusable_stored_book_is_copied_aside_not_overwritten(tmp_path: Path) -> None:
    import asyncio

    from peerkeeper.daemon.node import Node

    async def fill() -> None:
        async with Node(_node_config(tmp_path)) as node:  # type: ignore[arg-type]
            node.addrman.add(
                [
                    AddrEntry(int(time.time()), 9, Service.parse(f"24.{i}.0.1:8333", 0))
                    for i in range(30)
                ],
                None,
                now=node.clock(),
            )

    asyncio.run(fill())
    store = Store(tmp_path / "regtest")
    store.open()
    rows_before = store.call_sync(
        lambda c: c.execute("SELECT COUNT(*) FROM addresses").fetchone()[0]
    )
    store.call_sync(
        lambda c: c.execute("INSERT INTO new_refs VALUES (5, 5, x'00')")
    )  # a dangling reference
    store.close()

    async def restart() -> int:
        async with Node(_node_config(tmp_path)) as node:  # type: ignore[arg-type]
            return len(node.addrman)

    assert asyncio.run(restart()) == 0  # started empty ...
    copies = list((tmp_path / "regtest").glob("peerkeeper.sqlite.badbook-*"))
    assert len(copies) == 1  # ... after keeping a copy of what could not be loaded
    saved = Store(tmp_path / "x")
    saved.path = copies[0]
    saved.open()
    try:
        assert (
            saved.call_sync(lambda c: c.execute("SELECT COUNT(*) FROM addresses").fetchone()[0])
            == rows_before
        )
    finally:
        saved.close()


def test_stop_during_a_dump_leaves_a_loadable_book(tmp_path: Path) -> None:
    import asyncio

    from peerkeeper.daemon.node import Node

    async def run() -> dict[str, dict[str, int]]:
        node = Node(_node_config(tmp_path))  # type: ignore[arg-type]
        await node.start()
        node.addrman.add(
            [
                AddrEntry(int(time.time()), 9, Service.parse(f"25.{i}.0.1:8333", 0))
                for i in range(100)
            ],
            None,
            now=node.clock(),
        )
        inflight = asyncio.ensure_future(node.dump())
        await asyncio.sleep(0)
        inflight.cancel()  # cancelled mid-write: the write itself still completes
        for e in node.addrman.entries()[:20]:
            node.addrman.good(e.service, now=node.clock())
        info = node.addrman.info()
        await node.stop()
        return info

    info = asyncio.run(run())

    async def reload() -> dict[str, dict[str, int]]:
        async with Node(_node_config(tmp_path)) as node:  # type: ignore[arg-type]
            return node.addrman.info()

    assert asyncio.run(reload()) == info
    assert not list((tmp_path / "regtest").glob("peerkeeper.sqlite.badbook-*"))


def test_datadir_is_locked_while_a_node_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from peerkeeper.daemon.node import Node
    from peerkeeper.io.store import DatadirLockedError

    async def run() -> None:
        async with Node(_node_config(tmp_path)):  # type: ignore[arg-type]
            with pytest.raises(DatadirLockedError, match="Cannot obtain a lock"):
                await Node(_node_config(tmp_path)).start()  # type: ignore[arg-type]
            capsys.readouterr()
            rc = cli_main(
                [
                    "export-peers-dat",
                    "--chain",
                    "regtest",
                    "--datadir",
                    str(tmp_path),
                    str(tmp_path / "o.dat"),
                ]
            )
            assert rc == 1 and "Cannot obtain a lock" in capsys.readouterr().err

    asyncio.run(run())
    assert (
        cli_main(
            [
                "export-peers-dat",
                "--chain",
                "regtest",
                "--datadir",
                str(tmp_path),
                str(tmp_path / "o.dat"),
            ]
        )
        == 0
    )
