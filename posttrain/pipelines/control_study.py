"""`posttrain eval control-study`: is RLHF worth its labels? RLHF against SFT on more demonstrations.

A pipeline, not an evaluation module: it trains an SFT model before it compares (evaluation/ never
imports a stage).

The control the seed papers ask for: spend the labeler time that bought the rankings on more
demonstrations instead, fine-tune the base model on the original plus the extra demonstrations
with the original SFT run's settings, and compare both the RLHF policy and this SFT model with
the original SFT model on held-out prompts (gold judge).

Cost model (labeler minutes; every number is an option because none is published for this setup):

    minutes(rankings)  = sum over ranking records of  ranking_minutes + completion_minutes x K
    extra demos        = floor(minutes(rankings) / demo_minutes)

Defaults: a demonstration costs 8 minutes (read the prompt, write a careful answer to the spec
and check it); a ranking costs 1 minute plus 0.5 per completion read (K = 4: 3 minutes). So a
ranking of 4 costs about 3/8 of a demonstration. These are assumptions, not measurements: the
InstructGPT paper reports neither time, and the only published guidance is qualitative (Llama 2,
Touvron et al. 2023, section 3.2.1: comparisons were chosen partly because they are cheaper to
collect than written answers). Change them with --demo-minutes, --ranking-minutes and
--completion-minutes; the report prints the assumption next to the result.

The extra demonstrations come from the built-in world's demonstrator: `World.demonstrations(n)`
draws its prompts from one seeded stream, so the first n prompts of a longer draw are the
original file's prompts; the extras are the ones after them, minus any whose prompt text (or id)
already occurs in the original file.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path

from posttrain.config import Options, WorldRef, option
from posttrain.errors import UserError

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class ControlConfig(Options, WorldRef):
    """Its --force is its own, not `Overwrite`'s: OUT may exist (demos_plus.jsonl and the report are
    rewritten); --force replaces only the SFT run in OUT/sft-more-demos, finished or not."""

    base: str = option(help="the base model the SFT model was fine-tuned from", required=True)
    sft: str = option(
        help="the original SFT run directory (its posttrain.json gives the settings)", required=True
    )
    rlhf: str = option(help="the RLHF (PPO) policy directory", required=True)
    method: list[str] = option(
        [],
        repeat=True,
        help="another policy trained from the same rankings, as NAME=PATH (e.g. "
        "dpo=runs/dpo, rloo=runs/rloo, rejection=runs/rs/policy): one more row",
    )
    demos: Path = option(help="the demonstrations the SFT model was trained on", required=True)
    rankings: Path = option(
        help="the rankings the reward model was trained on (their labeling cost is the budget)", required=True
    )
    out: Path = option(help="directory to write (demos_plus.jsonl, sft-more-demos/, report)", required=True)
    prompts: Path | None = option(
        None, help="held-out prompts to compare on (default: the world's test split)"
    )
    demo_minutes: float = option(8.0, help="labeler minutes to write one demonstration (an assumption)", gt=0)
    ranking_minutes: float = option(
        1.0, help="labeler minutes per ranking task, before reading completions", ge=0
    )
    completion_minutes: float = option(
        0.5, help="labeler minutes to read and place one completion in a ranking", ge=0
    )
    heldout_corpus: Path | None = option(
        None,
        help="held-out pretraining documents for the alignment tax "
        "(default: corpus_heldout.jsonl beside --demos, if there)",
    )
    kl_samples: int = option(1, help="samples per prompt for KL to the SFT baseline (0 skips it)", ge=0)
    force: bool = option(False, help="replace an existing OUT/sft-more-demos")

    def check(self) -> None:
        super().check()
        if self.ranking_minutes + self.completion_minutes <= 0:
            raise UserError(
                "--ranking-minutes plus --completion-minutes must be positive: a ranking costs labeler time"
            )


def ranking_minutes(rankings: list[dict], per_ranking: float, per_completion: float) -> float:
    """Labeler minutes spent on `rankings` (each record is one labeler's ranking of K completions)."""
    return sum(per_ranking + per_completion * len(r["completions"]) for r in rankings)


def demos_for_budget(minutes: float, demo_minutes: float) -> int:
    return math.floor(minutes / demo_minutes + 1e-9)


def prompt_key(record: dict) -> tuple:
    return tuple((m["role"], m["content"]) for m in record["messages"] if m["role"] != "assistant")


def extra_demonstrations(world, originals: list[dict], count: int) -> list[dict]:
    """`count` world demonstrations whose ids and prompts are not in `originals`."""
    if count <= 0:
        return []
    seen_ids = {r["id"] for r in originals}
    seen_prompts = {prompt_key(r) for r in originals}
    want = len(originals) + count
    for _ in range(4):
        extra = [
            r
            for r in world.demonstrations(want)
            if r["id"] not in seen_ids and prompt_key(r) not in seen_prompts
        ][:count]
        if len(extra) == count:
            return extra
        want *= 2  # some drawn prompts repeat an original one: draw a longer stream
    raise UserError(
        f"the world made only {len(extra)} demonstrations with new prompts, {count} were asked for; "
        "raise --demo-minutes or use a larger --scale"
    )


def sft_settings(sft_dir: str) -> dict:
    """The original SFT run's config (posttrain.json), without the fields that name its inputs."""
    from posttrain.models.checkpoint import read_manifest
    from posttrain.stages.sft import SFTConfig

    manifest = read_manifest(sft_dir)
    if manifest.get("stage") != "sft" or not isinstance(manifest.get("config"), dict):
        raise UserError(
            f"{sft_dir}/posttrain.json: not an SFT run (stage {manifest.get('stage')!r}); "
            "--sft takes the directory posttrain sft wrote"
        )
    known = {f.name for f in fields(SFTConfig)} - {"model", "data", "out", "resume", "force", "eval_data"}
    return {k: v for k, v in manifest["config"].items() if k in known}


def control_study(cfg: ControlConfig, on_step=lambda *a: None) -> dict:
    """Buy extra demonstrations with the rankings' budget, fine-tune, and compare; returns the summary."""
    from posttrain.data.corpus import read_documents
    from posttrain.data.rankings import read_rankings
    from posttrain.data.records import read_conversations, write_jsonl
    from posttrain.evaluation.compare import compare_models, model_names
    from posttrain.stages.sft import SFTConfig, sft
    from posttrain.world import World

    cfg.check()
    methods = model_names(cfg.method)
    if {"rlhf", "sft-more-demos"} & set(methods):
        raise UserError(
            "--method: the names rlhf and sft-more-demos are the study's own rows; choose another"
        )
    world = World(seed=cfg.world_seed, scale=cfg.scale)
    settings = sft_settings(cfg.sft)
    originals = read_conversations(cfg.demos)
    rankings = [r for _, r in read_rankings(cfg.rankings)]
    minutes = ranking_minutes(rankings, cfg.ranking_minutes, cfg.completion_minutes)
    n_extra = demos_for_budget(minutes, cfg.demo_minutes)
    extra = extra_demonstrations(world, originals, n_extra)
    combined = cfg.out / "demos_plus.jsonl"
    write_jsonl(combined, [*originals, *extra])
    log.info("%d rankings = %.0f labeler minutes = %d extra demonstrations", len(rankings), minutes, n_extra)
    more = cfg.out / "sft-more-demos"
    sft(SFTConfig(model=cfg.base, data=combined, out=more, force=cfg.force, **settings), on_step=on_step)
    records = (
        read_conversations(cfg.prompts, ends_with="user")
        if cfg.prompts
        else world.prompts("test", world.scale.test_prompts, "test")
    )
    heldout = cfg.heldout_corpus or cfg.demos.with_name("corpus_heldout.jsonl")
    documents = read_documents(heldout) if cfg.heldout_corpus or heldout.is_file() else None
    policies = {"rlhf": cfg.rlhf, **methods, "sft-more-demos": str(more)}
    summary = compare_models(
        policies,
        cfg.sft,
        records,
        world,
        judge="gold",
        heldout_documents=documents,
        kl_samples=cfg.kl_samples,
    )
    summary["control_study"] = {
        "rankings": len(rankings),
        "labeler_minutes": minutes,
        "original_demos": len(originals),
        "extra_demos": len(extra),
        "demo_minutes": cfg.demo_minutes,
        "ranking_minutes": cfg.ranking_minutes,
        "completion_minutes": cfg.completion_minutes,
        "sft_settings": settings,
        "wall_seconds": {name: wall_seconds(Path(path)) for name, path in policies.items()},
    }
    return summary


def wall_seconds(policy: Path) -> float | None:
    """The wall time of the run that made `policy`, from its posttrain.json: the run's own `wall_seconds`
    plus the `before_seconds` a pipeline recorded there for its steps before it (rejection sampling's
    sampling and picking); None when not recorded."""
    path = policy / "posttrain.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    seconds = manifest.get("wall_seconds")
    if seconds is not None and manifest.get("before_seconds"):
        seconds += sum(manifest["before_seconds"].values())
    return seconds
