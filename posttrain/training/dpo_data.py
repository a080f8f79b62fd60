"""The rankings `posttrain dpo` trains on, encoded: each ranking as one item of its completions (labels on
each completion's own tokens) and every strictly ordered pair of them (and, on world prompts, their gold
scores, for monitoring), with whole prompts held out."""

from __future__ import annotations

from dataclasses import dataclass, field

from posttrain.data.chat import IGNORE, Example, assistant_spans, chat_ids
from posttrain.data.rankings import rank_of
from posttrain.errors import UserError
from posttrain.training import rm_data
from posttrain.training.rm_data import Origin


@dataclass
class Item:
    """One ranking, encoded: its ranked completions and every strictly ordered pair of them."""

    examples: list[Example]  # labels on each completion's own tokens only
    pairs: list[tuple[int, int]]  # (better, worse) indices into examples
    family: str | None
    gold: list[float] | None  # gold score per example (world prompts; monitoring only)
    key: str  # the prompt: every labeler's ranking of it stays on one side of the split
    ref_logprobs: list[float] = field(default_factory=list)  # log pi_ref per example, set before training


def encode_completion(tokenizer, prompt: list[dict], response: str, max_len: int) -> Example:
    """The conversation with `response` as its final assistant turn, labels on that turn's tokens
    (and its EOS) only; cut to `max_len` tokens from the left, as the reward model's
    `encode_response` is, so the response survives a long prompt."""
    messages = [*prompt, {"role": "assistant", "content": response}]
    ids = chat_ids(tokenizer, messages)
    start, end = assistant_spans(tokenizer, messages, ids)[-1]
    labels = [IGNORE] * start + ids[start:end] + [IGNORE] * (len(ids) - end)
    return Example(ids[-max_len:], labels[-max_len:])


def encode_items(rankings, tokenizer, cfg) -> list[Item]:
    """The rankings with at least one strict pair among the completions kept (`cfg.human_completions`),
    each encoded (`cfg.max_len`)."""
    origin_of, items = Origin(cfg.world_seed, cfg.scale), []
    for _, r in rankings:
        rank = rank_of(r["ranking"])
        kept = [
            i
            for i, c in enumerate(r["completions"])
            if cfg.human_completions == "keep" or not c["source"].startswith("human")
        ]
        pairs = [(a, b) for a, i in enumerate(kept) for b, j in enumerate(kept) if rank[i] < rank[j]]
        if not pairs:
            continue  # ties only: nothing to learn from
        texts = [r["completions"][i]["text"] for i in kept]
        family, gold, key = origin_of(r, texts)
        examples = [encode_completion(tokenizer, r["prompt"], t, cfg.max_len) for t in texts]
        items.append(Item(examples, pairs, family, gold, key))
    if not items:
        raise UserError(f"{cfg.data}: no ranking has two completions ranked apart; nothing to train on")
    return items


def split(items: list[Item], eval_fraction: float, seed: int) -> tuple[list[Item], list[Item]]:
    """Hold out whole prompts, as `posttrain rm` does (`rm_data.split`); some must be left to train on."""
    train, held = rm_data.split(items, eval_fraction, seed)
    if not train:
        raise UserError(f"--eval-fraction {eval_fraction} holds out every prompt; lower it")
    return train, held
