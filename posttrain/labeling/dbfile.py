"""Opening the labeling database file: WAL with `synchronous=FULL`, lock waits bounded, read-only opens.

Every statement goes through `_Connection.execute`, so a lock another process holds past
BUSY_SECONDS is a `Busy` error naming the file (the CLI prints it, the server answers 503) wherever
it happens, instead of sqlite3's "database is locked" after 30 s.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from posttrain.errors import UserError

# How long a statement waits for a lock another connection holds. A label commits in milliseconds,
# so twenty labelers queueing wait well under this; past it, someone holds the lock for good
# (issue 28: the 30 s of sqlite3's default turned a held lock into a 30 s stall, then a 500).
BUSY_SECONDS = 5


class Busy(UserError):
    """Another connection held the database's lock past BUSY_SECONDS (HTTP 503 with Retry-After)."""


class _Connection(sqlite3.Connection):
    """A connection whose 'database is locked' is a `Busy` naming the file and what to do."""

    path: Path

    def execute(self, sql: str, parameters=()) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as e:
            raise self._busy(e) from None

    def executescript(self, script: str) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.OperationalError as e:
            raise self._busy(e) from None

    def _busy(self, e: sqlite3.OperationalError) -> Exception:
        if e.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return e
        return Busy(
            f"{self.path}: another process holds its write lock (waited {BUSY_SECONDS} s); try again "
            "when it is done, or stop it (another `posttrain label` command, or a program with the "
            "database open in a transaction)"
        )


def connect(path: Path, readonly: bool) -> _Connection:
    """WAL, so reads never wait for a writer; `synchronous=FULL`, so a commit survives a power cut."""
    if readonly:
        return _connect_readonly(path)
    conn = sqlite3.connect(
        path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False, factory=_Connection
    )
    conn.path = path
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


# A WAL database is read through its -shm file; in a folder we may not write, with no -shm there,
# SQLite cannot make one and answers one of these.
_NO_SHM = {sqlite3.SQLITE_CANTOPEN, 1288, 1544}  # SQLITE_READONLY_CANTINIT, SQLITE_READONLY_DIRECTORY


def _connect_readonly(path: Path) -> _Connection:
    """`mode=ro`: the file is opened O_RDONLY and nothing is written, so a read-only file exports too.
    In a read-only folder without a -shm file, `immutable=1` reads the file alone, which is every
    committed label only when no -wal file holds some; one that does is an error, not a partial export."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(
        uri,
        uri=True,
        timeout=BUSY_SECONDS,
        isolation_level=None,
        check_same_thread=False,
        factory=_Connection,
    )
    conn.path = path
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        if e.sqlite_errorcode not in _NO_SHM:
            raise
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise UserError(
                f"{path}: its write-ahead log {wal.name} holds labels, and SQLite cannot read it in "
                f"this read-only folder without {path.name}-shm; copy {path.name} and {wal.name} "
                "together to a folder you may write to and export from there"
            ) from None
        conn = sqlite3.connect(
            f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.path = path
    conn.row_factory = sqlite3.Row
    return conn
