"""Entry-point configs are dataclasses; each field's `help` is its `--help` text, written once.

    @dataclass
    class ExportConfig:
        out: Path = option(help="directory to write", required=True)
        seed: int = option(0, help="world seed")

    add_arguments(parser, ExportConfig); cfg = from_namespace(ExportConfig, parser.parse_args())
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, *, help: str, required: bool = False, choices: tuple | None = None,
           nargs: str | None = None) -> Any:
    meta = {"help": help, "required": required, "choices": choices, "nargs": nargs}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    if default is _MISSING and not required:
        raise TypeError("an option without a default must be required")
    return dataclasses.field(default=None if default is _MISSING else default, metadata=meta)


def _scalar(tp) -> type:
    """int for `int`, `int | None` and `list[int]`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return _scalar(args[0]) if args else tp


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        meta, tp = f.metadata, hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=meta["help"])
            continue
        default = f.default_factory() if f.default_factory is not _MISSING else f.default
        shown = "" if meta["required"] else f" (default: {' '.join(map(str, default)) if isinstance(default, list) else default})"
        parser.add_argument(flag, type=_scalar(tp), default=default, required=meta["required"],
                            choices=meta["choices"], nargs=meta["nargs"], help=meta["help"] + shown,
                            metavar=None if meta["choices"] else f.name.upper())


def from_namespace(cls: type, ns: argparse.Namespace):
    return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls)})


__all__ = ["Path", "add_arguments", "from_namespace", "option"]
