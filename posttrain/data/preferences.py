"""Preference pairs in and out: TRL's `prompt/chosen/rejected` (plain and conversational) and
Anthropic HH-style `chosen/rejected` transcripts, to and from posttrain's ranking records.

An imported pair is a ranking of K = 2 (`[[0], [1]]`, chosen first). An exported ranking
becomes one pair per strictly ordered pair of its completions, best first.
"""

from __future__ import annotations

import itertools
import re

from posttrain.data.rankings import rank_of, validate_ranking
from posttrain.errors import UserError

HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def row_id(row: dict, index: int, source: str) -> str:
    """The row's own `id`, else one made from its number: "alpaca-000007" (a missing id is never "None")."""
    given = row.get("id")
    return f"{source}-{index:06d}" if given is None or given == "" else str(given)


def from_trl(row: dict, index: int, source: str) -> dict:
    where = f"row {index}"
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            raise UserError(
                f"{where}: field '{key}' is missing (TRL preference rows have prompt, chosen, rejected)"
            )
    prompt = row["prompt"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    texts = []
    for key in ("chosen", "rejected"):
        value = row[key]
        if isinstance(value, list):  # conversational: the completion is a list holding the assistant turn
            if not value or not isinstance(value[-1], dict) or value[-1].get("role") != "assistant":
                raise UserError(f"{where}: field '{key}' must end with an assistant message")
            value = value[-1].get("content")
        texts.append(value)
    return _pair(row_id(row, index, source), prompt, texts, where, source)


def parse_hh(transcript: str, where: str) -> list[dict]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> [{user: hi}, {assistant: hello}]."""
    if not isinstance(transcript, str) or not transcript.startswith("\n\nHuman: "):
        raise UserError(f"{where}: an HH transcript must start with '\\n\\nHuman: '")
    parts = HH_TURN.split(transcript)[1:]
    return [
        {"role": "user" if who == "Human" else "assistant", "content": text.strip()}
        for who, text in zip(parts[::2], parts[1::2])
    ]


def from_hh(row: dict, index: int, source: str) -> dict:
    where = f"row {index}"
    chosen, rejected = (parse_hh(row.get(key), f"{where}: field '{key}'") for key in ("chosen", "rejected"))
    if (
        chosen[:-1] != rejected[:-1]
        or chosen[-1]["role"] != "assistant"
        or rejected[-1]["role"] != "assistant"
    ):
        raise UserError(f"{where}: 'chosen' and 'rejected' must share every turn but a final assistant turn")
    return _pair(
        row_id(row, index, source),
        chosen[:-1],
        [chosen[-1]["content"], rejected[-1]["content"]],
        where,
        source,
    )


def _pair(id_: str, prompt: list[dict], texts: list, where: str, source: str) -> dict:
    record = {
        "id": id_,
        "prompt": prompt,
        "completions": [{"text": t, "source": f"imported:{source}"} for t in texts],
        "ranking": [[0], [1]],
        "labeler": f"imported:{source}",
        "meta": {},
    }
    return validate_ranking(record, where)


def to_pairs(record: dict, style: str) -> list[dict]:
    """TRL rows (`conversational` or `plain`) or HH rows (`hh`) for every strictly ordered pair."""
    ranks = rank_of(record["ranking"])
    texts = [c["text"] for c in record["completions"]]
    pairs = [(i, j) for i, j in itertools.permutations(range(len(texts)), 2) if ranks[i] < ranks[j]]
    prompt = record["prompt"]
    rows = []
    for i, j in sorted(pairs, key=lambda p: (ranks[p[0]], ranks[p[1]], p)):
        if style == "conversational":
            rows.append(
                {
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": texts[i]}],
                    "rejected": [{"role": "assistant", "content": texts[j]}],
                }
            )
        elif style == "plain":
            if len(prompt) != 1 or prompt[0]["role"] != "user":
                raise UserError(
                    f"ranking {record['id']}: a plain TRL prompt is one user message; "
                    "export multi-turn prompts with --style conversational"
                )
            rows.append({"prompt": prompt[0]["content"], "chosen": texts[i], "rejected": texts[j]})
        else:
            history = "".join(
                f"\n\n{'Human' if m['role'] == 'user' else 'Assistant'}: {m['content']}"
                for m in prompt
                if m["role"] != "system"
            )
            rows.append(
                {
                    "chosen": f"{history}\n\nAssistant: {texts[i]}",
                    "rejected": f"{history}\n\nAssistant: {texts[j]}",
                }
            )
    return rows
