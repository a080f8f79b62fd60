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
from posttrain.labeling.schema import (
    SCHEMA,
    Transaction,
    check_tables,
    item_from_row,
    label_from_row,
    migrate_submission_ids,
    seconds_between,
    to_json,
)

# A served item no one submitted is held for its labeler this long before others may get it.
HOLD_SECONDS = 3600


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
                check_tables(self.db)
            else:
                self.db.executescript(SCHEMA)
                migrate_submission_ids(self.db)
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path}: not a labeling database ({e}); choose another --db") from None

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
        return Transaction(self.db)

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
                        to_json(item["prompt"]),
                        to_json(item["completions"]),
                        to_json(item.get("meta") or {}),
                        origin,
                        to_json(item["gold"]) if item.get("gold") else None,
                        now(),
                    ),
                )
                counts["added"] += 1
        return counts

    @staticmethod
    def _free_id(db: sqlite3.Connection, item: dict) -> str | None:
        """The item's id; None when the same item is stored; a suffixed id when another item has that id
        (a later `posttrain sample` round reuses prompt ids with new completions)."""
        content = to_json([item["prompt"], item["completions"]])
        suffix = hashlib.sha256(content.encode()).hexdigest()[:8]
        for candidate in (item["id"], f"{item['id']}#{suffix}"):
            row = db.execute("SELECT prompt, completions FROM items WHERE id = ?", (candidate,)).fetchone()
            if row is None:
                return candidate
            if to_json([json.loads(row["prompt"]), json.loads(row["completions"])]) == content:
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
                return label_from_row(done, labeler.name)
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
            seconds = seconds_between(served["served"], stamp) if served else None
            cur = db.execute(
                "INSERT INTO labels (submission, item_id, labeler_id, kind, body, seconds, submitted) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (submission, item_id, labeler.id, kind, to_json(body), seconds, stamp),
            )
            row = db.execute("SELECT * FROM labels WHERE id = ?", (cur.lastrowid,)).fetchone()
        return label_from_row(row, labeler.name)

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
        return [
            label_from_row(r, r["labeler_name"]) for r in self.db.execute(sql + " ORDER BY labels.id", params)
        ]

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
        return label_from_row(row, labeler.name) if row else None


class Conflict(UserError):
    """The request clashes with what is stored (HTTP 409)."""


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
