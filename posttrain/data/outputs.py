"""What an output may replace: `--force` replaces only what posttrain wrote, and never an input.

Every command that writes checks its `--out` before any work (issue 28):

- never a path that is, or holds, one of the command's inputs (`check_not_input`): `--out runs --force`
  with the model in `runs/base` would delete the model;
- a file or report folder (`check_output` in posttrain/data/records.py): an existing one only with --force;
- a run directory (`RunDir`, posttrain/models/checkpoint.py): a finished run only when its posttrain.json
  lists every file in it, an unfinished `OUT.partial` only when its run.json marks it as posttrain's;
- a pipeline's folder (demo, loop): only when every entry in it is one the pipeline writes
  (`foreign_entries`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from posttrain.errors import UserError


def check_not_input(path: str | Path, inputs: Iterable[str | Path | None], flag: str = "--out") -> None:
    """Refuse `path` when it is one of `inputs` or a folder holding one (inputs that are not paths, such as a
    hub id, are skipped)."""
    target = Path(path).resolve()
    for given in inputs:
        if given is None or given == "" or not Path(given).exists():
            continue
        source = Path(given).resolve()
        if source == target:
            raise UserError(
                f"{flag} {path} is also an input of this command; write the output somewhere else"
            )
        if target in source.parents:
            raise UserError(
                f"{flag} {path} holds {given}, an input of this command; --force would delete it: "
                f"write the output somewhere else"
            )


def input_paths(options) -> list[str]:
    """Every string or path in `options` (a config's fields as a dict, nested dicts and lists included) that
    names an existing file or folder: the inputs a command reads."""
    if isinstance(options, dict):
        return [p for v in options.values() for p in input_paths(v)]
    if isinstance(options, (list, tuple)):
        return [p for v in options for p in input_paths(v)]
    if isinstance(options, (str, Path)) and str(options) and Path(options).exists():
        return [str(options)]
    return []


def foreign_entries(directory: Path, known: Iterable[str]) -> list[str]:
    """Names in `directory` that are none of `known` (a name, or its temporary `.name...` files while it is
    written)."""
    known = tuple(known)
    return sorted(
        p.name
        for p in directory.iterdir()
        if not any(p.name == k or (p.name.startswith(f".{k}") and k) for k in known)
    )


def files_under(directory: Path) -> list[str]:
    """Every file under `directory`, as sorted paths relative to it."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if not p.is_dir())


def named(entries: list[str], most: int = 3) -> str:
    """'a, b, c and 4 more'."""
    more = f" and {len(entries) - most} more" if len(entries) > most else ""
    return ", ".join(entries[:most]) + more
