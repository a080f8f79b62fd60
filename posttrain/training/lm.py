"""The next-token LM loss, its held-out measurement, and the batches of a step (pretraining and PPO-ptx)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lm_loss(model, rows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of rows (B, T + 1): inputs rows[:, :-1], targets rows[:, 1:]."""
    logits = model(input_ids=rows[:, :-1]).logits                       # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))


@torch.no_grad()
def heldout_loss(model, held: torch.Tensor, batch: int = 32) -> float:
    model.eval()
    losses = [lm_loss(model, chunk).item() * len(chunk) for chunk in held.split(batch)]
    return sum(losses) / len(held)


def batch_indices(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """Rows of step `step` (0-based): consecutive slices of a fresh permutation per epoch."""
    positions = torch.arange(step * batch, (step + 1) * batch)
    out = torch.empty(batch, dtype=torch.long)
    for epoch in positions.div(n, rounding_mode="floor").unique().tolist():
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        mask = positions.div(n, rounding_mode="floor") == epoch
        out[mask] = perm[positions[mask] % n]
    return out
