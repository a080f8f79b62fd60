"""What a labeler submits for an item, checked field by field (the API answers 422 with the message).

A ranking of K completions (docs/labeling.md, "POST /api/labels"):

    {"submission_id": "<fresh id per submission>", "item_id": "...",
     "ranking": [[best, tied...], [next], ...],     # every index 0..K-1 once, best group first
     "likert": [1..7 per completion], "flags": [[flag, ...] per completion],
     "none_acceptable": false, "notes": "", "better_answer": "", "order_touched": true}

    >>> check_ranking([[1], [0, 2]], 3)
    [[1], [0, 2]]
    >>> check_ranking([[1], [0]], 3)
    Traceback (most recent call last):
    ...
    posttrain.labeling.submission.BadSubmission: field 'ranking' leaves out completion 2; rank every completion
"""  # a doctest's expected exception message is one line  # noqa: E501

from __future__ import annotations

from posttrain.data.rankings import ranking_fault
from posttrain.errors import UserError

FLAGS = ("fails_task", "hallucination", "harmful", "inappropriate", "over_refusal")  # the world's flag names
LIKERT = range(1, 8)  # 1 (worst) .. 7 (best), InstructGPT's overall-quality scale
MAX_TEXT = 20_000  # characters in notes, a better answer or a skip reason


class BadSubmission(UserError):
    """A submission field is wrong (HTTP 422); the message names the field."""


def check_ranking(ranking, k: int, field: str = "ranking") -> list[list[int]]:
    fault, detail = ranking_fault(ranking, k)
    if fault == "shape":
        raise BadSubmission(
            f"field '{field}' must be a list of non-empty groups of completion indices, best first"
        )
    if fault == "range":
        raise BadSubmission(f"field '{field}' holds {detail!r}; indices run 0..{k - 1} for {k} completions")
    if fault == "twice":
        raise BadSubmission(f"field '{field}' ranks completion {detail} twice; each index appears once")
    if fault == "missing":
        raise BadSubmission(
            f"field '{field}' leaves out completion {', '.join(map(str, detail))}; rank every completion"
        )
    return [list(g) for g in ranking]


def check_label(body: dict, k: int) -> dict:
    """The stored form of a ranking submission for an item with `k` completions."""
    ranking = check_ranking(body.get("ranking"), k)
    likert = body.get("likert")
    if not isinstance(likert, list) or len(likert) != k:
        raise BadSubmission(f"field 'likert' must list one rating (1-7) per completion, {k} in all")
    for i, x in enumerate(likert):
        if isinstance(x, bool) or x not in LIKERT:
            raise BadSubmission(f"field 'likert[{i}]' is {x!r}; rate each completion 1 (worst) to 7 (best)")
    flags = body.get("flags", [[] for _ in range(k)])
    if not isinstance(flags, list) or len(flags) != k or not all(isinstance(f, list) for f in flags):
        raise BadSubmission(f"field 'flags' must hold one list of flags per completion, {k} in all")
    for i, fs in enumerate(flags):
        bad = [f for f in fs if f not in FLAGS]
        if bad:
            raise BadSubmission(f"field 'flags[{i}]' holds {bad[0]!r}; flags are {', '.join(FLAGS)}")
    return {
        "ranking": ranking,
        "likert": list(likert),
        "flags": [sorted(set(f)) for f in flags],
        "none_acceptable": _bool(body, "none_acceptable"),
        "order_touched": _bool(body, "order_touched"),
        "notes": _text(body, "notes"),
        "better_answer": _text(body, "better_answer").strip(),
    }


def check_skip(body: dict) -> dict:
    reason = _text(body, "reason").strip()
    if not reason:
        raise BadSubmission("field 'reason' is empty; say why you skip the item")
    return {"reason": reason}


def check_ids(body: dict) -> tuple[str, str]:
    """(submission_id, item_id) of a submission."""
    if not isinstance(body, dict):
        raise BadSubmission("the request body must be a JSON object")
    for field in ("submission_id", "item_id"):
        value = body.get(field)
        if not isinstance(value, str) or not value or len(value) > 200:
            raise BadSubmission(f"field '{field}' must be a non-empty string (at most 200 characters)")
    return body["submission_id"], body["item_id"]


def _bool(body: dict, field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise BadSubmission(f"field '{field}' must be true or false")
    return value


def _text(body: dict, field: str) -> str:
    value = body.get(field) or ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise BadSubmission(f"field '{field}' must be a string of at most {MAX_TEXT} characters")
    return value
