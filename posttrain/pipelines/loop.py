"""`posttrain loop`: InstructGPT's steps 2 and 3, repeated on the current best policy.

    posttrain loop --sft runs/demo/sft --rm-prompts W/prompts_rm.jsonl --ppo-prompts W/prompts_ppo.jsonl \\
                   --eval-prompts W/dev.jsonl --out runs/loop --rounds 3

One run directory holds every round:

    OUT/sft_eval.json            the SFT policy's greedy answers to the eval prompts
    OUT/round-1/samples.jsonl    K completions per prompt, sampled from the current best policy
    OUT/round-1/rankings.jsonl   the simulated labelers' rankings of them
    OUT/round-1/rm/              a reward model trained from the SFT model on every round's rankings so far
    OUT/round-1/ppo/             PPO from the current best policy against that reward model (KL to SFT)
    OUT/round-1/eval.json        the new policy's greedy answers to the eval prompts
    OUT/loop.json                every round's verdict against the best before it, and the best policy

Each round's prompts are a fresh slice of --rm-prompts and --ppo-prompts. The best policy so far
(SFT at the start) seeds the next round. The rule that keeps a round's policy: on the eval
prompts its greedy answers are compared pairwise with the current best's by the judge a real
project would have, and it replaces the best when it wins more than half the comparisons (ties
count half; `KEEP_ABOVE`). On world prompts that judge is the simulated labelers (`sim` in
posttrain/evaluation/judges.py: one labeler per prompt, with its bias and noise); on other
prompts it is the round's reward model. Training never reads the gold scorer (issue 14,
tests/project/test_honesty.py): on world prompts the loop logs each policy's mean gold score as
`monitor/gold_score`, for monitoring only; it never chooses the best. Every step writes
atomically, so an interrupted loop re-run with the same arguments continues where it was; loop.json,
written before round 1, keeps the options and a digest of each input, and a re-run with another
option or changed input (but --rounds) is refused, naming it: its rounds would mix two setups.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from posttrain.data.records import atomic_path, read_conversations, read_jsonl, write_jsonl
from posttrain.evaluation.judges import Judge, make_judge
from posttrain.evaluation.winrate import win_rate
from posttrain.models.fingerprint import fingerprint
from posttrain.pipelines.loop_config import LoopConfig
from posttrain.pipelines.loop_state import check_out, continued_state, write_state

log = logging.getLogger(__name__)

KEEP_ABOVE = 0.5  # a round's policy replaces the best when its win rate against it is above this


def loop(cfg: LoopConfig, on_stage=lambda round_, stage: None) -> dict:
    """Run (or continue) the rounds; returns loop.json's content."""
    cfg.check()
    check_out(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    prompts, world = eval_prompts(cfg)
    state = read_state(cfg, prompts, world)
    write_state(cfg, state)  # before round 1: a re-run with other options is refused from the start
    for r in range(len(state["rounds"]) + 1, cfg.rounds + 1):
        d = cfg.out / f"round-{r}"
        d.mkdir(exist_ok=True)
        best = state["best"]["policy"]
        # 1. new comparisons from the current best policy, ranked by the simulated labelers
        on_stage(r, "sample")
        slice_file(cfg.rm_prompts, d / "rm_prompts.jsonl", r, cfg.rm_prompts_per_round)
        sample_and_label(cfg, best, d)
        # 2. a new reward model on every round's rankings so far
        on_stage(r, "rm")
        all_rankings = [
            row for i in range(1, r + 1) for _, row in read_jsonl(cfg.out / f"round-{i}" / "rankings.jsonl")
        ]
        write_jsonl(d / "rankings_so_far.jsonl", all_rankings)
        train_rm(cfg, d)
        # 3. PPO from the best policy against it, KL to SFT
        on_stage(r, "ppo")
        slice_file(cfg.ppo_prompts, d / "ppo_prompts.jsonl", r, cfg.ppo_prompts_per_round)
        run_ppo(cfg, best, d)
        # 4. the labelers (or the round's RM) compare it with the best on the eval prompts; the winner stays
        on_stage(r, "eval")
        judge = make_judge("sim", world) if world is not None else make_judge("rm", reward=str(d / "rm"))
        verdict = judge_round(
            judge,
            world,
            prompts,
            answers(cfg, prompts, d / "ppo", d / "eval.json"),
            answers(cfg, prompts, Path(best), eval_path(cfg, state["best"]["round"])),
        )
        state["rounds"].append({"round": r, "policy": str(d / "ppo"), "against": best, **verdict})
        if verdict["kept"]:
            state["best"] = {"policy": str(d / "ppo"), "round": r}
        write_state(cfg, state)
    return state


def judge_round(judge: Judge, world, prompts: list[dict], new: list[str], best: list[str]) -> dict:
    """Step 4's verdict on a round's policy: its greedy answers `new` against the best's `best`.

    `kept` is decided by `judge` alone: the new policy replaces the best when its win rate (ties
    count half) is above KEEP_ABOVE. With `world` (world prompts) the mean gold scores of both
    are added as `monitor/gold_score` and `monitor/best_gold_score`, for monitoring only.
    """
    rate = win_rate(judge.outcomes(list(zip(prompts, new, best))))
    verdict = {"judge": judge.name, "win_rate_vs_best": rate, "kept": rate > KEEP_ABOVE}
    if world is not None:
        verdict["monitor/gold_score"] = gold_score(world, prompts, new)
        verdict["monitor/best_gold_score"] = gold_score(world, prompts, best)
    log.info(
        "round policy vs best: %s judge win rate %.4f -> %s; gold %s (monitoring only)",
        judge.name,
        rate,
        "kept" if verdict["kept"] else "dropped",
        verdict.get("monitor/gold_score", "n/a"),
    )
    return verdict


def gold_score(world, prompts: list[dict], texts: list[str]) -> float:
    """Mean gold score: monitoring only, never a decision."""
    return sum(world.judge(p, t).score for p, t in zip(prompts, texts)) / len(prompts)


def read_state(cfg: LoopConfig, prompts: list[dict], world) -> dict:
    path = cfg.out / "loop.json"
    if path.exists():
        return continued_state(path, cfg)
    sft = {"policy": cfg.sft}
    if world is not None:
        sft["monitor/gold_score"] = gold_score(
            world, prompts, answers(cfg, prompts, Path(cfg.sft), eval_path(cfg, 0))
        )
    return {
        "config": asdict(cfg),
        "inputs": fingerprint(cfg)["inputs"],
        "sft": sft,
        "rounds": [],
        "best": {"policy": cfg.sft, "round": 0},
    }


def slice_file(source: Path, dest: Path, round_: int, n: int) -> None:
    """Round r's slice of the prompts (wrapping around when they run out)."""
    records = read_conversations(source, ends_with="user")
    start = (round_ - 1) * n
    write_jsonl(dest, [records[(start + i) % len(records)] for i in range(min(n, len(records)))])


def sample_and_label(cfg: LoopConfig, policy: str, d: Path) -> None:
    from posttrain.labeling.simulated import LabelSimConfig, label_sim
    from posttrain.stages.sample import SampleConfig, sample

    if not (d / "samples.jsonl").exists():
        sample(
            SampleConfig(
                model=policy,
                prompts=d / "rm_prompts.jsonl",
                out=d / "samples.jsonl",
                k=cfg.k,
                max_new_tokens=cfg.ppo.max_new_tokens,
                seed=cfg.seed,
                resume=True,
            )
        )
    if not (d / "rankings.jsonl").exists():
        label_sim(
            LabelSimConfig(
                samples=d / "samples.jsonl",
                out=d / "rankings.jsonl",
                labelers_per_item=cfg.labelers_per_item,
                world_seed=cfg.world_seed,
                scale=cfg.scale,
            )
        )


def train_rm(cfg: LoopConfig, d: Path) -> None:
    from posttrain.stages.rm import RMConfig, rm

    if not (d / "rm").exists():
        rm(
            RMConfig(
                model=cfg.sft,
                data=d / "rankings_so_far.jsonl",
                out=d / "rm",
                **asdict(cfg.rm),
                world_seed=cfg.world_seed,
                scale=cfg.scale,
                seed=cfg.seed,
                resume=True,
            )
        )


def run_ppo(cfg: LoopConfig, policy: str, d: Path) -> None:
    from posttrain.stages.critic_free import critic_free
    from posttrain.stages.ppo import ppo
    from posttrain.training.ppo_config import PPOConfig

    run = critic_free if cfg.ppo.critic_free else ppo  # --ppo-algorithm rloo|grpo: their own stage
    if not (d / "ppo").exists():
        run(
            PPOConfig(
                policy=policy,
                reference=cfg.sft,
                reward=d / "rm",
                prompts=d / "ppo_prompts.jsonl",
                out=d / "ppo",
                **asdict(cfg.ppo),
                ptx=cfg.ptx,
                world_seed=cfg.world_seed,
                scale=cfg.scale,
                seed=cfg.seed,
                resume=True,
            )
        )


def eval_prompts(cfg: LoopConfig) -> tuple[list[dict], object]:
    """The eval prompts, and the world when every one of them is a world prompt (else None)."""
    prompts = read_conversations(cfg.eval_prompts, ends_with="user")
    if not all("task" in (p.get("meta") or {}) for p in prompts):
        return prompts, None
    from posttrain.world import World

    return prompts, World(seed=cfg.world_seed, scale=cfg.scale)


def eval_path(cfg: LoopConfig, round_: int) -> Path:
    return cfg.out / "sft_eval.json" if round_ == 0 else cfg.out / f"round-{round_}" / "eval.json"


def answers(cfg: LoopConfig, prompts: list[dict], policy: Path, cached: Path) -> list[str]:
    """The policy's greedy answers to the eval `prompts`, generated once and cached in `cached`."""
    if cached.exists():
        return json.loads(cached.read_text())["answers"]
    from posttrain.generation.completions import chat_complete
    from posttrain.models.load import load_causal_lm

    model, tokenizer = load_causal_lm(policy)
    texts = chat_complete(
        model, tokenizer, [p["messages"] for p in prompts], max_new_tokens=cfg.ppo.max_new_tokens
    )
    with atomic_path(cached) as tmp:
        tmp.write_text(json.dumps({"policy": str(policy), "prompts": len(prompts), "answers": texts}) + "\n")
    log.info("%s: greedy answers to %d eval prompts in %s", policy, len(prompts), cached)
    return texts
