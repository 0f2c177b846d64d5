"""The crawl database (``peerkeeper crawl --out crawl.sqlite``): records and the queue.

Two tables: ``nodes`` (one row per visited address: the fields of
:class:`~peerkeeper.bitcoin.crawl.NodeRecord`) and ``queue`` (addresses learned but not
yet visited), plus ``edges`` when asked (who gave whom). The crawler flushes what
changed about once a second in one transaction, so an interrupted crawl loses at most
that second and continues from the queue (:meth:`CrawlDB.load`). SQLite in WAL mode;
all work runs in a worker thread, one call at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from peerkeeper.bitcoin.crawl import RECORD_FIELDS, NodeRecord

__all__ = ["CrawlDB", "CrawlDBError"]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS nodes (
    {", ".join(f"{name} {'TEXT PRIMARY KEY' if name == 'address' else ''}" for name in RECORD_FIELDS)}
);
CREATE TABLE IF NOT EXISTS queue (address TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS edges (source TEXT NOT NULL, address TEXT NOT NULL);
"""


#: The tables of a crawl database (with SQLite's own autoindexes of their keys).
_TABLES = frozenset(
    {"nodes", "queue", "edges", "sqlite_autoindex_nodes_1", "sqlite_autoindex_queue_1"}
)


class CrawlDBError(Exception):
    """The file is not a crawl database SQLite can use (the message names the file)."""


class CrawlDB:
    """``CrawlDB(path)``; :meth:`open`, :meth:`load`, :meth:`flush`, :meth:`close`.

    :raises CrawlDBError: from :meth:`open`, when the file is not a usable database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    def open(self) -> None:
        """Open or create the database (synchronous: before the crawl starts).

        A database holding other tables than a crawl's is refused before anything is
        written to it (no table created, the journal mode unchanged).
        """
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise CrawlDBError(f"{self.path}: {e}") from None
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
            if tables and not tables <= _TABLES:
                raise CrawlDBError(f"{self.path}: not a crawl database (tables {sorted(tables)})")
            if "nodes" in tables:
                cols = tuple(row[1] for row in conn.execute("PRAGMA table_info(nodes)"))
                if cols != RECORD_FIELDS:
                    raise CrawlDBError(f"{self.path}: not a crawl database of this version")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise CrawlDBError(f"{self.path}: {e}") from None
        except CrawlDBError:
            conn.close()
            raise
        self._conn = conn

    def load(self) -> tuple[list[NodeRecord], list[str]]:
        """The records of an earlier run and the addresses still queued."""
        conn = self._need()
        records = [
            NodeRecord(**dict(zip(RECORD_FIELDS, row, strict=True)))
            for row in conn.execute(f"SELECT {', '.join(RECORD_FIELDS)} FROM nodes")
        ]
        for rec in records:
            rec.reachable = bool(rec.reachable)
            if rec.relay is not None:
                rec.relay = bool(rec.relay)
        queued = [row[0] for row in conn.execute("SELECT address FROM queue")]
        return records, queued

    def _need(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CrawlDBError(f"{self.path}: not open")
        return self._conn

    def _write(
        self,
        queued: list[str],
        records: list[NodeRecord],
        edges: list[tuple[str, str]],
    ) -> None:
        conn = self._need()
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT OR IGNORE INTO queue VALUES (?)", [(a,) for a in queued])
            marks = ", ".join("?" * len(RECORD_FIELDS))
            conn.executemany(
                f"INSERT OR REPLACE INTO nodes VALUES ({marks})",
                [tuple(getattr(r, f) for f in RECORD_FIELDS) for r in records],
            )
            conn.executemany("DELETE FROM queue WHERE address = ?", [(r.address,) for r in records])
            conn.executemany("INSERT INTO edges VALUES (?, ?)", edges)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def flush(
        self,
        queued: Iterable[str],
        records: Iterable[NodeRecord],
        edges: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Add ``queued`` addresses, store ``records`` (and take them off the queue) and
        ``edges``, in one transaction on a worker thread."""
        q, r, e = list(queued), list(records), list(edges)
        if not (q or r or e):
            return
        async with self._lock:
            await asyncio.to_thread(self._write, q, r, e)

    def close(self) -> None:
        """Close the database."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
