"""One optimizer step, as every stage takes it (set the LR, zero, accumulate, clip to norm 1, step), and
the start of a fine-tuning run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from posttrain.distributed import Dist
from posttrain.models.checkpoint import RunDir
from posttrain.training.metrics import MetricsLog, resume_point

Measured = TypeVar("Measured")


def optimizer_step(model, optimizer, lr: float, accumulate: Callable[[], Measured]) -> Measured:
    """`accumulate()` backpropagates the step's loss into .grad (micro-batch by micro-batch) and returns
    what it measured; the gradient is clipped to norm 1 (InstructGPT, Ziegler et al. 2019) before the step."""
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    return clipped_step(model, optimizer, accumulate)


def clipped_step(model, optimizer, accumulate: Callable[[], Measured]) -> Measured:
    """Zero .grad, `accumulate()`, clip the gradient to norm 1, step: `optimizer_step` without its
    train mode and single learning rate (PPO's update keeps dropout off, and its policy and value
    function have rates of their own)."""
    optimizer.zero_grad(set_to_none=True)
    measured = accumulate()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return measured


def accumulate_shares(
    dist: Dist,
    trainer: torch.nn.Module,
    batch: Sequence,
    micro_batch: int,
    loss_of: Callable[[list], tuple[torch.Tensor, dict[str, float]]],
) -> dict[str, float]:
    """Backpropagate a global batch's loss into .grad on every rank, micro-batch by micro-batch.

    `loss_of(chunk)` forwards `trainer` on a chunk and returns its loss, already divided by the whole
    global batch's count (so the micro-batch split, and the split across ranks, change memory use, not
    the gradient), and what it measured as sums. Returns those sums over every rank. Gradients are
    reduced in the last backward only (`Dist.syncing`)."""
    chunks = dist.micro_batches(list(batch), micro_batch)
    sums: dict[str, float] = {}
    for i, (chunk, weight) in enumerate(chunks):
        with dist.syncing(trainer, last=i == len(chunks) - 1):
            with dist.autocast():
                loss, measured = loss_of(chunk)
            (loss * (weight * dist.loss_scale)).backward()
        for k, v in measured.items():
            sums[k] = sums.get(k, 0.0) + weight * v
    return dist.sum(sums)


def adamw(params, **options) -> torch.optim.AdamW:
    """Every stage's AdamW: the fused kernel (one pass over each parameter; on 2 CPU threads it took a fifth
    of the default foreach kernels' time in bench/sft.py's profile, with identical updates)."""
    return torch.optim.AdamW(params, fused=True, **options)


def start_run(cfg, run: RunDir, model) -> tuple[torch.optim.Optimizer, int, MetricsLog]:
    """Set up a fine-tuning stage's run directory (made from cfg's --out, --resume, --force before the
    model loaded), its AdamW (--lr, --weight-decay), the step it starts from and its metrics log."""
    run.begin()
    optimizer = adamw(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, metrics = resume_point(run, cfg.resume, model, optimizer)
    return optimizer, start, metrics


def only_main(dist: Dist, report: Callable) -> Callable:
    """A stage's progress callback on rank 0; a no-op on the other ranks."""
    return report if dist.main else (lambda *a, **k: None)
