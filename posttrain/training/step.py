"""One optimizer step, as every stage takes it (set the LR, zero, accumulate, clip to norm 1, step), and
the start of a fine-tuning run."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from posttrain.models.checkpoint import RunDir
from posttrain.training.metrics import MetricsLog, resume_point

Measured = TypeVar("Measured")


def optimizer_step(model, optimizer, lr: float, accumulate: Callable[[], Measured]) -> Measured:
    """`accumulate()` backpropagates the step's loss into .grad (micro-batch by micro-batch) and returns
    what it measured; the gradient is clipped to norm 1 (InstructGPT, Ziegler et al. 2019) before the step."""
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    measured = accumulate()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return measured


def start_run(cfg, run: RunDir, model) -> tuple[torch.optim.Optimizer, int, MetricsLog]:
    """Set up a fine-tuning stage's run directory (made from cfg's --out, --resume, --force before the
    model loaded), its AdamW (--lr, --weight-decay), the step it starts from and its metrics log."""
    run.begin()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, metrics = resume_point(run, cfg.resume, model, optimizer)
    return optimizer, start, metrics
