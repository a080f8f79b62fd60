"""`posttrain ppo`, `posttrain loop` and `posttrain rejection-sampling`: step 3 of the recipe, the iterated
loop, and best-of-K fine-tuning."""

from __future__ import annotations

import sys

from posttrain.commands import command
from posttrain.commands.progress import StepBar
from posttrain.pipelines.loop_config import LoopConfig
from posttrain.pipelines.rejection import RejectionConfig
from posttrain.training.ppo_config import PPOConfig


@command("ppo", PPOConfig)
def ppo(cfg: PPOConfig) -> int:
    """optimise a policy against a reward model with PPO (or PPO-ptx), RLOO or GRPO

    PPO with a per-token KL penalty to the SFT policy, value function initialised from the reward model,
    optional pretraining-loss mixing (PPO-ptx). The defaults are the small world's measured recipe
    (posttrain/recipes.py). --algorithm rloo|grpo is critic-free: --group-size samples per prompt, each
    against the others (RLOO: KL in the sequence reward; GRPO: a k3 KL term in the loss). --reward verifier
    (rloo/grpo only) scores 1 or 0 by the built-in world's program check of the answer for its arithmetic,
    list_ops and format prompts: not the gold judgement, and no style factors. Resumable. Metrics:
    docs/metrics.md.

    example: posttrain ppo --policy runs/demo/sft --reward runs/demo/rm
    --prompts runs/demo/world/prompts_ppo.jsonl --out runs/demo/ppo --ptx runs/demo/world/corpus.jsonl
    """
    from posttrain.stages.critic_free import critic_free
    from posttrain.stages.ppo import ppo

    run = critic_free if cfg.critic_free else ppo  # RLOO and GRPO have a stage of their own

    shown = {
        "score": "objective/score",
        "kl": "objective/kl",
        "gold": "world/gold_score",
        "clip": "ppo/policy/clipfrac",
    }
    with StepBar("ppo", shown) as bar:
        summary = run(cfg, on_step=bar, on_samples=lambda step, rows: bar.write(samples_table(step, rows)))
    gold = f", gold {summary['world/gold_score']:.3f}" if "world/gold_score" in summary else ""
    print(
        f"{cfg.algorithm.upper()}{'-ptx' if cfg.ptx else ''}: {summary['steps']} steps of "
        f"{cfg.rollout_batch} episodes; last step: score {summary['objective/score']:.3f}, KL "
        f"{summary['objective/kl']:.3f}{gold}"
    )
    print(f"wrote {cfg.out}/")
    return 0


@command("loop", LoopConfig)
def loop(cfg: LoopConfig) -> int:
    """repeat sample -> label -> RM -> PPO -> eval on the current best policy

    InstructGPT's iterated steps 2 and 3: each round samples comparisons from the best policy so far,
    labels them, trains a new reward model on all rankings so far, runs PPO, and keeps the new policy
    when the simulated labelers (the round's reward model off the built-in world) prefer its answers to
    the best's on more than half the eval prompts; gold scores are logged for monitoring only. Each
    round's reward model and PPO take the --rm-* and --ppo-* options (defaults: the measured recipe).
    Re-run with the same arguments to continue an interrupted loop.

    example: posttrain loop --sft runs/demo/sft --rm-prompts W/prompts_rm.jsonl
    --ppo-prompts W/prompts_ppo.jsonl --eval-prompts W/dev.jsonl --out runs/loop --rounds 2
    """
    from posttrain.pipelines.loop import KEEP_ABOVE
    from posttrain.pipelines.loop import loop as run

    state = run(
        cfg, on_stage=lambda r, stage: print(f"round {r}/{cfg.rounds}: {stage}", file=sys.stderr, flush=True)
    )

    def gold(row: dict) -> str:
        return f"{row['monitor/gold_score']:.4f}" if "monitor/gold_score" in row else "-"

    print(
        f"{'round':>5}  {'judge':>5}  {'win vs best':>11}  {'kept':>4}  {'gold (monitoring only)':>22}  "
        "policy"
    )
    print(f"{0:>5}  {'-':>5}  {'-':>11}  {'-':>4}  {gold(state['sft']):>22}  {cfg.sft} (SFT)")
    for r in state["rounds"]:
        print(
            f"{r['round']:>5}  {r['judge']:>5}  {r['win_rate_vs_best']:>11.3f}  "
            f"{'yes' if r['kept'] else 'no':>4}  {gold(r):>22}  {r['policy']}"
        )
    print(
        f"best: {state['best']['policy']} (round {state['best']['round']}); a round's policy is kept when "
        f"its win rate (ties half) against the best before it is above {KEEP_ABOVE:.0%}. "
        "Gold scores are monitoring only: they never choose the best."
    )
    print(f"wrote {cfg.out}/loop.json")
    return 0


@command("rejection-sampling", RejectionConfig)
def rejection_sampling(cfg: RejectionConfig) -> int:
    """best-of-K by the reward model, then SFT on the picks (Llama 2's rejection sampling)

    Sample K answers per prompt from the policy, keep the one the reward model scores highest, and
    fine-tune the policy on those picks with the SFT loss (Touvron et al. 2023, section 3.2.3). It uses
    the reward model PPO uses, so the same labeling budget. Re-run with the same arguments to continue.

    example: posttrain rejection-sampling --model runs/demo/sft --reward runs/demo/rm
    --prompts runs/demo/world/prompts_ppo.jsonl --out runs/demo/rejection
    """
    from posttrain.pipelines.rejection import rejection_sampling as run

    with StepBar("sft (picks)", {"loss": "sft/loss"}) as bar:
        summary = run(cfg, on_stage=lambda stage: bar.write(f"rejection sampling: {stage}"), on_step=bar)
    print(
        f"{summary['picks']} picks: reward-model score of the best of {cfg.k} "
        f"{summary['rm_score_best']:+.3f} against {summary['rm_score_mean']:+.3f} for a random one; "
        f"fine-tuned policy: {summary['policy']}/"
    )
    return 0


def samples_table(step: int, rows: list[dict]) -> str:
    """A few rollouts of a PPO step as aligned text lines (prompt and response cut to fit)."""

    def cut(s: str, n: int) -> str:
        return (s if len(s) <= n else s[: n - 1] + "~").replace("\n", " ")

    head = f"step {step}: " + ("score   gold  " if rows and "gold" in rows[0] else "score  ")
    lines = [head + "prompt -> response"]
    for r in rows:
        gold = f"{r['gold']:>5.2f}  " if "gold" in r else ""
        lines.append(f"  {r['score']:>+6.2f} {gold}{cut(r['prompt'], 50)} -> {cut(r['response'], 60)}")
    return "\n".join(lines)
