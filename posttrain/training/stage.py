"""What every training stage shares around its loop: how it opens (check the config, set the threads,
join the torchrun job, open its run folder), when it evaluates and saves, and how it derives the seeds
of its random streams from the run seed."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from posttrain import distributed
from posttrain.distributed import Dist
from posttrain.errors import UserError
from posttrain.models.checkpoint import RunDir


def open_stage(cfg, *, join: bool = True) -> tuple[Dist, RunDir]:
    """Check `cfg`, set torch's CPU threads (`--threads`), join the torchrun job (`--fsdp`, `--dtype`)
    and open the run folder (`--out`, `--resume`, `--force`). `join=False` keeps the stage in one
    process (a stage that has no distributed path says why where it passes it) and refuses a torchrun
    launch of several processes."""
    cfg.check()
    if not join and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        stage = type(cfg).__name__.removesuffix("Config").lower()  # DPOConfig: dpo
        raise UserError(
            f"posttrain {stage} runs in one process: under torchrun every process would train on "
            "all the data and write the same --out; run it without torchrun"
        )
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    d = distributed.setup(cfg) if join else Dist()
    run = RunDir(cfg.out, resume=cfg.resume, force=cfg.force, config=cfg, dist=d if join else None)
    return d, run


@dataclass(frozen=True)
class Every:
    """Something a stage does every `every` steps of `total` (named apart from config.Cadence, the
    options that set `every`). `at_end`: also on the last step whatever
    its number (held-out evaluation, samples); a checkpoint is not (the final save replaces it).

    >>> evals, saves = Every(10, 25, at_end=True), Every(10, 20, at_end=False)
    >>> [s for s in range(1, 26) if evals.due(s)], [s for s in range(1, 21) if saves.due(s)]
    ([10, 20, 25], [10])
    """

    every: int
    total: int
    at_end: bool

    def due(self, step: int) -> bool:
        if step == self.total:
            return self.at_end
        return step % self.every == 0


def cadences(cfg, total: int) -> tuple[Every, Every]:
    """A stage's held-out evaluations (`--eval-every`, and on the last step) and resumable checkpoints
    (`--save-every`, not on the last step: the final save replaces it) over `total` steps."""
    return Every(cfg.eval_every, total, at_end=True), Every(cfg.save_every, total, at_end=False)


# Each random stream of a run has its own multiplier, so that two purposes never draw the same seed
# at the same step. The values are the ones the stages used before they shared this function (a run
# seeded as before reproduces its weights bit for bit); "rollout" and "minibatches" share one, as they did.
_MULTIPLIERS = {"data_order": 100_003, "rollout": 1_000_003, "minibatches": 1_000_003, "ptx": 7_919}


def derive_seed(seed: int, purpose: str, step: int) -> int:
    """The seed of `purpose`'s random stream at `step` (or epoch) of a run seeded `seed`.

    >>> derive_seed(3, "data_order", 2), derive_seed(3, "ptx", 2)
    (300011, 23759)
    """
    return seed * _MULTIPLIERS[purpose] + step
