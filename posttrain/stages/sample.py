"""`posttrain sample`: K completions per prompt from a policy, for labelers to rank.

    posttrain sample --model runs/demo/sft --prompts runs/world/prompts_rm.jsonl --k 4
        --out runs/demo/samples.jsonl

Prompts are processed in fixed batches, each sampled from its own seed, and every finished batch
is appended to `OUT.partial` as one line (its records and its skipped prompts, after a header line
with the options and the prompts' digest); `--resume` keeps the whole batches already there, drops a
torn last line and refuses other options or prompts, so an interrupted run ends with the same file an
uninterrupted one writes. Each completion records where it came from
(`source: model:<checkpoint>`) and how it was sampled. Empty completions are dropped; a prompt
left with fewer than 2 is skipped (both are counted in the summary).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, RemoteCode, Resumable, SamplingOptions, option, tuned
from posttrain.data.jsonline import dumps
from posttrain.data.records import (
    atomic_path,
    check_output,
    check_unique_ids,
    read_conversations,
    read_jsonl,
)
from posttrain.errors import UserError
from posttrain.generation.completions import sample_k
from posttrain.models.fingerprint import check_same_run, fingerprint
from posttrain.models.load import load_causal_lm
from posttrain.recipes import SMALL
from posttrain.world.rng import derive

log = logging.getLogger(__name__)
COUNTS = ("prompts", "skipped", "empty_dropped", "truncated")  # per batch, summed at the end


@dataclass(kw_only=True)
class SampleConfig(Options, tuned(SamplingOptions, max_new_tokens=64), RemoteCode, Resumable):
    model: str = option(
        help="policy to sample from: a model directory, a .gguf file, smollm2-135m, or a hub id",
        required=True,
    )
    prompts: Path = option(help="prompt JSONL: conversations ending with a user turn", required=True)
    out: Path = option(help="samples JSONL to write (the ranking format without rankings)", required=True)
    k: int = option(SMALL.k, help="completions per prompt, 2 to 9 (InstructGPT ranked K = 4..9)", ge=2, le=9)
    top_p: float = option(
        1.0, help="nucleus sampling: keep the smallest token set with this much probability", gt=0, le=1
    )
    batch_size: int = option(16, help="prompts per generate call (each gives K sequences)", ge=1)
    max_prompts: int | None = option(None, help="sample only the first N prompts", ge=1)
    seed: int = option(0, help="sampling seed", ge=0)


def sample(cfg: SampleConfig, on_batch: Callable[[int, int], None] = lambda done, total: None) -> dict:
    cfg.check()
    out, partial = Path(cfg.out), Path(str(cfg.out) + ".partial")
    check_output(out, force=cfg.force, inputs=[cfg.prompts])
    if partial.exists() and not cfg.resume and not cfg.force:
        raise UserError(
            f"{partial} holds an interrupted run; pass --resume to continue it or --force to start over"
        )
    located = read_conversations(cfg.prompts, ends_with="user", with_location=True)
    check_unique_ids(located)  # a sample's id is its prompt's: labels and rankings find their item by it
    prompts = [r for _, r in located[: cfg.max_prompts]]
    started = fingerprint(cfg)
    done = resumed_batches(partial, started) if cfg.resume and partial.exists() else {}
    model, tokenizer = load_causal_lm(cfg.model, trust_remote_code=cfg.trust_remote_code)
    settings = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens,
        "seed": cfg.seed,
    }
    source = f"model:{cfg.model}"
    batches = [prompts[i : i + cfg.batch_size] for i in range(0, len(prompts), cfg.batch_size)]
    with atomic_path(partial) as tmp, tmp.open("w", encoding="utf-8") as f:  # the kept lines, then new ones
        f.write(dumps({"started": started}) + "\n")
        f.writelines(dumps(done[b]) + "\n" for b in sorted(done))
    with partial.open("a", encoding="utf-8") as f:
        for b, batch in enumerate(batches):
            if b not in done:
                seed = derive(cfg.seed, "sample", b).randrange(2**31)
                results = sample_k(
                    model,
                    tokenizer,
                    [p["messages"] for p in batch],
                    k=cfg.k,
                    seed=seed,
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    max_new_tokens=cfg.max_new_tokens,
                )
                done[b] = batch_line(b, batch, results, source, settings)
                f.write(dumps(done[b]) + "\n")  # one line per batch: a kill leaves it whole or torn
                f.flush()
                os.fsync(f.fileno())
            on_batch(b + 1, len(batches))
    counts = dict.fromkeys(COUNTS, 0)
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for b in range(len(batches)):
            for key in counts:
                counts[key] += done[b]["counts"][key]
            f.writelines(dumps(r) + "\n" for r in done[b]["records"])
    partial.unlink()
    if counts["skipped"]:
        log.warning("%d prompts skipped: fewer than 2 non-empty completions", counts["skipped"])
    return counts


def resumed_batches(partial: Path, started: dict) -> dict[int, dict]:
    """The finished batches of an interrupted run, {batch: line}; a torn last line is dropped (with a
    warning) and a run started with other options or prompts is refused."""
    lines = [r for _, r in read_jsonl(partial, torn_tail=True)]
    if not lines or "started" not in lines[0]:
        raise UserError(
            f"{partial}: not an interrupted `posttrain sample` run (no header line); "
            "pass --force to start over"
        )
    check_same_run(lines[0]["started"], started, partial)
    return {r["batch"]: r for r in lines[1:]}


def batch_line(b: int, batch: list[dict], results, source: str, settings: dict) -> dict:
    """One batch's outcome, every prompt's included: its records and what was dropped or skipped."""
    counts = dict.fromkeys(COUNTS, 0)
    records = [to_record(p, completions, source, settings, counts) for p, completions in zip(batch, results)]
    return {"batch": b, "records": [r for r in records if r is not None], "counts": counts}


def to_record(
    prompt: dict, completions: list[tuple[str, str]], source: str, settings: dict, counts: dict
) -> dict | None:
    kept = [
        {"text": text, "source": source, "finish_reason": reason, "sampling": settings}
        for text, reason in completions
        if text
    ]
    counts["empty_dropped"] += len(completions) - len(kept)
    counts["truncated"] += sum(c["finish_reason"] == "length" for c in kept)
    if len(kept) < 2:
        counts["skipped"] += 1
        return None
    counts["prompts"] += 1
    return {
        "id": prompt["id"],
        "prompt": prompt["messages"],
        "completions": kept,
        "meta": prompt.get("meta", {}),
    }
