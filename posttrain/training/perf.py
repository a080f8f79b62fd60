"""Achieved FLOP/s against the matmul peak measured at start, so a slow phase shows in every run.

FLOP counts are the usual approximations (Kaplan et al. 2020, section 2.1): 2 x N x tokens for a
forward pass, 6 x N x tokens for forward plus backward, N the parameters that take part in matmuls;
attention's own FLOPs are left out. With frozen weights (LoRA) no weight gradient is computed for
them, so 6N over-counts their backward and the share of peak is an upper bound there.

On a CPU the peak is one thread's matmul rate per CPU second times the torch threads (`stage_peak`):
a wall-clock peak of all threads, taken once at a run's start, fell to a tenth when other processes
held the cores for that half second (15 against 280 GFLOP/s on 2 busy cores), and every later step
then read as several times the peak (issue 28: the demo's PPO at 423%, 807% at one step).
"""

from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger(__name__)

_PEAKS: dict[tuple, float] = {}  # (device, threads, n, clock) -> FLOP/s: each measured once per process


def matmul_peak(
    seconds: float = 0.5, n: int | None = None, *, clock: str = "wall", device: str | torch.device = "cpu"
) -> float:
    """The fp32 FLOP/s of (n, n) @ (n, n) with the current torch threads: the fastest of the groups of
    four timed in `seconds`. `clock` "wall" rates per wall second (what a stage's steps are timed in);
    "cpu" per CPU second per thread, what the cores do while they run this process whatever else the
    machine runs (bench/). n defaults to 512 on a CPU and 4096 on a GPU, where a small one times
    kernel launches. Measured once per process for each (device, threads, n, clock): a demo's stages
    share one measurement."""
    device = torch.device(device)
    if clock == "cpu" and device.type != "cpu":
        raise ValueError(f"clock='cpu' times this process's CPU seconds; on {device} use clock='wall'")
    n = n or (4096 if device.type == "cuda" else 512)
    key = (str(device), torch.get_num_threads(), n, clock)
    if key not in _PEAKS:
        _PEAKS[key] = _measure(seconds, n, clock, device)
    return _PEAKS[key]


def _measure(seconds: float, n: int, clock: str, device: torch.device) -> float:
    best, deadline = 0.0, time.perf_counter() + seconds  # the warm-up included
    seeded = torch.Generator(device).manual_seed(
        0
    )  # the global RNG, which a run's results hang on, is left alone
    a, b = (torch.randn(n, n, generator=seeded, device=device) for _ in range(2))
    torch.matmul(a, b)  # warm-up: thread pool, allocator, kernel choice
    now = time.process_time if clock == "cpu" else time.perf_counter
    per = torch.get_num_threads() if clock == "cpu" else 1
    while True:
        began = now()
        for _ in range(4):
            torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, 4 * 2 * n**3 / max((now() - began) / per, 1e-9))
        if time.perf_counter() >= deadline:
            return best


def matmul_parameters(model: torch.nn.Module) -> int:
    """N: the parameters that take part in matmuls, every distinct tensor once, the input embedding (a
    lookup) left out unless it is tied to the output layer. A peft model's frozen base counts: its
    forward and backward run through it."""
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()  # None for a reward model (its `score` head is counted)
    tied = output is not None and output.weight is embedding
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (p is embedding and not tied):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def forward_flops(n_params: int, tokens: int) -> float:
    return 2.0 * n_params * tokens


def training_flops(n_params: int, tokens: int) -> float:
    """Forward plus backward: the backward costs twice the forward (gradients of inputs and of weights)."""
    return 6.0 * n_params * tokens


def perf_metrics(flops: float, seconds: float, peak: float) -> dict[str, float]:
    flops_per_s = flops / max(seconds, 1e-9)
    return {"perf/flops_per_s": flops_per_s, "perf/share_of_peak": flops_per_s / peak}


def stage_peak(device: str | torch.device = "cpu") -> float:
    """The FLOP/s a stage's steps are rated against. On a CPU: the fp32 matmul rate of one thread per CPU
    second (a core's rate while it runs this process, however busy the machine: one thread neither waits
    for a descheduled sibling nor spins), times the torch threads; more threads never beat that, so no
    step's share of it passes 100% (a busy machine lowers the steps' share instead, honestly: they did run
    slower). On a GPU: the wall-clock rate (`matmul_peak`)."""
    device = torch.device(device)
    if device.type != "cpu":
        return matmul_peak(device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return matmul_peak(clock="cpu") * threads
    finally:
        torch.set_num_threads(threads)


class Throughput:
    """A training stage's perf/ metrics: the peak measured (and logged) once at its start, against the
    FLOPs of each step. Under torchrun the `world` ranks share a step's work, each taken to have this one's
    peak."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", world: int = 1):
        self.n_params = matmul_parameters(model)
        peak = stage_peak(device)
        where = f"{torch.get_num_threads()} threads" if torch.device(device).type == "cpu" else str(device)
        log.info("fp32 matmul peak: %.1f GFLOP/s on %s", peak / 1e9, where)
        self.peak = peak * world

    def step(self, tokens: int, seconds: float) -> dict[str, float]:
        """perf/ metrics of a step that took `seconds` to train on `tokens` (padding left out)."""
        return perf_metrics(training_flops(self.n_params, tokens), seconds, self.peak)
