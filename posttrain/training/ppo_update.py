"""The update PPO, PPO-ptx, RLOO and GRPO share: several epochs of shuffled minibatches of one rollout
batch (`ppo_epochs`), each minibatch one optimizer step whose loss is backpropagated micro-batch by
micro-batch and, under torchrun, rank by rank (`minibatch_backward`), the loss of a micro-batch composed
in one function (`episode_loss`)."""

from __future__ import annotations

import contextlib
import functools

import torch

from posttrain.algorithms import explained_variance, kl_penalty, policy_loss, token_mean, value_loss
from posttrain.distributed import Dist
from posttrain.models.policy import episode_inputs, response_logprobs, token_values
from posttrain.training.lm import lm_loss
from posttrain.training.policy_models import PolicyModels
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.training.rollout import Rollouts
from posttrain.training.stage import derive_seed
from posttrain.training.step import clipped_step

__all__ = ["episode_loss", "minibatch_backward", "ppo_epochs"]


def ppo_epochs(
    m: PolicyModels,
    optimizer: torch.optim.Optimizer,
    r: Rollouts,
    ptx_rows: torch.Tensor | None,
    cfg: PPOConfig,
    step: int,
    beta: float = 0.0,
    dist: Dist = Dist(),
) -> dict:
    """Several epochs of clipped PPO updates over shuffled minibatches of one rollout batch, each with
    `--ptx-batch` rows of `ptx_rows` drawn for PPO-ptx; returns the mean of the minibatches' metrics."""
    m.trained.eval()  # no dropout: the ratio must compare the same function before and after
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "minibatches", step))
    ptx_g = torch.Generator().manual_seed(derive_seed(cfg.seed, "ptx", step))
    sums: dict[str, float] = {}
    updates = 0
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(cfg.rollout_batch, generator=g)
        for mb in perm.split(cfg.minibatch):
            ptx = (
                None
                if ptx_rows is None
                else ptx_rows[torch.randint(len(ptx_rows), (cfg.ptx_batch,), generator=ptx_g)]
            )
            backward = functools.partial(minibatch_backward, m, r, mb, ptx, cfg, beta=beta, dist=dist)
            stats = clipped_step(m.trained, optimizer, backward)
            updates += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
    return {k: v / updates for k, v in sums.items()}


def minibatch_backward(
    m: PolicyModels,
    r: Rollouts,
    rows: torch.Tensor,
    ptx: torch.Tensor | None,
    cfg: PPOSettings,
    beta: float = 0.0,
    dist: Dist = Dist(),
) -> dict[str, float]:
    """Backpropagate the loss of the minibatch `rows` of r, micro-batch by micro-batch; returns its metrics.

    Each loss term is a mean over all response tokens of the minibatch: each micro-batch adds its token
    sums divided by the minibatch's token count, known from the rollout masks before any backward pass,
    so --micro-batch changes memory use, not the update. PPO-ptx adds gamma_ptx times the LM loss's mean
    over every token of the `ptx` rows (all of one length).

    Under torchrun each rank takes an equal share of the minibatch's episodes and ptx rows, and the ranks'
    gradients are reduced in the last backward, a policy (and value) micro-batch: the PPO-ptx rows go first.
    """
    n_tokens = r.mask[rows].sum()
    stats: dict[str, float] = {}
    if ptx is not None:
        stats["ppo/ptx_loss"] = ptx_backward(m, ptx, cfg, dist)
    values, returns = [], []
    micros = dist.share(by_length(r, rows)).split(cfg.micro_batch)
    for i, micro in enumerate(micros):
        with contextlib.ExitStack() as syncing:
            for trainer in m.trainers:
                syncing.enter_context(dist.syncing(trainer, last=i == len(micros) - 1))
            found, (v, ret) = micro_step(
                m, r.select(micro).to(dist.device), cfg, n_tokens.to(dist.device), beta, dist
            )
        values.append(v)
        returns.append(ret)
        for k, x in found.items():
            stats[k] = stats.get(k, 0.0) + x
    stats = dist.sum(stats)
    if m.value is not None:  # explained variance is not a sum: it is computed over the whole minibatch
        values = torch.cat(dist.gather_objects(torch.cat(values).cpu()))  # every rank's, in rank order
        returns = torch.cat(dist.gather_objects(torch.cat(returns).cpu()))
        stats["ppo/value/explained_var"] = explained_variance(values, returns, torch.ones_like(values)).item()
    return stats


def ptx_backward(m: PolicyModels, ptx: torch.Tensor, cfg: PPOSettings, dist: Dist) -> float:
    """Backpropagate gamma_ptx times the LM loss of this rank's share of the PPO-ptx rows, micro-batch by
    micro-batch, the ranks' gradients not yet reduced; returns the loss (the mean over every row's tokens)."""
    mine, total = dist.share(ptx), 0.0
    for chunk in mine.split(cfg.micro_batch):
        with dist.syncing(m.train_policy, last=False):
            with dist.autocast():
                loss = lm_loss(m.train_policy, dist.put({"rows": chunk})["rows"]) * len(chunk) / len(ptx)
            (cfg.ptx_coef * dist.loss_scale * loss).backward()  # equal rows: the row share is the token share
        total += loss.item()
    return total


def by_length(r: Rollouts, rows: torch.Tensor) -> torch.Tensor:
    """The minibatch's episodes ordered by response, then prompt, length: each micro-batch is trimmed to its
    longest row (`Rollouts.select`), so rows of like length together leave little padding to forward and
    backpropagate. The loss is a sum over tokens, so the order changes the update only by rounding."""
    length = r.mask[rows].sum(1) * (r.query.size(1) + 1) + r.query_mask[rows].sum(1)  # (n,)
    return rows[torch.sort(length, stable=True).indices]


def micro_step(
    m: PolicyModels,
    r: Rollouts,
    cfg: PPOSettings,
    n_tokens: torch.Tensor,
    beta: float = 0.0,
    dist: Dist = Dist(),
) -> tuple[dict[str, float], tuple[torch.Tensor | None, torch.Tensor | None]]:
    """Backpropagate a micro-batch's share of the minibatch loss (token sums over n_tokens, the minibatch's
    count); returns its shares of the metrics, and V and the returns on its real tokens (None, None without
    a value function)."""
    inputs = episode_inputs(r.query, r.query_mask, r.response, r.mask)
    loss, stats, values = episode_loss(m, r, inputs, cfg, n_tokens, beta, dist)
    (loss * dist.loss_scale).backward()
    if values is None:
        return stats, (None, None)
    real = r.mask.bool()
    return stats, (values.detach()[real], r.returns[real])


def episode_loss(
    m: PolicyModels,
    r: Rollouts,
    inputs: dict,
    cfg: PPOSettings,
    n_tokens: torch.Tensor,
    beta: float,
    dist: Dist,
) -> tuple[torch.Tensor, dict[str, float], torch.Tensor | None]:
    """The loss of a micro-batch of episodes, each term a token sum over the minibatch's n_tokens:

        PPO   L = L_clip + c_vf * L_V      (Schulman et al. 2017, eq. 9, with no entropy bonus)
        RLOO  L = L_clip                   (its KL is in the reward)
        GRPO  L = L_clip + beta * KL_k3    (Shao et al. 2024, DeepSeekMath, eq. 3)

    with L_clip the clipped surrogate over the rollout's advantages, L_V the clipped value loss and KL_k3
    the k3 estimate of KL(pi || pi_ref) per token (Schulman 2020). Returns the loss, its metrics and the
    value function's V (B, T) (None without one)."""
    P = r.query.size(1)
    with dist.autocast():
        logprobs, entropy = response_logprobs(m.train_policy, inputs, P, cfg.temperature)
    loss, pg = policy_loss(logprobs, r.logprobs, r.advantages, r.mask, cfg.clip_range, n_tokens)
    stats = {
        "ppo/loss/policy": loss.item(),
        "ppo/policy/clipfrac": pg["clipfrac"].item(),
        "ppo/policy/approx_kl": pg["approx_kl"].item(),
        "ppo/policy/entropy": token_mean(entropy, r.mask, n_tokens).item(),
    }
    if cfg.kl_in_loss:
        kl = token_mean(kl_penalty(logprobs, r.ref_logprobs, "k3"), r.mask, n_tokens)
        loss = loss + beta * kl
        stats["grpo/kl"] = kl.item()
    values = None
    if m.value is not None:
        with dist.autocast():
            values = token_values(m.train_value, inputs, P)
        vf_loss, vf = value_loss(values, r.values, r.returns, r.mask, cfg.value_clip, n_tokens)
        loss = loss + cfg.vf_coef * vf_loss
        stats["ppo/loss/value"], stats["ppo/value/clipfrac"] = vf_loss.item(), vf["clipfrac"].item()
    return loss, stats, values
