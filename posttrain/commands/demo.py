"""the whole loop on the built-in world: SFT, RM, PPO-ptx, eval, report

The whole recipe on the built-in world, with a final table of measured results:

    posttrain demo                  # small world, the checked-in base model, in runs/demo (what `make demo` runs)
    posttrain demo --preset tiny    # the same chain in a few minutes, on far less data, in runs/demo-tiny

Steps: world export -> base model (shipped) -> SFT -> sample K = 4 per prompt -> simulated labelers
rank -> reward model -> PPO-ptx -> eval against SFT on the held-out test prompts (gold judge;
greedy and at temperature 1) -> report (`OUT/report/index.html`, `summary.json`). Each step writes
atomically and is skipped when its output exists, so an interrupted demo re-run continues;
`--force` starts over. `OUT/demo.json` records the preset and seed: a demo with others is refused in that
OUT (its steps would be skipped as done, and the other run's results shown as this one's).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from posttrain.commands import command
from posttrain.config import Options, option
from posttrain.data.outputs import check_not_input, foreign_entries, named
from posttrain.errors import UserError
from posttrain.recipes import SMALL

BASE = Path(__file__).resolve().parent.parent.parent / "assets" / "base-small-seed0"


@dataclass(frozen=True)
class Preset:
    """Sizes of one demo run; `small` is the measured one in the README (its settings: recipes.SMALL)."""

    sft_epochs: float
    sft_demos: int | None        # first N demonstrations (None: all)
    rm_prompts: int | None
    rm_epochs: float
    ppo_steps: int
    rollout_batch: int
    micro_batch: int
    test_prompts: int | None


PRESETS = {
    "small": Preset(sft_epochs=SMALL.sft_epochs, sft_demos=None, rm_prompts=None, rm_epochs=SMALL.rm_epochs,
                    ppo_steps=SMALL.ppo_steps, rollout_batch=SMALL.rollout_batch, micro_batch=SMALL.micro_batch,
                    test_prompts=None),
    "tiny": Preset(sft_epochs=1, sft_demos=160, rm_prompts=48, rm_epochs=1, ppo_steps=2, rollout_batch=16,
                   micro_batch=4, test_prompts=45),
}


@dataclass(kw_only=True)
class DemoConfig(Options):
    out: Path | None = option(None, help="run directory (world, every stage, report); by default runs/demo, "
                                         "runs/demo-PRESET for another preset")
    preset: str = option("small", help="small (the measured demo) or tiny (a quick smoke run)",
                         choices=tuple(PRESETS))
    seed: int = option(0, help="world seed (the shipped base model was pretrained on seed 0's corpus)", ge=0)
    force: bool = option(False, help="start over: delete OUT first (only a demo's folder)")


@command("demo", DemoConfig)
def demo(cfg: DemoConfig) -> int:
    cfg.out = cfg.out or default_out(cfg.preset)
    start(cfg)
    steps = plan(cfg, PRESETS[cfg.preset])
    began, phases = time.monotonic(), []
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
    summary = json.loads((cfg.out / "report" / "summary.json").read_text())
    print(final_table(summary))
    print("\n" + phase_table(phases))
    print(reward_model_line(cfg.out))
    print(f"\ndemo finished in {time.monotonic() - began:.0f} s; report: {cfg.out / 'report' / 'index.html'}")
    return 0


demo.__doc__ = __doc__   # the module docstring is the command's --help description


def default_out(preset: str) -> Path:
    """runs/demo for the measured preset; each other preset its own folder, so that runs never mix."""
    return Path("runs/demo" if preset == "small" else f"runs/demo-{preset}")


DEMO_FILE = "demo.json"   # in OUT: the preset and seed the demo was started with
WRITES = (DEMO_FILE, "world", "sft", "samples.jsonl", "rankings.jsonl", "rm", "ppo-ptx", "report")


def start(cfg: DemoConfig) -> None:
    """Check OUT before any step: --force deletes it only when it holds nothing but a demo's steps (never the
    base model it reads); a demo begun with another preset or seed is refused, naming them. Then OUT/demo.json."""
    out, now = cfg.out, fingerprint(cfg)
    check_not_input(out, [BASE])
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--out {out} is a file; name a folder for the demo")
        other = foreign_entries(out, [*WRITES, *(f"{w}.partial" for w in WRITES)])
        if other:
            raise UserError(f"--out {out} holds files a demo does not write ({named(other)}); choose another "
                            "--out" + ("" if cfg.force else ", or move them away"))
        if cfg.force:
            shutil.rmtree(out)
        else:
            changes = differences(recorded(out), now)
            if changes:
                raise UserError(f"{out} holds a demo started differently ({'; '.join(changes)}); continue it with "
                                f"the same options, choose another --out, or pass --force to start over")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_FILE).write_text(json.dumps(now, indent=1) + "\n")


def fingerprint(cfg: DemoConfig) -> dict:
    return {"preset": cfg.preset, "seed": cfg.seed, "sizes": asdict(PRESETS[cfg.preset])}


def differences(was: dict, now: dict) -> list[str]:
    """What differs between the demo recorded in OUT and this one: its options, or its preset's sizes."""
    changes = [f"--{k} was {was[k]!r}, now {now[k]!r}" for k in ("preset", "seed") if k in was and was[k] != now[k]]
    if not changes and "sizes" in was:   # the same preset, redefined by a newer posttrain
        changes = [f"the {now['preset']} preset's {k} was {was['sizes'].get(k)!r}, now {v!r}"
                   for k, v in now["sizes"].items() if was["sizes"].get(k) != v]
    return changes


def recorded(out: Path) -> dict:
    """What the demo in `out` was started with: its demo.json; for a demo from an older posttrain, the
    preset whose demonstration count and the seed its world shows (nothing when it has no world yet)."""
    if (out / DEMO_FILE).is_file():
        return json.loads((out / DEMO_FILE).read_text())
    manifest = out / "world" / "manifest.json"
    if not manifest.is_file():
        return {}
    seed = json.loads(manifest.read_text()).get("seed")
    path = out / "world" / "demos.jsonl"
    demos = sum(1 for _ in path.open()) if path.is_file() else None
    preset = next((name for name, p in PRESETS.items() if p.sft_demos == demos), "small")
    return {"preset": preset, "seed": seed}


def plan(cfg: DemoConfig, p: Preset) -> list[tuple[str, Path, callable]]:
    """(name, output that marks it done, function) for every step, in order: each runs its stage's
    config (`stage_configs`) through the same command function as the command line."""
    from posttrain.commands import labeling, rlhf, training, world as world_cmd
    from posttrain.world.export import ExportConfig

    o, w, c = cfg.out, cfg.out / "world", stage_configs(cfg, p)

    def world() -> None:
        world_cmd.world_export(ExportConfig(out=w, scale="small", seed=cfg.seed, force=True))
        for name, n in (("demos.jsonl", p.sft_demos), ("prompts_rm.jsonl", p.rm_prompts), ("test.jsonl", p.test_prompts)):
            if n is not None:   # the tiny preset trains and tests on the first lines only
                lines = (w / name).read_text().splitlines(keepends=True)[:n]
                (w / name).write_text("".join(lines))

    def step(command, config) -> callable:
        def run() -> None:
            if hasattr(config, "resume"):
                config.resume = resume(config.out)
            config.check()
            command(config)
        return run

    return [
        ("world export", w / "manifest.json", world),
        ("SFT", o / "sft", step(training.sft, c["sft"])),
        (f"sample K={SMALL.k}", o / "samples.jsonl", step(training.sample, c["sample"])),
        ("label (simulated labelers)", o / "rankings.jsonl", step(labeling.label_sim, c["label"])),
        ("reward model", o / "rm", step(training.rm, c["rm"])),
        ("PPO-ptx", o / "ppo-ptx", step(rlhf.ppo, c["ppo"])),
        ("eval and report", o / "report" / "summary.json", lambda: evaluate(cfg, p)),
    ]


def stage_configs(cfg: DemoConfig, p: Preset) -> dict:
    """Every stage's config: the stages' defaults (the recipe, posttrain/recipes.py) and the preset's sizes."""
    from posttrain.labeling.simulated import LabelSimConfig
    from posttrain.stages.ppo import PPOConfig
    from posttrain.stages.rm import RMConfig
    from posttrain.stages.sample import SampleConfig
    from posttrain.stages.sft import SFTConfig

    o, w = cfg.out, cfg.out / "world"
    return {
        "sft": SFTConfig(model=str(BASE), data=w / "demos.jsonl", out=o / "sft", epochs=p.sft_epochs),
        "sample": SampleConfig(model=str(o / "sft"), prompts=w / "prompts_rm.jsonl", k=SMALL.k, out=o / "samples.jsonl"),
        "label": LabelSimConfig(samples=o / "samples.jsonl", out=o / "rankings.jsonl",
                                labelers_per_item=SMALL.labelers_per_item, world_seed=cfg.seed),
        "rm": RMConfig(model=str(o / "sft"), data=o / "rankings.jsonl", out=o / "rm", epochs=p.rm_epochs,
                       world_seed=cfg.seed),
        "ppo": PPOConfig(policy=str(o / "sft"), reward=o / "rm", prompts=w / "prompts_ppo.jsonl", out=o / "ppo-ptx",
                         ptx=w / "corpus.jsonl", heldout_corpus=w / "corpus_heldout.jsonl", max_steps=p.ppo_steps,
                         rollout_batch=p.rollout_batch, micro_batch=p.micro_batch, world_seed=cfg.seed),
    }


def resume(out: Path) -> bool:
    """Resume when an interrupted run of the step left its partial output."""
    return out.with_name(out.name + ".partial").exists()


def evaluate(cfg: DemoConfig, p: Preset) -> None:
    from posttrain.data.corpus import read_documents
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.compare import evaluate as compare
    from posttrain.evaluation.report import write_report
    from posttrain.world import World

    o, w = cfg.out, cfg.out / "world"
    records = read_conversations(w / "test.jsonl", ends_with="user")
    summary = compare({"ppo-ptx": str(o / "ppo-ptx")}, str(o / "sft"), records, World(seed=cfg.seed), judge="gold",
                      heldout_documents=read_documents(w / "corpus_heldout.jsonl"), seed=cfg.seed)
    write_report(summary, o / "report")


def reward_model_line(out: Path) -> str:
    """What the reward model learnt, next to what its labelers agree on (issue 14's item 4)."""
    from posttrain.labeling.simulated import agreement_from_rankings

    m = json.loads((out / "rm" / "posttrain.json").read_text())["metrics"]
    agreement = agreement_from_rankings(out / "rankings.jsonl")
    rankings = sum(1 for _ in (out / "rankings.jsonl").open())
    return (f"\nreward model ({rankings} rankings of K = 4, 2 labelers per item): held-out labeler pairs "
            f"{m.get('accuracy', float('nan')):.1%} (two labelers agree on {agreement['agreement']:.1%}), "
            f"gold order {m.get('gold_accuracy', float('nan')):.1%}")


def final_table(summary: dict) -> str:
    """The demo's closing table; the temperature-1 win rate gets a column when it was measured."""
    base = summary["baseline"]
    cols = (("gold_score", "gold", "{:.3f}"), ("refusal_rate_harmful", "refuses harmful", "{:.0%}"),
            ("over_refusal_rate", "over-refusal", "{:.0%}"), ("hallucination_rate", "hallucination", "{:.0%}"))
    sampled = any(at_temperature(m, 1.0) for m in summary["models"].values())
    t1 = f"{'win rate T=1 [95% CI]':<26} " if sampled else ""
    head = f"{'model':<10} {'win rate vs SFT [95% CI]':<26} {t1}{'KL':>6} " + " ".join(f"{t:>15}" for _, t, _ in cols)
    lines = [head, "-" * len(head)]
    t1 = f"{'-':<26} " if sampled else ""
    lines.append(f"{'SFT':<10} {'-':<26} {t1}{'-':>6} " + " ".join(f"{f.format(base[k]):>15}" for k, _, f in cols))
    for name, m in summary["models"].items():
        win = f"{m['win_rate']:.1%} [{m['win_rate_ci_low']:.1%}, {m['win_rate_ci_high']:.1%}]"
        e = at_temperature(m, 1.0)
        t1 = f"{e['win_rate']:.1%} [{e['ci_low']:.1%}, {e['ci_high']:.1%}]" if e else "-"
        lines.append(f"{name:<10} {win:<26} " + (f"{t1:<26} " if sampled else "")
                     + f"{m.get('kl_to_sft', float('nan')):>6.2f} " + " ".join(f"{f.format(m[k]):>15}" for k, _, f in cols))
    return "\n".join(lines)


def phase_table(phases: list[tuple[str, Path, float | None]]) -> str:
    """Each phase (name, output, seconds; None when done before) with its time and, for a training
    phase whose run logged it, the mean of `perf/share_of_peak` over its steps: where the time went,
    and how well it used the cores."""
    from posttrain.training.metrics import read_metrics

    lines = [f"{'phase':<28} {'seconds':>12} {'share of peak':>14}", "-" * 56]
    for name, output, seconds in phases:
        path = output / "metrics.jsonl"
        shares = [m["perf/share_of_peak"] for m in (read_metrics(path) if path.is_file() else [])
                  if "perf/share_of_peak" in m]
        took = "done before" if seconds is None else f"{seconds:.0f}"
        share = f"{sum(shares) / len(shares):.1%}" if shares else "-"
        lines.append(f"{name:<28} {took:>12} {share:>14}")
    return "\n".join(lines)


def at_temperature(row: dict, temperature: float) -> dict | None:
    """A model's `by_temperature` entry at `temperature` (None when it was not measured)."""
    return next((e for e in row.get("by_temperature", []) if e["temperature"] == temperature), None)
