"""Using a trained reward model: score records, and measure its robustness to paraphrased prompts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, Overwrite, WorldRef, option
from posttrain.data.rankings import validate_samples
from posttrain.data.records import check_output, read_jsonl, validate_conversation, write_jsonl
from posttrain.errors import UserError
from posttrain.models.load import loading
from posttrain.models.reward import RewardScorer


@dataclass(kw_only=True)
class ScoreConfig(Options, Overwrite):
    model: str = option(help="reward model directory (posttrain rm)", required=True)
    data: Path = option(
        help="JSONL of samples/rankings ({prompt, completions}) or conversations ending "
        "with an assistant turn",
        required=True,
    )
    out: Path = option(
        help="JSONL to write: each record with `scores` (one per completion) or `score`", required=True
    )


def score_file(cfg: ScoreConfig) -> int:
    check_output(cfg.out, force=cfg.force, inputs=[cfg.data])
    records, pairs, shape = [], [], []
    for where, r in read_jsonl(cfg.data):
        if "completions" in r and "prompt" in r:
            validate_samples(r, where)
            texts = [c["text"] for c in r["completions"]]
            pairs += [(r["prompt"], t) for t in texts]
            shape.append(len(texts))
        elif (
            isinstance(r.get("messages"), list)
            and r["messages"]
            and r["messages"][-1].get("role") == "assistant"
        ):
            validate_conversation(r, where)
            pairs.append((r["messages"][:-1], r["messages"][-1]["content"]))
            shape.append(0)
        else:
            raise UserError(
                f"{where}: expected {{prompt, completions}} or a conversation ending with an "
                "assistant turn (field 'messages')"
            )
        records.append(r)
    with loading(cfg.model):
        scorer = RewardScorer(cfg.model)
    scores, at = scorer.score(pairs), 0
    for r, n in zip(records, shape):
        if n:
            r["scores"], at = scores[at : at + n], at + n
        else:
            r["score"], at = scores[at], at + 1
    return write_jsonl(cfg.out, records)


@dataclass(kw_only=True)
class RobustnessConfig(Options, WorldRef):
    model: str = option(help="reward model directory (posttrain rm)", required=True)
    prompts: int = option(200, help="world test prompts to paraphrase", ge=1)


def paraphrase_robustness(cfg: RobustnessConfig) -> dict:
    """Score change when a prompt is reworded and the answer kept: |r(paraphrase) - r(original)|
    in normalised units (SFT samples have std 1), for a good and a bad answer, per family."""
    from posttrain.world import World
    from posttrain.world.rng import derive

    world = World(seed=cfg.world_seed, scale=cfg.scale)
    rng = derive(cfg.world_seed, "robustness")
    scorer = RewardScorer(cfg.model)
    rows = []
    for record in world.prompts("robustness", cfg.prompts, "train"):
        para = world.paraphrase(record, rng)
        if para["messages"] == record["messages"]:
            continue  # a family with one template for this task: nothing to reword
        good = world.demonstrate(record, rng)
        bad = next(iter(world.wrong_answers(record, rng).values()))
        rows.append((record["meta"]["family"], record["messages"], para["messages"], good, bad))
    pairs = [(m, a) for _, orig, para, good, bad in rows for m in (orig, para) for a in (good, bad)]
    scores = scorer.score(pairs)
    by_family = defaultdict(list)
    margins = defaultdict(list)
    for n, (family, *_) in enumerate(rows):
        og, ob, pg, pb = scores[4 * n : 4 * n + 4]
        by_family[family] += [abs(pg - og), abs(pb - ob)]
        margins[family].append(og - ob)
    every = [d for ds in by_family.values() for d in ds]
    return {
        "mean_abs_change": sum(every) / len(every),
        "prompts": len(rows),
        "by_family": {
            f: {"mean_abs_change": sum(d) / len(d), "good_minus_bad": sum(margins[f]) / len(margins[f])}
            for f, d in sorted(by_family.items())
        },
    }
