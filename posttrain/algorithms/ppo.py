"""The tensor math of PPO for language models: KL-shaped rewards, GAE, clipped losses.

Shapes: (B, T) over response tokens with a 0/1 `mask`; B rollouts, T response length.
"""

from __future__ import annotations

import torch

from posttrain.algorithms.masked import masked_var, token_mean


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi (Schulman 2020, "Approximating KL").

    k1 = log pi - log pi_ref (unbiased, can be negative);
    k3 = (r - 1) - log r with r = pi_ref / pi (unbiased, always >= 0).
    """
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; use 'k1' or 'k3'")


def kl_shaped_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """r_t = -beta * (log pi(a_t|s_t) - log pi_ref(a_t|s_t)) on every response token, plus the
    reward model's score (B,) at each row's last unmasked token (Ziegler et al. 2019, eq. 2;
    Ouyang et al. 2022, eq. 2).  Returns (B, T), zero where masked."""
    rewards = -beta * (logprobs - ref_logprobs) * mask
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, -1).max(dim=1).values  # (B,) -1 for empty rows
    has_tokens = last >= 0
    rows = torch.arange(mask.size(0), device=mask.device)[has_tokens]
    return rewards.index_put((rows, last[has_tokens]), scores[has_tokens].to(rewards.dtype), accumulate=True)


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016):
    delta_t = r_t + gamma * V_{t+1} - V_t,  A_t = delta_t + gamma * lam * A_{t+1},  returns = A + V.

    Masked positions are skipped: they take no part in the recursion (their values included) and
    come back as 0, so padding anywhere in a row changes nothing. After a row's last real token
    the episode ends (V = 0)."""
    B, T = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(T)):
        real = mask[:, t].bool()
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = torch.where(real, advantage, torch.zeros_like(advantage))
        next_value = torch.where(real, values[:, t], next_value)
        next_advantage = torch.where(real, advantage, next_advantage)
    returns = (advantages + values) * mask
    return advantages, returns


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    n_tokens: torch.Tensor | int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate (Schulman et al. 2017, eq. 7), negated for minimisation, mean over all
    response tokens:  max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)).
    The loss and stats are token sums divided by n_tokens (`token_mean`): pass a micro-batch's
    minibatch token count and the micro-batches' losses and stats add up to the minibatch's."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip, 1 + clip)
    loss = token_mean(torch.maximum(unclipped, clipped), mask, n_tokens)
    stats = {
        "clipfrac": token_mean((clipped > unclipped).to(ratio.dtype), mask, n_tokens),
        "approx_kl": token_mean(0.5 * log_ratio * log_ratio, mask, n_tokens),
        "ratio": token_mean(ratio, mask, n_tokens),
    }
    return loss, {k: v.detach() for k, v in stats.items()}


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    n_tokens: torch.Tensor | int | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped value loss (as in OpenAI baselines' PPO2): 0.5 * max((V - R)^2, (V_clip - R)^2),
    V_clip = V_old + clip(V - V_old, -eps, eps); mean over all response tokens, normalised by
    n_tokens as in `policy_loss`."""
    # clamp(V, V_old - eps, V_old + eps) is V_clip exactly, and V itself inside the range, where
    # V_old + clamp(V - V_old) can miss V by a rounding error and count as clipped
    clipped_values = torch.clamp(values, old_values - clip, old_values + clip)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * token_mean(torch.maximum(unclipped_error, clipped_error), mask, n_tokens)
    stats = {"clipfrac": token_mean((clipped_error > unclipped_error).to(values.dtype), mask, n_tokens)}
    return loss, {k: v.detach() for k, v in stats.items()}


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - Var(returns - V) / Var(returns) over masked-in positions: 1 is a perfect value function,
    0 no better than a constant. Not a sum over tokens: compute it once over the whole minibatch."""
    return 1 - masked_var(returns - values, mask) / masked_var(returns, mask).clamp(min=1e-8)
