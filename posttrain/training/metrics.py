"""Metrics to `metrics.jsonl` and TensorBoard, consistent across a resume.

Every name is namespaced and documented in docs/metrics.md. On resume from step S, records
after S (written by the run that was killed) are dropped from both sinks, so a resumed run's
curve is the same as an uninterrupted one's.
"""

from __future__ import annotations

import json
from pathlib import Path

from posttrain.data.records import atomic_path


class MetricsLog:
    def __init__(self, directory: Path, resume_step: int | None = None):
        self.path = directory / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= resume_step
            ]
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept))
        from torch.utils.tensorboard import SummaryWriter  # imported late: it pulls in tensorboard

        self.tb = SummaryWriter(
            str(directory / "tb"), purge_step=None if resume_step is None else resume_step + 1
        )
        self.file = self.path.open("a", encoding="utf-8")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.file.flush()
        for name, value in metrics.items():
            self.tb.add_scalar(name, value, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


class NoMetrics:
    """The metrics log of a rank other than 0 under torchrun: rank 0 writes the run's."""

    path = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def resume_point(run, resume: bool, model, optimizer) -> tuple[int, MetricsLog | NoMetrics]:
    """The step a run starts from (its checkpoint's when resuming, else 0) and the metrics log that
    continues from there; `run` is the stage's RunDir."""
    start = run.restore(model, optimizer) if resume else 0
    if not run.dist.main:
        return start, NoMetrics()
    return start, MetricsLog(run.partial, resume_step=start if resume else None)
