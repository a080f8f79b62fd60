"""`posttrain ppo --algorithm rloo|grpo`: optimise the SFT policy critic-free, with RLOO or GRPO.

    posttrain ppo --policy runs/demo/sft --reward runs/demo/rm|verifier --prompts PROMPTS \\
                  --out runs/demo/rloo --algorithm rloo|grpo [--group-size 4]

Critic-free (`--algorithm rloo|grpo`): no value function (none is loaded or trained); each step takes
rollout_batch / K prompts (K = --group-size) and samples K responses to each, and each response's
advantage, one number broadcast to all its tokens, compares it with the others to its prompt. Rollout,
scoring, the clipped surrogate over tokens, PPO-ptx, checkpoints and metrics are PPO's.
- RLOO (Ahmadian et al. 2024, "Back to Basics"; as TRL's RLOOTrainer): the KL is in the reward, at the
  sequence level: R = score - beta * sum_t (log pi - log pi_ref); advantage = R minus the mean R of the
  prompt's other K - 1 samples, not whitened. The paper's RLOO is one on-policy update per batch: pass
  --ppo-epochs 1 --minibatches 1 for it (the ratio is then 1 and the surrogate is REINFORCE); the
  defaults stay the recipe's, and more epochs reuse the batch as PPO does, clipped.
- GRPO (Shao et al. 2024, DeepSeekMath, eq. 3): advantage = (score - group mean) / (group sample std +
  1e-4) from the raw scores; the KL is a loss term instead, beta times the k3 estimate
  (pi_ref/pi - 1 - log(pi_ref/pi), Schulman 2020) averaged over the minibatch's response tokens, like the
  surrogate (DeepSeekMath averages per sequence first; posttrain keeps one token mean for both terms).
--kl-coef is beta for all three, and --kl-target adapts it for all three from objective/kl.

`--reward verifier` (RLOO and GRPO only: there is no reward model to start PPO's value function from)
scores a response 1 or 0 by the built-in world's program check of the answer (posttrain/world/verifier.py:
arithmetic, list_ops and format prompts; no style factors), never by the gold scorer's judgement. Prompts
of other families have no such check: they are left out with a warning giving the count, and a prompt
file with none of those families, or not of the built-in world, is refused.

"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from posttrain.algorithms import grpo_advantages, rloo_advantages, sequence_kl_rewards
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.training.ppo_update import ppo_epochs
from posttrain.training.rl_stage import open_rl_stage
from posttrain.training.rollout import Rollouts, rollout
from posttrain.training.stage import derive_seed


def critic_free(
    cfg: PPOConfig,
    on_step: Callable[[int, int, dict], None] = lambda *a: None,
    on_samples: Callable[[int, list[dict]], None] = lambda *a: None,
) -> dict:
    """Run RLOO or GRPO (cfg.algorithm); returns the final metrics. `on_samples(step, rows)` receives a few
    rollouts to show."""
    if not cfg.critic_free:
        raise ValueError("--algorithm ppo is posttrain.stages.ppo's, not a critic-free algorithm")
    s = open_rl_stage(cfg, on_step, on_samples)
    m = s.models
    for step in s.steps():
        began = time.monotonic()
        batch = s.prompts_of(step, repeat=cfg.group_size)  # K samples of each prompt in a row: a group
        # 1. rollout: sample responses, logprobs of policy and reference, reward-model (or verifier) scores
        r = rollout(m, batch, cfg, seed=derive_seed(cfg.seed, "rollout", step), dist=s.dist)
        # 2-3. each response against the others to its prompt (RLOO: score - beta * KL; GRPO: score)
        advantages = group_advantages(r, s.beta, cfg)  # (B,) one per response
        r.advantages = advantages.unsqueeze(1) * r.mask  # (B, T) on each of its tokens
        group = group_metrics(advantages, r.scores, cfg)
        # 4. PPO epochs over shuffled minibatches (plus the pretraining loss in PPO-ptx; GRPO's KL term)
        train = ppo_epochs(m, s.optimizer, r, s.ptx_rows, cfg, step, beta=s.beta, dist=s.dist)
        s.after_update(step, r, batch, train, began, extra=group)
    return s.finish()


def group_advantages(r: Rollouts, beta: float, cfg: PPOSettings) -> torch.Tensor:
    """(B,) RLOO's or GRPO's advantage of each response (the module docstring says which reward, which KL)."""
    if cfg.algorithm == "rloo":
        rewards = sequence_kl_rewards(r.scores, r.logprobs, r.ref_logprobs, r.mask, beta)  # (B,)
        return rloo_advantages(rewards, cfg.group_size)
    return grpo_advantages(r.scores, cfg.group_size)


def group_metrics(advantages: torch.Tensor, scores: torch.Tensor, cfg: PPOSettings) -> dict:
    """RLOO's or GRPO's statistics of the step's (B,) advantages and of its groups of K scores to one
    prompt."""
    scores = scores.view(-1, cfg.group_size)  # (B / K, K)
    name = cfg.algorithm
    return {
        f"{name}/advantage/std": advantages.std(correction=0).item(),
        f"{name}/advantage/abs_max": advantages.abs().max().item(),
        f"{name}/group/score_std": scores.std(1, correction=1).mean().item(),
        f"{name}/group/tied_frac": (scores == scores[:, :1]).all(1).float().mean().item(),
    }
