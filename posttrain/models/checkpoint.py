"""Checkpoints: a run directory that appears only when a stage finishes, and resumable state.

While a stage runs, everything lives in `OUT.partial/`:

    OUT.partial/checkpoints/step-000200/{model.safetensors, state.pt, step.json}
    OUT.partial/metrics.jsonl, OUT.partial/tb/        (metrics; see docs/metrics.md)

When it finishes, the final model (Hugging Face format: safetensors, config, tokenizer with
chat template) and `posttrain.json` are written into it and it is renamed to `OUT`. A run
killed at any moment leaves `OUT` untouched and `OUT.partial/` resumable with `--resume`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from posttrain import __version__
from posttrain.errors import UserError

log = logging.getLogger(__name__)
KEEP_CHECKPOINTS = 2


class RunDir:
    def __init__(self, out: str | Path, *, resume: bool, force: bool):
        self.out = Path(out)
        self.partial = self.out.with_name(self.out.name + ".partial")
        if self.out.exists() and not force:
            raise UserError(f"{self.out} already exists (a finished run); choose another --out or pass --force to replace it")
        if self.partial.exists() and not resume:
            if not force:
                raise UserError(f"{self.partial} holds an unfinished run; pass --resume to continue it "
                                "or --force to start over")
            shutil.rmtree(self.partial)
        if resume and not self.partial.exists():
            log.warning("nothing to resume in %s; starting a new run", self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        self.checkpoints = self.partial / "checkpoints"

    def latest(self) -> Path | None:
        found = sorted(self.checkpoints.glob("step-*")) if self.checkpoints.exists() else []
        return found[-1] if found else None

    def save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             extra: dict | None = None) -> Path:
        """Write a resumable checkpoint atomically and keep the last few. `extra` (JSON) is a
        stage's own state beyond weights and optimizer, e.g. PPO's adaptive KL coefficient."""
        final = self.checkpoints / f"step-{step:06d}"
        tmp = self.checkpoints / f".step-{step:06d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(model, str(tmp / "model.safetensors"))
        torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
        (tmp / "step.json").write_text(json.dumps({**(extra or {}), "step": step}) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(self.checkpoints.glob("step-*"))[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old)
        return final

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
        """Load the latest checkpoint into model and optimizer; returns its step (0 if none).
        The `extra` state it was saved with is left in `self.restored`."""
        self.restored: dict = {}
        ckpt = self.latest()
        if ckpt is None:
            return 0
        load_model(model, str(ckpt / "model.safetensors"))
        state = torch.load(ckpt / "state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.restored = json.loads((ckpt / "step.json").read_text())
        step = self.restored["step"]
        log.info("resumed from %s (step %d)", ckpt, step)
        return step

    def finish(self, model, tokenizer, manifest: dict) -> Path:
        """Write the final model and posttrain.json, then move the run into place."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model.save_pretrained(self.partial, safe_serialization=True)
        tokenizer.save_pretrained(self.partial)
        write_manifest(self.partial, manifest)
        shutil.rmtree(self.checkpoints, ignore_errors=True)
        if self.out.exists():
            old = self.out.with_name(self.out.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            self.out.rename(old)
            self.partial.rename(self.out)
            shutil.rmtree(old)
        else:
            self.partial.rename(self.out)
        return self.out


def write_manifest(directory: Path, manifest: dict) -> None:
    """posttrain.json: stage, parent checkpoint, config, data hashes, metrics."""
    body = {"posttrain": __version__, **manifest}
    (directory / "posttrain.json").write_text(json.dumps(body, indent=1, default=str) + "\n")


def read_manifest(directory: str | Path) -> dict:
    path = Path(directory) / "posttrain.json"
    if not path.is_file():
        raise UserError(f"{directory} has no posttrain.json; is it a posttrain checkpoint?")
    return json.loads(path.read_text())
