"""What the two policy-optimisation stages (posttrain/stages/ppo.py: PPO and PPO-ptx;
posttrain/stages/critic_free.py: RLOO and GRPO) share around their loops: the opening (prompts, models,
corpora, optimizer, beta, the step to resume from), each step's prompts, the bookkeeping after its update
(metrics, adaptive beta, held-out loss, samples, checkpoints) and the finish."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from posttrain.algorithms import AdaptiveKLController, FixedKLController
from posttrain.distributed import Dist
from posttrain.errors import UserError
from posttrain.models.adapters import final_model
from posttrain.models.checkpoint import RunDir
from posttrain.training.lm import batch_indices, heldout_loss
from posttrain.training.metrics import MetricsLog, read_metrics, resume_point
from posttrain.training.perf import Throughput, perf_metrics
from posttrain.training.policy_models import PolicyModels, load_models
from posttrain.training.ppo_config import PPOConfig
from posttrain.training.rl_inputs import load_ptx, stage_prompts
from posttrain.training.rl_metrics import manifest, rollout_metrics, sample_table, step_flops
from posttrain.training.rollout import Rollouts
from posttrain.training.stage import Every, cadences, open_stage
from posttrain.training.step import adamw, only_main

__all__ = ["RLStage", "open_rl_stage"]

log = logging.getLogger(__name__)


@dataclass
class RLStage:
    """An open policy-optimisation run: what its loop uses, and what it does around each update."""

    cfg: PPOConfig
    dist: Dist
    run: RunDir
    prompts: list[dict]
    world: object  # the built-in world of the prompts (gold scores, monitoring only); None for others
    models: PolicyModels
    ptx_rows: torch.Tensor | None  # (N, ptx_seq_len + 1) PPO-ptx rows; None without --ptx
    heldout_rows: torch.Tensor | None  # (64, ptx_seq_len + 1) of --heldout-corpus; None without it
    optimizer: torch.optim.Optimizer
    kl_ctl: AdaptiveKLController | FixedKLController
    start: int  # the last step done before this process (0, or the checkpoint resumed)
    total: int
    metrics: MetricsLog
    perf: Throughput
    on_step: Callable[[int, int, dict], None]
    on_samples: Callable[[int, list[dict]], None]
    step: int = 0  # the last step done
    last: dict = field(default_factory=dict)  # its metrics

    @property
    def beta(self) -> float:
        """The KL coefficient now (fixed, or adapted to --kl-target)."""
        return self.kl_ctl.value

    def steps(self) -> range:
        return range(self.start + 1, self.total + 1)

    def prompts_of(self, step: int, repeat: int = 1) -> list[dict]:
        """Step `step`'s prompts, each `repeat` times in a row: consecutive slices of a seeded permutation per
        pass over the prompts, so that every step gets a full batch."""
        picked = batch_indices(len(self.prompts), self.cfg.prompts_per_step, step - 1, self.cfg.seed).tolist()
        return [self.prompts[i] for i in picked for _ in range(repeat)]

    def after_update(
        self, step: int, r: Rollouts, batch: list[dict], train: dict, began: float, extra: dict | None = None
    ) -> None:
        """Load the updated policy into the sampler, then log the step's metrics (the rollout's, the update's
        `train`, the algorithm's `extra`, time and throughput), adapt beta, measure the held-out loss, show
        samples and save a checkpoint when they are due."""
        cfg, m, d = self.cfg, self.models, self.dist
        m.backend.load_weights(m.policy)  # the next rollout samples from the updated policy
        seconds = time.monotonic() - began
        last = {
            **rollout_metrics(r, self.beta, self.world, batch),
            **train,
            **(extra or {}),
            "time/seconds_per_step": seconds,
            **perf_metrics(step_flops(m, r, cfg, self.ptx_rows is not None), seconds, self.perf.peak),
        }
        self.kl_ctl.update(last["objective/kl"], cfg.rollout_batch)
        evals, saves = cadences(cfg, self.total)
        if self.heldout_rows is not None and evals.due(step):
            with d.gathered(m.policy):
                last["alignment/heldout_loss"] = heldout_loss(m.policy, self.heldout_rows)
        self.metrics.log(step, last)
        self.on_step(step, self.total, last)
        if d.main and Every(cfg.sample_every, self.total, at_end=True).due(step):
            self.on_samples(
                step, sample_table(r, batch, self.world, self.run.partial / "samples.jsonl", step)
            )
        if saves.due(step):
            self.run.save(step, m.trained, self.optimizer, extra={"kl_coef": self.beta})
        self.step, self.last = step, last

    def finish(self) -> dict:
        """Write the final policy and the manifest; returns the final metrics."""
        self.metrics.close()
        last = self.last
        if not last and self.dist.main:  # resumed at the final step: nothing ran, the log's last is final
            last = {k: v for k, v in read_metrics(self.metrics.path)[-1].items() if k != "step"}
        summary = {**last, "steps": self.step, "prompts": len(self.prompts)}
        m = self.models
        self.run.finish(
            final_model(m.policy, self.cfg.lora_save), m.tokenizer, manifest(self.cfg, summary, self.beta)
        )
        return summary


def open_rl_stage(
    cfg: PPOConfig,
    on_step: Callable[[int, int, dict], None],
    on_samples: Callable[[int, list[dict]], None],
) -> RLStage:
    """Open a run of `cfg`: check it, join the torchrun job, load the prompts, models and corpora, and set up
    the optimizer (policy and value function at their own rates), beta and the step to start from."""
    d, run = open_stage(cfg)
    check_world_size(cfg, d)
    prompts, world, verifier = stage_prompts(cfg)
    m = load_models(cfg, verifier, d)
    ptx_rows = load_ptx(cfg.ptx, m.tokenizer, cfg.ptx_seq_len) if cfg.ptx else None
    # the first 64 rows: enough to see the tax move, cheap enough to measure every --eval-every steps
    heldout_rows = (
        load_ptx(cfg.heldout_corpus, m.tokenizer, cfg.ptx_seq_len, limit=64) if cfg.heldout_corpus else None
    )
    run.begin()
    lr = {"policy": cfg.lr, "value": cfg.value_lr or cfg.lr}
    optimizer = adamw([{"params": module.parameters(), "lr": lr[name]} for name, module in m.trained.items()])
    kl_ctl = (
        AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        if cfg.kl_target
        else FixedKLController(cfg.kl_coef)
    )
    total = cfg.total_steps(len(prompts) / cfg.prompts_per_step)
    start, metrics = resume_point(run, cfg.resume, m.trained, optimizer)
    perf = Throughput(m.policy, d.device, d.world)
    if cfg.resume:
        kl_ctl.value = run.restored.get("kl_coef", kl_ctl.value)
    log.info(
        "%s%s on %d prompts for %d steps of %d episodes",
        cfg.algorithm.upper(),
        "-ptx" if ptx_rows is not None else "",
        len(prompts),
        total,
        cfg.rollout_batch,
    )
    return RLStage(
        cfg=cfg,
        dist=d,
        run=run,
        prompts=prompts,
        world=world,
        models=m,
        ptx_rows=ptx_rows,
        heldout_rows=heldout_rows,
        optimizer=optimizer,
        kl_ctl=kl_ctl,
        start=start,
        total=total,
        metrics=metrics,
        perf=perf,
        on_step=only_main(d, on_step),
        on_samples=only_main(d, on_samples),
        step=start,
    )


def check_world_size(cfg: PPOConfig, dist: Dist) -> None:
    """Under torchrun each rank samples an equal block of every rollout batch and trains on an equal share
    of every minibatch (and of the PPO-ptx rows): the world size must divide them."""
    if not dist.on:
        return
    sizes = {
        "--rollout-batch": cfg.rollout_batch,
        "minibatch (--rollout-batch / --minibatches)": cfg.minibatch,
    }
    if cfg.ptx:
        sizes["--ptx-batch"] = cfg.ptx_batch
    bad = [f"{name} {size}" for name, size in sizes.items() if size % dist.world]
    if bad:
        raise UserError(
            f"{dist.world} processes share each batch equally, and {', '.join(bad)} "
            f"{'is' if len(bad) == 1 else 'are'} not a multiple of {dist.world}; pick sizes the "
            "world size divides (e.g. --rollout-batch 64 --minibatches 4 --ptx-batch 8)"
        )
