"""the whole loop on the built-in world: SFT, RM, PPO-ptx, eval, report

The whole recipe on the built-in world, with a final table of measured results:

    posttrain demo                  # small world, the checked-in base model, in runs/demo (what `make demo` runs)
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

import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from posttrain.arguments import SEED_MAX
from posttrain.commands import command
from posttrain.config import Options, option
from posttrain.data.outputs import check_not_input, foreign_entries, named
from posttrain.errors import UserError
from posttrain.recipes import SMALL

BASE = Path(__file__).resolve().parent.parent.parent / "assets" / "base-small-seed0"
BASE_WORLD = 0  # the world whose corpus the shipped base model was pretrained on


@dataclass(frozen=True)
class Preset:
    """Sizes of one demo run; `small` is the measured one in the README (its settings: recipes.SMALL)."""

    sft_epochs: float
    sft_demos: int | None  # first N demonstrations (None: all)
    rm_prompts: int | None
    rm_epochs: float
    ppo_steps: int
    rollout_batch: int
    micro_batch: int
    test_prompts: int | None  # first N prompts of each test set


PRESETS = {
    "small": Preset(
        sft_epochs=SMALL.sft_epochs,
        sft_demos=None,
        rm_prompts=None,
        rm_epochs=SMALL.rm_epochs,
        ppo_steps=SMALL.ppo_steps,
        rollout_batch=SMALL.rollout_batch,
        micro_batch=SMALL.micro_batch,
        test_prompts=None,
    ),
    "tiny": Preset(
        sft_epochs=1,
        sft_demos=160,
        rm_prompts=48,
        rm_epochs=1,
        ppo_steps=2,
        rollout_batch=16,
        micro_batch=4,
        test_prompts=45,
    ),
}


@dataclass(frozen=True)
class TestSet:
    file: str  # in the world's export
    report: str  # in OUT
    temperatures: tuple[float, ...]  # 0 is greedy
    about: str


# test_novel is greedy only: its one more generation pass per system at T = 1 would double its time
TEST_SETS = (
    TestSet("test.jsonl", "report", (0.0, 1.0), "held-out entities and numbers, training-style phrasings"),
    TestSet(
        "test_novel.jsonl",
        "report-novel",
        (0.0,),
        "the same entities and numbers in phrasings no training file uses; greedy only",
    ),
)


@dataclass(kw_only=True)
class DemoConfig(Options):
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
        help="world seed; the shipped base model was pretrained on world 0's "
        "corpus, so another world needs its own base model (--base)",
        ge=0,
    )
    base: str | None = option(
        None,
        help="base model to fine-tune (default: the shipped assets/base-small-seed0, "
        "pretrained on world 0); for another --world-seed, one pretrained on "
        "that world's corpus.jsonl with `posttrain pretrain`",
    )
    force: bool = option(False, help="start over: delete OUT first (only a demo's folder)")

    def check(self) -> None:
        super().check()
        if self.world_seed != BASE_WORLD and self.base is None:
            w = self.world_seed
            raise UserError(
                f"--world-seed {w}: the shipped base model ({BASE.name}) was pretrained on world "
                f"{BASE_WORLD}'s corpus and never saw world {w}'s facts; another world needs its own base "
                f"model: `posttrain world export --seed {w} --out W`, `posttrain pretrain --data "
                f"W/corpus.jsonl --out B`, then `posttrain demo --world-seed {w} --base B`. To vary "
                "the training randomness on the shipped world, use --seed (the run seed)"
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


@command("demo", DemoConfig)
def demo(cfg: DemoConfig) -> int:
    if cfg.seeds is not None:
        return demo_seeds(cfg)
    cfg.out = cfg.out or default_out(cfg)
    start(cfg)
    began = time.monotonic()
    phases = run_steps(cfg)
    for test_set, summary in summaries(cfg.out).items():
        print(f"{test_set_title(test_set, summary)}\n{final_table(summary)}\n")
    print(phase_table(phases))
    print(reward_model_line(cfg.out))
    print(f"\ndemo finished in {time.monotonic() - began:.0f} s; report: {cfg.out / 'report' / 'index.html'}")
    return 0


demo.__doc__ = __doc__  # the module docstring is the command's --help description


def default_out(cfg: DemoConfig, seeds: bool = False) -> Path:
    """runs/demo for the measured preset, world and run seed 0; each other preset, world, seed or list of
    seeds its own folder, so that runs never mix."""
    name = "runs/demo" + ("" if cfg.preset == "small" else f"-{cfg.preset}")
    name += f"-world{cfg.world_seed}" if cfg.world_seed != BASE_WORLD else ""
    return Path(name + ("-seeds" if seeds else f"-seed{cfg.seed}" if cfg.seed else ""))


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
                f"{test_set_title(test_set.file, next(iter(per_seed.values())))}; over run seeds "
                f"{', '.join(map(str, runs))}: mean (min..max)\n{plain(table)}\n"
            )
    write_json(out, "seeds.json", result)
    print(
        f"demos finished in {time.monotonic() - began:.0f} s; {out / 'seeds.json'}; reports: "
        + ", ".join(str(r.out / "report" / "index.html") for r in runs.values())
    )
    return 0


def seeds_table(per_seed: dict[int, dict]) -> dict:
    """The final table's figures over the seeds' summaries ({seed: summary}): mean, sd, min and max each."""
    from posttrain.evaluation.axes import axis_table, over_seeds

    return over_seeds({s: axis_table(summary, "SFT") for s, summary in per_seed.items()})


def summaries(out: Path) -> dict[str, dict]:
    """{test file: summary.json} of the demo in `out`, for each test set it evaluated."""
    paths = {t.file: out / t.report / "summary.json" for t in TEST_SETS}
    return {name: json.loads(path.read_text()) for name, path in paths.items() if path.is_file()}


def test_set_title(file: str, summary: dict) -> str:
    about = next((t.about for t in TEST_SETS if t.file == file), "")
    return f"{file}: {summary['config']['prompts']} prompts ({about}); gold judge, ties half"


DEMO_FILE = "demo.json"  # in OUT: the preset, run seed, world seed and base model the demo was started with
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
    return cfg.base or str(BASE)


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
    used seed 0 for both, which today is world seed 0 and run seed 0 on the shipped base model."""
    if not was or "world_seed" in was:
        return was
    return {**was, "seed": 0, "world_seed": was.get("seed", BASE_WORLD), "base": None}


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


def plan(cfg: DemoConfig, p: Preset) -> list[tuple[str, Path, callable]]:
    """(name, output that marks it done, function) for every step, in order: each runs its stage's
    config (`stage_configs`) through the same command function as the command line."""
    from posttrain.commands import labeling, rlhf, training
    from posttrain.commands import world as world_cmd
    from posttrain.world.export import WorldExportConfig

    o, w, c = cfg.out, cfg.out / "world", stage_configs(cfg, p)

    def world() -> None:
        world_cmd.world_export(WorldExportConfig(out=w, scale="small", seed=cfg.world_seed, force=True))
        trims = [
            ("demos.jsonl", p.sft_demos),
            ("prompts_rm.jsonl", p.rm_prompts),
            *((t.file, p.test_prompts) for t in TEST_SETS),
        ]
        for name, n in trims:
            if n is not None:  # the tiny preset trains and tests on the first lines only
                lines = (w / name).read_text().splitlines(keepends=True)[:n]
                (w / name).write_text("".join(lines))

    def step(command, config) -> callable:
        def run() -> None:
            if hasattr(config, "resume"):
                config.resume = resume(config.out)
            config.check()
            command(config)

        return run

    # a world exported by an older posttrain has no test_novel.jsonl: its demo continues without that eval
    tests = [t for t in TEST_SETS if not (w / "manifest.json").exists() or (w / t.file).exists()]
    return [
        ("world export", w / "manifest.json", world),
        ("SFT", o / "sft", step(training.sft, c["sft"])),
        (f"sample K={SMALL.k}", o / "samples.jsonl", step(training.sample, c["sample"])),
        ("label (simulated labelers)", o / "rankings.jsonl", step(labeling.label_sim, c["label"])),
        ("reward model", o / "rm", step(training.rm, c["rm"])),
        ("PPO-ptx", o / "ppo-ptx", step(rlhf.ppo, c["ppo"])),
        *(
            (
                f"eval and report: {t.file}",
                o / t.report / "summary.json",
                lambda t=t: evaluate_test_set(cfg, t),
            )
            for t in tests
        ),
    ]


def stage_configs(cfg: DemoConfig, p: Preset) -> dict:
    """Every stage's config: the stages' defaults (the recipe, posttrain/recipes.py), the preset's sizes, the
    run seed and the world seed."""
    from posttrain.labeling.simulated import LabelSimConfig
    from posttrain.stages.rm import RMConfig
    from posttrain.stages.sample import SampleConfig
    from posttrain.stages.sft import SFTConfig
    from posttrain.training.ppo_config import PPOConfig

    o = cfg.out or default_out(cfg)
    w, seed, world = o / "world", cfg.seed, cfg.world_seed
    return {
        "sft": SFTConfig(
            model=base_model(cfg), data=w / "demos.jsonl", out=o / "sft", epochs=p.sft_epochs, seed=seed
        ),
        "sample": SampleConfig(
            model=str(o / "sft"),
            prompts=w / "prompts_rm.jsonl",
            k=SMALL.k,
            out=o / "samples.jsonl",
            seed=seed,
        ),
        "label": LabelSimConfig(
            samples=o / "samples.jsonl",
            out=o / "rankings.jsonl",
            labelers_per_item=SMALL.labelers_per_item,
            world_seed=world,
            seed=seed,
        ),
        "rm": RMConfig(
            model=str(o / "sft"),
            data=o / "rankings.jsonl",
            out=o / "rm",
            epochs=p.rm_epochs,
            world_seed=world,
            seed=seed,
        ),
        "ppo": PPOConfig(
            policy=str(o / "sft"),
            reward=o / "rm",
            prompts=w / "prompts_ppo.jsonl",
            out=o / "ppo-ptx",
            ptx=w / "corpus.jsonl",
            heldout_corpus=w / "corpus_heldout.jsonl",
            max_steps=p.ppo_steps,
            rollout_batch=p.rollout_batch,
            micro_batch=p.micro_batch,
            world_seed=world,
            seed=seed,
        ),
    }


def resume(out: Path) -> bool:
    """Resume when an interrupted run of the step left its partial output."""
    return out.with_name(out.name + ".partial").exists()


def evaluate_test_set(cfg: DemoConfig, test_set: TestSet) -> None:
    """PPO-ptx against SFT on one test set, gold judge. The headline set (test.jsonl) also measures the
    alignment tax and KL; they do not depend on the prompts' phrasing, so test_novel.jsonl skips them."""
    from posttrain.data.corpus import read_documents
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.compare import compare_models
    from posttrain.evaluation.report import write_report
    from posttrain.world import World

    o, w, headline = cfg.out, cfg.out / "world", test_set is TEST_SETS[0]
    records = read_conversations(w / test_set.file, ends_with="user")
    summary = compare_models(
        {"ppo-ptx": str(o / "ppo-ptx")},
        str(o / "sft"),
        records,
        World(seed=cfg.world_seed),
        judge="gold",
        heldout_documents=read_documents(w / "corpus_heldout.jsonl") if headline else None,
        kl_samples=1 if headline else 0,
        seed=cfg.seed,
        temperatures=test_set.temperatures,
        knowledge=headline,
    )
    summary["config"]["test_set"] = test_set.file
    write_report(summary, o / test_set.report)


def reward_model_line(out: Path) -> str:
    """What the reward model learnt, next to what its labelers agree on (issue 14's item 4)."""
    from posttrain.labeling.simulated import agreement_from_rankings

    m = json.loads((out / "rm" / "posttrain.json").read_text())["metrics"]
    agreement = agreement_from_rankings(out / "rankings.jsonl")
    rankings = sum(1 for _ in (out / "rankings.jsonl").open())
    return (
        f"\nreward model ({rankings} rankings of K = 4, 2 labelers per item): held-out labeler pairs "
        f"{m.get('accuracy', float('nan')):.1%} (two labelers agree on {agreement['agreement']:.1%}), "
        f"gold order {m.get('gold_accuracy', float('nan')):.1%}"
    )


def final_table(summary: dict) -> str:
    """The demo's closing table: what each model changed against SFT per axis, greedy and at each sampled
    temperature the eval measured, every row with its n (`posttrain.evaluation.axes`)."""
    from posttrain.evaluation.axes import axis_table

    return plain(axis_table(summary, "SFT"))


def plain(table: dict) -> str:
    from posttrain.evaluation.axes import plain_table

    return plain_table(table)


def phase_table(phases: list[tuple[str, Path, float | None]]) -> str:
    """Each phase (name, output, seconds; None when done before) with its time and, for a training
    phase whose run logged it, the mean of `perf/share_of_peak` over its steps: where the time went,
    and how well it used the cores."""
    from posttrain.training.metrics import read_metrics

    lines = [f"{'phase':<36} {'seconds':>12} {'share of peak':>14}", "-" * 64]
    for name, output, seconds in phases:
        path = output / "metrics.jsonl"
        shares = [
            m["perf/share_of_peak"]
            for m in (read_metrics(path) if path.is_file() else [])
            if "perf/share_of_peak" in m
        ]
        took = "done before" if seconds is None else f"{seconds:.0f}"
        share = f"{sum(shares) / len(shares):.1%}" if shares else "-"
        lines.append(f"{name:<36} {took:>12} {share:>14}")
    return "\n".join(lines)
