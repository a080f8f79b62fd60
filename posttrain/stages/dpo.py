"""`posttrain dpo`: direct preference optimisation on K-way rankings, with no reward model and no sampling.

    posttrain dpo --model runs/demo/sft --data runs/demo/rankings.jsonl --out runs/demo/dpo

Rafailov et al. 2023: the policy's log-ratio to a frozen reference is an implicit reward,
r(x, y) = beta log(pi(y|x) / pi_ref(y|x)), trained with the Bradley-Terry loss a reward model
would be (`posttrain.algorithms.dpo_loss`; `--loss ipo` is Azar et al. 2023's squared variant).
Every strictly ordered pair of a ranking is a comparison (ties make none), as `posttrain rm` uses
them; a ranking is one batch element, each of its completions scored once per step, and the loss
is the mean over rankings of each one's mean over its pairs, however the batch is cut into
micro-batches. A completion's log-prob is summed over its own tokens (the final assistant turn
and its EOS): the prompt, earlier assistant turns included, is context. The reference's log-probs
are computed once, before the first step. Human-written completions are left out by default, as
in `posttrain rm`. Held-out items measure the implicit reward's pair accuracy, against their
labelers and, on world prompts, against the gold order (monitoring only).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from posttrain.algorithms import DPO_LOSSES, dpo_loss
from posttrain.config import (
    Batching,
    Cadence,
    ModelOptions,
    Options,
    Resumable,
    Schedule,
    WorldRef,
    option,
    tuned,
)
from posttrain.data.chat import IGNORE, Example, right_pad
from posttrain.data.corpus import file_sha256
from posttrain.data.rankings import read_rankings
from posttrain.errors import UserError
from posttrain.models.load import load_causal_lm
from posttrain.models.policy import upcast
from posttrain.recipes import SMALL
from posttrain.training.dpo_data import Item, encode_items, split
from posttrain.training.lm import batch_indices
from posttrain.training.perf import Throughput
from posttrain.training.schedule import cosine_lr
from posttrain.training.stage import cadences, open_stage
from posttrain.training.step import optimizer_step, start_run

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DPOConfig(
    Options,
    tuned(Schedule, lr=SMALL.dpo_lr, epochs=SMALL.dpo_epochs),
    Batching,
    tuned(Cadence, eval_every=50),
    WorldRef,
    ModelOptions,
    Resumable,
):
    model: str = option(
        help="the policy to start from, usually the SFT model: a model directory, a .gguf file, "
        "smollm2-135m, or a hub id",
        required=True,
    )
    data: Path = option(
        help="rankings JSONL (posttrain label sim, label export, or an import)", required=True
    )
    out: Path = option(help="run directory to create (HF model + tokenizer + posttrain.json)", required=True)
    reference: str | None = option(
        None,
        help="the frozen reference pi_ref (default: --model as it is before "
        "training); it must use --model's tokenizer",
    )
    beta: float = option(
        SMALL.dpo_beta,
        help="beta: the implicit reward is beta x log(pi / pi_ref); a larger beta "
        "keeps the policy closer to the reference",
        gt=0,
    )
    loss: str = option(
        "sigmoid",
        help="sigmoid (DPO: -log sigmoid(beta h)) or ipo (IPO: (h - 1/(2 beta))^2), "
        "h = a pair's log-ratio gap",
        choices=DPO_LOSSES,
    )
    eval_fraction: float = option(
        0.1, help="share of items (prompts) held out for implicit-reward accuracy", ge=0, lt=1
    )
    max_len: int = option(512, help="tokens per conversation (prompt cut from the left beyond this)", ge=2)
    human_completions: str = option(
        "exclude", help="human-written completions: exclude (default) or keep", choices=("exclude", "keep")
    )
    seed: int = option(0, help="seed for the eval split and data order", ge=0)


def dpo(cfg: DPOConfig, on_step: Callable[[int, int, dict], None] = lambda *a: None) -> dict:
    """Train the policy on the rankings' pairs; returns the final metrics. `on_step(step, total, metrics)`."""
    # One process: the update below accumulates and steps without DDP or FSDP (no `Dist`), so under
    # torchrun every rank would train on all the rankings and write the same --out; open_stage refuses it.
    _, run = open_stage(cfg, join=False)
    rankings = read_rankings(cfg.data)
    model, tokenizer = load_causal_lm(cfg.model, trust_remote_code=cfg.trust_remote_code)
    train, held = split(encode_items(rankings, tokenizer, cfg), cfg.eval_fraction, cfg.seed)
    pad = tokenizer.pad_token_id
    # 0. pi_ref's log-probs, once: before a resume restores the policy's trained weights
    reference_logprobs(cfg, model, tokenizer, train + held)
    optimizer, start, metrics = start_run(cfg, run, model)
    total = cfg.total_steps(math.ceil(len(train) / cfg.batch))
    size = min(cfg.batch, len(train))
    evals, saves = cadences(cfg, total)
    perf = Throughput(model)  # a step trains the policy only: pi_ref's log-probs were computed above
    pairs = sum(len(i.pairs) for i in train)
    shape = f"{len(train)} rankings, {pairs} pairs ({len(held)} rankings held out)"
    log.info("DPO on %s for %d steps", shape, total)

    step, last, report = start, {}, {}
    for step in range(start + 1, total + 1):
        began = time.monotonic()
        # 1. the step's rankings
        batch = [train[i] for i in batch_indices(len(train), size, step - 1, cfg.seed).tolist()]
        # 2. every strict pair's loss, each completion scored once, every ranking weighing the same
        lr = cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
        measured = optimizer_step(model, optimizer, lr, partial(accumulate_gradients, model, batch, cfg, pad))
        # 3. log, evaluate, checkpoint
        seconds = time.monotonic() - began
        tokens = sum(len(e.input_ids) for item in batch for e in item.examples)
        last = {
            "dpo/loss": measured["loss"],
            "dpo/reward_margin": measured["reward_margin"],
            "dpo/reward_accuracy": measured["reward_accuracy"],
            "dpo/lr": lr,
            "dpo/seconds_per_step": seconds,
            **perf.step(tokens, seconds),
        }
        if held and evals.due(step):
            report = heldout_implicit_reward(model, held, cfg, pad)
            last.update({f"dpo/eval_{k}": v for k, v in report.items() if "/" not in k})
        metrics.log(step, last)
        on_step(step, total, last)
        if saves.due(step):
            run.save(step, model, optimizer)
    metrics.close()
    summary = {
        **last,
        "steps": step,
        "train_rankings": len(train),
        "train_pairs": pairs,
        "eval_rankings": len(held),
        **{f"eval_{k}": v for k, v in report.items() if "/" in k},
    }
    run.finish(model, tokenizer, manifest(cfg, summary))
    return summary


def manifest(cfg: DPOConfig, summary: dict) -> dict:
    """What posttrain.json records of a DPO run."""
    return {
        "stage": "dpo",
        "parent": str(cfg.model),
        "config": asdict(cfg),
        "reference": str(cfg.reference or cfg.model),
        "metrics": summary,
        "data": {"rankings": str(cfg.data), "rankings_sha256": file_sha256(cfg.data)},
    }


# --- log-probs and the loss -----------------------------------------------------------------
def sequence_logprobs(model, examples: list[Example], pad: int) -> torch.Tensor:
    """(N,) log pi(y | x) of each example's labelled tokens, summed; one right-padded forward pass."""
    padded = right_pad(examples, pad)
    ids, mask, labels = padded["input_ids"], padded["attention_mask"], padded["labels"]  # (N, W) each
    width = ids.size(1)
    # logits only from the position before the first labelled token on: the LM head skips the prompts
    first = max(1, int((labels != IGNORE).int().argmax(1).min()))
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=width - first + 1).logits[:, :-1]
    targets = labels[:, first:]  # (N, W - first)
    # the softmax over the vocabulary only where a label is (it is most of a step's time on CPU)
    rows, cols = (targets != IGNORE).nonzero(as_tuple=True)  # (L,), (L,)
    token_logprobs = -F.cross_entropy(
        upcast(logits[rows, cols]), targets[rows, cols], reduction="none"
    )  # (L,)
    return torch.zeros(len(examples), dtype=token_logprobs.dtype).index_add(0, rows, token_logprobs)


def pair_loss(logprobs: torch.Tensor, items: list[Item], cfg: DPOConfig, n_rankings: int):
    """dpo_loss over the pairs of `items`, whose examples' log-probs are `logprobs` (flat); each pair
    weighs 1 / (its ranking's pairs x n_rankings), the rankings of the whole optimizer batch."""
    chosen, rejected, weights, offset = [], [], [], 0
    for item in items:
        chosen += [offset + a for a, _ in item.pairs]
        rejected += [offset + b for _, b in item.pairs]
        weights += [1.0 / (len(item.pairs) * n_rankings)] * len(item.pairs)
        offset += len(item.examples)
    ref = torch.tensor([x for item in items for x in item.ref_logprobs], dtype=logprobs.dtype)
    c, r = torch.tensor(chosen), torch.tensor(rejected)
    return dpo_loss(
        logprobs[c],
        logprobs[r],
        ref[c],
        ref[r],
        cfg.beta,
        cfg.loss,
        torch.tensor(weights, dtype=logprobs.dtype),
    )


def accumulate_gradients(model, batch: list[Item], cfg: DPOConfig, pad: int) -> dict[str, float]:
    """Backpropagate the batch's loss into .grad, --micro-batch rankings at a time; every micro-batch's
    pairs are weighted by the whole batch's ranking count, so the split changes memory, not the gradient.
    Returns the loss and dpo_loss's stats over the batch."""
    totals: dict[str, float] = defaultdict(float)
    for i in range(0, len(batch), cfg.micro_batch):
        chunk = batch[i : i + cfg.micro_batch]
        logprobs = sequence_logprobs(model, [e for item in chunk for e in item.examples], pad)
        loss, stats = pair_loss(logprobs, chunk, cfg, len(batch))
        loss.backward()
        totals["loss"] += loss.item()
        for k, v in stats.items():
            totals[k] += v.item()
    return dict(totals)


@torch.no_grad()
def reference_logprobs(cfg: DPOConfig, policy, tokenizer, items: list[Item]) -> None:
    """Set each item's `ref_logprobs`: under --reference, else under the policy as loaded."""
    reference = policy
    if cfg.reference:
        reference, ref_tokenizer = load_causal_lm(cfg.reference, trust_remote_code=cfg.trust_remote_code)
        if ref_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise UserError(
                f"--reference {cfg.reference} has another tokenizer than --model {cfg.model}; DPO "
                "compares the two models' log-probs of the same tokens, so pass a reference that "
                "shares the policy's tokenizer (usually the SFT model the policy came from)"
            )
    reference.eval()
    for i in range(0, len(items), cfg.micro_batch):
        chunk = items[i : i + cfg.micro_batch]
        flat = sequence_logprobs(
            reference, [e for item in chunk for e in item.examples], tokenizer.pad_token_id
        )
        for item, values in zip(chunk, flat.split([len(item.examples) for item in chunk])):
            item.ref_logprobs = values.tolist()


@torch.no_grad()
def heldout_implicit_reward(model, held: list[Item], cfg: DPOConfig, pad: int) -> dict[str, float]:
    """On held-out rankings: the loss and the implicit reward's margin and accuracy (mean over rankings,
    as in training), and on world prompts its accuracy on the pairs the gold scorer orders strictly,
    overall and per family (`gold_accuracy/<family>`)."""
    model.eval()
    totals: dict[str, float] = defaultdict(float)
    gold = defaultdict(lambda: [0, 0])
    for i in range(0, len(held), cfg.micro_batch):
        chunk = held[i : i + cfg.micro_batch]
        flat = sequence_logprobs(model, [e for item in chunk for e in item.examples], pad)
        loss, stats = pair_loss(flat, chunk, cfg, len(held))
        totals["loss"] += loss.item()
        for k in ("reward_margin", "reward_accuracy"):
            totals[k] += stats[k].item()
        for item, logprobs in zip(chunk, flat.split([len(item.examples) for item in chunk])):
            if item.gold is None:
                continue
            reward = (logprobs - torch.tensor(item.ref_logprobs, dtype=logprobs.dtype)).tolist()
            pairs = [(a, b) for a, ga in enumerate(item.gold) for b, gb in enumerate(item.gold) if ga > gb]
            right = sum(reward[a] > reward[b] for a, b in pairs)
            for name in ("gold_accuracy", f"gold_accuracy/{item.family}"):
                gold[name][0] += right
                gold[name][1] += len(pairs)
    return {**totals, **{name: c / n for name, (c, n) in sorted(gold.items()) if n}}
