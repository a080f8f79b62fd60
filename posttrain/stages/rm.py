"""`posttrain rm`: a reward model trained on K-way rankings with InstructGPT's loss.

    posttrain rm --model runs/demo/sft --data runs/demo/rankings.jsonl --out runs/demo/rm

Step 2 of InstructGPT (Ouyang et al. 2022, section 3.5): all C(K, 2) comparisons of one ranking
are one batch element; each completion is scored once and the loss averages
-log sigmoid(r_better - r_worse) over the ranking's pairs (`posttrain.algorithms.ranking_loss`),
every prompt weighing the same. Human-written completions (`source: human...`) are left out by
default: counted as the best answer they taught an RM to prefer their typos. After training,
`gain` and `bias` are stored so the SFT samples (model-sourced completions) score mean 0, std 1.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from posttrain.algorithms import ranking_loss
from posttrain.config import (
    Adapters,
    Batching,
    Cadence,
    ModelOptions,
    Options,
    Resumable,
    Scaling,
    Schedule,
    WorldRef,
    option,
    tuned,
)
from posttrain.data.corpus import file_sha256
from posttrain.data.rankings import read_rankings
from posttrain.distributed import Dist, transformer_layers
from posttrain.models.adapters import apply_lora, final_model
from posttrain.models.load import load_tokenizer, loading, resolve
from posttrain.models.reward import Scores, batch_rewards, reward_from_pretrained
from posttrain.recipes import SMALL
from posttrain.training.perf import Throughput
from posttrain.training.rm_data import Item, encode_items, order, split
from posttrain.training.schedule import cosine_lr
from posttrain.training.stage import cadences, open_stage
from posttrain.training.step import accumulate_shares, only_main, optimizer_step, start_run

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class RMSettings(
    Options, tuned(Schedule, lr=SMALL.rm_lr, epochs=SMALL.rm_epochs, weight_decay=0.01), Batching
):
    """How a reward model trains (the loop sets these for every round's reward model)."""

    eval_fraction: float = option(0.1, help="share of items (prompts) held out for accuracy", ge=0, lt=1)
    max_len: int = option(512, help="tokens per conversation (prompt cut from the left beyond this)", ge=2)
    likert_margin: float = option(
        0.0,
        help="margin per Likert point between a better and a worse completion "
        "(0: off; needs `likert` in the rankings)",
        ge=0,
    )
    human_completions: str = option(
        "exclude", help="human-written completions: exclude (default) or keep", choices=("exclude", "keep")
    )


@dataclass(kw_only=True)
class RMConfig(
    RMSettings, tuned(Cadence, eval_every=50), WorldRef, ModelOptions, Scaling, Adapters, Resumable
):
    model: str = option(
        help="the SFT model to start from (its LM head is replaced by a scalar head)", required=True
    )
    data: Path = option(
        help="rankings JSONL (posttrain label sim, label export, or an import)", required=True
    )
    out: Path = option(help="run directory to create", required=True)
    seed: int = option(
        0, help="seed for the scalar head's initialisation, the eval split and data order", ge=0
    )


def rm(cfg: RMConfig, on_step: Callable[[int, int, dict], None] = lambda *a: None) -> dict:
    d, run = open_stage(cfg)
    on_step = only_main(d, on_step)
    rankings = read_rankings(cfg.data)
    tokenizer = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)  # the new scalar head is drawn at random: make it the seed's
        with loading(cfg.model):
            model = reward_from_pretrained(
                resolve(cfg.model), tokenizer, trust_remote_code=cfg.trust_remote_code
            )
    model = apply_lora(d.cast(model), cfg, head="score", seed=cfg.seed)
    train, held = split(encode_items(rankings, tokenizer, cfg), cfg.eval_fraction, cfg.seed)
    trainer = d.wrap(Scores(model), layers=transformer_layers(model))  # what training forwards call
    optimizer, start, metrics = start_run(cfg, run, model)
    total = cfg.total_steps(math.ceil(len(train) / cfg.batch))
    pad = tokenizer.pad_token_id
    evals, saves = cadences(cfg, total)
    perf = Throughput(model, d.device, d.world)
    log.info("reward model on %d rankings (%d held out) for %d steps", len(train), len(held), total)

    step, last = start, {}
    for step in range(start + 1, total + 1):
        began = time.monotonic()
        # 1. the step's rankings
        batch = [train[i] for i in order(len(train), cfg.batch, step - 1, cfg.seed)]
        # 2. score every completion once, K-way ranking loss per prompt
        lr = cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
        loss, accuracy = train_step(model, optimizer, batch, cfg.micro_batch, pad, lr, d, trainer)
        # 3. log, evaluate, checkpoint
        seconds = time.monotonic() - began
        tokens = sum(len(e.input_ids) for item in batch for e in item.examples)
        last = {
            "rm/loss": loss,
            "rm/accuracy": accuracy,
            "rm/lr": lr,
            "rm/seconds_per_step": seconds,
            **perf.step(tokens, seconds),
        }
        if held and evals.due(step):
            last.update(prefixed(heldout_accuracy(d.local(trainer), held, pad, cfg.micro_batch, d)))
        metrics.log(step, last)
        on_step(step, total, last)
        if saves.due(step):
            run.save(step, model, optimizer)
    metrics.close()
    report = heldout_accuracy(d.local(trainer), held, pad, cfg.micro_batch, d) if held else {}
    gain, bias = normalisation(d.local(trainer), train, pad, cfg.micro_batch, d)
    summary = {**last, "steps": step, "train_rankings": len(train), "eval_rankings": len(held), **report}
    run.finish(
        final_model(model, cfg.lora_save),
        tokenizer,
        {
            "stage": "rm",
            "parent": str(cfg.model),
            "config": asdict(cfg),
            "data": {"rankings": str(cfg.data), "rankings_sha256": file_sha256(cfg.data)},
            "reward_normalisation": {"gain": gain, "bias": bias},
            "metrics": summary,
        },
    )
    return summary


def score_items(
    model, items: list[Item], pad: int, put=lambda batch: batch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, K) rewards, each completion scored once in one forward pass, (B, K) ranks (-1 pad), (B, K)
    margins."""
    k = max(len(i.examples) for i in items)
    flat = batch_rewards(model, [e for i in items for e in i.examples], pad, put)  # (sum of K_i,)
    rows = flat.split([len(i.examples) for i in items])
    scores = torch.stack([F.pad(r, (0, k - len(r))) for r in rows])  # (B, K)
    ranks = torch.tensor([i.ranks + [-1] * (k - len(i.ranks)) for i in items])  # (B, K)
    margins = torch.tensor([i.margins + [0.0] * (k - len(i.margins)) for i in items])
    return scores, ranks, margins


def pair_accuracy(scores: torch.Tensor, order_: torch.Tensor, valid: torch.Tensor) -> tuple[int, int]:
    """(correct, pairs) over pairs i, j with order_[i] < order_[j] (lower is better), both valid."""
    better = (order_.unsqueeze(-1) < order_.unsqueeze(-2)) & valid.unsqueeze(-1) & valid.unsqueeze(-2)
    correct = better & (scores.unsqueeze(-1) > scores.unsqueeze(-2))
    return int(correct.sum()), int(better.sum())


def train_step(
    model,
    optimizer,
    batch: list[Item],
    micro_batch: int,
    pad: int,
    lr: float,
    dist: Dist = Dist(),
    trainer=None,
) -> tuple[float, float]:
    return optimizer_step(
        model, optimizer, lr, lambda: accumulate_gradients(trainer or model, batch, micro_batch, pad, dist)
    )


def accumulate_gradients(
    model, batch: list[Item], micro_batch: int, pad: int, dist: Dist = Dist()
) -> tuple[float, float]:
    """Backpropagate the global batch's ranking loss into .grad, micro-batch by micro-batch (this rank's
    share of them under torchrun); returns the loss and the pair accuracy. The loss is the mean over the
    batch's rankings that have a strict pair of each one's mean pair loss: every micro-batch divides its
    sum by the whole batch's count, so the micro_batch x grad_accum split changes memory use, not the
    gradient."""
    n_rankings = sum(len({r for r in item.ranks if r >= 0}) > 1 for item in batch)

    def loss_of(chunk):
        scores, ranks, margins = score_items(model, chunk, pad, dist.put)
        loss = ranking_loss(
            scores, ranks.to(scores.device), margins.to(scores.device), n_rankings=max(1, n_rankings)
        )  # every ranking weighs the same
        correct, pairs = pair_accuracy(scores.detach().cpu(), ranks, ranks >= 0)
        return loss, {"loss": loss.item(), "correct": correct, "pairs": pairs}

    found = accumulate_shares(dist, model, batch, micro_batch, loss_of)
    return found["loss"], found["correct"] / max(1, found["pairs"])


@torch.no_grad()
def heldout_accuracy(model, held: list[Item], pad: int, micro_batch: int, dist: Dist = Dist()) -> dict:
    """Accuracy on held-out labelers' pairs, and against the gold order, overall and per family (each rank
    scores its share of the items)."""
    model.eval()
    tallies = defaultdict(lambda: [0, 0])
    mine = dist.share(held)
    with dist.gathered(model):
        scored = []
        for i in range(0, len(mine), micro_batch):
            chunk = mine[i : i + micro_batch]
            with dist.autocast():
                scores, ranks, _ = score_items(model, chunk, pad, dist.put)
            scored.append((chunk, scores.float().cpu(), ranks))
    for chunk, scores, ranks in scored:
        for row, item in enumerate(chunk):
            n = len(item.examples)
            s, r = scores[row, :n], ranks[row, :n]
            found = {"accuracy": pair_accuracy(s, r, r >= 0)}
            if item.gold is not None:  # pairs the gold scorer orders strictly (higher gold is better)
                found["gold_accuracy"] = pair_accuracy(
                    s, -torch.tensor(item.gold), torch.ones(n, dtype=torch.bool)
                )
            for key, (c, p) in found.items():
                for name in (key, f"{key}/{item.family}"):
                    tallies[name][0] += c
                    tallies[name][1] += p
    merged = defaultdict(lambda: [0, 0])
    for found in dist.gather_objects(dict(tallies)):
        for name, (c, p) in found.items():
            merged[name][0] += c
            merged[name][1] += p
    return {name: c / p for name, (c, p) in sorted(merged.items()) if p}


def prefixed(report: dict) -> dict:
    return {f"rm/eval_{k}": v for k, v in report.items() if "/" not in k}


@torch.no_grad()
def normalisation(
    model, items: list[Item], pad: int, micro_batch: int, dist: Dist = Dist()
) -> tuple[float, float]:
    """gain, bias such that gain * r + bias has mean 0 and std 1 over the model-sourced completions."""
    model.eval()
    values = []
    mine = dist.share(items)
    with dist.gathered(model):
        for i in range(0, len(mine), micro_batch):
            chunk = mine[i : i + micro_batch]
            with dist.autocast():
                raw = batch_rewards(model, [e for it in chunk for e in it.examples], pad, dist.put)
            values += [
                v for v, m in zip(raw.float().tolist(), [m for it in chunk for m in it.from_model]) if m
            ]
    values = [v for found in dist.gather_objects(values) for v in found]
    t = torch.tensor(values)
    std = float(t.std()) if len(values) > 1 else 1.0
    return 1.0 / max(std, 1e-6), -float(t.mean()) / max(std, 1e-6)
