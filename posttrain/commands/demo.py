"""the whole loop on the built-in world: SFT, RM, PPO-ptx, eval, report

The whole recipe on the built-in world, with a final table of measured results:

    posttrain demo                  # the built-in world, its shipped base model, in runs/demo (what `make demo` runs)
    posttrain demo --preset tiny    # the same chain in a few minutes, on far less data, in runs/demo-tiny
    posttrain demo --seed 1         # another run seed on the same world and base, in runs/demo-seed1
    posttrain demo --seeds 0,1,2    # a demo per run seed (runs/demo-seeds/seed-S), then their mean and range

Steps: world export -> base model (shipped) -> SFT -> sample K = 4 per prompt -> simulated labelers
rank -> reward model -> PPO-ptx -> eval against SFT on the held-out test prompts of test.jsonl (gold judge;
greedy and at temperature 1) -> eval on test_novel.jsonl, the same entities and numbers in phrasings no
training file uses (greedy only: a temperature-1 pass would double its time) -> reports (`OUT/report/` and
`OUT/report-novel/`: index.html, summary.json). The final tables show what PPO-ptx changed per axis, SFT
beside it, greedy and at T = 1: win rate, gold score, task success (1 - the fails_task rate), helpful,
honest, harmless, hallucination (passage QA), harmful requests refused, over-refusal, mean words, KL;
every row with its n, the prompts it is measured on.

--seed is the run seed: the seed of SFT, of sampling, of the simulated labelers' draws, of the reward
model, of PPO and of the evaluation's samples. The world is --world-seed's (0): the shipped base model
was pretrained on world 0's corpus, so another world needs its own base model (`posttrain pretrain` on
that world's corpus.jsonl), given with --base. --seeds S1,S2,... runs a demo per run seed in
OUT/seed-S and prints the final tables as the mean over the seeds with their min..max (OUT/seeds.json).

Each step writes atomically and is skipped when its output exists, so an interrupted demo re-run continues
(with --seeds too: each seed's folder is a demo of its own); `--force` starts over. `OUT/demo.json` records
the preset, run seed, world seed and base model: a demo with others is refused in that OUT (its steps would
be skipped as done, and the other run's results shown as this one's).
"""  # shown as written by `posttrain demo --help` (an indented block)  # noqa: E501

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from pathlib import Path

from posttrain.commands import command
from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_folder import base_model, check_folder, default_out, start
from posttrain.commands.demo_presets import PRESETS, TEST_SETS
from posttrain.commands.demo_steps import plan
from posttrain.commands.demo_tables import (
    final_table,
    phase_table,
    plain,
    reward_model_line,
    seeds_table,
    set_title,
    summaries,
)
from posttrain.data.outputs import check_not_input, foreign_entries, named
from posttrain.errors import UserError


@command("demo", DemoConfig)
def demo(cfg: DemoConfig) -> int:
    if cfg.seeds is not None:
        return demo_seeds(cfg)
    cfg.out = cfg.out or default_out(cfg)
    start(cfg)
    began = time.monotonic()
    phases = run_steps(cfg)
    for test_set, summary in summaries(cfg.out).items():
        print(f"{set_title(test_set, summary)}\n{final_table(summary)}\n")
    print(phase_table(phases))
    print(reward_model_line(cfg.out))
    print(f"\ndemo finished in {time.monotonic() - began:.0f} s; report: {cfg.out / 'report' / 'index.html'}")
    return 0


demo.__doc__ = __doc__  # the module docstring is the command's --help description


def run_steps(cfg: DemoConfig) -> list[tuple[str, Path, float | None]]:
    """Run every step not done before; (name, output, seconds or None when done before) for each."""
    steps = plan(cfg, PRESETS[cfg.preset])
    phases = []
    for i, (name, output, run) in enumerate(steps, 1):
        if output.exists():
            print(f"[{i}/{len(steps)}] {name}: done before ({output})", file=sys.stderr)
            phases.append((name, output, None))
            continue
        print(f"[{i}/{len(steps)}] {name} ...", file=sys.stderr, flush=True)
        t = time.monotonic()
        run()
        phases.append((name, output, time.monotonic() - t))
        print(f"[{i}/{len(steps)}] {name}: {phases[-1][2]:.0f} s", file=sys.stderr, flush=True)
    return phases


def demo_seeds(cfg: DemoConfig) -> int:
    """--seeds: a whole demo per run seed in OUT/seed-S (each continues as a demo does), then every final
    table's figures as their mean and min..max over the seeds, printed and written to OUT/seeds.json."""
    from posttrain.evaluation.pages import write_json

    out = cfg.out or default_out(cfg, seeds=True)
    runs = {s: replace(cfg, seeds=None, seed=s, out=out / f"seed-{s}") for s in cfg.seed_list()}
    check_not_input(out, [base_model(cfg)])
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--out {out} is a file; name a folder for the demos")
        other = [n for n in foreign_entries(out, ["seeds.json"]) if not re.fullmatch(r"seed-\d+", n)]
        if other:
            raise UserError(
                f"--out {out} holds files a demo with --seeds does not write ({named(other)}); choose "
                "another --out, or move them away"
            )
    for run in runs.values():  # every seed's folder checked before the first seed's hour of training
        check_folder(run)
    began = time.monotonic()
    for seed, run in runs.items():
        print(f"== run seed {seed} ({run.out})", file=sys.stderr, flush=True)
        start(run)
        run_steps(run)
    result = {
        "seeds": list(runs),
        "preset": cfg.preset,
        "world_seed": cfg.world_seed,
        "base": cfg.base,
        "runs": {str(s): str(r.out) for s, r in runs.items()},
        "test_sets": {},
    }
    for test_set in TEST_SETS:
        per_seed = {s: summaries(r.out).get(test_set.file) for s, r in runs.items()}
        if all(per_seed.values()):
            table = seeds_table(per_seed)
            result["test_sets"][test_set.file] = table
            print(
                f"{set_title(test_set.file, next(iter(per_seed.values())))}; over run seeds "
                f"{', '.join(map(str, runs))}: mean (min..max)\n{plain(table)}\n"
            )
    write_json(out, "seeds.json", result)
    print(
        f"demos finished in {time.monotonic() - began:.0f} s; {out / 'seeds.json'}; reports: "
        + ", ".join(str(r.out / "report" / "index.html") for r in runs.values())
    )
    return 0
