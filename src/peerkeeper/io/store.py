"""SQLite persistence: ``<datadir>/peerkeeper.sqlite``, WAL, one writer thread.

Everything the node must remember across restarts — the address book (every
entry with its table, bucket, position, source, times, attempts, services), the
AddrMan key, bans, anchors and per-peer metadata — lives in one SQLite file,
written in transactions, so a kill at any moment loses nothing that was
committed (DESIGN.md "Persistence"; seed 004: one network loop, one database
thread).

All database work runs on a single thread owned by :class:`Store`; the event loop
hands it functions with :meth:`Store.call` and awaits the result, so the loop never
blocks on the disk. Callers that are not on a loop (the CLI) use
:meth:`Store.call_sync`.

A file that SQLite cannot read as a database is moved aside (renamed to
``peerkeeper.sqlite.corrupt-<unix time>``, never deleted) and a fresh database is
started, with a logged warning.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import logging
import os
import random
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from peerkeeper.bitcoin.addrman import AddrInfo, AddrMan, AddrManFormatError
from peerkeeper.net.netaddr import NetAddr, Service
from peerkeeper.wire.messages import AddrEntry

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "save_bans",
    "save_all",
    "load_bans",
    "AddrBookSnapshot",
    "snapshot_addrman",
    "save_addrbook",
    "load_addrbook",
    "addrman_from_snapshot",
    "DatadirLock",
    "DatadirLockedError",
    "lock_datadir",
    "save_anchors",
    "take_anchors",
    "peek_anchors",
    "set_peer_meta",
    "get_peer_meta",
    "save_native_pool",
    "load_native_pool",
]

log = logging.getLogger("peerkeeper.store")

#: The database file inside the chain's data directory.
DB_FILENAME = "peerkeeper.sqlite"
#: Bumped when the schema changes incompatibly.
SCHEMA_VERSION = 1

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
-- One row per AddrMan entry (Core's AddrInfo). `key` is the service key
-- (BIP155 network id, address bytes, port). Tried entries carry their bucket and
-- position; new-table placements are in new_refs (an entry may sit in up to 8).
CREATE TABLE IF NOT EXISTS addresses (
    key BLOB PRIMARY KEY,
    net INTEGER NOT NULL,
    addr BLOB NOT NULL,
    port INTEGER NOT NULL,
    services INTEGER NOT NULL,
    time INTEGER NOT NULL,
    source_net INTEGER NOT NULL,
    source_addr BLOB NOT NULL,
    last_success INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    tried INTEGER NOT NULL,
    tried_bucket INTEGER,
    tried_pos INTEGER
);
CREATE TABLE IF NOT EXISTS new_refs (
    bucket INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (bucket, pos)
);
CREATE TABLE IF NOT EXISTS bans (
    subnet TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS anchors (
    idx INTEGER PRIMARY KEY,
    net INTEGER NOT NULL,
    addr BLOB NOT NULL,
    port INTEGER NOT NULL,
    services INTEGER NOT NULL,
    time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peer_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The native protocol's pool (peerkeeper.native.pool): one row per known point and per
-- known peer id; the columns people query, the rest of the record as JSON.
CREATE TABLE IF NOT EXISTS native_points (
    point TEXT PRIMARY KEY,
    trusted INTEGER NOT NULL,
    last_seen REAL,
    last_failure REAL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS native_peers (
    peer_id TEXT PRIMARY KEY,
    trusted INTEGER NOT NULL,
    score REAL NOT NULL,
    last_seen REAL,
    record TEXT NOT NULL
);
"""


class StoreError(Exception):
    """The database could not be opened or written; the message says why."""


class _Corrupt(sqlite3.DatabaseError):
    """Our own verdict that the file is not a usable peerkeeper database."""


#: SQLite's result codes for a damaged file / a file that is not a database.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def _is_corruption(e: sqlite3.DatabaseError) -> bool:
    """True when the file itself is bad (move it aside), not a passing condition (raise)."""
    if isinstance(e, _Corrupt):
        return True
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return not isinstance(e, sqlite3.OperationalError)


class Store:
    """The SQLite store with its single writer thread.

    ``Store(datadir)``; :meth:`open` creates or opens ``datadir/peerkeeper.sqlite``
    (moving a corrupt file aside); :meth:`close` stops the thread. ``Store(None)`` is
    an in-memory database (a library node without a data directory): the same
    tables, gone when it closes. Every database
    access goes through :meth:`call` / :meth:`call_sync`, which run a function
    ``fn(conn: sqlite3.Connection) -> T`` on the writer thread.
    """

    def __init__(self, datadir: Path | None) -> None:
        self.datadir = datadir
        # SQLite takes the name ":memory:" (as a path too) for a private in-memory database.
        self.path = Path(":memory:") if datadir is None else datadir / DB_FILENAME
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._thread_id: int | None = None
        self.moved_aside: Path | None = None
        #: What the database's address tables hold (the diff base); only the writer
        #: thread reads or replaces it, after a commit, so overlapping dumps stay exact.
        self.book_base: AddrBookSnapshot | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the database on the writer thread. Raises :class:`StoreError`."""
        if self._executor is not None:
            return
        if self.datadir is not None:
            self.datadir.mkdir(parents=True, exist_ok=True)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="peerkeeper-db"
        )
        self._executor.submit(self._open_on_thread).result()

    def _open_on_thread(self) -> None:
        self._thread_id = threading.get_ident()
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as e:
            if not _is_corruption(e):
                # Locked, I/O error, disk full, no permission: not the file's fault.
                raise StoreError(f"cannot open {self.path}: {e}") from e
            self.moved_aside = self._move_aside(str(e))
            try:
                self._conn = self._connect()
            except sqlite3.Error as e2:
                raise StoreError(f"cannot create {self.path}: {e2}") from e2

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise _Corrupt(f"integrity check failed: {row[0] if row else 'no answer'}")
            conn.executescript(_SCHEMA)
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif int(version[0]) != SCHEMA_VERSION:
                raise _Corrupt(f"schema version {version[0]}, expected {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, reason: str) -> Path:
        target = self.path.with_name(f"{DB_FILENAME}.corrupt-{int(time.time())}")
        n = 0
        while target.exists():
            n += 1
            target = self.path.with_name(f"{DB_FILENAME}.corrupt-{int(time.time())}-{n}")
        self.path.rename(target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(DB_FILENAME + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
        log.warning(
            "%s is not a usable database (%s): moved to %s, starting a fresh one",
            self.path,
            reason,
            target,
        )
        return target

    def close(self) -> None:
        """Close the database and stop the writer thread (waits for queued work)."""
        if self._executor is None:
            return
        self._executor.submit(self._close_on_thread).result()
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close_on_thread(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    # -- running work on the writer thread ---------------------------------------------

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise StoreError("the store is not open")
        return fn(self._conn)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread without blocking the event loop."""
        if self._executor is None:
            raise StoreError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn)

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the writer thread and wait (for code not on an event loop)."""
        if self._executor is None:
            raise StoreError("the store is not open")
        if threading.get_ident() == self._thread_id:
            return self._run(fn)
        return self._executor.submit(self._run, fn).result()

    # -- the node's dumps (writer thread) -------------------------------------------------

    def read_book(self, conn: sqlite3.Connection) -> AddrBookSnapshot | None:
        """Load the stored address book and make it the diff base."""
        self.book_base = load_addrbook(conn)
        return self.book_base

    def write_dump(
        self,
        conn: sqlite3.Connection,
        addrbook: AddrBookSnapshot | None,
        bans: list[tuple[str, int, int]] | None,
    ) -> int:
        """One dump in one transaction, diffed against :attr:`book_base` (updated on commit)."""
        written = save_all(
            conn, addrbook=None if addrbook is None else (addrbook, self.book_base), bans=bans
        )
        if addrbook is not None:
            self.book_base = addrbook
        return written

    def backup_copy(self, conn: sqlite3.Connection, suffix: str) -> Path:
        """Copy the whole database next to it (``peerkeeper.sqlite.<suffix>-<time>``) and return the path."""
        target = self.path.with_name(f"{DB_FILENAME}.{suffix}-{int(time.time())}")
        dest = sqlite3.connect(target)
        try:
            conn.backup(dest)
        finally:
            dest.close()
        return target

    # -- transactions -----------------------------------------------------------------

    @staticmethod
    def transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` inside BEGIN IMMEDIATE ... COMMIT; roll back on any error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
        except BaseException:
            if conn.in_transaction:  # SQLite may already have rolled back (disk full, ...)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- small typed helpers (each runs on the writer thread) --------------------------

    @staticmethod
    def get_meta(conn: sqlite3.Connection, key: str) -> Any:
        """The ``meta`` value for ``key`` or None."""
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
        """Insert or replace one ``meta`` value."""
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @staticmethod
    def replace_table(
        conn: sqlite3.Connection, table: str, rows: Iterable[Sequence[Any]], width: int
    ) -> None:
        """Replace every row of ``table`` (one of the schema's tables) with ``rows``."""
        if table not in {"bans", "anchors", "peer_meta", "new_refs", "addresses"}:
            raise ValueError(f"unknown table {table}")
        conn.execute(f"DELETE FROM {table}")
        marks = ",".join("?" * width)
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


# -- bans ----------------------------------------------------------------------------------


def _clamp_i64(v: int) -> int:
    return max(-_I64, min(v, _I64 - 1))


def save_bans(conn: sqlite3.Connection, bans: Iterable[tuple[str, int, int]]) -> None:
    """Replace the stored bans with ``(subnet string, created, until)`` rows, in one transaction."""
    save_all(conn, bans=bans)


def save_all(
    conn: sqlite3.Connection,
    *,
    addrbook: tuple[AddrBookSnapshot, AddrBookSnapshot | None] | None = None,
    bans: Iterable[tuple[str, int, int]] | None = None,
) -> int:
    """One dump: the address book difference ``(new, old)`` and/or the bans, in one transaction.

    Returns the number of address-book rows written or deleted.
    """

    def body(c: sqlite3.Connection) -> int:
        written = 0
        if addrbook is not None:
            written = _write_addrbook(c, *addrbook)
        if bans is not None:
            rows = [
                (subnet, _clamp_i64(created), _clamp_i64(until)) for subnet, created, until in bans
            ]
            Store.replace_table(c, "bans", rows, 3)
        return written

    return Store.transaction(conn, body)


def load_bans(conn: sqlite3.Connection) -> dict[str, Any]:
    """The stored bans as a banlist.json-shaped object (for ``BanMan.load_json``)."""
    rows = conn.execute("SELECT subnet, created, until FROM bans ORDER BY subnet").fetchall()
    return {
        "banned_nets": [
            {
                "version": 1,
                "ban_created": int(created),
                "banned_until": int(until),
                "address": subnet,
            }
            for subnet, created, until in rows
        ]
    }


# -- the address book ----------------------------------------------------------------------
#
# One row per AddrMan entry; new-table placements in new_refs. A dump compares a
# snapshot of the AddrMan (taken on the event loop) with the snapshot of the last
# dump and writes only the difference, in one transaction; loading rebuilds the
# AddrMan through Core's own loader (AddrMan.from_records).

AddrRow = tuple[int, bytes, int, int, int, int, bytes, int, int, int, int | None, int | None]


def service_key(service: Service) -> bytes:
    """The primary key of an address row: BIP155 network id, address bytes, big-endian port."""
    net_id, raw = service.addr.to_bip155()
    return bytes((net_id,)) + raw + service.port.to_bytes(2, "big")


@dataclass(slots=True)
class AddrBookSnapshot:
    """What the address book looked like at one moment: rows by key, new-table refs by slot."""

    key: bytes = b""
    rows: dict[bytes, AddrRow] = field(default_factory=dict)
    asmap_version: bytes = bytes(32)
    refs: dict[tuple[int, int], bytes] = field(default_factory=dict)


def snapshot_addrman(addrman: AddrMan) -> AddrBookSnapshot:
    """Copy the AddrMan's persistent state (Core's peers.dat fields plus positions). Runs on the loop."""
    snap = AddrBookSnapshot(addrman.key, asmap_version=addrman.netgroupman.get_asmap_version())
    rows, refs = snap.rows, snap.refs
    keys: dict[int, bytes] = {}  # id(info) -> key, for entries in several new buckets

    def row(info: AddrInfo, bucket: int | None, pos: int | None) -> bytes:
        service = info.service
        net_id, raw = service.addr.to_bip155()
        k = bytes((net_id,)) + raw + service.port.to_bytes(2, "big")
        src_id, src_raw = info.source.to_bip155()
        rows[k] = (
            net_id, raw, service.port, info.services, info.time, src_id, src_raw,
            info.last_success, info.attempts, 1 if bucket is not None else 0, bucket, pos,
        )  # fmt: skip
        return k

    for bucket, pos, info in addrman.occupied_slots(False):
        k = keys.get(id(info))
        if k is None:
            k = keys[id(info)] = row(info, None, None)
        refs[(bucket, pos)] = k
    for bucket, pos, info in addrman.occupied_slots(True):
        row(info, bucket, pos)
    return snap


_I64 = 1 << 63


def _to_i64(v: int) -> int:
    """A uint64 as SQLite's signed INTEGER (two's complement)."""
    return v - (1 << 64) if v >= _I64 else v


def _from_i64(v: int) -> int:
    return v + (1 << 64) if v < 0 else v


def _signed_row(r: AddrRow) -> AddrRow:
    """Services is a uint64 (all 64 bits may be set); SQLite holds signed 64-bit values."""
    return (*r[:3], _to_i64(r[3]), *r[4:])


def save_addrbook(
    conn: sqlite3.Connection, new: AddrBookSnapshot, old: AddrBookSnapshot | None
) -> int:
    """Write the difference between ``old`` (what the database holds) and ``new``; one transaction.

    ``old=None`` rewrites everything. Returns the number of rows written or deleted.
    """
    return save_all(conn, addrbook=(new, old))


def _write_addrbook(
    c: sqlite3.Connection, new: AddrBookSnapshot, old: AddrBookSnapshot | None
) -> int:
    """The body of :func:`save_addrbook`, inside the caller's transaction."""
    if old is None or old.key != new.key:
        c.execute("DELETE FROM addresses")
        c.execute("DELETE FROM new_refs")
        Store.set_meta(c, "addrman_key", new.key)
        base = AddrBookSnapshot(new.key)
    if old is None or old.asmap_version != new.asmap_version:
        Store.set_meta(c, "asmap_version", new.asmap_version)
    else:
        base = old
    upserts = [(k, *_signed_row(r)) for k, r in new.rows.items() if base.rows.get(k) != r]
    deletes = [(k,) for k in base.rows.keys() - new.rows.keys()]
    ref_upserts = [(b, p, k) for (b, p), k in new.refs.items() if base.refs.get((b, p)) != k]
    ref_deletes = list(base.refs.keys() - new.refs.keys())
    c.executemany("DELETE FROM addresses WHERE key=?", deletes)
    c.executemany(
        "INSERT OR REPLACE INTO addresses (key, net, addr, port, services, time, source_net, source_addr,"
        " last_success, attempts, tried, tried_bucket, tried_pos) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        upserts,
    )
    c.executemany("DELETE FROM new_refs WHERE bucket=? AND pos=?", ref_deletes)
    c.executemany("INSERT OR REPLACE INTO new_refs VALUES (?,?,?)", ref_upserts)
    return len(upserts) + len(deletes) + len(ref_upserts) + len(ref_deletes)


def load_addrbook(conn: sqlite3.Connection) -> AddrBookSnapshot | None:
    """Read the stored address book (None when none was ever saved)."""
    key = Store.get_meta(conn, "addrman_key")
    if key is None:
        return None
    asmap_version = Store.get_meta(conn, "asmap_version")
    snap = AddrBookSnapshot(bytes(key), asmap_version=bytes(asmap_version or bytes(32)))
    for row in conn.execute(
        "SELECT key, net, addr, port, services, time, source_net, source_addr, last_success, attempts,"
        " tried, tried_bucket, tried_pos FROM addresses"
    ):
        (
            k,
            net,
            addr,
            port,
            services,
            t,
            src_net,
            src_addr,
            last_success,
            attempts,
            tried,
            tb,
            tp,
        ) = row
        snap.rows[bytes(k)] = (
            net, bytes(addr), port, _from_i64(services), t, src_net, bytes(src_addr), last_success,
            attempts, tried, tb, tp,
        )  # fmt: skip
    for bucket, pos, k in conn.execute("SELECT bucket, pos, key FROM new_refs"):
        snap.refs[(bucket, pos)] = bytes(k)
    return snap


def addrman_from_snapshot(
    snap: AddrBookSnapshot,
    rng: random.Random,
    *,
    asmap: bytes | None = None,
) -> AddrMan:
    """Rebuild an AddrMan from a stored snapshot (Core's loader places every entry).

    The asmap version the rows were bucketed with is passed on, so a changed
    ``-asmap`` re-buckets them as Core does. Raises
    :class:`~peerkeeper.bitcoin.addrman.AddrManFormatError` for any row the loader cannot use.
    """
    try:
        new: list[AddrInfo] = []
        tried: list[AddrInfo] = []
        index: dict[bytes, int] = {}
        for k, r in snap.rows.items():
            net, raw, port, services, t, src_net, src_raw, last_success, attempts, is_tried = r[:10]
            service = Service(_netaddr(net, raw), port)
            info = AddrInfo(
                t, services, service, _netaddr(src_net, src_raw), last_success, 0, attempts
            )
            if is_tried:
                tried.append(info)
            else:
                index[k] = len(new)
                new.append(info)
        buckets: dict[int, list[int]] = {}
        for (bucket, _pos), k in sorted(snap.refs.items()):
            i = index.get(k)
            if i is None:
                raise AddrManFormatError(
                    f"new-table reference to an unknown or tried entry {k.hex()}"
                )
            buckets.setdefault(bucket, []).append(i)
        return AddrMan.from_records(
            snap.key,
            new,
            tried,
            buckets,
            rng,
            asmap=asmap,
            stored_asmap_version=snap.asmap_version,
        )
    except AddrManFormatError:
        raise
    except (ValueError, TypeError, OverflowError, struct.error) as e:
        raise AddrManFormatError(f"unusable stored row: {e}") from None


def _netaddr(net_id: int, raw: bytes) -> NetAddr:
    addr = NetAddr.from_bip155(net_id, raw)
    if addr is None:
        raise AddrManFormatError(f"stored address with unusable network id {net_id}")
    return addr


# -- anchors and per-peer metadata ------------------------------------------------------------


def save_anchors(conn: sqlite3.Connection, entries: Iterable[AddrEntry]) -> None:
    """Replace the stored anchors (Core's anchors.dat content: block-relay-only peers at shutdown)."""
    rows = []
    for i, (t, services, service) in enumerate(entries):
        net_id, raw = service.addr.to_bip155()
        rows.append((i, net_id, raw, service.port, services, t))
    Store.transaction(conn, lambda c: Store.replace_table(c, "anchors", rows, 6))


def peek_anchors(conn: sqlite3.Connection) -> list[AddrEntry]:
    """The stored anchors, in order, left in place (for ``export-anchors-dat``)."""
    out = []
    for _i, net_id, raw, port, services, t in conn.execute("SELECT * FROM anchors ORDER BY idx"):
        addr = NetAddr.from_bip155(net_id, bytes(raw))
        if addr is not None:
            out.append(AddrEntry(t, services, Service(addr, port)))
    return out


def take_anchors(conn: sqlite3.Connection) -> list[AddrEntry]:
    """Read and forget the stored anchors, in one transaction (Core deletes anchors.dat on read)."""

    def body(c: sqlite3.Connection) -> list[AddrEntry]:
        out = peek_anchors(c)
        c.execute("DELETE FROM anchors")
        return out

    return Store.transaction(conn, body)


def set_peer_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Remember one piece of per-peer metadata (e.g. keyed by address) as text."""
    conn.execute("INSERT OR REPLACE INTO peer_meta VALUES (?, ?)", (key, value))


def get_peer_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """The stored metadata for ``key``, or None."""
    row = conn.execute("SELECT value FROM peer_meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


# -- the data directory lock ------------------------------------------------------------------


class DatadirLockedError(StoreError):
    """Another process holds the data directory (Core: "Cannot obtain a lock on directory")."""


class DatadirLock:
    """An exclusive ``flock`` on ``<datadir>/.lock`` held while the object is open.

    Core takes the same lock (src/util/fs_helpers.cpp ``LockDirectory``) so that two
    processes never write one data directory. :meth:`close` releases it.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def close(self) -> None:
        """Release the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_datadir(datadir: Path) -> DatadirLock:
    """Take the data directory's lock or raise :class:`DatadirLockedError`."""
    datadir.mkdir(parents=True, exist_ok=True)
    fd = os.open(datadir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DatadirLockedError(
            f"Cannot obtain a lock on directory {datadir}: peerkeeper is probably already running."
        ) from None
    return DatadirLock(fd)


def save_native_pool(
    conn: sqlite3.Connection, points: Sequence[dict[str, Any]], peers: Sequence[dict[str, Any]]
) -> None:
    """Replace the native pool's tables with ``points`` / ``peers`` in one transaction.

    The records are :meth:`peerkeeper.native.pool.PeerPool.points_document` and
    :meth:`~peerkeeper.native.pool.PeerPool.peers_document` entries.
    """

    def body(c: sqlite3.Connection) -> None:
        c.execute("DELETE FROM native_points")
        c.execute("DELETE FROM native_peers")
        c.executemany(
            "INSERT OR REPLACE INTO native_points VALUES (?, ?, ?, ?, ?)",
            [
                (
                    f"{p['point'][0]}|{p['point'][1]}",
                    int(bool(p.get("trusted"))),
                    p.get("last_seen"),
                    p.get("last_failed_connection"),
                    json.dumps(p, sort_keys=True),
                )
                for p in points
            ],
        )
        c.executemany(
            "INSERT OR REPLACE INTO native_peers VALUES (?, ?, ?, ?, ?)",
            [
                (
                    str(p["peer_id"]),
                    int(bool(p.get("trusted"))),
                    float(p.get("peer_metadata", {}).get("score", 0.0)),
                    _peer_last_seen(p),
                    json.dumps(p, sort_keys=True),
                )
                for p in peers
            ],
        )

    Store.transaction(conn, body)


def _peer_last_seen(record: dict[str, Any]) -> float | None:
    times = [
        float(record[k][1])
        for k in ("last_established_connection", "last_rejected_connection", "last_disconnection")
        if k in record
    ]
    return max(times) if times else None


def load_native_pool(
    conn: sqlite3.Connection,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The saved ``(points, peers)`` records, or ``None`` when nothing was ever saved.

    A row whose record is not valid JSON is skipped with a warning (the rest loads).
    """
    out: list[list[dict[str, Any]]] = [[], []]
    for n, table in enumerate(("native_points", "native_peers")):
        for (text,) in conn.execute(f"SELECT record FROM {table}"):  # noqa: S608 - fixed names
            try:
                record = json.loads(text)
            except ValueError:
                log.warning("skipping a corrupt %s row", table)
                continue
            if isinstance(record, dict):
                out[n].append(record)
    if not out[0] and not out[1]:
        return None
    return out[0], out[1]
