"""The rankings `posttrain rm` trains on, encoded: each ranking as one item of K conversations and their
ranks (and, on world prompts, their gold scores, for monitoring), whole prompts held out, and the items of
each step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from posttrain.data.rankings import rank_of
from posttrain.errors import UserError
from posttrain.models.reward import encode_response
from posttrain.training.stage import derive_seed


@dataclass
class Item:
    """One ranking, encoded: K conversations and their ranks (-1: left out)."""

    examples: list
    ranks: list[int]
    margins: list[float]  # likert_margin x the labeler's Likert rating (zeros without one)
    from_model: list[bool]
    family: str | None
    gold: list[float] | None
    key: str


def encode_items(rankings, tokenizer, cfg) -> list[Item]:
    """The rankings left with a strict pair once human-written completions are left out (unless
    `cfg.human_completions` keeps them), each encoded (`cfg.max_len`, `cfg.likert_margin`)."""
    from posttrain.world import World

    world = None
    items = []
    for _, r in rankings:
        ranks_by_index = rank_of(r["ranking"])
        human = [c["source"].startswith("human") for c in r["completions"]]
        ranks = [
            -1 if (h and cfg.human_completions == "exclude") else ranks_by_index[i]
            for i, h in enumerate(human)
        ]
        if len({x for x in ranks if x >= 0}) < 2:
            continue  # no strict pair left: nothing to learn from
        meta = r.get("meta") or {}
        gold = None
        if "task" in meta and "family" in meta:
            world = world or World(seed=cfg.world_seed, scale=cfg.scale)
            prompt = {"id": r["id"], "messages": r["prompt"], "meta": meta}
            gold = [world.judge(prompt, c["text"]).score for c in r["completions"]]
        examples = [encode_response(tokenizer, r["prompt"], c["text"], cfg.max_len) for c in r["completions"]]
        likert = r.get("likert") or [0] * len(examples)
        margins = [cfg.likert_margin * float(x) for x in likert]
        items.append(
            Item(
                examples,
                ranks,
                margins,
                [not h for h in human],
                meta.get("family"),
                gold,
                meta.get("item", r["id"]),
            )
        )
    if not items:
        raise UserError(f"{cfg.data}: no ranking has two completions ranked apart; nothing to train on")
    return items


def split(items: list[Item], cfg) -> tuple[list[Item], list[Item]]:
    """Hold out whole items (every labeler's ranking of a prompt stays on one side)."""
    keys = sorted({i.key for i in items})
    order_ = torch.randperm(len(keys), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
    held_keys = {keys[i] for i in order_[: int(len(keys) * cfg.eval_fraction)]}
    return [i for i in items if i.key not in held_keys], [i for i in items if i.key in held_keys]


def order(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Items of a step: consecutive slices of a fresh seeded permutation per epoch."""
    per_epoch = math.ceil(n / batch)
    epoch, index = divmod(step, per_epoch)
    perm = torch.randperm(
        n, generator=torch.Generator().manual_seed(derive_seed(seed, "data_order", epoch))
    ).tolist()
    return perm[index * batch : (index + 1) * batch]
