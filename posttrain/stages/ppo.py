"""`posttrain ppo`: optimise the SFT policy against the reward model with PPO (or PPO-ptx).

    posttrain ppo --policy runs/demo/sft --reward runs/demo/rm --prompts runs/world/prompts_ppo.jsonl \\
                  --out runs/demo/ppo [--ptx runs/world/corpus.jsonl --ptx-coef 0.1]

Step 3 of InstructGPT (Ouyang et al. 2022, section 3.5, eq. 2), with the details of Ziegler et al.
2019 and lm-human-preferences: bandit episodes (prompt -> whole response); reward = the reward
model's normalised score at the last token minus beta * (log pi - log pi_SFT) on every token
(fixed or adaptive beta); value function initialised from the reward model; GAE with gamma = 1,
lambda = 0.95; whitened advantages; clipped policy and value losses, each a mean over all response
tokens of a minibatch (micro-batching only sets memory use); several epochs of shuffled
minibatches. PPO-ptx adds gamma_ptx times the pretraining LM loss to every minibatch.

EOS and truncation: a response ends at its first EOS, which belongs to it (the policy chose to
stop). A response cut at --max-new-tokens keeps its reward-model score unless
--missing-eos-penalty is set, which subtracts that much from it (as in TRL).

`--algorithm rloo|grpo` runs the critic-free stage, posttrain/stages/critic_free.py, on the same config
(posttrain/training/ppo_config.py), rollout and update (posttrain/training/).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from posttrain.algorithms import gae, kl_shaped_rewards, masked_whiten
from posttrain.training.ppo_config import PPOConfig
from posttrain.training.ppo_update import ppo_epochs
from posttrain.training.rl_stage import open_rl_stage
from posttrain.training.rollout import rollout
from posttrain.training.stage import derive_seed


def ppo(
    cfg: PPOConfig,
    on_step: Callable[[int, int, dict], None] = lambda *a: None,
    on_samples: Callable[[int, list[dict]], None] = lambda *a: None,
) -> dict:
    """Run PPO; returns the final metrics. `on_samples(step, rows)` receives a few rollouts to show."""
    if cfg.critic_free:
        raise ValueError(f"--algorithm {cfg.algorithm} is posttrain.stages.critic_free's, not PPO's")
    s = open_rl_stage(cfg, on_step, on_samples)
    m = s.models
    for step in s.steps():
        began = time.monotonic()
        batch = s.prompts_of(step)
        # 1. rollout: sample responses, logprobs of policy and reference, values, reward-model scores
        r = rollout(m, batch, cfg, seed=derive_seed(cfg.seed, "rollout", step), dist=s.dist)
        # 2. KL-shaped rewards: score at the last token, -beta * (log pi - log pi_ref) on every token
        rewards = kl_shaped_rewards(r.scores, r.logprobs, r.ref_logprobs, r.mask, s.beta)
        # 3. advantages (GAE, whitened) and returns
        advantages, r.returns = gae(rewards, r.values, r.mask, cfg.gamma, cfg.lam)
        r.advantages = masked_whiten(advantages, r.mask)
        # 4. PPO epochs over shuffled minibatches (plus the pretraining loss in PPO-ptx)
        train = ppo_epochs(m, s.optimizer, r, s.ptx_rows, cfg, step, dist=s.dist)
        s.after_update(step, r, batch, train, began)
    return s.finish()
