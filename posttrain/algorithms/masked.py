"""Masked statistics over (B, T) tensors; `mask` is 1 on real tokens and 0 on padding."""

from __future__ import annotations

import torch


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of x over positions where mask is 1 (over all of them, or along `dim`)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def token_mean(
    x: torch.Tensor, mask: torch.Tensor, n_tokens: torch.Tensor | int | None = None
) -> torch.Tensor:
    """Sum of x over masked-in positions divided by n_tokens (default: their count, the masked mean).
    Given the token count of a larger batch that x is one micro-batch of, the micro-batches' results
    add up to that batch's masked mean however it is split (gradient accumulation)."""
    if n_tokens is None:
        return masked_mean(x, mask)
    return (x * mask.to(x.dtype)).sum() / n_tokens


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Biased variance (divides by the count, not count - 1) over masked-in positions."""
    centred = x - masked_mean(x, mask)
    return masked_mean(centred * centred, mask)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / std over masked-in positions; with shift_mean=False the mean is added back,
    which keeps the sign of e.g. advantages (Ziegler et al. 2019, lm-human-preferences `whiten`).
    Masked-out positions come back as 0."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(x.dtype)
