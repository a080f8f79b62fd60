"""The progress bar every long command shows (a leaf: imports only tqdm)."""

from __future__ import annotations

import os
import sys


class StepBar:
    """A progress bar (steps, ETA) showing a few of a stage's metrics; silent when not on a terminal."""

    def __init__(self, desc: str, shown: dict[str, str]):
        from tqdm import tqdm

        # under torchrun only rank 0 shows one
        quiet = True if os.environ.get("RANK", "0") != "0" else None
        self.bar = tqdm(desc=desc, unit="step", file=sys.stderr, disable=quiet, dynamic_ncols=True)
        self.shown = shown  # label -> metric name
        self.seen: dict[str, float] = {}

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        self.seen.update(metrics)
        self.bar.total, self.bar.n = total, step
        self.bar.set_postfix(
            {label: f"{self.seen[name]:.3g}" for label, name in self.shown.items() if name in self.seen},
            refresh=False,
        )
        self.bar.refresh()

    def write(self, text: str) -> None:
        """Print above the bar (to stdout: it is the command's output)."""
        self.bar.write(text, file=sys.stdout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
