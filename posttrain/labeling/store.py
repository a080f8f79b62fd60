"""The labeling database: one SQLite file in WAL mode holding labelers, items and labels.

    store = Store("labels.sqlite")          # creates the schema on first use
    token = store.add_labeler("ana")        # printed once; only its sha256 is kept
    store.add_items([...])                  # from posttrain.labeling.intake
    store.save_label(labeler, item_id, submission)   # returns only after COMMIT

Durability: every write is one transaction committed before the call returns, with
`synchronous=FULL`, so a submission the server has acknowledged survives the process being
killed (and the machine losing power) at any moment after. WAL lets the admin view read while
labelers write. Each thread gets its own connection (FastAPI runs handlers on a thread pool).

Locks (posttrain/labeling/dbfile.py): a writer waits at most BUSY_SECONDS for another; past that,
`Busy` (a UserError naming the file; HTTP 503) rather than a long stall. `Store(path, readonly=True)`
opens the file with `mode=ro` and never writes, so a read-only copy of the database still exports.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from posttrain.errors import UserError
from posttrain.labeling.dbfile import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS labelers (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    token_sha256 TEXT UNIQUE NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    prompt TEXT NOT NULL,           -- JSON: chat messages ending with a user turn
    completions TEXT NOT NULL,      -- JSON: [{"text", "source", ...}]
    meta TEXT NOT NULL,             -- JSON object
    origin TEXT NOT NULL,           -- the file the item came from
    gold TEXT,                      -- JSON ranking when the correct order is known (a gold item)
    added TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS served (
    labeler_id INTEGER NOT NULL REFERENCES labelers(id),
    item_id TEXT NOT NULL REFERENCES items(id),
    served TEXT NOT NULL,
    PRIMARY KEY (labeler_id, item_id));
"""
LABELS = """
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    submission TEXT NOT NULL,         -- the client's id for this submission: a retry is not a second label
    item_id TEXT NOT NULL REFERENCES items(id),
    labeler_id INTEGER NOT NULL REFERENCES labelers(id),
    kind TEXT NOT NULL CHECK (kind IN ('ranked', 'skipped')),
    body TEXT NOT NULL,               -- JSON: ranking, likert, flags, ... or the skip reason
    seconds REAL,                     -- from serving the item to the submission
    submitted TEXT NOT NULL,
    UNIQUE (item_id, labeler_id),
    UNIQUE (labeler_id, submission)); -- each labeler's own ids: one never collides with another's
"""
SCHEMA += LABELS
# Databases made before submission ids were scoped per labeler hold them unique across labelers.
GLOBAL_SUBMISSION = "submission TEXT UNIQUE NOT NULL"

# A served item no one submitted is held for its labeler this long before others may get it.
HOLD_SECONDS = 3600
TABLES = ("labelers", "items", "served", "labels")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Labeler:
    id: int
    name: str
    admin: bool


class Store:
    """`readonly`: open an existing database with `mode=ro` (export); nothing is created, migrated or
    written."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if self.path.is_dir():
            raise UserError(f"{self.path} is a directory; --db takes a file such as labels.sqlite")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = not self.path.exists()
        self._local = threading.local()
        try:
            if readonly:
                self._check_tables()
            else:
                self.db.executescript(SCHEMA)
                self._migrate_submission_ids()
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path}: not a labeling database ({e}); choose another --db") from None

    def _check_tables(self) -> None:
        names = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in TABLES if t not in names]
        if missing:
            raise sqlite3.DatabaseError(f"no table {', '.join(missing)}")

    def _migrate_submission_ids(self) -> None:
        """Rebuild an older database's labels table with submission ids unique per labeler (SQLite cannot
        drop a column's UNIQUE in place)."""
        sql = self.db.execute("SELECT sql FROM sqlite_master WHERE name = 'labels'").fetchone()[0]
        if GLOBAL_SUBMISSION not in sql:
            return
        with self.transaction() as db:
            db.execute("ALTER TABLE labels RENAME TO labels_unscoped")
            db.execute(LABELS)
            db.execute("INSERT INTO labels SELECT * FROM labels_unscoped")
            db.execute("DROP TABLE labels_unscoped")

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, self.readonly)
            self._local.conn = conn
        return conn

    def write(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement in its own transaction, committed before this returns."""
        with self.transaction() as db:
            return db.execute(sql, params)

    def transaction(self):
        return _Transaction(self.db)

    # --- labelers ------------------------------------------------------------------
    def add_labeler(self, name: str, admin: bool = False) -> str:
        """Create a labeler; returns their token (only its hash is stored)."""
        name = name.strip()
        if not name or len(name) > 64 or any(c in name for c in "/:\n\t"):
            raise UserError(f"labeler name {name!r} must be 1-64 characters without '/', ':' or line breaks")
        token = secrets.token_urlsafe(24)
        try:
            self.write(
                "INSERT INTO labelers (name, token_sha256, admin, created) VALUES (?, ?, ?, ?)",
                (name, token_hash(token), int(admin), now()),
            )
        except sqlite3.IntegrityError:
            raise UserError(
                f"a labeler named {name!r} already exists in {self.path}; choose another --name"
            ) from None
        return token

    def labeler_for(self, token: str) -> Labeler | None:
        row = self.db.execute(
            "SELECT id, name, admin FROM labelers WHERE token_sha256 = ?", (token_hash(token),)
        ).fetchone()
        return Labeler(row["id"], row["name"], bool(row["admin"])) if row else None

    def labelers(self) -> list[Labeler]:
        rows = self.db.execute("SELECT id, name, admin FROM labelers ORDER BY id").fetchall()
        return [Labeler(r["id"], r["name"], bool(r["admin"])) for r in rows]

    # --- items ---------------------------------------------------------------------
    def add_items(self, items: list[dict], origin: str) -> dict:
        """Insert items ({"id", "prompt", "completions", "meta", "gold"?}); an item already stored is
        skipped."""
        counts = {"added": 0, "already_there": 0}
        with self.transaction() as db:
            for item in items:
                item_id = self._free_id(db, item)
                if item_id is None:
                    counts["already_there"] += 1
                    continue
                db.execute(
                    "INSERT INTO items (id, prompt, completions, meta, origin, gold, added) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        item_id,
                        _json(item["prompt"]),
                        _json(item["completions"]),
                        _json(item.get("meta") or {}),
                        origin,
                        _json(item["gold"]) if item.get("gold") else None,
                        now(),
                    ),
                )
                counts["added"] += 1
        return counts

    @staticmethod
    def _free_id(db: sqlite3.Connection, item: dict) -> str | None:
        """The item's id; None when the same item is stored; a suffixed id when another item has that id
        (a later `posttrain sample` round reuses prompt ids with new completions)."""
        content = _json([item["prompt"], item["completions"]])
        suffix = hashlib.sha256(content.encode()).hexdigest()[:8]
        for candidate in (item["id"], f"{item['id']}#{suffix}"):
            row = db.execute("SELECT prompt, completions FROM items WHERE id = ?", (candidate,)).fetchone()
            if row is None:
                return candidate
            if _json([json.loads(row["prompt"]), json.loads(row["completions"])]) == content:
                return None
        raise UserError(f"item id {item['id']!r} is taken by two different items already; rename the record")

    def item(self, item_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return item_from_row(row) if row else None

    def items(self) -> list[dict]:
        return [item_from_row(r) for r in self.db.execute("SELECT * FROM items ORDER BY seq")]

    def serve(self, labeler: Labeler, item_id: str, db: sqlite3.Connection | None = None) -> None:
        """Remember when the item was first shown to the labeler (for the time per item and the hold): inside
        the transaction `db` that chose it (posttrain/labeling/queue.py), or in a transaction of its own."""
        sql = "INSERT OR IGNORE INTO served (labeler_id, item_id, served) VALUES (?, ?, ?)"
        if db is None:
            self.write(sql, (labeler.id, item_id, now()))
        else:
            db.execute(sql, (labeler.id, item_id, now()))

    def was_served(self, labeler: Labeler, item_id: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM served WHERE labeler_id = ? AND item_id = ?", (labeler.id, item_id)
            ).fetchone()
            is not None
        )

    # --- labels ----------------------------------------------------------------------
    def save_label(
        self,
        labeler: Labeler,
        item_id: str,
        submission: str,
        kind: str,
        body: dict,
        labelers_per_item: int | None = None,
    ) -> dict:
        """Store a ranking or a skip; committed when this returns. A `submission` id the labeler used
        before returns the label already stored (a client retrying after a lost answer does not label twice).
        With `labelers_per_item`, a ranking of a regular item that already has that many is refused."""
        with self.transaction() as db:
            done = db.execute(
                "SELECT * FROM labels WHERE labeler_id = ? AND submission = ?", (labeler.id, submission)
            ).fetchone()
            if done is not None:
                if done["item_id"] != item_id:
                    raise Conflict(
                        f"submission id {submission!r} was already used for another label (yours, of "
                        f"item {done['item_id']!r}); send a fresh id per submission"
                    )
                return _label(done, labeler.name)
            if db.execute(
                "SELECT 1 FROM labels WHERE item_id = ? AND labeler_id = ?", (item_id, labeler.id)
            ).fetchone():
                raise Conflict(f"you have already labeled item {item_id!r}")
            if kind == "ranked" and labelers_per_item is not None:
                _check_room(db, item_id, labelers_per_item)
            served = db.execute(
                "SELECT served FROM served WHERE labeler_id = ? AND item_id = ?", (labeler.id, item_id)
            ).fetchone()
            stamp = now()
            seconds = _seconds(served["served"], stamp) if served else None
            cur = db.execute(
                "INSERT INTO labels (submission, item_id, labeler_id, kind, body, seconds, submitted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (submission, item_id, labeler.id, kind, _json(body), seconds, stamp),
            )
            row = db.execute("SELECT * FROM labels WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _label(row, labeler.name)

    def labels(self, labeler: Labeler | None = None, kind: str | None = None) -> list[dict]:
        """Labels, oldest first: one labeler's, or everyone's (admin view, export)."""
        sql = (
            "SELECT labels.*, labelers.name AS labeler_name FROM labels "
            "JOIN labelers ON labelers.id = labels.labeler_id WHERE 1 = 1"
        )
        params: list = []
        if labeler is not None:
            sql += " AND labeler_id = ?"
            params.append(labeler.id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_label(r, r["labeler_name"]) for r in self.db.execute(sql + " ORDER BY labels.id", params)]

    def counts(self, labeler: Labeler) -> dict[str, int]:
        """How many items the labeler ranked and skipped."""
        rows = self.db.execute(
            "SELECT kind, COUNT(*) FROM labels WHERE labeler_id = ? GROUP BY kind", (labeler.id,)
        )
        return {"ranked": 0, "skipped": 0, **{kind: n for kind, n in rows}}

    def label(self, labeler: Labeler, label_id: int) -> dict | None:
        """One of the labeler's own labels; None for anyone else's."""
        row = self.db.execute(
            "SELECT * FROM labels WHERE id = ? AND labeler_id = ?", (label_id, labeler.id)
        ).fetchone()
        return _label(row, labeler.name) if row else None


class Conflict(UserError):
    """The request clashes with what is stored (HTTP 409)."""


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers queue instead of failing mid-way."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _check_room(db: sqlite3.Connection, item_id: str, labelers_per_item: int) -> None:
    """A regular item takes `labelers_per_item` rankings; gold items take everyone's."""
    row = db.execute(
        "SELECT gold IS NOT NULL AS gold, (SELECT COUNT(*) FROM labels WHERE item_id = :id AND "
        "kind = 'ranked') AS ranked FROM items WHERE id = :id",
        {"id": item_id},
    ).fetchone()
    if row is not None and not row["gold"] and row["ranked"] >= labelers_per_item:
        rankings = "ranking" if labelers_per_item == 1 else "rankings"
        raise Conflict(
            f"item {item_id!r} already has the {labelers_per_item} {rankings} it needs (others ranked "
            "it while it stayed open here past the hour it is held for you); your label was not "
            "stored: GET /api/next gives you another item"
        )


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def item_from_row(row: sqlite3.Row) -> dict:
    return {
        "seq": row["seq"],
        "id": row["id"],
        "prompt": json.loads(row["prompt"]),
        "completions": json.loads(row["completions"]),
        "meta": json.loads(row["meta"]),
        "origin": row["origin"],
        "gold": json.loads(row["gold"]) if row["gold"] else None,
    }


def _label(row: sqlite3.Row, labeler_name: str) -> dict:
    return {
        "id": row["id"],
        "submission": row["submission"],
        "item_id": row["item_id"],
        "labeler": labeler_name,
        "kind": row["kind"],
        **json.loads(row["body"]),
        "seconds": row["seconds"],
        "submitted": row["submitted"],
    }
