"""What a policy-optimisation step reports besides its update's losses: the rollout's metrics
(`objective/*`, docs/metrics.md), its FLOPs for the throughput metrics, the sample table, and the
run's manifest (posttrain.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from posttrain.algorithms import masked_mean
from posttrain.data.corpus import file_sha256
from posttrain.models.adapters import is_lora
from posttrain.training.perf import forward_flops, matmul_parameters, training_flops
from posttrain.training.policy_models import PolicyModels
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.training.rollout import Rollouts

__all__ = ["manifest", "rollout_metrics", "sample_table", "step_flops"]


def rollout_metrics(r: Rollouts, beta: float, world, batch: list[dict]) -> dict:
    """The batch's objective (score, KL to the reference, their sum), entropy, response length and EOS rate,
    and, on the built-in world's prompts, the gold score (monitoring only: nothing trains on it)."""
    kl = ((r.logprobs - r.ref_logprobs) * r.mask).sum(1)  # (B,)
    out = {
        "objective/score": r.scores.mean().item(),
        "objective/kl": kl.mean().item(),
        "objective/non_score_reward": (-beta * kl).mean().item(),
        "objective/rlhf_reward": (r.scores - beta * kl).mean().item(),
        "objective/entropy": (r.entropy * r.mask).sum(1).mean().item(),
        "objective/kl_coef": beta,
    }
    if r.returns is not None:
        out["ppo/returns/mean"] = masked_mean(r.returns, r.mask).item()
    out.update(
        {
            "ppo/response_length": r.mask.sum(1).float().mean().item(),
            "ppo/eos_rate": r.ended.float().mean().item(),
        }
    )
    if world is not None:
        out["world/gold_score"] = sum(world.judge(p, t).score for p, t in zip(batch, r.texts)) / len(batch)
    return out


def step_flops(m: PolicyModels, r: Rollouts, cfg: PPOSettings, ptx: bool) -> float:
    """A step's FLOPs (posttrain.training.perf's approximations) over its real tokens: the rollout's sampling
    (the policy's forward over prompt and response), reference, value and reward-model forwards, then every
    PPO epoch's forward and backward of the policy and the value function, and the PPO-ptx rows. The policy's
    LM head runs only where a response token is predicted (the sampler's and `response_logprobs`'
    `logits_to_keep`), not over the prompt: counting it there over-counted a step (twice over on a model whose
    head is most of its weights)."""
    tokens, answers = int(r.query_mask.sum() + r.mask.sum()), int(r.mask.sum())
    n = {
        name: matmul_parameters(model)
        for name, model in (("policy", m.policy), ("value", m.value), ("reward", m.reward and m.reward.model))
        if model is not None
    }
    head = m.policy.get_output_embeddings().weight.numel()

    def policy(count):  # the backbone over every token, the LM head over the response's
        return count(n["policy"] - head, tokens) + count(head, answers)

    flops = policy(forward_flops) * (1 + (m.ref is not None or is_lora(m.policy)))
    flops += forward_flops(n.get("value", 0) + n.get("reward", 0), tokens)
    flops += cfg.ppo_epochs * (policy(training_flops) + training_flops(n.get("value", 0), tokens))
    if ptx:
        flops += (
            cfg.ppo_epochs * cfg.minibatches * training_flops(n["policy"], cfg.ptx_batch * cfg.ptx_seq_len)
        )
    return flops


def sample_table(r: Rollouts, batch: list[dict], world, path: Path, step: int, n: int = 4) -> list[dict]:
    """A few episodes of this step, appended to `samples.jsonl`."""
    rows = []
    for i in range(min(n, len(batch))):
        row = {
            "step": step,
            "prompt": batch[i]["messages"][-1]["content"],
            "response": r.texts[i],
            "score": round(float(r.scores[i]), 3),
        }
        if world is not None:
            row["gold"] = round(world.judge(batch[i], r.texts[i]).score, 3)
        rows.append(row)
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return rows


def manifest(cfg: PPOConfig, summary: dict, beta: float) -> dict:
    """The posttrain.json of a finished run: its parents, config, data hashes and final metrics."""
    data = {"prompts": str(cfg.prompts), "prompts_sha256": file_sha256(cfg.prompts)}
    if cfg.ptx:
        data.update(ptx=str(cfg.ptx), ptx_sha256=file_sha256(cfg.ptx))
    return {
        "stage": "ppo",
        "parent": str(cfg.policy),
        "reference": str(cfg.reference or cfg.policy),
        "reward_model": str(cfg.reward),
        "config": asdict(cfg),
        "final_kl_coef": beta,
        "data": data,
        "metrics": summary,
    }
