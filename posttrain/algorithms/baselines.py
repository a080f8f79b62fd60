"""Critic-free advantages: each response against the other responses to its own prompt.

Shapes: (B*K,) scores of K consecutive samples per prompt (rows i*K .. i*K + K-1 answer prompt i);
(B*K, T) logprobs over response tokens with a 0/1 `mask`.
"""

from __future__ import annotations

import torch


def _groups(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B*K,) -> (B, K), refusing a K below 2 or a length K does not divide."""
    if k < 2:
        raise ValueError(f"a group needs at least 2 samples per prompt, got k={k}")
    if scores.dim() != 1 or scores.numel() % k:
        raise ValueError(f"scores of shape {tuple(scores.shape)} are not groups of k={k} consecutive samples")
    return scores.view(-1, k)


def rloo_advantages(scores: torch.Tensor, k: int) -> torch.Tensor:
    """REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics", eq. 6):
    A_i = r_i - 1/(K-1) * sum_{j != i} r_j, the baseline of each sample the mean of the other K-1
    samples of its prompt (unbiased: it does not depend on sample i). Returns (B*K,)."""
    grouped = _groups(scores, k)  # (B, K)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)  # (B, K) mean of the others
    return (grouped - baseline).reshape(-1)


def grpo_advantages(scores: torch.Tensor, k: int, eps: float = 1e-4) -> torch.Tensor:
    """Group Relative Policy Optimization's outcome advantages (Shao et al. 2024, DeepSeekMath, sec. 4.1.2):
    A_i = (r_i - mean(r_group)) / (std(r_group) + eps), with the sample standard deviation (divides by
    K - 1, as torch.std and TRL's GRPOTrainer do). A group whose K scores are equal gets 0 everywhere.
    Returns (B*K,)."""
    grouped = _groups(scores, k)  # (B, K)
    mean = grouped.mean(1, keepdim=True)
    std = grouped.std(1, keepdim=True, correction=1)
    return ((grouped - mean) / (std + eps)).reshape(-1)


def sequence_kl_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, beta: float
) -> torch.Tensor:
    """The sequence-level KL-shaped reward of RLOO (Ahmadian et al. 2024, sec. 3; TRL's RLOOTrainer):
    R = score - beta * sum_t (log pi(a_t|s_t) - log pi_ref(a_t|s_t)) over each response's tokens
    (the k1 estimate of KL(pi || pi_ref) of the whole response). Returns (B,)."""
    kl = ((logprobs - ref_logprobs) * mask.to(logprobs.dtype)).sum(1)  # (B,)
    return scores.to(kl.dtype) - beta * kl
