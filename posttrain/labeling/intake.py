"""Items to label, from `posttrain sample` output and from the chat server's feedback file.

An item is one prompt and its K completions: `{"id", "prompt", "completions", "meta", "gold"?}`.

Samples records (posttrain/data/rankings.py) become items as they are. Gold items are items whose
correct order is known: a samples record that carries a `ranking` (a supplied order), or one whose
`meta` names a task of the built-in world, ordered by the world's gold scorer (ties where the
scores are equal).

Feedback records, one JSON object per line, as the chat server writes them:

    {"id": str, "created": ISO-8601 str, "model": str, "messages": [... ending with a user turn],
     "completion": str, "rating": "up" | "down" | null, "flags": [str, ...],
     "preferred": str | null, "notes": str | null}

Records with the same messages become one comparison: their distinct completions
(`source: model:<model>`) plus every `preferred` answer the user wrote (`source: human:feedback`).
A lone record with a `preferred` answer becomes a 2-way item; a lone record without one has
nothing to compare and is counted as such. The ratings, flags and notes travel in `meta.feedback`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from posttrain.data.rankings import read_samples
from posttrain.data.records import read_jsonl, validate_conversation
from posttrain.errors import UserError
from posttrain.labeling.configs import AddSamplesConfig
from posttrain.labeling.store import Store
from posttrain.labeling.submission import BadSubmission, check_ranking

MAX_K = 9  # the page ranks with the number keys 1-9; InstructGPT showed K = 4..9
FEEDBACK_SOURCE = "human:feedback"


@dataclass
class Intake:
    """Items read from files, with counts of what could not become an item."""

    items: list[dict] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def count(self, note: str) -> None:
        self.notes[note] = self.notes.get(note, 0) + 1


def add_files(store: Store, cfg: AddSamplesConfig) -> list[tuple[Path, dict]]:
    """Read every file (all must be valid), then add their items; returns counts per file."""
    read = (
        [(p, items_from_samples(p)) for p in cfg.samples]
        + [(p, items_from_feedback(p)) for p in cfg.feedback]
        + [(p, gold_items(p, cfg.world_seed, cfg.scale)) for p in cfg.gold]
    )
    return [
        (path, {**store.add_items(intake.items, origin=str(path)), **intake.notes}) for path, intake in read
    ]


def items_from_samples(path: Path) -> Intake:
    return Intake([sample_item(where, record) for where, record in read_samples(path)])


def sample_item(where: str, record: dict) -> dict:
    if len(record["completions"]) > MAX_K:
        raise UserError(
            f"{where}: field 'completions' holds {len(record['completions'])} completions; "
            f"the page ranks at most {MAX_K} (sample with --k {MAX_K} or fewer)"
        )
    return {
        "id": record["id"],
        "prompt": record["prompt"],
        "completions": record["completions"],
        "meta": record.get("meta") or {},
    }


def gold_items(path: Path, world_seed: int = 0, scale: str = "small") -> Intake:
    """Samples whose correct order is known: supplied in `ranking`, or from the world's gold scorer."""
    out = Intake()
    world = None
    for where, record in read_samples(path):
        item = sample_item(where, record)
        out.items.append(item)
        if "ranking" in record:
            try:
                item["gold"] = check_ranking(record["ranking"], len(item["completions"]))
            except BadSubmission as e:
                raise UserError(f"{where}: {e}") from None
            continue
        meta = item["meta"]
        if "family" not in meta or "task" not in meta:
            raise UserError(
                f"{where}: a gold item needs its correct order: give a 'ranking' field, or use a "
                "prompt of the built-in world (meta with 'family' and 'task')"
            )
        if world is None:
            from posttrain.world import World

            world = World(seed=world_seed, scale=scale)
        prompt = {"id": item["id"], "messages": item["prompt"], "meta": meta}
        try:
            item["gold"] = order_by_score([world.judge(prompt, c["text"]).score for c in item["completions"]])
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"{where}: field 'meta' does not name a task of the world (seed {world_seed}, "
                f"{scale}) the gold scorer knows ({type(e).__name__}: {e}); check --world-seed "
                "and --scale, or give a 'ranking' field"
            ) from None
    return out


def order_by_score(scores: list[float]) -> list[list[int]]:
    """Tie groups, best first; equal scores tie.

    >>> order_by_score([0.2, 1.0, 0.2, 0.5])
    [[1], [3], [0, 2]]
    """
    by_score: dict[float, list[int]] = defaultdict(list)
    for i, s in enumerate(scores):
        by_score[round(s, 9)].append(i)
    return [by_score[s] for s in sorted(by_score, reverse=True)]


def items_from_feedback(path: Path) -> Intake:
    groups: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for where, record in read_jsonl(path):
        check_feedback(record, where)
        groups[json.dumps(record["messages"], sort_keys=True)].append((where, record))
    out = Intake()
    for records in groups.values():
        item = feedback_item([r for _, r in records])
        if item is None:
            out.count("lone answers without a preferred one")
            continue
        if len(item["completions"]) > MAX_K:
            out.count(f"comparisons cut to {MAX_K} answers")
            item["completions"] = item["completions"][:MAX_K]
            for f in item["meta"]["feedback"]:
                f.update({key: None for key in ("completion", "preferred") if f.get(key, 0) >= MAX_K})
        out.items.append(item)
    return out


def feedback_item(records: list[dict]) -> dict | None:
    """One comparison from the feedback on one conversation; None when there is nothing to compare."""
    completions: list[dict] = []
    seen: dict[str, int] = {}

    def add(text: str, source: str) -> int:
        if text not in seen:
            seen[text] = len(completions)
            completions.append({"text": text, "source": source})
        return seen[text]

    feedback = []
    for r in records:
        index = add(r["completion"], f"model:{r['model']}")
        feedback.append(
            {
                "id": r["id"],
                "created": r["created"],
                "model": r["model"],
                "completion": index,
                "rating": r["rating"],
                "flags": r["flags"],
                "notes": r["notes"],
            }
        )
    for r, f in zip(records, feedback):
        if r["preferred"]:
            f["preferred"] = add(r["preferred"], FEEDBACK_SOURCE)
    if len(completions) < 2:
        return None
    digest = hashlib.sha256(json.dumps([records[0]["messages"], sorted(seen)]).encode()).hexdigest()[:16]
    return {
        "id": f"feedback-{digest}",
        "prompt": records[0]["messages"],
        "completions": completions,
        "meta": {"origin": "feedback", "feedback": feedback},
    }


def check_feedback(record: dict, where: str) -> None:
    for name in ("id", "model", "completion", "created"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise UserError(f"{where}: field '{name}' must be a non-empty string")
    try:
        datetime.fromisoformat(record["created"])
    except ValueError:
        raise UserError(
            f"{where}: field 'created' is {record['created']!r}, not an ISO-8601 time "
            "such as 2026-05-01T12:00:00Z"
        ) from None
    validate_conversation({"id": record["id"], "messages": record.get("messages")}, where, ends_with="user")
    if record.get("rating") not in ("up", "down", None):
        raise UserError(f'{where}: field \'rating\' is {record.get("rating")!r}; use "up", "down" or null')
    flags = record.get("flags") or []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise UserError(f"{where}: field 'flags' must be a list of strings")
    for name in ("preferred", "notes"):
        if record.get(name) is not None and not isinstance(record[name], str):
            raise UserError(f"{where}: field '{name}' must be a string or null")
    record.update(
        flags=flags,
        rating=record.get("rating"),
        notes=record.get("notes"),
        preferred=(record.get("preferred") or "").strip() or None,
    )
