"""A config on the command line: its fields as argparse options and back, their ranges checked and said.

    add_arguments(parser, WorldExportConfig)          # --out, --seed, ... with help, range and default
    cfg = from_namespace(WorldExportConfig, parser.parse_args())

`check_ranges` (which `Options.check()` runs) refuses a value outside its field's declared range, or
a float that is not finite, naming the option; `range_text` says a range the way the errors and
`--help` do. How a config and its options are declared is posttrain/config.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import typing

from posttrain.errors import UserError

_MISSING = dataclasses.MISSING
BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
# torch's CPU generator (mt19937) keeps only a seed's low 32 bits, so --seed 4294967303 (2**32 + 7) would
# sample exactly as --seed 7: every seed option (`seed`, `*_seed`) stops at 2**32 - 1 instead.
SEED_MAX = 2**32 - 1


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
