"""Checkpoints: a run directory that appears only when a stage finishes, and resumable state.

While a stage runs, everything lives in `OUT.partial/`:

    OUT.partial/checkpoints/step-000200/{model.safetensors, state.pt, step.json}
    OUT.partial/metrics.jsonl, OUT.partial/tb/        (metrics; see docs/metrics.md)
    OUT.partial/run.json                              (the options and input digests it began with)

When it finishes, the final model (Hugging Face format: safetensors, config, tokenizer with
chat template) and `posttrain.json` are written into it and it is renamed to `OUT`. A run
killed at any moment leaves `OUT` untouched and `OUT.partial/` resumable with `--resume`, which
refuses a different option or changed input data (the run would mix two configurations).
`--force` replaces only what posttrain wrote (`check_replaceable`), never an input.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from posttrain import __version__
from posttrain.data.outputs import check_not_input, files_under, input_paths, named
from posttrain.data.records import check_writable
from posttrain.distributed import Dist
from posttrain.errors import UserError
from posttrain.models.fingerprint import check_same_run, fingerprint

log = logging.getLogger(__name__)
KEEP_CHECKPOINTS = 2


class RunDir:
    """Made before any model loads, it only checks: OUT is not replaced without --force, OUT.partial
    not discarded without --force nor continued without --resume, --force replaces only a run posttrain
    wrote and never one of the config's inputs (`check_replaceable`), and a resumed run has the options
    and inputs it was started with (`fingerprint`). `begin()` then sets up OUT.partial."""

    def __init__(self, out: str | Path, *, resume: bool, force: bool, config=None, dist: Dist | None = None):
        self.out, self.resume, self.force = Path(out), resume, force
        self.dist = dist or Dist()  # under torchrun rank 0 writes; every rank calls save, restore and finish
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.checkpoints = self.partial / "checkpoints"
        self.fingerprint = fingerprint(config) if config is not None else None
        options = dataclasses.asdict(config) if config is not None else {}
        inputs = input_paths({k: v for k, v in options.items() if k != "out"})  # model, data, reference, ...
        check_not_input(self.out, inputs)
        check_not_input(self.partial, inputs)
        if self.out.exists() and not force:
            raise UserError(
                f"{self.out} already exists (a finished run); choose another --out or pass --force to "
                "replace it"
            )
        if self.partial.exists() and not resume and not force:
            raise UserError(
                f"{self.partial} holds an unfinished run; pass --resume to continue it "
                "or --force to start over"
            )
        check_replaceable(self.out, self.partial, discard=not resume)
        check_writable(self.out)
        recorded = self.partial / RUN_FILE
        # {}: a run made with no config
        was = json.loads(recorded.read_text()) if resume and recorded.is_file() else {}
        if resume and self.fingerprint is not None and was:
            check_same_run(was, self.fingerprint, self.partial)
        elif resume and self.partial.exists() and not recorded.is_file():
            log.warning(
                "%s has no %s (a run from an older posttrain): cannot check that --resume uses the "
                "same options and data",
                self.partial,
                RUN_FILE,
            )

    def begin(self) -> None:
        # wall time: this process's, plus a resumed run's
        self.began, self.wall_before = time.monotonic(), 0.0
        self.dist.barrier()  # every rank has made its checks before rank 0 changes anything
        if self.dist.main:
            self._set_up()
        self.dist.barrier()

    def _set_up(self) -> None:
        if self.partial.exists() and not self.resume:
            shutil.rmtree(self.partial)
        if self.resume and not self.partial.exists():
            log.warning("nothing to resume in %s; starting a new run", self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        if not (self.partial / RUN_FILE).exists():  # also the mark that lets --force discard it
            (self.partial / RUN_FILE).write_text(json.dumps(self.fingerprint or {}, indent=1) + "\n")

    def wall(self) -> float:
        """Seconds the run has taken: since `begin()`, plus what the checkpoint it resumed from had taken."""
        return self.wall_before + time.monotonic() - self.began

    def latest(self) -> Path | None:
        found = sorted(self.checkpoints.glob("step-*")) if self.checkpoints.exists() else []
        return found[-1] if found else None

    def save(
        self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, extra: dict | None = None
    ) -> Path:
        """Write a resumable checkpoint atomically and keep the last few. `extra` (JSON) is a
        stage's own state beyond weights and optimizer, e.g. PPO's adaptive KL coefficient."""
        final = self.checkpoints / f"step-{step:06d}"
        weights, optim = self.dist.model_state(model), self.dist.optimizer_state(model, optimizer)  # gathered
        if self.dist.main:
            tmp = self.checkpoints / f".step-{step:06d}.tmp"
            with failed_write(tmp, f"checkpoint {final}", kept=self.latest()):
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                save_file(untied(weights), str(tmp / "model.safetensors"))
                torch.save({"optimizer": optim, "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
                (tmp / "step.json").write_text(
                    json.dumps(
                        {
                            **(extra or {}),
                            "step": step,
                            "wall_seconds": self.wall(),
                            "world_size": self.dist.world,
                        }
                    )
                    + "\n"
                )
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            for old in sorted(self.checkpoints.glob("step-*"))[:-KEEP_CHECKPOINTS]:
                shutil.rmtree(old)
        self.dist.barrier()
        return final

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Load the latest checkpoint into model and optimizer; returns its step (0 if none).
        The `extra` state it was saved with is left in `self.restored`."""
        ckpt = self.latest() if self.dist.main else None
        self.restored = self.dist.broadcast_object(
            json.loads((ckpt / "step.json").read_text()) if ckpt else {}
        )
        if not self.restored:
            return 0
        weights, state = {}, {"optimizer": {}, "torch_rng": torch.get_rng_state()}
        if self.dist.main:  # rank 0 reads; the others receive their part from it
            weights = load_file(str(ckpt / "model.safetensors"))
            state = torch.load(ckpt / "state.pt", weights_only=True)
        self.dist.load_model_state(model, weights)
        if self.dist.broadcast_object(is_positional(state["optimizer"])):  # saved before names were kept
            if self.dist.on:
                raise UserError(
                    f"{ckpt or self.checkpoints}: a checkpoint from an older posttrain, which only one "
                    "process can resume; resume it without torchrun, or pass --force to start over"
                )
            optimizer.load_state_dict(state["optimizer"])
        else:
            self.dist.load_optimizer_state(model, optimizer, state["optimizer"])
        torch.set_rng_state(self.dist.broadcast_object(state["torch_rng"]))
        self.wall_before = self.restored.get("wall_seconds", 0.0)
        step = self.restored["step"]
        log.info(
            "resumed from %s (step %d, saved by %d process%s)",
            ckpt,
            step,
            self.restored.get("world_size", 1),
            "" if self.restored.get("world_size", 1) == 1 else "es",
        )
        return step

    def finish(self, model, tokenizer, manifest: dict) -> Path:
        """Write the final model and posttrain.json, then move the run into place."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        weights = self.dist.model_state(model) if self.dist.on else None  # FSDP2 shards gathered to rank 0
        if not self.dist.main:
            self.dist.barrier()
            return self.out
        with failed_write(None, f"the final model in {self.partial}", kept=self.latest()):
            model.save_pretrained(self.partial, safe_serialization=True, state_dict=weights)
            tokenizer.save_pretrained(self.partial)
            files = [f for f in files_under(self.partial) if not f.startswith("checkpoints/")]
            write_manifest(
                self.partial,
                {
                    **manifest,
                    "inputs": (self.fingerprint or {}).get("inputs", {}),
                    "wall_seconds": round(self.wall(), 3),
                    "files": sorted({*files, MANIFEST}),
                },
            )  # what --force may replace
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        if self.out.exists():  # --force, checked by check_replaceable: a run posttrain wrote
            old = self.out.with_name(f".{self.out.name}.replaced-{os.getpid()}")
            self.out.rename(old)
            self.partial.rename(self.out)
            shutil.rmtree(old)
        else:
            self.partial.rename(self.out)
        self.dist.barrier()
        return self.out


@contextlib.contextmanager
def failed_write(tmp: Path | None, what: str, kept: Path | None):
    """A failed write of `what` (disk full: torch's `unexpected pos`, a safetensors error, an OSError) as one
    UserError naming it and what to do; `tmp`, the half-written copy, is removed. The run's last checkpoint
    (`kept`) is untouched, so the run continues from it with --resume."""
    try:
        yield
    except (OSError, RuntimeError, SafetensorError) as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        full = (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "unexpected pos" in str(e)
        cause = "the disk is full" if full else f"{type(e).__name__}: {e}"
        left = f"the last checkpoint, {kept}, is kept" if kept else "no checkpoint was saved before it"
        raise UserError(
            f"could not write {what} ({cause}); {left}: free disk space (or fix the folder's "
            "permissions), then run the same command with --resume to continue"
        ) from e


def check_replaceable(out: Path, partial: Path, *, discard: bool) -> None:
    """--force replaces only what posttrain wrote: OUT when it is a finished run whose posttrain.json lists
    every file in it (a run from an older posttrain: only its top-level files and tb/), OUT.partial
    (when discarded) when its run.json marks it as an unfinished run. Never a folder holding other files."""
    fix = "choose another --out, or move it away yourself if it may go"
    if out.exists():
        try:
            listed = json.loads((out / MANIFEST).read_text()).get("files")
        except (OSError, ValueError, AttributeError):  # a file, a folder without a manifest, not ours
            raise UserError(
                f"--out {out} exists and is not a posttrain run (no {MANIFEST}); --force replaces "
                f"only a run posttrain finished: {fix}"
            ) from None
        other = (
            [f for f in files_under(out) if f not in set(listed)]
            if isinstance(listed, list)
            else sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "tb")
        )  # an older run's
        if other:
            raise UserError(
                f"--out {out} holds files posttrain did not write there ({named(other)}); --force "
                f"replaces only a run as posttrain finished it: {fix}"
            )
    if discard and partial.exists() and not (partial / RUN_FILE).is_file():
        raise UserError(
            f"{partial} is not an unfinished posttrain run (no {RUN_FILE}); --force discards only "
            f"one posttrain started: {fix}"
        )


def untied(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with each shared tensor (tied embeddings) kept once, as safetensors requires;
    loading fills the tied names back (`posttrain.distributed.check_tied`)."""
    seen, out = set(), {}
    for name, tensor in weights.items():
        key = (tensor.data_ptr(), tensor.shape, tensor.stride()) if tensor.numel() else None
        if key is None or key not in seen:
            out[name] = tensor.contiguous()
            seen.add(key)
    return out


def is_positional(optimizer_state: dict) -> bool:
    """An optimizer state keyed by parameter position (torch's own state_dict), not by name."""
    return any(isinstance(k, int) for k in optimizer_state.get("state", {})) or any(
        isinstance(p, int) for g in optimizer_state.get("param_groups", []) for p in g.get("params", [])
    )


MANIFEST = "posttrain.json"  # in a finished run: stage, parent, config, inputs, metrics, its files
RUN_FILE = "run.json"  # in OUT.partial: the options and input digests the run was started with


def write_manifest(directory: Path, manifest: dict) -> None:
    """posttrain.json: stage, parent checkpoint, config, data hashes, metrics."""
    body = {"posttrain": __version__, **manifest}
    (directory / MANIFEST).write_text(json.dumps(body, indent=1, default=str) + "\n")


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / "posttrain.json"
    if not path.is_file():
        raise UserError(f"{directory} has no posttrain.json; is it a posttrain checkpoint?")
    return json.loads(path.read_text())
