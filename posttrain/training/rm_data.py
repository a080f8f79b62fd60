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
    origin_of = Origin(cfg.world_seed, cfg.scale)
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
        family, gold, key = origin_of(r, [c["text"] for c in r["completions"]])
        examples = [encode_response(tokenizer, r["prompt"], c["text"], cfg.max_len) for c in r["completions"]]
        likert = r.get("likert") or [0] * len(examples)
        margins = [cfg.likert_margin * float(x) for x in likert]
        items.append(Item(examples, ranks, margins, [not h for h in human], family, gold, key))
    if not items:
        raise UserError(f"{cfg.data}: no ranking has two completions ranked apart; nothing to train on")
    return items


class Origin:
    """What RM's and DPO's items record of a ranking, (family, gold, key): its world family (None off the
    world), the gold score of each of `texts` on a world prompt (monitoring only: never trained on; None
    off the world), and the prompt it ranks (`meta.item`, else its id), which `split` keeps on one side.
    The world is built at the first world prompt."""

    def __init__(self, world_seed: int, scale: str):
        self.world_seed, self.scale, self.world = world_seed, scale, None

    def __call__(self, record: dict, texts: list[str]) -> tuple[str | None, list[float] | None, str]:
        meta = record.get("meta") or {}
        return meta.get("family"), self.gold(record, meta, texts), meta.get("item", record["id"])

    def gold(self, record: dict, meta: dict, texts: list[str]) -> list[float] | None:
        if "task" not in meta or "family" not in meta:
            return None
        if self.world is None:
            from posttrain.world import World

            self.world = World(seed=self.world_seed, scale=self.scale)
        prompt = {"id": record["id"], "messages": record["prompt"], "meta": meta}
        return [self.world.judge(prompt, t).score for t in texts]


def split(items: list, eval_fraction: float, seed: int) -> tuple[list, list]:
    """Hold out whole prompts: every labeler's ranking of one (the items sharing a `key`) stays on one side
    (RM's and DPO's items)."""
    keys = sorted({i.key for i in items})
    order_ = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    held_keys = {keys[i] for i in order_[: int(len(keys) * eval_fraction)]}
    return [i for i in items if i.key not in held_keys], [i for i in items if i.key in held_keys]


def order(n: int, batch: int, step: int, seed: int) -> list[int]:
    """Items of a step: consecutive slices of a fresh seeded permutation per epoch."""
    per_epoch = math.ceil(n / batch)
    epoch, index = divmod(step, per_epoch)
    perm = torch.randperm(
        n, generator=torch.Generator().manual_seed(derive_seed(seed, "data_order", epoch))
    ).tolist()
    return perm[index * batch : (index + 1) * batch]
