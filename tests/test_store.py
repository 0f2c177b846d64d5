"""The SQLite store: writer thread, transactions, corrupt files moved aside."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from peerkeeper.io.store import DB_FILENAME, Store, StoreError


def test_open_creates_schema_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "d")
    store.open()
    try:
        mode = store.call_sync(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        tables = store.call_sync(
            lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        )
        assert {"meta", "addresses", "new_refs", "bans", "anchors", "peer_meta"} <= tables
        assert store.call_sync(lambda c: Store.get_meta(c, "schema_version")) == 1
    finally:
        store.close()


def test_all_work_runs_on_one_thread_off_the_loop(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    seen: set[int] = set()

    async def main() -> None:
        loop_thread = threading.get_ident()
        for _ in range(5):
            await store.call(lambda c: seen.add(threading.get_ident()))
        assert loop_thread not in seen

    asyncio.run(main())
    store.call_sync(lambda c: seen.add(threading.get_ident()))
    store.close()
    assert len(seen) == 1


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()

    def body(c: sqlite3.Connection) -> None:
        Store.set_meta(c, "x", 1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.call_sync(lambda c: Store.transaction(c, body))
    assert store.call_sync(lambda c: Store.get_meta(c, "x")) is None
    store.call_sync(lambda c: Store.transaction(c, lambda c2: Store.set_meta(c2, "x", 2)))
    store.close()
    reopened = Store(tmp_path)
    reopened.open()
    assert reopened.call_sync(lambda c: Store.get_meta(c, "x")) == 2
    reopened.close()


@pytest.mark.parametrize(
    "garbage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + bytes(200)]
)
def test_corrupt_file_moved_aside_and_fresh_started(tmp_path: Path, garbage: bytes) -> None:
    (tmp_path / DB_FILENAME).write_bytes(garbage)
    store = Store(tmp_path)
    store.open()
    try:
        assert store.moved_aside is not None and store.moved_aside.read_bytes() == garbage
        assert store.call_sync(lambda c: Store.get_meta(c, "schema_version")) == 1
    finally:
        store.close()


def test_damaged_pages_detected(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    store.call_sync(
        lambda c: Store.transaction(
            c,
            lambda c2: Store.replace_table(
                c2, "peer_meta", [(f"k{i}", "v" * 200) for i in range(2000)], 2
            ),
        )
    )
    store.close()
    raw = bytearray((tmp_path / DB_FILENAME).read_bytes())
    for i in range(8192, min(len(raw), 60000)):
        raw[i] ^= 0x5A
    (tmp_path / DB_FILENAME).write_bytes(bytes(raw))
    again = Store(tmp_path)
    again.open()
    try:
        assert again.moved_aside is not None
        assert (
            again.call_sync(lambda c: c.execute("SELECT COUNT(*) FROM peer_meta").fetchone()[0])
            == 0
        )
    finally:
        again.close()


def test_calls_after_close_fail_clearly(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.open()
    store.close()
    with pytest.raises(StoreError, match="not open"):
        store.call_sync(lambda c: None)


def test_anchors_are_read_once_and_peer_meta(tmp_path: Path) -> None:
    from peerkeeper.io.store import get_peer_meta, save_anchors, set_peer_meta, take_anchors
    from peerkeeper.net.netaddr import Service
    from peerkeeper.wire.messages import AddrEntry

    anchors = [
        AddrEntry(1_800_000_000, 1033, Service.parse("18.0.0.1:8333", 0)),
        AddrEntry(
            1_800_000_001,
            9,
            Service.parse("pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion:8333", 0),
        ),
    ]
    store = Store(tmp_path)
    store.open()
    try:
        store.call_sync(lambda c: save_anchors(c, anchors))
        assert store.call_sync(take_anchors) == anchors
        assert (
            store.call_sync(take_anchors) == []
        )  # forgotten after the first read, like anchors.dat
        store.call_sync(lambda c: set_peer_meta(c, "18.0.0.1:8333", '{"subver": "/x/"}'))
        assert store.call_sync(lambda c: get_peer_meta(c, "18.0.0.1:8333")) == '{"subver": "/x/"}'
        assert store.call_sync(lambda c: get_peer_meta(c, "nope")) is None
    finally:
        store.close()
