"""Feedback on model answers: ratings, flags and preferred answers, one JSON object a line.

    {"id": "fb-...", "created": "2026-11-22T18:40:00+00:00", "model": "sft",
     "messages": [... chat messages ending with a user turn],
     "completion": "the model's answer", "rating": "up" | "down" | null,
     "flags": ["hallucination", ...], "preferred": "a better answer" | null, "notes": str | null}

The chat REPL and the server's `POST /v1/feedback` both write through `FeedbackLog.append`:
append-only, one `write` per record, flushed and fsync'd before the call returns, so a record
that was acknowledged survives a crash. The labeling tools turn records with a `preferred`
answer or a rating into comparison tasks (docs/serving.md).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from posttrain.data.records import validate_conversation
from posttrain.errors import UserError

RATINGS = ("up", "down", None)
FIELDS = ("id", "created", "model", "messages", "completion", "rating", "flags", "preferred", "notes")


class FeedbackError(UserError):
    """A bad feedback field; `field` names it (the server answers with it as `param`)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(f"feedback: {message}")
        self.field = field


def feedback_record(
    *,
    model: str,
    messages: list[dict],
    completion: str,
    rating: str | None = None,
    flags: list[str] | tuple[str, ...] = (),
    preferred: str | None = None,
    notes: str | None = None,
) -> dict:
    """A validated feedback record with a fresh id and the current UTC time; FeedbackError names the bad
    field."""
    try:
        validate_conversation({"id": "feedback", "messages": messages}, "feedback", ends_with="user")
    except UserError as e:
        raise FeedbackError("messages", str(e).removeprefix("feedback: ")) from None
    if rating not in RATINGS:
        raise FeedbackError("rating", f"field 'rating' is {rating!r}; use 'up', 'down' or null")
    if not isinstance(completion, str) or not completion.strip():
        raise FeedbackError(
            "completion", "field 'completion' must be a non-empty string; there is no answer to judge"
        )
    if not all(isinstance(f, str) and f.strip() for f in flags):
        raise FeedbackError("flags", "field 'flags' must be a list of non-empty strings")
    for field, value in (("preferred", preferred), ("notes", notes)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise FeedbackError(field, f"field '{field}' must be a non-empty string or null")
    if rating is None and not flags and preferred is None and notes is None:
        raise FeedbackError(None, "give at least one of 'rating', 'flags', 'preferred' or 'notes'")
    return {
        "id": f"fb-{uuid.uuid4().hex[:16]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "completion": completion,
        "rating": rating,
        "flags": list(flags),
        "preferred": preferred,
        "notes": notes,
    }


def check_writable(path: str | Path) -> None:
    """Refuse a feedback file that cannot be appended to, at start-up (and before the model loads) rather
    than with the first record. Nothing is created: `append` makes the missing directories and the file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--feedback {path} is a directory; pass a file, e.g. {path / 'feedback.jsonl'}")
    existing = path if path.exists() else next(p for p in path.absolute().parents if p.exists())
    if existing != path and not existing.is_dir():
        raise UserError(
            f"--feedback {path}: {existing} is a file, not a directory; pass a writable --feedback FILE"
        )
    if not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise UserError(f"--feedback {path}: {existing} is not writable; pass a writable --feedback FILE")


class FeedbackLog:
    """An append-only JSONL file of feedback records, safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict) -> dict:
        line = (json.dumps({k: record[k] for k in FIELDS}, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                try:
                    view = memoryview(line)
                    while view:  # os.write may write less than asked
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as e:
            raise UserError(
                f"{self.path}: cannot append feedback ({e.strerror}); pass a writable --feedback FILE"
            ) from None
        return record
