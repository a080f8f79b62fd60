"""InstructGPT's reward-model loss over K-way rankings (Ouyang et al. 2022, eq. 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ranking_loss(
    scores: torch.Tensor,
    ranks: torch.Tensor,
    margins: torch.Tensor | None = None,
    n_rankings: torch.Tensor | int | None = None,
) -> torch.Tensor:
    """Mean over prompts of each prompt's mean  -log sigmoid(r_better - r_worse - m)  over its pairs.

    scores:  (B, K) reward of each completion, each completion scored once.
    ranks:   (B, K) integers, 0 is best; equal ranks tie (no pair); -1 marks padding.
    margins: (B, K) optional per-completion values (e.g. scaled Likert ratings); a pair's margin is
             m = margins_better - margins_worse, so clearer preferences ask for a wider gap
             (the margin loss of Touvron et al. 2023, Llama 2, eq. 2). None means m = 0.
    n_rankings: what the sum of the per-prompt means is divided by (default: the prompts here with a
             strict pair); pass the count of a larger batch these B are one micro-batch of, and the
             micro-batches' losses add up to that batch's mean (gradient accumulation).
    All C(K, 2) comparisons of one prompt form one batch element, so a prompt with many pairs
    weighs as much as one with few. Prompts with no strict pair are left out of the mean.
    """
    valid = ranks >= 0
    better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)  # (B, K, K)
    gap = scores.unsqueeze(2) - scores.unsqueeze(1)  # [b, i, j] = r_i - r_j
    if margins is not None:
        gap = gap - (margins.unsqueeze(2) - margins.unsqueeze(1))
    pair_loss = -F.logsigmoid(gap) * better
    pairs = better.sum(dim=(1, 2))  # (B,)
    has_pairs = pairs > 0
    per_prompt = pair_loss.sum(dim=(1, 2))[has_pairs] / pairs[has_pairs]
    if n_rankings is None:
        n_rankings = has_pairs.sum()
    return per_prompt.sum() / n_rankings if has_pairs.any() else scores.sum() * 0.0
