"""What a run was started with, so that it continues only as it began: its options and a digest of each
input they name (a stage's OUT.partial/run.json, a loop's loop.json, `posttrain sample`'s output).

A resumed run whose options or input files differ is refused, naming each difference
(`check_same_run`); the options in NOT_COMPARED may change between a run and its resumption.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from posttrain.data.corpus import file_sha256
from posttrain.errors import UserError

NOT_COMPARED = {"resume", "force", "threads", "out", "fsdp"}  # may differ between a run and its resumption
# (as may the world size)


def fingerprint(config) -> dict:
    """A stage config's options (but NOT_COMPARED) and a digest of each input they name."""
    options = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_COMPARED}
    inputs = {
        k: digest(Path(v))
        for k, v in options.items()
        if isinstance(v, (str, Path)) and v and Path(v).exists()
    }
    return json.loads(json.dumps({"options": options, "inputs": inputs}, default=str))


def digest(path: Path) -> str:
    """sha256 of a file's bytes (the value the manifests' `data` hashes hold); of a folder, of its file
    names and sizes and its JSON files' bytes (a retrained model's posttrain.json and config differ)."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and ".partial" not in p.parts):
        h.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
        if f.suffix == ".json":
            h.update(f.read_bytes())
    return h.hexdigest()


def check_same_run(was: dict, now: dict, where: Path) -> None:
    """Refuse to resume the run at `where` when its options or inputs differ from the ones it began with."""
    changes = [
        f"--{k.replace('_', '-')} was {was['options'].get(k)!r}, now {v!r}"
        for k, v in now["options"].items()
        if was["options"].get(k) != v
    ]
    changes += [
        f"--{k.replace('_', '-')} {now['options'][k]}: its contents changed since the run started"
        for k, d in now["inputs"].items()
        if k in was["inputs"] and was["inputs"][k] != d and was["options"].get(k) == now["options"][k]
    ]
    if changes:
        raise UserError(
            f"cannot resume {where}: it was started differently ({'; '.join(changes)}); "
            "resume with the same options and data, or pass --force to start over"
        )
