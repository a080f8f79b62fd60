"""`posttrain demo`'s options, apart from the command so that its steps and folder checks can name the
type without importing the command."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from posttrain.arguments import SEED_MAX
from posttrain.commands.demo_presets import BASE_WORLD, PRESETS, demo_world
from posttrain.config import Options, option
from posttrain.errors import UserError


@dataclass(kw_only=True)
class DemoConfig(Options):
    """`posttrain demo`'s options. Its --force is not config.Overwrite's (replace an output written in one
    go) nor Resumable's (replace or discard one stage's run): a demo continues what it finds in OUT, step
    by step, and --force starts it over, deleting OUT first (only a folder holding nothing but a demo's
    steps)."""

    out: Path | None = option(
        None,
        help="run directory (world, every stage, report); by default runs/demo, "
        "runs/demo-PRESET for another preset, with -seedS for run seed S",
    )
    preset: str = option(
        "small", help="small (the measured demo) or tiny (a quick smoke run)", choices=tuple(PRESETS)
    )
    seed: int = option(
        0,
        help="run seed: SFT's, sampling's, the simulated labelers', the reward model's, PPO's and "
        "the evaluation's samples' (the world is --world-seed's)",
        ge=0,
    )
    seeds: str | None = option(
        None,
        help="comma list of run seeds, e.g. 0,1,2: a demo per seed in OUT/seed-S (by "
        "default OUT is runs/demo-seeds), then the final tables as mean and "
        "min..max over the seeds, also in OUT/seeds.json",
    )
    world_seed: int = option(
        BASE_WORLD,
        help=f"seed of the demo's world (scale {demo_world().scale}); the shipped base model was pretrained "
        "on world 0's corpus, so another world needs its own base model (--base)",
        ge=0,
    )
    base: str | None = option(
        None,
        help=f"base model to fine-tune (default: the shipped assets/{demo_world().base.name}, "
        f"pretrained on world 0's corpus at scale {demo_world().scale}); for another --world-seed, one "
        "pretrained on that world's corpus.jsonl with `posttrain pretrain`",
    )
    force: bool = option(False, help="start over: delete OUT first (only a demo's folder)")

    def check(self) -> None:
        super().check()
        shipped = demo_world()
        if self.world_seed != BASE_WORLD and self.base is None:
            w = self.world_seed
            raise UserError(
                f"--world-seed {w}: the shipped base model ({shipped.base.name}) was pretrained on world "
                f"{BASE_WORLD}'s corpus and never saw world {w}'s facts; another world needs its own base "
                f"model: `posttrain world export --scale {shipped.scale} --seed {w} --out W`, `posttrain "
                f"pretrain --data W/corpus.jsonl --out B`, then `posttrain demo --world-seed {w} --base B`. "
                "To vary the training randomness on the shipped world, use --seed (the run seed)"
            )
        if self.base is None and not (shipped.base / "config.json").is_file():
            raise UserError(
                f"the demo runs on the {shipped.scale} world, and its base model {shipped.base} is missing "
                f"(posttrain ships it once pretrained); make one with `posttrain world export --scale "
                f"{shipped.scale} --seed {BASE_WORLD} --out W` and `posttrain pretrain --data W/corpus.jsonl "
                f"--out B` (its options: {shipped.made}), then run `posttrain demo --base B`"
            )
        if self.seeds is not None:
            self.seed_list()
            if self.seed != 0:
                raise UserError(
                    f"--seed {self.seed} and --seeds {self.seeds}: give the run seeds in one of them"
                )

    def seed_list(self) -> list[int]:
        """The run seeds of --seeds, in the order given."""
        items = [x.strip() for x in str(self.seeds).split(",")]
        if not all(re.fullmatch(r"\d+", x) and int(x) <= SEED_MAX for x in items) or len(set(items)) != len(
            items
        ):
            raise UserError(
                f"--seeds {self.seeds!r}: give distinct run seeds 0..{SEED_MAX} as a comma list, "
                "e.g. --seeds 0,1,2"
            )
        return [int(x) for x in items]
