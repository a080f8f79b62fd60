"""The labeling database's tables (`posttrain.labeling.store`): their schema and its one migration, the
transaction every write runs in, and how rows become records.

Prompts, completions, metas, gold orders and label bodies are stored as JSON text (`to_json`: sorted keys,
no spaces, so the same value always gives the same text); `item_from_row` and `label_from_row` read them
back. A label's `seconds` run from serving the item to the submission (`seconds_between`).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

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
TABLES = ("labelers", "items", "served", "labels")


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): writers queue instead of failing mid-way."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def check_tables(db: sqlite3.Connection) -> None:
    """A DatabaseError naming the tables a labeling database lacks."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in TABLES if t not in names]
    if missing:
        raise sqlite3.DatabaseError(f"no table {', '.join(missing)}")


def migrate_submission_ids(db: sqlite3.Connection) -> None:
    """Rebuild an older database's labels table with submission ids unique per labeler (SQLite cannot
    drop a column's UNIQUE in place)."""
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'labels'").fetchone()[0]
    if GLOBAL_SUBMISSION not in sql:
        return
    with Transaction(db):
        db.execute("ALTER TABLE labels RENAME TO labels_unscoped")
        db.execute(LABELS)
        db.execute("INSERT INTO labels SELECT * FROM labels_unscoped")
        db.execute("DROP TABLE labels_unscoped")


def to_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def seconds_between(start: str, end: str) -> float:
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


def label_from_row(row: sqlite3.Row, labeler_name: str) -> dict:
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
