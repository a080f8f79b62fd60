"""`posttrain label sim`: the world's simulated labelers rank samples into ranking records.

    posttrain label sim --samples runs/demo/samples.jsonl --out runs/demo/rankings.jsonl
        [--labelers-per-item 2]

Each item is ranked by N different labelers of the world's pool (ties, Likert 1-7 and flags
included); each ranking is one record whose `meta.item` names the item, so agreement between
labelers can be measured from the file (`posttrain label agreement`).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, Overwrite, WorldRef, option
from posttrain.data.rankings import read_rankings, read_samples
from posttrain.data.records import check_output, check_unique_ids, write_jsonl
from posttrain.errors import UserError
from posttrain.world import World
from posttrain.world.labelers import DEFAULT_NOISE, AgreementTally, LabelerPool


@dataclass(kw_only=True)
class LabelSimConfig(Options, Overwrite, WorldRef):
    samples: Path = option(
        help="samples JSONL from `posttrain sample` (prompts made by the world)", required=True
    )
    out: Path = option(help="rankings JSONL to write", required=True)
    labelers_per_item: int = option(1, help="different labelers who rank each item", ge=1)
    noise: float = option(
        DEFAULT_NOISE,
        help="labeler noise; the default gives about 72.6%% pairwise agreement (InstructGPT's) on the demo "
        "SFT model's own samples, about 88%% on model-like answers",
        ge=0,
    )
    seed: int | None = option(
        None,
        help="seed of the labelers' draws (who ranks an item, their noise, the flags "
        "they miss); default: the world seed. A run seed of `posttrain demo`",
        ge=0,
    )


@dataclass(kw_only=True)
class RankingsAgreementConfig(Options):
    data: Path = option(help="rankings JSONL with items ranked by 2+ labelers", required=True)


def label_sim(cfg: LabelSimConfig) -> int:
    """Write the rankings; returns how many."""
    check_output(cfg.out, force=cfg.force, inputs=[cfg.samples])
    items = read_samples(cfg.samples)
    check_unique_ids(items)  # rankings name their item by id (meta.item): two items must not share one
    pool = LabelerPool(World(seed=cfg.world_seed, scale=cfg.scale), noise=cfg.noise, seed=cfg.seed)
    if not 1 <= cfg.labelers_per_item <= len(pool.labelers):
        raise UserError(f"--labelers-per-item must be 1..{len(pool.labelers)}, got {cfg.labelers_per_item}")
    out = []
    for where, item in items:
        prompt = world_prompt(where, item)
        meta = prompt["meta"]
        texts = [c["text"] for c in item["completions"]]
        for labeler in pool.pick_labelers(item["id"], cfg.labelers_per_item):
            judged = pool.rank(labeler, prompt, texts)
            out.append(
                {
                    "id": f"{item['id']}/{labeler.id}",
                    "prompt": item["prompt"],
                    "completions": item["completions"],
                    "ranking": judged["ranking"],
                    "labeler": f"sim:{labeler.id}",
                    "likert": judged["likert"],
                    "flags": judged["flags"],
                    "meta": {**meta, "item": item["id"]},
                }
            )
    return write_jsonl(cfg.out, out)


def world_prompt(where: str, item: dict) -> dict:
    """The prompt record of a samples item, for the gold scorer; refused unless the world made the prompt."""
    meta = item.get("meta") or {}
    if "family" not in meta or "task" not in meta:
        raise UserError(
            f"{where}: field 'meta' has no world task; simulated labelers judge only prompts "
            "made by posttrain.world (use `posttrain label serve` for other data)"
        )
    return {"id": item["id"], "messages": item["prompt"], "meta": meta}


def agreement_from_rankings(path: Path) -> dict:
    """Pairwise agreement between labelers who ranked the same item (every pair of them)."""
    by_item = defaultdict(list)
    for _, record in read_rankings(path):
        by_item[(record.get("meta") or {}).get("item", record["id"])].append(record["ranking"])
    tally = AgreementTally()
    items = 0
    for rankings in by_item.values():
        if len(rankings) >= 2:
            items += 1
        for a, b in itertools.combinations(rankings, 2):
            tally.add(a, b)
    if not items:
        raise UserError(
            f"{path}: no item was ranked by two labelers; label with --labelers-per-item 2 or more"
        )
    return {**tally.result(), "items": items}
