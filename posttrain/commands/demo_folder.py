"""A demo's folder, OUT: where it goes by default, what a demo writes there (demo.json and its steps), and
the checks before any step: --force deletes only a demo's folder, never the base model it reads, and a
demo started with another preset, run seed, world or base model is refused, naming the difference."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_presets import BASE_WORLD, PRESETS, TEST_SETS, demo_world
from posttrain.data.outputs import check_not_input, foreign_entries, named
from posttrain.errors import UserError


def default_out(cfg: DemoConfig, seeds: bool = False) -> Path:
    """runs/demo for the measured preset, world and run seed 0; each other preset, world, seed or list of
    seeds its own folder, so that runs never mix."""
    name = "runs/demo" + ("" if cfg.preset == "small" else f"-{cfg.preset}")
    name += f"-world{cfg.world_seed}" if cfg.world_seed != BASE_WORLD else ""
    return Path(name + ("-seeds" if seeds else f"-seed{cfg.seed}" if cfg.seed else ""))


DEMO_FILE = "demo.json"  # in OUT: what the demo began with: preset, run seed, world seed and scale, base


WRITES = (
    DEMO_FILE,
    "world",
    "sft",
    "samples.jsonl",
    "rankings.jsonl",
    "rm",
    "ppo-ptx",
    *(t.report for t in TEST_SETS),
)


OPTIONS = {"preset": "--preset", "seed": "--seed", "world_seed": "--world-seed", "base": "--base"}


def base_model(cfg: DemoConfig) -> str:
    return cfg.base or str(demo_world().base)


def start(cfg: DemoConfig) -> None:
    """Check OUT (`check_folder`), delete it with --force, then record this demo in OUT/demo.json."""
    check_folder(cfg)
    if cfg.force and cfg.out.exists():
        shutil.rmtree(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / DEMO_FILE).write_text(json.dumps(fingerprint(cfg), indent=1) + "\n")


def check_folder(cfg: DemoConfig) -> None:
    """Before any step: --force may delete OUT only when it holds nothing but a demo's steps (never the base
    model it reads); a demo begun with another preset, run seed, world or base model is refused, naming them.
    """
    out = cfg.out
    check_not_input(out, [base_model(cfg)])
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} is a file; name a folder for the demo")
    other = foreign_entries(out, [*WRITES, *(f"{w}.partial" for w in WRITES)])
    if other:
        raise UserError(
            f"--out {out} holds files a demo does not write ({named(other)}); choose another "
            "--out" + ("" if cfg.force else ", or move them away")
        )
    changes = [] if cfg.force else differences(recorded(out), fingerprint(cfg))
    if changes:
        raise UserError(
            f"{out} holds a demo started differently ({'; '.join(changes)}); continue it with "
            f"the same options, choose another --out, or pass --force to start over"
        )


def fingerprint(cfg: DemoConfig) -> dict:
    return {
        "preset": cfg.preset,
        "seed": cfg.seed,
        "world_seed": cfg.world_seed,
        "scale": demo_world().scale,
        "base": cfg.base,
        "sizes": asdict(PRESETS[cfg.preset]),
    }


def differences(was: dict, now: dict) -> list[str]:
    """What differs between the demo recorded in OUT and this one: its options, or its preset's sizes."""
    was = upgraded(was)
    changes = [
        f"{flag} was {was[k]!r}, now {now[k]!r}"
        for k, flag in OPTIONS.items()
        if k in was and was[k] != now[k]
    ]
    if "scale" in was and was["scale"] != now["scale"]:  # a newer posttrain's demo runs on another world
        changes.append(f"the world's scale was {was['scale']!r}, now {now['scale']!r}")
    if not changes and "sizes" in was:  # the same preset, redefined by a newer posttrain
        changes = [
            f"the {now['preset']} preset's {k} was {was['sizes'].get(k)!r}, now {v!r}"
            for k, v in now["sizes"].items()
            if was["sizes"].get(k) != v
        ]
    return changes


def upgraded(was: dict) -> dict:
    """A record of an older posttrain in today's terms. Its one `seed` was the world seed, and its stages ran
    with their default seeds (0; the labelers and the evaluation drew from the world seed): every demo it ran
    used seed 0 for both, which today is world seed 0 and run seed 0 on the shipped base model. A record
    without a scale is of a demo on the small world, the only one the demo ran on then."""
    if not was:
        return was
    if "world_seed" not in was:
        was = {**was, "seed": 0, "world_seed": was.get("seed", BASE_WORLD), "base": None}
    return {"scale": "small", **was}


def recorded(out: Path) -> dict:
    """What the demo in `out` was started with: its demo.json; for a demo from an older posttrain, the
    preset whose demonstration count and the seed its world shows (nothing when it has no world yet)."""
    if (out / DEMO_FILE).is_file():
        return upgraded(json.loads((out / DEMO_FILE).read_text()))
    manifest = out / "world" / "manifest.json"
    if not manifest.is_file():
        return {}
    seed = json.loads(manifest.read_text()).get("seed")
    path = out / "world" / "demos.jsonl"
    demos = sum(1 for _ in path.open()) if path.is_file() else None
    preset = next((name for name, p in PRESETS.items() if p.sft_demos == demos), "small")
    return upgraded({"preset": preset, "seed": seed})
