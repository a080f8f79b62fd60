"""`posttrain sft`: supervised fine-tuning on demonstrations, loss on assistant tokens only.

    posttrain sft --model assets/base-small-seed0 --data runs/world/demos.jsonl --out runs/demo/sft

Step 1 of InstructGPT (Ouyang et al. 2022, section 3.5): causal LM loss on the labeler-written
assistant turns of multi-turn conversations, rendered with the tokenizer's chat template.
Each row is one conversation, padded on the right, so no example attends to another; rows are
grouped by length to waste little padding. The loss is the mean over all assistant tokens of
the optimizer batch, so micro-batching with accumulation gives the same gradient.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from posttrain.config import (
    Adapters,
    Batching,
    Cadence,
    ModelOptions,
    Options,
    Resumable,
    Scaling,
    Schedule,
    option,
    tuned,
)
from posttrain.data.chat import OVERLONG, Example, check_sft_record, encode_chat, fit, right_pad
from posttrain.data.corpus import file_sha256
from posttrain.data.records import read_conversations
from posttrain.distributed import Dist, transformer_layers
from posttrain.errors import UserError
from posttrain.models.adapters import apply_lora, final_model
from posttrain.models.load import load_causal_lm
from posttrain.recipes import SMALL
from posttrain.training.lm import LabelledLoss, labelled_loss
from posttrain.training.perf import Throughput
from posttrain.training.schedule import cosine_lr
from posttrain.training.stage import cadences, derive_seed, open_stage
from posttrain.training.step import accumulate_shares, only_main, optimizer_step, start_run

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SFTConfig(
    Options,
    tuned(Schedule, lr=SMALL.sft_lr, epochs=SMALL.sft_epochs),
    Batching,
    Cadence,
    ModelOptions,
    Scaling,
    Adapters,
    Resumable,
):
    model: str = option(
        help="model to fine-tune: a model directory, a .gguf file, smollm2-135m, or a hub id "
        "(the default --lr is the small world's recipe for its 4.5M model; a pretrained hub "
        "model usually wants 1e-5 to 5e-5)",
        required=True,
    )
    data: Path = option(
        help="demonstrations: conversation JSONL, each with at least one assistant turn", required=True
    )
    out: Path = option(help="run directory to create (HF model + tokenizer + posttrain.json)", required=True)
    eval_data: Path | None = option(
        None, help="held-out demonstrations for eval loss (default: --eval-fraction of --data)"
    )
    eval_fraction: float = option(
        0.05, help="share of --data held out for eval loss when --eval-data is not given", ge=0, lt=1
    )
    max_len: int = option(512, help="tokens per conversation; longer ones follow --overlong", ge=2)
    overlong: str = option(
        "truncate",
        help="over-long conversations: truncate (keep the first --max-len tokens), drop, or error",
        choices=OVERLONG,
    )
    seed: int = option(0, help="seed for the eval split and data order", ge=0)


def sft(cfg: SFTConfig, on_step: Callable[[int, int, dict], None] = lambda *a: None) -> dict:
    """Fine-tune; returns the final metrics. `on_step(step, total, metrics)` reports progress."""
    d, run = open_stage(cfg)
    on_step = only_main(d, on_step)
    records = load_demonstrations(cfg.data)
    eval_records = load_demonstrations(cfg.eval_data) if cfg.eval_data else None
    model, tokenizer = load_causal_lm(cfg.model, trust_remote_code=cfg.trust_remote_code)
    model = apply_lora(d.cast(model), cfg, seed=cfg.seed)
    train, held, data_info = prepare(records, eval_records, tokenizer, cfg)
    # what training forwards call (DDP's wrapper, or the module FSDP2 sharded; the loss module itself
    # in one process)
    trainer = d.wrap(LabelledLoss(model), layers=transformer_layers(model))
    optimizer, start, metrics = start_run(cfg, run, model)
    plan = LengthGroupedPlan([len(e.input_ids) for e in train], cfg.batch, cfg.seed)
    total = cfg.total_steps(plan.steps_per_epoch)
    pad = tokenizer.pad_token_id
    evals, saves = cadences(cfg, total)
    perf = Throughput(model, d.device, d.world)
    log.info("SFT on %d conversations (%d held out) for %d steps", len(train), len(held), total)

    step, last = start, {}
    for step in range(start + 1, total + 1):
        began = time.monotonic()
        # 1. the step's conversations, grouped by length
        batch = [train[i] for i in plan.batch(step - 1)]
        # 2. loss on assistant tokens, accumulated over micro-batches
        lr = cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
        loss, n_tokens = train_step(model, optimizer, batch, cfg.micro_batch, pad, lr, d, trainer)
        # 3. log, evaluate, checkpoint
        tokens, seconds = sum(len(e.input_ids) for e in batch), time.monotonic() - began
        last = {
            "sft/loss": loss,
            "sft/lr": lr,
            "sft/assistant_tokens": n_tokens,
            "sft/tokens_per_s": tokens / max(1e-9, seconds),
            **perf.step(tokens, seconds),
        }
        if held and evals.due(step):
            last["sft/eval_loss"] = eval_loss(trainer, held, cfg.micro_batch, pad, d)
        metrics.log(step, last)
        on_step(step, total, last)
        if saves.due(step):
            run.save(step, model, optimizer)
    metrics.close()
    summary = {**last, "steps": step, "train_examples": len(train), "eval_examples": len(held)}
    run.finish(
        final_model(model, cfg.lora_save),
        tokenizer,
        {
            "stage": "sft",
            "parent": str(cfg.model),
            "config": asdict(cfg),
            "data": data_info,
            "metrics": summary,
        },
    )
    return summary


def load_demonstrations(path: Path) -> list[tuple[str, dict]]:
    """(file:line, record) for each valid demonstration; the first bad one is a UserError."""
    records = read_conversations(path, with_location=True)
    for where, record in records:
        check_sft_record(record, where)
    return records


ENCODE_PROGRESS_EVERY = 100_000  # a million conversations take minutes to encode: say it is working


def prepare(records, eval_records, tokenizer, cfg: SFTConfig):
    """Encode, apply the over-long policy, split off the eval set; returns (train, held, data info)."""

    def encode(pairs):
        out = []
        for n, (where, record) in enumerate(pairs, 1):
            example = fit(encode_chat(tokenizer, record["messages"]), cfg.max_len, cfg.overlong, where)
            if example is not None:
                out.append(example)
            if n % ENCODE_PROGRESS_EVERY == 0:
                log.info("encoded %d of %d conversations", n, len(pairs))
        return out

    if eval_records is None:
        order = torch.randperm(len(records), generator=torch.Generator().manual_seed(cfg.seed)).tolist()
        n_eval = int(len(records) * cfg.eval_fraction)
        eval_records = [records[i] for i in order[:n_eval]]
        records = [records[i] for i in sorted(order[n_eval:])]
    train, held = encode(records), encode(eval_records)
    dropped = len(records) + len(eval_records) - len(train) - len(held)
    if dropped:
        log.warning(
            "%d over-long conversations dropped (--max-len %d, --overlong %s)",
            dropped,
            cfg.max_len,
            cfg.overlong,
        )
    if not train:
        raise UserError(f"{cfg.data}: no demonstration left to train on (all {dropped} were over --max-len)")
    info = {
        "demos": str(cfg.data),
        "demos_sha256": file_sha256(cfg.data),
        "train_examples": len(train),
        "eval_examples": len(held),
        "dropped_overlong": dropped,
    }
    return train, held, info


class LengthGroupedPlan:
    """Which examples each step trains on: per epoch, a seeded shuffle cut into mega-batches of
    50 batches, each sorted by length and cut into batches, whose order is shuffled again.
    A pure function of (seed, step), so a resumed run sees the same batches."""

    def __init__(self, lengths: list[int], batch: int, seed: int):
        self.lengths, self.batch_size, self.seed = lengths, batch, seed
        self.steps_per_epoch = math.ceil(len(lengths) / batch)
        self._epoch, self._batches = -1, []

    def batch(self, step: int) -> list[int]:
        epoch, index = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self._plan(epoch)
        return self._batches[index]

    def _plan(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(derive_seed(self.seed, "data_order", epoch))
        perm = torch.randperm(len(self.lengths), generator=g).tolist()
        mega = self.batch_size * 50
        batches = []
        for i in range(0, len(perm), mega):
            chunk = sorted(perm[i : i + mega], key=lambda j: self.lengths[j])
            batches += [chunk[k : k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def assistant_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed next-token cross-entropy over labelled (assistant) positions, and their count. `model` is the
    causal LM, or the `LabelledLoss` DDP or FSDP2 wraps."""
    return labelled_loss(model)(batch["input_ids"], batch["attention_mask"], batch["labels"])


def train_step(
    model,
    optimizer,
    batch: list[Example],
    micro_batch: int,
    pad: int,
    lr: float,
    dist: Dist = Dist(),
    trainer=None,
) -> tuple[float, int]:
    trainer = trainer or model  # train mode on what forwards (eval_loss leaves it in eval mode)
    return optimizer_step(
        trainer, optimizer, lr, lambda: accumulate_gradients(trainer, batch, micro_batch, pad, dist)
    )


def accumulate_gradients(
    model, batch: list[Example], micro_batch: int, pad: int, dist: Dist = Dist()
) -> tuple[float, int]:
    """Backpropagate the global batch's loss (mean over all its assistant tokens) into .grad, micro-batch
    by micro-batch (this rank's share of them under torchrun); returns the loss and the token count."""
    n_tokens = sum(e.n_labeled for e in batch)  # every micro-batch divides by the whole batch's count

    def loss_of(chunk):
        loss_sum, _ = assistant_loss_sum(model, dist.put(right_pad(chunk, pad)))
        return loss_sum / n_tokens, {"loss": loss_sum.item()}

    return accumulate_shares(dist, model, batch, micro_batch, loss_of)["loss"] / n_tokens, n_tokens


@torch.no_grad()
def eval_loss(trainer, held: list[Example], micro_batch: int, pad: int, dist: Dist = Dist()) -> float:
    """Mean loss over the held-out assistant tokens (each rank forwards its share). `trainer` is the model, or
    what training forwards call (`dist.wrap` of its `LabelledLoss`)."""
    trainer.eval()
    ordered = dist.share(sorted(held, key=lambda e: len(e.input_ids)))
    total, count = 0.0, 0
    with dist.gathered(trainer):
        for i in range(0, len(ordered), micro_batch):
            with dist.autocast():
                loss_sum, n = assistant_loss_sum(
                    dist.local(trainer), dist.put(right_pad(ordered[i : i + micro_batch], pad))
                )
            total, count = total + loss_sum.item(), count + n
    found = dist.sum({"total": total, "count": count})
    return found["total"] / max(1, found["count"])
