"""What every benchmark shares: the machine and its matmul peak, interleaved timing, the report.

Both sides of a comparison run in one process, alternating A B B A ... so that load from other
processes on a shared machine falls on both; a side's rate is its median over the repeats.
Each run is timed twice: wall clock, and this process's CPU time. On a machine shared with
other busy processes the wall clock measures the scheduler's luck as much as the code; with one
torch thread (the default here) CPU time measures the work itself, so ratios are given on both.
FLOP counts are the usual approximations (Kaplan et al. 2020): 2 x parameters x tokens for a
forward pass, 6 x parameters x tokens for forward plus backward; attention is left out.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from posttrain.training import perf
from posttrain.training.perf import matmul_parameters as parameters  # noqa: F401  (the benchmarks' name for it)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: on a shared machine CPU time then measures the work)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side, interleaved")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, run each side once under pyinstrument and print where its time goes",
    )
    return parser


def start(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)


def machine() -> str:
    """One line: CPU, cores, threads and the versions that matter."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = [f"torch {torch.__version__}"]
    for name in ("transformers", "trl"):
        try:
            versions.append(f"{name} {__import__(name).__version__}")
        except ImportError:
            pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; {', '.join(versions)}"


def matmul_peak(n: int = 1024, seconds: float = 3.0) -> float:
    """This machine's fp32 matmul FLOP/s with the current threads, per CPU second per thread (what the
    cores can do while they run this process, whatever else the machine is running)."""
    return perf.matmul_peak(seconds, n, clock="cpu")


@dataclass
class Side:
    """One contender: `run()` does one timed piece of work and returns (units done, FLOPs spent),
    units being what the benchmark counts (tokens, comparisons, episodes), or (units, FLOPs,
    wall seconds, CPU seconds) when it times its own steady part (a trainer whose set-up is not
    the work)."""

    name: str
    run: Callable[[], tuple[float, ...]]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    units: list[float] = field(default_factory=list)
    flops: list[float] = field(default_factory=list)

    def rate(self, clock: str = "wall") -> float:
        """Median units per second over the repeats, by the wall clock or by CPU time."""
        seconds = self.wall if clock == "wall" else self.cpu
        return statistics.median(u / s for u, s in zip(self.units, seconds))

    def flop_rate(self, clock: str = "wall") -> float:
        seconds = self.wall if clock == "wall" else self.cpu
        return statistics.median(f / s for f, s in zip(self.flops, seconds))


class Clock:
    """Wall and CPU time since the last `lap`."""

    def __init__(self):
        self.lap()

    def lap(self) -> tuple[float, float]:
        now = time.perf_counter(), time.process_time()
        previous = getattr(self, "_last", now)
        self._last = now
        return now[0] - previous[0], now[1] - previous[1]


def interleave(sides: list[Side], repeats: int, warmup: bool = True) -> None:
    """Time each side `repeats` times, in the order A B, B A, A B, ... after one untimed run each."""
    if warmup:
        for side in sides:
            side.run()
    for r in range(repeats):
        for side in sides if r % 2 == 0 else sides[::-1]:
            clock = Clock()
            result = side.run()
            wall, cpu = result[2:] if len(result) == 4 else clock.lap()
            side.wall.append(wall)
            side.cpu.append(cpu)
            side.units.append(result[0])
            side.flops.append(result[1])


def profile(sides: list[Side], seconds_shown: float = 0.02) -> None:
    """Run each side once under pyinstrument and print its call tree (the --profile option)."""
    from pyinstrument import Profiler

    for side in sides:
        profiler = Profiler(interval=0.005)
        profiler.start()
        side.run()
        profiler.stop()
        print(f"\n=== {side.name} ===")
        print(
            profiler.output_text(
                unicode=False,
                color=False,
                show_all=False,
                time="seconds",
                processor_options={"filter_threshold": seconds_shown},
            )
        )


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table, columns padded for a terminal."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def efficiency(side: Side, peak: float) -> str:
    """Achieved FLOP/s per CPU second per thread as a share of the matmul peak, e.g. '12.3 GFLOP/s (24%)'."""
    achieved = side.flop_rate("cpu") * torch.get_num_threads()
    return f"{achieved / 1e9:.1f} GFLOP/s ({100 * achieved / peak:.0f}%)"


def rates(ours: Side, theirs: Side, digits: int = 1) -> list[str]:
    """[ours/s, theirs/s (wall clock), ratio by wall clock, ratio by CPU time] as table cells."""
    return [
        f"{ours.rate():,.{digits}f}",
        f"{theirs.rate():,.{digits}f}",
        f"{ours.rate() / theirs.rate():.2f}x",
        f"{ours.rate('cpu') / theirs.rate('cpu'):.2f}x",
    ]


# TRL's defaults that differ from posttrain's, set to posttrain's so both sides do the same work:
# fp32 (TRL turns on bf16 autocast, slow on a CPU without bf16 units), no gradient checkpointing
# (TRL's default recomputes the forward), the batches in the order given (no shuffle), no
# checkpoints, no logging output.
TRL_AS_POSTTRAIN = dict(
    bf16=False,
    gradient_checkpointing=False,
    train_sampling_strategy="sequential",
    max_grad_norm=1.0,
    lr_scheduler_type="constant",
    save_strategy="no",
    report_to=[],
    logging_steps=10_000,
    disable_tqdm=True,
    use_cpu=True,
    dataloader_num_workers=0,
    seed=0,
)


def step_clock():
    """A transformers TrainerCallback that adds up wall and CPU seconds from the end of the
    trainer's first step to the end of its last (set-up and the first step are not timed)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.clock, self.wall, self.cpu = None, 0.0, 0.0

        def on_step_end(self, args, state, control, **kwargs):
            if self.clock is None:
                self.clock = Clock()
                return
            wall, cpu = self.clock.lap()
            self.wall, self.cpu = self.wall + wall, self.cpu + cpu

    return StepClock()


def timed_steps(step: Callable[[int], None], n: int) -> tuple[float, float]:
    """Run step(0) untimed, then step(1..n); (wall, CPU) seconds of the timed steps."""
    step(0)
    clock = Clock()
    for i in range(1, n + 1):
        step(i)
    return clock.lap()
