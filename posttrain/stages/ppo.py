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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from posttrain.algorithms import (AdaptiveKLController, FixedKLController, explained_variance, gae, kl_shaped_rewards,
                                  masked_mean, masked_whiten, policy_loss, token_mean, value_loss)
from posttrain.config import Cadence, Length, ModelOptions, Options, Resumable, Sampling, WorldRef, option, tuned
from posttrain.recipes import SMALL
from posttrain.data.corpus import file_sha256
from posttrain.errors import UserError
from posttrain.models.checkpoint import RunDir
from posttrain.models.policy import episode_inputs, response_logprobs, token_values
from posttrain.training.metrics import read_metrics, resume_point
from posttrain.training.lm import batch_indices, heldout_loss, lm_loss
from posttrain.training.rollout import (Rollouts, load_models, load_prompts, load_ptx, rollout,
                                      sample_table, world_for)

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PPOSettings(Options, tuned(Sampling, max_new_tokens=SMALL.max_new_tokens)):
    """PPO's hyper-parameters (defaults: the small world's measured recipe); the loop sets them every round."""

    lr: float = option(SMALL.ppo_lr, help="policy learning rate (AdamW, constant)", gt=0)
    value_lr: float | None = option(None, help="value function learning rate (default: --lr)", gt=0)
    kl_coef: float = option(SMALL.kl_coef, help="beta: per-token KL penalty to the reference policy", ge=0)
    kl_target: float | None = option(None, help="adaptive beta: target KL per episode (Ziegler et al. 2019); "
                                                "fixed beta when not given", gt=0)
    kl_horizon: int = option(10000, help="adaptive beta: horizon in episodes", ge=1)
    ptx_coef: float = option(SMALL.ptx_coef, help="gamma_ptx: weight of the pretraining LM loss (mean per token) "
                                                  "in PPO-ptx (with --ptx)", ge=0)
    ptx_batch: int = option(8, help="pretraining rows per optimizer step in PPO-ptx", ge=1)
    ptx_seq_len: int = option(128, help="tokens per pretraining row", ge=2)
    rollout_batch: int = option(SMALL.rollout_batch, help="episodes (prompts) per PPO step", ge=1)
    minibatches: int = option(SMALL.minibatches, help="minibatches per PPO epoch (minibatch = rollout_batch / "
                                                      "minibatches)", ge=1)
    micro_batch: int = option(SMALL.micro_batch, help="episodes per forward/backward pass (gradient accumulation "
                                                      "over a minibatch); a memory setting", ge=1)
    ppo_epochs: int = option(SMALL.ppo_epochs, help="passes over each rollout batch", ge=1)
    clip_range: float = option(0.2, help="PPO ratio clip epsilon", gt=0)
    value_clip: float = option(0.2, help="value clip epsilon (around the rollout's values)", gt=0)
    vf_coef: float = option(0.1, help="weight of the value loss", ge=0)
    gamma: float = option(1.0, help="discount (1: bandit episodes are short)", ge=0, le=1)
    lam: float = option(0.95, help="GAE lambda", ge=0, le=1)
    missing_eos_penalty: float = option(0.0, help="subtracted from the score of a response cut at --max-new-tokens",
                                        ge=0)

    @property
    def minibatch(self) -> int:
        return self.rollout_batch // self.minibatches

    @property
    def grad_accum(self) -> int:
        return self.minibatch // self.micro_batch

    def check(self) -> None:
        super().check()
        if self.rollout_batch % self.minibatches or self.minibatch % self.micro_batch:
            raise UserError(f"rollout_batch = minibatches x micro_batch x grad_accum must hold: --rollout-batch "
                            f"{self.rollout_batch} / --minibatches {self.minibatches} = {self.rollout_batch / self.minibatches:g}"
                            f" episodes per minibatch, which --micro-batch {self.micro_batch} must divide; "
                            "e.g. --rollout-batch 64 --minibatches 4 --micro-batch 8")


@dataclass(kw_only=True)
class PPOConfig(PPOSettings, Length, tuned(Cadence, eval_every=10, save_every=10), WorldRef, ModelOptions, Resumable):
    policy: str = option(help="the policy to optimise: the SFT model, or a later round's best policy", required=True)
    reference: str | None = option(None, help="the frozen KL reference (default: --policy; the loop passes SFT)")
    reward: Path = option(help="reward model run directory (posttrain rm); also initialises the value function",
                          required=True)
    prompts: Path = option(help="PPO prompts: conversation JSONL ending with a user turn", required=True)
    out: Path = option(help="run directory to create", required=True)
    ptx: Path | None = option(None, help="pretraining corpus (JSONL or .txt) for PPO-ptx; off when not given")
    heldout_corpus: Path | None = option(None, help="held-out pretraining text: its LM loss is logged as "
                                                    "alignment/heldout_loss (the alignment tax)")
    sample_every: int = option(10, help="steps between printed tables of sample responses", ge=1)
    seed: int = option(0, help="seed for prompt order, sampling and minibatch shuffles", ge=0)


def ppo(cfg: PPOConfig, on_step: Callable[[int, int, dict], None] = lambda *a: None,
        on_samples: Callable[[int, list[dict]], None] = lambda *a: None) -> dict:
    """Run PPO; returns the final metrics. `on_samples(step, rows)` receives a few rollouts to show."""
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir(cfg.out, resume=cfg.resume, force=cfg.force, config=cfg)
    prompts = load_prompts(cfg.prompts)
    world = world_for(prompts, cfg.world_seed, cfg.scale)
    if len(prompts) < cfg.rollout_batch:
        raise UserError(f"{cfg.prompts} has {len(prompts)} prompts, fewer than --rollout-batch {cfg.rollout_batch}; "
                        "lower --rollout-batch or add prompts")
    m = load_models(cfg)
    ptx_rows = load_ptx(cfg.ptx, m.tokenizer, cfg.ptx_seq_len) if cfg.ptx else None
    # the first 64 rows: enough to see the tax move, cheap enough to measure every --eval-every steps
    heldout_rows = load_ptx(cfg.heldout_corpus, m.tokenizer, cfg.ptx_seq_len, limit=64) if cfg.heldout_corpus else None
    run.begin()
    optimizer = torch.optim.AdamW([{"params": m.policy.parameters(), "lr": cfg.lr},
                                   {"params": m.value.parameters(), "lr": cfg.value_lr or cfg.lr}])
    kl_ctl = (AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.kl_target
              else FixedKLController(cfg.kl_coef))
    total = cfg.total_steps(len(prompts) / cfg.rollout_batch)
    start, metrics = resume_point(run, cfg.resume, m.trained, optimizer)
    if cfg.resume:
        kl_ctl.value = run.restored.get("kl_coef", kl_ctl.value)
    log.info("PPO%s on %d prompts for %d steps of %d episodes", "-ptx" if ptx_rows is not None else "",
             len(prompts), total, cfg.rollout_batch)

    step, last = start, {}
    for step in range(start + 1, total + 1):
        began = time.monotonic()
        # every step a full batch: consecutive slices of a seeded permutation per pass over the prompts
        batch = [prompts[i] for i in batch_indices(len(prompts), cfg.rollout_batch, step - 1, cfg.seed).tolist()]
        # 1. rollout: sample responses, logprobs of policy and reference, values, RM scores
        r = rollout(m, batch, cfg, seed=cfg.seed * 1_000_003 + step)
        # 2. KL-shaped rewards: score at the last token, -beta * (log pi - log pi_ref) on every token
        rewards = kl_shaped_rewards(r.scores, r.logprobs, r.ref_logprobs, r.mask, kl_ctl.value)
        # 3. advantages (GAE, whitened) and returns
        advantages, r.returns = gae(rewards, r.values, r.mask, cfg.gamma, cfg.lam)
        r.advantages = masked_whiten(advantages, r.mask)
        # 4. PPO epochs over shuffled minibatches (plus the pretraining loss in PPO-ptx)
        train = ppo_epochs(m, optimizer, r, ptx_rows, cfg, step)
        last = {**rollout_metrics(r, kl_ctl.value, world, batch), **train,
                "time/seconds_per_step": time.monotonic() - began}
        kl_ctl.update(last["objective/kl"], cfg.rollout_batch)
        if heldout_rows is not None and (step % cfg.eval_every == 0 or step == total):
            last["alignment/heldout_loss"] = heldout_loss(m.policy, heldout_rows)
        metrics.log(step, last)
        on_step(step, total, last)
        if step % cfg.sample_every == 0 or step == total:
            on_samples(step, sample_table(r, batch, world, run.partial / "samples.jsonl", step))
        if step % cfg.save_every == 0 and step < total:
            run.save(step, m.trained, optimizer, extra={"kl_coef": kl_ctl.value})
    metrics.close()
    if not last:   # resumed at the final step: nothing ran, the log's last record is the final state
        last = {k: v for k, v in read_metrics(metrics.path)[-1].items() if k != "step"}
    summary = {**last, "steps": step, "prompts": len(prompts)}
    run.finish(m.policy, m.tokenizer, manifest(cfg, summary, kl_ctl.value))
    return summary


def ppo_epochs(m, optimizer, r: Rollouts, ptx_rows, cfg: PPOConfig, step: int) -> dict:
    """Several epochs of clipped PPO updates over shuffled minibatches of one rollout batch."""
    m.policy.eval()  # no dropout: the ratio must compare the same function before and after
    m.value.eval()
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    ptx_g = torch.Generator().manual_seed(cfg.seed * 7_919 + step)
    sums: dict[str, float] = {}
    updates = 0
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(cfg.rollout_batch, generator=g)
        for mb in perm.split(cfg.minibatch):
            optimizer.zero_grad(set_to_none=True)
            ptx = None if ptx_rows is None else ptx_rows[torch.randint(len(ptx_rows), (cfg.ptx_batch,), generator=ptx_g)]
            stats = minibatch_backward(m, r, mb, ptx, cfg)
            torch.nn.utils.clip_grad_norm_(m.trained.parameters(), 1.0)
            optimizer.step()
            updates += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
    return {k: v / updates for k, v in sums.items()}


def minibatch_backward(m, r: Rollouts, rows: torch.Tensor, ptx: torch.Tensor | None, cfg: PPOSettings
                       ) -> dict[str, float]:
    """Backpropagate the loss of the minibatch `rows` of r, micro-batch by micro-batch; returns its metrics.

    The policy and value losses (and their stats) are means over all response tokens of the minibatch:
    each micro-batch adds its token sums divided by the minibatch's token count, known from the rollout
    masks before any backward pass, so --micro-batch changes memory use, not the update. PPO-ptx adds
    gamma_ptx times the LM loss's mean over every token of the `ptx` rows (all of one length)."""
    n_tokens = r.mask[rows].sum()
    stats: dict[str, float] = {}
    values, returns = [], []
    for micro in rows.split(cfg.micro_batch):
        found, (v, ret) = micro_step(m, r.select(micro), cfg, n_tokens)
        values.append(v)
        returns.append(ret)
        for k, x in found.items():
            stats[k] = stats.get(k, 0.0) + x
    values, returns = torch.cat(values), torch.cat(returns)                    # (minibatch tokens,)
    stats["ppo/value/explained_var"] = explained_variance(values, returns, torch.ones_like(values)).item()
    if ptx is not None:
        stats["ppo/ptx_loss"] = 0.0
        for chunk in ptx.split(cfg.micro_batch):
            loss = lm_loss(m.policy, chunk) * len(chunk) / len(ptx)   # equal rows: the row share is the token share
            (cfg.ptx_coef * loss).backward()
            stats["ppo/ptx_loss"] += loss.item()
    return stats


def micro_step(m, r: Rollouts, cfg: PPOSettings, n_tokens: torch.Tensor
               ) -> tuple[dict[str, float], tuple[torch.Tensor, torch.Tensor]]:
    """Forward both models on a micro-batch and backpropagate its share of the minibatch loss (token sums
    over n_tokens, the minibatch's count); returns its shares of the metrics, and V and the returns on
    its real tokens (explained variance is not a sum: it is computed over the whole minibatch)."""
    inputs = episode_inputs(r.query, r.query_mask, r.response, r.mask)
    P = r.query.size(1)
    logprobs, entropy = response_logprobs(m.policy, inputs, P, cfg.temperature)
    values = token_values(m.value, inputs, P)
    pg_loss, pg = policy_loss(logprobs, r.logprobs, r.advantages, r.mask, cfg.clip_range, n_tokens)
    vf_loss, vf = value_loss(values, r.values, r.returns, r.mask, cfg.value_clip, n_tokens)
    (pg_loss + cfg.vf_coef * vf_loss).backward()
    real = r.mask.bool()
    return ({"ppo/loss/policy": pg_loss.item(), "ppo/loss/value": vf_loss.item(),
             "ppo/policy/clipfrac": pg["clipfrac"].item(), "ppo/policy/approx_kl": pg["approx_kl"].item(),
             "ppo/policy/entropy": token_mean(entropy, r.mask, n_tokens).item(),
             "ppo/value/clipfrac": vf["clipfrac"].item()},
            (values.detach()[real], r.returns[real]))


def rollout_metrics(r: Rollouts, beta: float, world, batch: list[dict]) -> dict:
    kl = ((r.logprobs - r.ref_logprobs) * r.mask).sum(1)                                   # (B,)
    out = {"objective/score": r.scores.mean().item(), "objective/kl": kl.mean().item(),
           "objective/non_score_reward": (-beta * kl).mean().item(),
           "objective/rlhf_reward": (r.scores - beta * kl).mean().item(),
           "objective/entropy": (r.entropy * r.mask).sum(1).mean().item(),
           "objective/kl_coef": beta,
           "ppo/returns/mean": masked_mean(r.returns, r.mask).item(),
           "ppo/response_length": r.mask.sum(1).float().mean().item(),
           "ppo/eos_rate": r.ended.float().mean().item()}
    if world is not None:
        out["world/gold_score"] = sum(world.judge(p, t).score for p, t in zip(batch, r.texts)) / len(batch)
    return out


def manifest(cfg: PPOConfig, summary: dict, beta: float) -> dict:
    data = {"prompts": str(cfg.prompts), "prompts_sha256": file_sha256(cfg.prompts)}
    if cfg.ptx:
        data.update(ptx=str(cfg.ptx), ptx_sha256=file_sha256(cfg.ptx))
    return {"stage": "ppo", "parent": str(cfg.policy), "reference": str(cfg.reference or cfg.policy), "reward_model": str(cfg.reward), "config": asdict(cfg),
            "final_kl_coef": beta, "data": data, "metrics": summary}
