"""Entry-point configs are dataclasses; each field's `help` is its `--help` text, written once.

    @dataclass(kw_only=True)
    class ExportConfig(Options):
        out: Path = option(help="directory to write", required=True)
        seed: int = option(0, help="world seed", ge=0)

    add_arguments(parser, ExportConfig); cfg = from_namespace(ExportConfig, parser.parse_args()); cfg.check()

Settings that several entry points share are declared once, in the pieces below (`Threads`,
`Resumable`, `WorldRef`, `Schedule`, `Batching`, `Cadence`, ...), and a config inherits them;
`tuned(Piece, lr=3e-4)` is the same piece with other defaults. A field whose type is itself a
config (`rm: RMSettings`) becomes options with its name as prefix (`--rm-lr`). Every numeric
option declares its range (`ge`, `gt`, `le`, `lt`); `Options.check()` enforces the ranges (and
finiteness) before any model loads, and a config's own `check()` adds its cross-field rules.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import typing
from pathlib import Path
from typing import Any

from posttrain.errors import UserError

_MISSING = dataclasses.MISSING
SCALE_NAMES = ("small", "paper", "small2")  # posttrain.world.core.SCALES' keys (a test keeps them equal)
BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
# torch's CPU generator (mt19937) keeps only a seed's low 32 bits, so --seed 4294967303 (2**32 + 7) would
# sample exactly as --seed 7: every seed option (`seed`, `*_seed`) stops at 2**32 - 1 instead.
SEED_MAX = 2**32 - 1


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


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Options:
    """Base of every config: `check()` enforces each field's declared range; override to add rules."""

    def check(self) -> None:
        check_ranges(self)


def check_ranges(cfg, prefix: str = "") -> None:
    """A UserError naming the first option outside its range, or a float that is not finite."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_ranges(value, f"{prefix}{f.name}_")
            continue
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            name = flag(prefix + f.name)
            if not math.isfinite(v):
                raise UserError(f"{name} must be a finite number, got {v}")
            for bound, limit in bounds(f).items():
                if not {"ge": v >= limit, "gt": v > limit, "le": v <= limit, "lt": v < limit}[bound]:
                    raise UserError(f"{name} must be {range_text(f)}, got {v}")


def bounds(f: dataclasses.Field) -> dict:
    """A field's declared range ({"ge": 0, "le": 9}); a seed option's also stops at SEED_MAX."""
    b = f.metadata.get("bounds", {})
    if (f.name == "seed" or f.name.endswith("_seed")) and not {"le", "lt"} & set(b):
        return {**b, "le": SEED_MAX}
    return b


def range_text(f: dataclasses.Field) -> str:
    """`>= 1`, `between 2 and 9`, `in [0, 1)`: a field's declared range, as the error and the help say it."""
    b = {k: number_text(v) for k, v in bounds(f).items()}
    low, high = (
        next((k for k in ("ge", "gt") if k in b), None),
        next((k for k in ("le", "lt") if k in b), None),
    )
    if low and high:
        return (
            f"between {b[low]} and {b[high]}"
            if (low, high) == ("ge", "le")
            else f"in {'[' if low == 'ge' else '('}{b[low]}, {b[high]}{']' if high == 'le' else ')'}"
        )
    return " and ".join(f"{BOUNDS[k]} {limit}" for k, limit in b.items())


def number_text(x: float) -> str:
    """1e+06 for a million, but 4294967295 in full: a bound is never shown rounded."""
    return f"{x:g}" if float(f"{x:g}") == x else str(x)


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


def _scalar(tp) -> type:
    """int for `int`, `int | None` and `list[int]`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return _scalar(args[0]) if args else tp


def ordered_fields(cls: type) -> list[dataclasses.Field]:
    """The config's own fields first, then those of each piece it inherits, in the order of its bases."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = dict.fromkeys(
        n for k in cls.__mro__ for n in k.__dict__.get("__annotations__", {}) if n in fields
    )
    return [fields[n] for n in names]


class Once(argparse.Action):
    """Mixed into an option's action: given twice on one command line (`--k 4 --k 8`), it says so on stderr,
    naming both values, where argparse keeps the last one silently. A warning, not an error: appending an
    override to a list of defaults (`posttrain sft $DEFAULTS --lr 1e-3`) is how wrappers and this project's
    tests reuse a command line, and the last value still counts. Options meant to repeat use `append`."""

    def __call__(self, parser, namespace, values, option_string=None):
        shown = (
            option_string
            if isinstance(self, argparse.BooleanOptionalAction)
            else " ".join(map(str, values))
            if isinstance(values, list)
            else str(values)
        )
        given = namespace.__dict__.setdefault("_given_once", {})
        if self.dest in given:
            print(
                f"{parser.prog}: warning: {self.option_strings[0]} given twice ({given[self.dest]} and "
                f"{shown}); the last counts: give it once",
                file=sys.stderr,
            )
        given[self.dest] = shown
        super().__call__(parser, namespace, values, option_string)


class StoreOnce(Once, argparse._StoreAction):
    pass


class FlagOnce(Once, argparse.BooleanOptionalAction):
    pass


def add_arguments(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    hints = typing.get_type_hints(cls)
    for f in ordered_fields(cls):
        meta, tp, name = f.metadata, hints[f.name], prefix + f.name
        if dataclasses.is_dataclass(tp):
            add_arguments(
                parser.add_argument_group(f"{flag(name)}-* options", meta["help"]), tp, prefix=name + "_"
            )
            continue
        if tp is bool:
            parser.add_argument(flag(name), dest=name, action=FlagOnce, default=f.default, help=meta["help"])
            continue
        if meta.get("positional"):
            parser.add_argument(name, metavar=name.upper(), type=_scalar(tp), help=meta["help"])
            continue
        if meta.get("repeat"):
            parser.add_argument(
                flag(name),
                dest=name,
                action="append",
                type=_scalar(tp),
                required=meta["required"],
                metavar=name.upper(),
                help=meta["help"] + " (repeat the option for several)",
            )
            continue
        default = f.default_factory() if f.default_factory is not _MISSING else f.default
        bounds = f" ({range_text(f)})" if meta.get("bounds") else ""
        shown = (
            ""
            if meta["required"]
            else f" (default: {' '.join(map(str, default)) if isinstance(default, list) else default})"
        )
        parser.add_argument(
            flag(name),
            dest=name,
            action=StoreOnce,
            type=_scalar(tp),
            default=default,
            required=meta["required"],
            choices=meta["choices"],
            nargs=meta["nargs"],
            help=meta["help"] + bounds + shown,
            metavar=None if meta["choices"] else name.upper(),
        )


def from_namespace(cls: type, ns: argparse.Namespace, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            f.name: from_namespace(hints[f.name], ns, prefix + f.name + "_")
            if dataclasses.is_dataclass(hints[f.name])
            else getattr(ns, prefix + f.name)
            for f in dataclasses.fields(cls)
        }
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
    resume: bool = option(False, help="continue the unfinished run in OUT.partial")
    force: bool = option(False, help="replace a finished OUT, or discard an unfinished one")


@dataclasses.dataclass(kw_only=True)
class Overwrite:
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
class Sampling(Generation):
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
    "Sampling",
    "Schedule",
    "Threads",
    "WorldPick",
    "WorldRef",
    "add_arguments",
    "check_ranges",
    "from_namespace",
    "option",
    "tuned",
]
