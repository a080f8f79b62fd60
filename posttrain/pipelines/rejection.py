"""`posttrain rejection-sampling`: best-of-K by the reward model, then SFT on the picks (Llama 2's recipe).

    posttrain rejection-sampling --model runs/demo/sft --reward runs/demo/rm \\
        --prompts runs/demo/world/prompts_ppo.jsonl --k 4 --out runs/demo/rejection

Touvron et al. 2023 (Llama 2, section 3.2.3): sample K answers per prompt from the current policy,
keep the one the reward model scores highest, and fine-tune the policy on those picks with the
ordinary SFT loss. It uses the same reward model as PPO, so the same labeling budget. One run
directory holds every step, each written atomically and skipped when it is already there (re-run
with the same arguments to continue):

    OUT/samples.jsonl    K completions per prompt (`posttrain sample`, resumable batch by batch)
    OUT/picks.jsonl      one conversation per prompt: the prompt and its best completion by the RM,
                         with every completion's score in `meta.rm_scores`
    OUT/policy/          the policy fine-tuned on the picks (`posttrain sft`, from --model)
    OUT/timing.json      wall seconds of sampling and picking, also written into the policy's
                         posttrain.json as `before_seconds` (where the control study reads a run's cost)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import ModelOptions, Options, SamplingOptions, option, tuned
from posttrain.data.outputs import check_not_input, foreign_entries, named
from posttrain.data.rankings import read_samples
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.models.checkpoint import read_manifest, write_manifest
from posttrain.models.load import loading
from posttrain.recipes import SMALL
from posttrain.stages.sample import SampleConfig, sample
from posttrain.stages.sft import SFTConfig, sft

log = logging.getLogger(__name__)
TIMING = "timing.json"


@dataclass(kw_only=True)
class RejectionConfig(Options, tuned(SamplingOptions, max_new_tokens=SMALL.max_new_tokens), ModelOptions):
    model: str = option(help="the policy to sample from and fine-tune (the SFT model)", required=True)
    reward: Path = option(
        help="reward model run directory (posttrain rm) that picks the best of K", required=True
    )
    prompts: Path = option(
        help="prompts: conversation JSONL ending with a user turn (e.g. the PPO prompts)", required=True
    )
    out: Path = option(
        help="run directory (samples.jsonl, picks.jsonl, policy/); continued when it exists", required=True
    )
    k: int = option(
        SMALL.k, help="completions sampled per prompt; the reward model keeps the best", ge=2, le=9
    )
    max_prompts: int | None = option(None, help="use only the first N prompts", ge=1)
    lr: float = option(
        1e-4, help="fine-tuning learning rate on the picks (AdamW, cosine; a third of SFT's)", gt=0
    )
    epochs: float = option(1.0, help="passes over the picks", gt=0)
    seed: int = option(0, help="sampling and fine-tuning seed", ge=0)


def rejection_sampling(
    cfg: RejectionConfig,
    on_stage: Callable[[str], None] = lambda stage: None,
    on_step: Callable[[int, int, dict], None] = lambda *a: None,
) -> dict:
    """Sample, pick by the reward model, fine-tune; returns the fine-tuning summary and the picks' stats."""
    cfg.check()
    out, samples, picks, policy = (
        cfg.out,
        cfg.out / "samples.jsonl",
        cfg.out / "picks.jsonl",
        cfg.out / "policy",
    )
    check_out(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if not samples.exists():
        on_stage(f"sample K={cfg.k}")
        began = time.monotonic()
        sample(
            SampleConfig(
                model=cfg.model,
                prompts=cfg.prompts,
                out=samples,
                k=cfg.k,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
                max_prompts=cfg.max_prompts,
                seed=cfg.seed,
                trust_remote_code=cfg.trust_remote_code,
                resume=Path(f"{samples}.partial").exists(),
            )
        )
        record_seconds(out, "sample", time.monotonic() - began)
    if not picks.exists():
        on_stage("pick the best by the reward model")
        began = time.monotonic()
        write_jsonl(picks, best_of_k([r for _, r in read_samples(samples)], cfg.reward))
        record_seconds(out, "pick", time.monotonic() - began)
    stats = pick_stats(picks)
    if not policy.exists():
        on_stage("fine-tune on the picks")
        sft(
            SFTConfig(
                model=cfg.model,
                data=picks,
                out=policy,
                lr=cfg.lr,
                epochs=cfg.epochs,
                seed=cfg.seed,
                eval_fraction=0.0,
                threads=cfg.threads,
                trust_remote_code=cfg.trust_remote_code,
                resume=Path(f"{policy}.partial").exists(),
            ),
            on_step=on_step,
        )
    record_in_manifest(out, policy)
    return {**stats, "policy": str(policy)}


def check_out(cfg: RejectionConfig) -> None:
    """OUT is continued only when it holds nothing but this pipeline's steps, and is none of its inputs, nor
    a folder holding one: its files would mix with theirs (issue 28)."""
    check_not_input(cfg.out, [cfg.model, cfg.reward, cfg.prompts])
    if cfg.out.is_dir():
        other = foreign_entries(
            cfg.out,
            ["samples.jsonl", "samples.jsonl.partial", "picks.jsonl", "policy", "policy.partial", TIMING],
        )
        if other:
            raise UserError(
                f"--out {cfg.out} holds files rejection sampling does not write ({named(other)}); "
                "choose another --out"
            )


def record_seconds(out: Path, step: str, seconds: float) -> None:
    """OUT/timing.json: wall seconds of the steps before fine-tuning (the policy's posttrain.json has its
    own)."""
    path = out / TIMING
    timing = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**timing, step: round(seconds, 1)}) + "\n")


def record_in_manifest(out: Path, policy: Path) -> None:
    """OUT/timing.json's seconds as `before_seconds` in the policy's posttrain.json: a run's manifest holds
    its whole cost, so a reader of the policy needs no knowledge of this pipeline's files."""
    path = out / TIMING
    timing = json.loads(path.read_text()) if path.is_file() else {}
    manifest = read_manifest(policy)
    if timing and manifest.get("before_seconds") != timing:
        write_manifest(policy, {**manifest, "before_seconds": timing})


def best_of_k(records: list[dict], reward: Path) -> list[dict]:
    """Each samples record as a conversation ending with its highest-scoring completion (first on a tie)."""
    from posttrain.models.reward import RewardScorer

    with loading(reward):
        scorer = RewardScorer(str(reward))
    scores = scorer.score([(r["prompt"], c["text"]) for r in records for c in r["completions"]])
    out, at = [], 0
    for r in records:
        mine = scores[at : at + len(r["completions"])]
        at += len(mine)
        best = max(range(len(mine)), key=lambda i: (mine[i], -i))
        answer = {"role": "assistant", "content": r["completions"][best]["text"]}
        out.append(
            {
                "id": r["id"],
                "messages": [*r["prompt"], answer],
                "source": f"rejection-sampling:{reward}",
                "meta": {**r.get("meta", {}), "rm_scores": [round(s, 4) for s in mine], "picked": best},
            }
        )
    return out


def pick_stats(picks: Path) -> dict:
    """How much the pick gains over a random completion, by the reward model's own scores."""
    from posttrain.data.records import read_conversations

    rows = [r["meta"] for r in read_conversations(picks)]
    best = sum(max(m["rm_scores"]) for m in rows) / len(rows)
    mean = sum(sum(m["rm_scores"]) / len(m["rm_scores"]) for m in rows) / len(rows)
    return {"picks": len(rows), "rm_score_best": best, "rm_score_mean": mean}
