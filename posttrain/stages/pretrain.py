"""`posttrain pretrain`: a small Llama-style base model trained with next-token loss.

    posttrain pretrain --data runs/world/corpus.jsonl --out runs/demo/base

The tokenizer is trained on the corpus (byte-level BPE with a chat template) unless one is
given. Batches are a pure function of (seed, step), so a resumed run sees exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from posttrain.config import Batching, Cadence, Options, Resumable, Scaling, Schedule, Threads, option, tuned
from posttrain.data.corpus import file_sha256, pack, read_documents
from posttrain.distributed import Dist
from posttrain.errors import UserError
from posttrain.models.build import SIZES, n_params, new_llama
from posttrain.models.checkpoint import RunDir
from posttrain.models.load import prepare_tokenizer
from posttrain.models.tokenizer import train_tokenizer
from posttrain.training.lm import batch_indices, heldout_loss, lm_loss
from posttrain.training.metrics import resume_point
from posttrain.training.perf import Throughput
from posttrain.training.schedule import cosine_lr
from posttrain.training.stage import cadences, open_stage
from posttrain.training.step import accumulate_shares, adamw, only_main, optimizer_step

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class PretrainConfig(
    Options,
    tuned(Schedule, lr=2e-3, warmup_steps=100, weight_decay=0.1, epochs=4.0),
    tuned(Batching, micro_batch=16),
    tuned(Cadence, eval_every=200, save_every=200),
    Threads,
    Scaling,
    Resumable,
):
    data: Path = option(
        help='corpus: JSONL of {"text"} records (world export\'s corpus.jsonl) or a .txt file', required=True
    )
    out: Path = option(help="run directory to create (HF model + tokenizer + posttrain.json)", required=True)
    heldout: Path | None = option(
        None,
        help="held-out corpus for eval loss; default: corpus_heldout.jsonl "
        "beside --data, else 2%% of the blocks",
    )
    tokenizer: Path | None = option(
        None, help="an existing tokenizer directory; default: train BPE on --data"
    )
    vocab_size: int = option(4096, help="BPE vocabulary size when training a tokenizer", ge=256)
    size: str = option("base", help="model size preset", choices=tuple(SIZES))
    seq_len: int = option(256, help="tokens per training sequence", ge=2)
    time_budget: float | None = option(None, help="stop after this many seconds, save and finish early", gt=0)
    seed: int = option(0, help="seed for initialisation and data order", ge=0)

    def check(self) -> None:
        super().check()
        if self.seq_len > SIZES[self.size].max_len:
            raise UserError(
                f"--seq-len {self.seq_len} exceeds the {self.size} model's context of "
                f"{SIZES[self.size].max_len}; lower --seq-len"
            )


def pretrain(cfg: PretrainConfig, on_step: Callable[[int, int, dict], None] = lambda *a: None) -> dict:
    """Train a base model; returns the final metrics. `on_step(step, total, metrics)` reports progress."""
    d, run = open_stage(cfg)
    on_step = only_main(d, on_step)
    docs = read_documents(cfg.data)  # bad input fails before anything is written
    heldout_path = _heldout_path(cfg)
    heldout_docs = read_documents(heldout_path) if heldout_path else None
    run.begin()
    tokenizer = _shared_tokenizer(cfg, run, docs, d)
    blocks, held = _blocks(docs, heldout_docs, tokenizer, cfg.seq_len)  # (N, seq_len + 1), (M, seq_len + 1)
    del docs, heldout_docs  # the blocks hold what training needs; a scaled corpus's text is GBs
    model = d.cast(new_llama(SIZES[cfg.size], tokenizer, cfg.seed))
    trainer = d.wrap(model)
    optimizer = adamw(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay)
    total = cfg.max_steps or max(1, int(cfg.epochs * len(blocks) / cfg.batch))
    start, metrics = resume_point(run, cfg.resume, model, optimizer)
    evals, saves = cadences(cfg, total)
    perf = Throughput(model, d.device, d.world)
    shape = f"{n_params(model)} params on {len(blocks)} blocks of {cfg.seq_len} tokens"
    log.info("pretraining %s for %d steps", shape, total)

    began, step, last = time.monotonic(), start, {}
    for step in range(start + 1, total + 1):
        # 1. the step's batch, a pure function of (seed, step)
        batch = blocks[batch_indices(len(blocks), cfg.batch, step - 1, cfg.seed)]
        # 2. next-token loss over micro-batches, one optimizer step
        lr = cosine_lr(step, total, cfg.warmup_steps, cfg.lr, cfg.min_lr_ratio)
        stepped = time.monotonic()
        loss = train_step(model, optimizer, batch, cfg.micro_batch, lr, d, trainer)
        # 3. log, evaluate, checkpoint
        now = time.monotonic()
        tokens_per_s = (step - start) * cfg.batch * cfg.seq_len / (now - began)
        last = {
            "pretrain/loss": loss,
            "pretrain/lr": lr,
            "pretrain/tokens_per_s": tokens_per_s,
            **perf.step(cfg.batch * cfg.seq_len, now - stepped),
        }
        if evals.due(step):
            with d.gathered(model):
                last["pretrain/heldout_loss"] = heldout_loss(model, held)
        metrics.log(step, last)
        on_step(step, total, last)
        if saves.due(step):
            run.save(step, model, optimizer)
        if _out_of_time(cfg.time_budget, began, step, total, d):
            break
    if "pretrain/heldout_loss" not in last:
        with d.gathered(model):
            last["pretrain/heldout_loss"] = heldout_loss(model, held)
        metrics.log(step, last)
    metrics.close()
    summary = {
        **last,
        "steps": step,
        "params": n_params(model),
        "train_tokens": step * cfg.batch * cfg.seq_len,
    }
    run.finish(model, tokenizer, _manifest(cfg, heldout_path, blocks, summary))
    return summary


def _shared_tokenizer(cfg: PretrainConfig, run: RunDir, docs: list[str], d: Dist):
    """Rank 0 trains (or finds) the tokenizer; the other ranks read what it saved."""
    if d.main:
        tokenizer = _tokenizer(cfg, run, docs)
    d.barrier()
    if not d.main:
        tokenizer = _tokenizer(cfg, run, docs)
    return tokenizer


def _blocks(docs: list[str], heldout_docs: list[str] | None, tokenizer, seq_len: int):
    """The training and held-out blocks (rows of seq_len + 1 tokens): the held-out corpus packed, or
    without one, the first 2% of the corpus's blocks."""
    blocks = pack(docs, tokenizer, seq_len)  # (N, seq_len + 1)
    if heldout_docs is None:
        n_held = max(1, len(blocks) // 50)
        return blocks[n_held:], blocks[:n_held]
    return blocks, pack(heldout_docs, tokenizer, seq_len)


def _out_of_time(budget: float | None, began: float, step: int, total: int, d: Dist) -> bool:
    """Whether --time-budget has run out; every rank stops at the same step."""
    over = bool(budget) and time.monotonic() - began > budget
    if d.sum({"over": float(over)})["over"]:
        log.warning("time budget of %.0f s reached at step %d of %d; finishing early", budget, step, total)
        return True
    return False


def _manifest(cfg: PretrainConfig, heldout_path: Path | None, blocks: torch.Tensor, summary: dict) -> dict:
    return {
        "stage": "pretrain",
        "parent": None,
        "config": asdict(cfg),
        "data": {
            "corpus": str(cfg.data),
            "corpus_sha256": file_sha256(cfg.data),
            "heldout": str(heldout_path or "2% of the corpus blocks"),
            "tokens_per_epoch": int(blocks.numel()),
        },
        "metrics": summary,
    }


def train_step(
    model, optimizer, batch: torch.Tensor, micro_batch: int, lr: float, dist: Dist = Dist(), trainer=None
) -> float:
    """One optimizer step on `batch` (B, T + 1), accumulating gradients over micro-batches (this rank's share
    of them under torchrun). All rows have the same length, so a micro-batch's mean weighs its share of rows.
    """

    def loss_of(rows: list[torch.Tensor]):
        loss = (
            lm_loss(trainer or model, dist.put({"rows": torch.stack(rows)})["rows"]) * len(rows) / len(batch)
        )
        return loss, {"loss": loss.item()}

    return optimizer_step(
        model,
        optimizer,
        lr,
        lambda: accumulate_shares(dist, trainer or model, list(batch), micro_batch, loss_of)["loss"],
    )


def _heldout_path(cfg: PretrainConfig) -> Path | None:
    if cfg.heldout:
        return cfg.heldout
    beside = Path(cfg.data).with_name("corpus_heldout.jsonl")
    return beside if beside.is_file() and beside != Path(cfg.data) else None


def _tokenizer(cfg: PretrainConfig, run: RunDir, docs: list[str]):
    from transformers import AutoTokenizer

    saved = run.checkpoints / "tokenizer"
    if saved.is_dir():  # resuming: the tokenizer the run started with
        return AutoTokenizer.from_pretrained(saved)
    if cfg.tokenizer:
        if not Path(cfg.tokenizer).is_dir():
            raise UserError(f"--tokenizer {cfg.tokenizer}: not a directory holding a saved tokenizer")
        tok = AutoTokenizer.from_pretrained(cfg.tokenizer)
        prepare_tokenizer(tok, str(cfg.tokenizer))  # the chat template, EOS and pad every stage relies on
    else:
        tok = train_tokenizer(docs, cfg.vocab_size)
    tok.save_pretrained(saved)
    return tok
