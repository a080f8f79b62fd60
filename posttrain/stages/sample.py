"""`posttrain sample`: K completions per prompt from a policy, for labelers to rank.

    posttrain sample --model runs/demo/sft --prompts runs/world/prompts_rm.jsonl --k 4 --out runs/demo/samples.jsonl

Prompts are processed in fixed batches, each sampled from its own seed, and every finished batch
is appended to `OUT.partial`; `--resume` skips the batches already there, so an interrupted run
ends with the same file an uninterrupted one writes. Each completion records where it came from
(`source: model:<checkpoint>`) and how it was sampled. Empty completions are dropped; a prompt
left with fewer than 2 is skipped (both are counted in the summary).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, RemoteCode, Resumable, Sampling, option, tuned
from posttrain.recipes import SMALL
from posttrain.data.records import dumps, read_conversations, read_jsonl
from posttrain.errors import UserError
from posttrain.generation.hf import sample_k
from posttrain.models.load import load_causal_lm
from posttrain.world.rng import derive

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SampleConfig(Options, tuned(Sampling, max_new_tokens=64), RemoteCode, Resumable):
    model: str = option(help="policy to sample from: a model directory, a .gguf file, smollm2-135m, or a hub id",
                        required=True)
    prompts: Path = option(help="prompt JSONL: conversations ending with a user turn", required=True)
    out: Path = option(help="samples JSONL to write (the ranking format without rankings)", required=True)
    k: int = option(SMALL.k, help="completions per prompt, 2 to 9 (InstructGPT ranked K = 4..9)", ge=2, le=9)
    top_p: float = option(1.0, help="nucleus sampling: keep the smallest token set with this much probability",
                          gt=0, le=1)
    batch_size: int = option(16, help="prompts per generate call (each gives K sequences)", ge=1)
    max_prompts: int | None = option(None, help="sample only the first N prompts", ge=1)
    seed: int = option(0, help="sampling seed", ge=0)


def sample(cfg: SampleConfig, on_batch: Callable[[int, int], None] = lambda done, total: None) -> dict:
    cfg.check()
    prompts = read_conversations(cfg.prompts, ends_with="user")[: cfg.max_prompts]
    out, partial = Path(cfg.out), Path(str(cfg.out) + ".partial")
    if out.exists() and not cfg.force:
        raise UserError(f"{out} already exists; choose another --out or pass --force to replace it")
    if partial.exists() and not cfg.resume:
        if not cfg.force:
            raise UserError(f"{partial} holds an interrupted run; pass --resume to continue it or --force to start over")
        partial.unlink()
    done = {r["id"] for _, r in read_jsonl(partial)} if partial.exists() else set()
    model, tokenizer = load_causal_lm(cfg.model, trust_remote_code=cfg.trust_remote_code)
    settings = {"temperature": cfg.temperature, "top_p": cfg.top_p, "max_new_tokens": cfg.max_new_tokens,
                "seed": cfg.seed}
    source = f"model:{cfg.model}"
    counts = {"prompts": 0, "skipped": 0, "empty_dropped": 0, "truncated": 0}
    batches = [prompts[i:i + cfg.batch_size] for i in range(0, len(prompts), cfg.batch_size)]
    with partial.open("a", encoding="utf-8") as f:
        for b, batch in enumerate(batches):
            if all(p["id"] in done for p in batch):
                on_batch(b + 1, len(batches))
                continue
            seed = derive(cfg.seed, "sample", b).randrange(2**31)
            results = sample_k(model, tokenizer, [p["messages"] for p in batch], k=cfg.k, seed=seed,
                               temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens)
            for prompt, completions in zip(batch, results):
                record = to_record(prompt, completions, source, settings, counts)
                if record is not None:
                    f.write(dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
            on_batch(b + 1, len(batches))
    os.replace(partial, out)
    if counts["skipped"]:
        log.warning("%d prompts skipped: fewer than 2 non-empty completions", counts["skipped"])
    return counts


def to_record(prompt: dict, completions: list[tuple[str, str]], source: str, settings: dict, counts: dict) -> dict | None:
    kept = [{"text": text, "source": source, "finish_reason": reason, "sampling": settings}
            for text, reason in completions if text]
    counts["empty_dropped"] += len(completions) - len(kept)
    counts["truncated"] += sum(c["finish_reason"] == "length" for c in kept)
    if len(kept) < 2:
        counts["skipped"] += 1
        return None
    counts["prompts"] += 1
    return {"id": prompt["id"], "prompt": prompt["messages"], "completions": kept, "meta": prompt.get("meta", {})}
