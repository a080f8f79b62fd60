"""`posttrain ppo` and `posttrain loop`: step 3 of the recipe and the iterated loop."""

from __future__ import annotations

import argparse
import sys

from posttrain.config import add_arguments, from_namespace


def add_commands(commands: argparse._SubParsersAction) -> None:
    from posttrain.stages.loop import LoopConfig
    from posttrain.stages.ppo import PPOConfig

    p = commands.add_parser("ppo", help="optimise a policy against a reward model with PPO (or PPO-ptx)",
                            description="PPO with a per-token KL penalty to the SFT policy, value function "
                                        "initialised from the reward model, optional pretraining-loss mixing "
                                        "(PPO-ptx). Resumable. Metrics: docs/metrics.md.",
                            epilog="example: posttrain ppo --policy runs/demo/sft --reward runs/demo/rm "
                                   "--prompts runs/demo/world/prompts_ppo.jsonl --out runs/demo/ppo "
                                   "--ptx runs/demo/world/corpus.jsonl")
    add_arguments(p, PPOConfig)
    p.set_defaults(run=cmd_ppo)

    p = commands.add_parser("loop", help="repeat sample -> label -> RM -> PPO -> eval on the current best policy",
                            description="InstructGPT's iterated steps 2 and 3: each round samples comparisons from "
                                        "the best policy so far, labels them, trains a new reward model on all "
                                        "rankings so far, runs PPO, evaluates, and keeps the best. Re-run with the "
                                        "same arguments to continue an interrupted loop.",
                            epilog="example: posttrain loop --sft runs/demo/sft --rm-prompts W/prompts_rm.jsonl "
                                   "--ppo-prompts W/prompts_ppo.jsonl --eval-prompts W/dev.jsonl --out runs/loop "
                                   "--rounds 2")
    add_arguments(p, LoopConfig)
    p.set_defaults(run=cmd_loop)


def cmd_ppo(args: argparse.Namespace) -> int:
    from posttrain.stages.ppo import PPOConfig, ppo

    cfg = from_namespace(PPOConfig, args)
    shown = {"score": "objective/score", "kl": "objective/kl", "gold": "world/gold_score",
             "clip": "ppo/policy/clipfrac"}
    from posttrain.cli import StepBar

    with StepBar("ppo", shown) as bar:
        summary = ppo(cfg, on_step=bar, on_samples=lambda step, rows: bar.write(samples_table(step, rows)))
    gold = f", gold {summary['world/gold_score']:.3f}" if "world/gold_score" in summary else ""
    print(f"PPO{'-ptx' if cfg.ptx else ''}: {summary['steps']} steps of {cfg.rollout_batch} episodes; last step: "
          f"score {summary['objective/score']:.3f}, KL {summary['objective/kl']:.3f}{gold}")
    print(f"wrote {cfg.out}/")
    return 0


def cmd_loop(args: argparse.Namespace) -> int:
    from posttrain.stages.loop import LoopConfig, loop

    cfg = from_namespace(LoopConfig, args)
    state = loop(cfg, on_stage=lambda r, stage: print(f"round {r}/{cfg.rounds}: {stage}", file=sys.stderr, flush=True))
    print(f"{'round':>5}  {'score':>7}  policy")
    print(f"{0:>5}  {state['sft_score']:>7.4f}  {cfg.sft} (SFT)")
    for r in state["rounds"]:
        print(f"{r['round']:>5}  {r['score']:>7.4f}  {r['policy']}")
    print(f"best: {state['best']['policy']} (round {state['best']['round']})")
    print(f"wrote {cfg.out}/loop.json")
    return 0


def samples_table(step: int, rows: list[dict]) -> str:
    """A few rollouts of a PPO step as aligned text lines (prompt and response cut to fit)."""
    cut = lambda s, n: (s if len(s) <= n else s[:n - 1] + "~").replace("\n", " ")
    head = f"step {step}: " + ("score   gold  " if rows and "gold" in rows[0] else "score  ")
    lines = [head + "prompt -> response"]
    for r in rows:
        gold = f"{r['gold']:>5.2f}  " if "gold" in r else ""
        lines.append(f"  {r['score']:>+6.2f} {gold}{cut(r['prompt'], 50)} -> {cut(r['response'], 60)}")
    return "\n".join(lines)
