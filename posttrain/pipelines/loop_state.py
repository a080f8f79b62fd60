"""loop.json: the options and input digests a loop was started with, and every round's verdict.

A loop continues only in a folder a loop wrote (`check_out`) and only as it was started: another option
(more --rounds aside) or a changed input is refused, naming it (`check_same_loop`); its rounds would mix
two setups. `write_state` replaces loop.json atomically after every round.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from posttrain.data.outputs import foreign_entries, named
from posttrain.data.records import atomic_path
from posttrain.errors import UserError
from posttrain.models.fingerprint import NOT_COMPARED, fingerprint
from posttrain.pipelines.loop_config import LoopConfig


def check_out(out: Path) -> None:
    """A loop continues only in a folder a loop wrote (loop.json, sft_eval.json, round-N): never one holding
    other files (another run's, or the inputs') that its rounds would mix with."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; name a folder for the loop")
    if out.is_dir() and not (out / "loop.json").is_file():
        rounds = [p.name for p in out.glob("round-*") if p.name[len("round-") :].isdigit()]
        other = foreign_entries(out, ["loop.json", "sft_eval.json", *rounds])
        if other:
            raise UserError(
                f"--out {out} holds files that are not a loop's ({named(other)}); choose another --out"
            )


def continued_state(path: Path, cfg: LoopConfig) -> dict:
    """The state in `path` (loop.json) of a loop continued with `cfg`: refused when it was started
    differently (`check_same_loop`) or by an older posttrain."""
    state = json.loads(path.read_text())
    if "sft_score" in state:
        raise UserError(
            f"{path} was written by an older posttrain loop that kept the best by gold score; "
            "start the loop again with another --out"
        )
    check_same_loop(state, cfg, path)
    state["config"]["rounds"] = cfg.rounds
    return state


def check_same_loop(state: dict, cfg: LoopConfig, path: Path) -> None:
    """Refuse to continue the loop of `path` with another option (more --rounds aside) or changed input:
    the next round would use them while loop.json describes the old ones."""
    was, now = flat(state["config"]), flat(json.loads(json.dumps(asdict(cfg), default=str)))
    changes = [
        f"--{k.replace('_', '-')} was {was[k]!r}, now {v!r}"
        for k, v in now.items()
        if k in was and k not in NOT_COMPARED | {"rounds"} and was[k] != v
    ]
    recorded, digests = state.get("inputs", {}), fingerprint(cfg)["inputs"]
    changes += [
        f"--{k.replace('_', '-')} {now[k]}: its contents changed since the loop started"
        for k, d in digests.items()
        if k in recorded and recorded[k] != d and was.get(k) == now[k]
    ]
    if changes:
        raise UserError(
            f"cannot continue the loop in {path.parent}: it was started differently "
            f"({'; '.join(changes)}); continue it with the same options and data (more --rounds "
            "are fine), or start a new loop with another --out"
        )


def flat(options: dict, prefix: str = "") -> dict:
    """Nested settings as their command-line names: {"rm": {"lr": 1}} -> {"rm_lr": 1}."""
    out = {}
    for k, v in options.items():
        out.update(flat(v, f"{prefix}{k}_") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def write_state(cfg: LoopConfig, state: dict) -> None:
    with atomic_path(cfg.out / "loop.json") as tmp:
        tmp.write_text(json.dumps(state, indent=1, default=str) + "\n")
