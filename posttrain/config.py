"""Entry-point configs are dataclasses; each field's `help` is its `--help` text, written once.

    @dataclass(kw_only=True)
    class ExampleConfig(Options, Overwrite):
        out: Path = option(help="directory to write", required=True)
        seed: int = option(0, help="world seed", ge=0)

    cfg = ExampleConfig(out=Path("w")); cfg.check()

posttrain/arguments.py makes a config's command-line options (`add_arguments`, `from_namespace`).

Settings that several entry points share are declared once, in the pieces below (`Threads`,
`Resumable`, `WorldRef`, `Schedule`, `Batching`, `Cadence`, ...), and a config inherits them;
`tuned(Piece, lr=3e-4)` is the same piece with other defaults. A field whose type is itself a
config (`rm: RMSettings`) becomes options with its name as prefix (`--rm-lr`). Every numeric
option declares its range (`ge`, `gt`, `le`, `lt`); `Options.check()` enforces the ranges (and
finiteness) before any model loads, and a config's own `check()` adds its cross-field rules.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

from posttrain.arguments import BOUNDS, check_ranges

_MISSING = dataclasses.MISSING
SCALE_NAMES = ("small", "paper", "small2")  # posttrain.world.core.SCALES' keys (a test keeps them equal)


def option(
    default: Any = _MISSING,
    *,
    help: str,
    required: bool = False,
    choices: tuple | None = None,
    nargs: str | None = None,
    positional: bool = False,
    repeat: bool = False,
    **bounds: float,
) -> Any:
    """A config field: its default, `--help` text, and for numbers its range (`ge=1`, `gt=0, le=1`, ...).

    `positional`: given without a flag (`posttrain chat MODEL`); `repeat`: a list built from a repeated flag
    (`--model a --model b`)."""
    if set(bounds) - set(BOUNDS):
        raise TypeError(f"unknown bounds {sorted(set(bounds) - set(BOUNDS))}; use {', '.join(BOUNDS)}")
    meta = {
        "help": help,
        "required": required,
        "choices": choices,
        "nargs": nargs,
        "bounds": bounds,
        "positional": positional,
        "repeat": repeat,
    }
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    if dataclasses.is_dataclass(default):  # a nested config: its own options, prefixed
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata=meta)
    if default is _MISSING and not required:
        raise TypeError("an option without a default must be required")
    return dataclasses.field(default=None if default is _MISSING else default, metadata=meta)


class Options:
    """Base of every config: `check()` enforces each field's declared range; override to add rules."""

    def check(self) -> None:
        check_ranges(self)


def tuned(cls: type, **defaults: Any) -> type:
    """`cls` with other defaults for some fields (same help and range): `tuned(Schedule, lr=3e-4)`."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(defaults) - set(fields):
        raise TypeError(f"{cls.__name__} has no fields {sorted(set(defaults) - set(fields))}")
    hints = typing.get_type_hints(cls)

    def field(name: str, value: Any) -> dataclasses.Field:
        if isinstance(value, (list, dict)):
            return dataclasses.field(
                default_factory=lambda: type(value)(value), metadata=fields[name].metadata
            )
        return dataclasses.field(default=value, metadata=fields[name].metadata)

    return dataclasses.make_dataclass(
        cls.__name__,
        [(n, hints[n], field(n, v)) for n, v in defaults.items()],
        bases=(cls,),
        kw_only=True,
        namespace={"__module__": cls.__module__},
    )


# --- the pieces several entry points share ---------------------------------------------
@dataclasses.dataclass(kw_only=True)
class Threads:
    threads: int | None = option(None, help="torch CPU threads (default: all cores)", ge=1)


@dataclasses.dataclass(kw_only=True)
class RemoteCode:
    trust_remote_code: bool = option(
        False, help="allow a hub model's own Python code to run (off by default)"
    )


@dataclasses.dataclass(kw_only=True)
class ModelOptions(Threads, RemoteCode):
    """How a stage loads and runs a model."""


DTYPES = ("fp32", "bf16", "fp64")


@dataclasses.dataclass(kw_only=True)
class Scaling:
    """How a training stage spreads over processes and which precision it computes in."""

    fsdp: bool = option(
        False,
        help="under torchrun: shard parameters, gradients and optimizer state with FSDP2 "
        "(fully_shard) instead of keeping a DDP replica per rank",
    )
    dtype: str = option(
        "fp32",
        help="fp32; bf16: mixed precision (fp32 master weights, bf16 matmuls under "
        "autocast, fp32 gradient reduction); fp64: every weight in float64 (exactness "
        "checks)",
        choices=DTYPES,
    )


@dataclasses.dataclass(kw_only=True)
class Adapters:
    """LoRA through peft: train low-rank adapters instead of every weight."""

    lora_r: int | None = option(
        None, help="train LoRA adapters of rank R (peft) instead of every weight; off when not given", ge=1
    )
    lora_alpha: float | None = option(None, help="LoRA scale alpha (default: 2 x --lora-r)", gt=0)
    lora_target: str = option(
        "all-linear",
        help="modules given adapters: all-linear, or comma-separated module names (e.g. q_proj,v_proj)",
    )
    lora_save: str = option(
        "merged",
        help="the final model: merged (adapters folded into a plain model) or "
        "adapter (peft's adapter files, which name their base model)",
        choices=("merged", "adapter"),
    )


@dataclasses.dataclass(kw_only=True)
class Resumable:
    """--resume and --force of a stage that checkpoints as it goes (OUT.partial until it is done)."""

    resume: bool = option(False, help="continue the unfinished run in OUT.partial")
    force: bool = option(False, help="replace a finished OUT, or discard an unfinished one")


@dataclasses.dataclass(kw_only=True)
class Overwrite:
    """--force of a command that writes its output in one go: OUT is replaced, never one of its inputs."""

    force: bool = option(False, help="replace OUT if it exists (never an input)")


@dataclasses.dataclass(kw_only=True)
class WorldRef:
    world_seed: int = option(
        0,
        help="seed of the built-in world the prompts come from (its gold scorer "
        "monitors, it never trains); ignored for other data",
        ge=0,
    )
    scale: str = option("small", help="scale of that world", choices=SCALE_NAMES)


@dataclasses.dataclass(kw_only=True)
class Length:
    epochs: float = option(
        1.0,
        help="passes over the training data (prompts, for PPO); sets the step count "
        "unless --max-steps is given",
        gt=0,
    )
    max_steps: int | None = option(None, help="optimizer steps in total (overrides --epochs)", ge=1)

    def total_steps(self, steps_per_epoch: float) -> int:
        """--max-steps, else --epochs passes of `steps_per_epoch` steps (rounded up; at least one)."""
        return self.max_steps or max(1, math.ceil(self.epochs * steps_per_epoch))


@dataclasses.dataclass(kw_only=True)
class Schedule(Length):
    lr: float = option(1e-4, help="peak learning rate (AdamW)", gt=0)
    min_lr_ratio: float = option(
        0.1, help="final learning rate as a fraction of the peak (cosine schedule)", ge=0, le=1
    )
    warmup_steps: int = option(10, help="linear warm-up steps", ge=0)
    weight_decay: float = option(0.0, help="AdamW weight decay", ge=0)


@dataclasses.dataclass(kw_only=True)
class Batching:
    micro_batch: int = option(
        8,
        help="examples per forward/backward pass (a ranking counts as one: all its "
        "completions go together); a memory setting, the update does not change",
        ge=1,
    )
    grad_accum: int = option(
        1, help="micro-batches per optimizer step (batch = micro_batch x grad_accum)", ge=1
    )

    @property
    def batch(self) -> int:
        return self.micro_batch * self.grad_accum


@dataclasses.dataclass(kw_only=True)
class Cadence:
    eval_every: int = option(100, help="steps between held-out measurements", ge=1)
    save_every: int = option(100, help="steps between resumable checkpoints", ge=1)


@dataclasses.dataclass(kw_only=True)
class Generation:
    max_new_tokens: int = option(48, help="tokens generated per answer at most", ge=1)


@dataclasses.dataclass(kw_only=True)
class SamplingOptions(Generation):
    temperature: float = option(
        1.0,
        help="sampling temperature (log-probs divide by it: below 0.01 it is greedy "
        "in effect and only risks overflow)",
        ge=0.01,
    )


@dataclasses.dataclass(kw_only=True)
class WorldPick:
    """Which built-in world (the world commands' own --seed; other commands say --world-seed)."""

    seed: int = option(0, help="world seed; the same seed and scale give byte-identical worlds", ge=0)
    scale: str = option(
        "small",
        help="world size: small (the CPU demo), paper (InstructGPT's proportions) or "
        "small2 (small with a long tail and an 80M-token corpus)",
        choices=SCALE_NAMES,
    )


__all__ = [
    "Batching",
    "Cadence",
    "Generation",
    "Length",
    "ModelOptions",
    "Options",
    "Path",
    "RemoteCode",
    "Resumable",
    "SamplingOptions",
    "Schedule",
    "Threads",
    "WorldPick",
    "WorldRef",
    "option",
    "tuned",
]
