"""Samples and rankings (docs/design.md, "Data formats"), validated record by record.

A samples record (what `posttrain sample` writes, before anyone ranks it):

    {"id", "prompt": [messages ending with a user turn],
     "completions": [{"text", "source", ...}, ...], "meta": {...}}

A ranking record adds who ranked it and how:

    {..., "ranking": [[best, tied...], [next], ...], "labeler", "likert"?, "flags"?, "notes"?}

`ranking` holds every completion index exactly once, best group first; indices in one group tie.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from posttrain.data.records import read_jsonl, validate_conversation
from posttrain.errors import UserError


def validate_samples(record: dict, where: str) -> dict:
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise UserError(f"{where}: field 'id' must be a non-empty string")
    validate_conversation({"id": record["id"], "messages": record.get("prompt")}, where, ends_with="user")
    completions = record.get("completions")
    if not isinstance(completions, list) or len(completions) < 2:
        raise UserError(f"{where}: field 'completions' must list at least 2 completions (K >= 2) to compare")
    for i, c in enumerate(completions):
        if not isinstance(c, dict) or not isinstance(c.get("text"), str) or not c["text"].strip():
            raise UserError(f"{where}: field 'completions[{i}].text' must be a non-empty string")
        if not isinstance(c.get("source"), str) or not c["source"]:
            raise UserError(
                f"{where}: field 'completions[{i}].source' must say where the completion came from "
                "(model:<checkpoint> or human:<who>)"
            )
    return record


def ranking_fault(ranking, k: int) -> tuple[str | None, object]:
    """The first thing wrong with `ranking` as a ranking of `k` completions (groups of indices, best
    first, every index once), as (fault, detail): ("shape", None), ("range", index), ("twice", index),
    ("missing", [indices]); (None, None) when it is right. Files and the labeling app word it apart.

    >>> ranking_fault([[1], [0, 2]], 3), ranking_fault([[0], [0]], 2), ranking_fault([[2]], 3)
    ((None, None), ('twice', 0), ('missing', [0, 1]))
    """
    if not isinstance(ranking, list) or not all(isinstance(g, list) and g for g in ranking):
        return "shape", None
    seen: set[int] = set()
    for group in ranking:
        for i in group:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < k:
                return "range", i
            if i in seen:
                return "twice", i
            seen.add(i)
    missing = sorted(set(range(k)) - seen)
    return ("missing", missing) if missing else (None, None)


def validate_ranking(record: dict, where: str) -> dict:
    validate_samples(record, where)
    k = len(record["completions"])
    fault, detail = ranking_fault(record.get("ranking"), k)
    if fault == "shape":
        raise UserError(
            f"{where}: field 'ranking' must be a list of non-empty groups of completion indices, best first"
        )
    if fault == "range":
        raise UserError(
            f"{where}: field 'ranking' holds index {detail!r}, out of range for {k} completions (0..{k - 1})"
        )
    if fault == "twice":
        raise UserError(f"{where}: field 'ranking' ranks completion {detail} twice; each index appears once")
    if fault == "missing":
        raise UserError(f"{where}: field 'ranking' leaves out completions {detail}; rank every completion")
    if not isinstance(record.get("labeler"), str) or not record["labeler"]:
        raise UserError(f"{where}: field 'labeler' must name who ranked the completions")
    if record.get("likert") is not None:
        check_likert(record["likert"], k, where)
    return record


def check_likert(likert, k: int, where: str) -> None:
    """`likert`: one finite rating per completion (posttrain's labelers use 1-7)."""
    if not isinstance(likert, list) or len(likert) != k:
        raise UserError(f"{where}: field 'likert' must list one rating per completion, {k} in all")
    for i, x in enumerate(likert):
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise UserError(
                f"{where}: field 'likert[{i}]' is {x!r}; a rating is a number (1 worst to 7 best)"
            )


def read_samples(path) -> list[tuple[str, dict]]:
    return [(where, validate_samples(r, where)) for where, r in read_jsonl(path)]


def read_rankings(path) -> list[tuple[str, dict]]:
    return list(iter_rankings(path))


def iter_rankings(path) -> Iterator[tuple[str, dict]]:
    """("file:line", ranking) one at a time, for files too big to hold (`posttrain data export`)."""
    return ((where, validate_ranking(r, where)) for where, r in read_jsonl(path))


def rank_of(ranking: list[list[int]]) -> dict[int, int]:
    """Completion index -> its group's position (0 is best)."""
    return {i: g for g, group in enumerate(ranking) for i in group}
