"""`posttrain eval`: win rates and HHH against a baseline, over-optimisation curves, the control study.

posttrain eval --model runs/ppo --baseline runs/sft --prompts runs/world/test.jsonl --out runs/report
posttrain eval overoptimization --policy runs/sft --reward runs/rm --prompts ... --out ...
posttrain eval control-study --base ... --sft ... --rlhf ... --demos ... --rankings ... --out ...
"""

from __future__ import annotations

from pathlib import Path

from posttrain.commands import command
from posttrain.commands.progress import StepBar
from posttrain.data.records import check_output
from posttrain.errors import UserError
from posttrain.evaluation.compare import EvalConfig
from posttrain.evaluation.overoptimization import OveroptConfig
from posttrain.pipelines.control_study import ControlConfig


def read_world_prompts(path: Path, world_seed: int, scale: str):
    """(records, world or None): world prompts get the world (gold judge, HHH); others do not."""
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.compare import world_records
    from posttrain.world import World

    records = read_conversations(path, ends_with="user")
    if not records:
        raise UserError(f"{path}: no prompts")
    if not world_records(records):
        return records, None
    world = World(seed=world_seed, scale=scale)
    world.check_tasks(records)
    return records, world


@command("eval", EvalConfig)
def evaluate(cfg: EvalConfig) -> int:
    """win rate, HHH and alignment tax against a baseline; over-optimisation; the control study

    Compare models with a baseline on held-out prompts: win rate (greedy, and sampled at each of
    --temperatures) with a 95% bootstrap interval and a length-controlled rate, helpful/honest/harmless
    rates, alignment tax, KL to the baseline. Writes an HTML report.

    example: posttrain eval --model runs/demo/ppo --model sft-more=runs/demo/sft2 --baseline runs/demo/sft
    --prompts runs/demo/world/test.jsonl --judge gold --out runs/demo/report
    """
    from posttrain.data.corpus import read_documents
    from posttrain.evaluation.compare import compare_models, model_names
    from posttrain.evaluation.report import write_report

    models = model_names(cfg.model)
    check_output(cfg.out, force=cfg.force, inputs=[cfg.baseline, cfg.prompts, *models.values()])
    records, world = read_world_prompts(cfg.prompts, cfg.world_seed, cfg.scale)
    heldout = cfg.heldout_corpus or cfg.prompts.with_name("corpus_heldout.jsonl")
    documents = read_documents(heldout) if cfg.heldout_corpus or heldout.is_file() else None
    summary = compare_models(
        models,
        cfg.baseline,
        records,
        world,
        judge=cfg.judge,
        reward=cfg.reward,
        heldout_documents=documents,
        kl_samples=cfg.kl_samples,
        max_new_tokens=cfg.max_new_tokens,
        bootstrap=cfg.bootstrap,
        seed=cfg.seed,
        temperatures=cfg.temperature_values(),
    )
    page = write_report(summary, cfg.out)
    print_summary(summary)
    print(f"\nwrote {page} and {cfg.out / 'summary.json'}")
    return 0


def print_summary(summary: dict) -> None:
    b = summary["baseline"]
    print(
        f"{'system':<16} {'win rate':>9} {'95% CI':>15} {'LC':>7} {'gold':>6} {'KL':>6} {'refuse':>7} "
        f"{'overref':>8} {'halluc':>7}"
    )
    for name, r in [("baseline", b), *summary["models"].items()]:
        ci = f"{r['win_rate_ci_low']:.1%}-{r['win_rate_ci_high']:.1%}" if "win_rate" in r else "-"
        cells = [
            _pct(r.get("win_rate")),
            ci,
            _pct(r.get("lc_win_rate")),
            _num(r.get("gold_score"), 3),
            _num(r.get("kl_to_sft"), 2),
            _pct(r.get("refusal_rate_harmful")),
            _pct(r.get("over_refusal_rate")),
            _pct(r.get("hallucination_rate")),
        ]
        print(
            f"{name:<16} {cells[0]:>9} {cells[1]:>15} {cells[2]:>7} {cells[3]:>6} {cells[4]:>6} "
            f"{cells[5]:>7} {cells[6]:>8} {cells[7]:>7}"
        )
    print_by_temperature(summary)


def print_by_temperature(summary: dict) -> None:
    """Win rate and gold scores per sampling temperature, when more than greedy was measured."""
    rows = [(name, e) for name, r in summary["models"].items() for e in r.get("by_temperature", [])]
    if all(e["temperature"] == 0 for _, e in rows):
        return
    print(
        f"\n{'system':<16} {'T':>4} {'win rate':>9} {'95% CI':>15} {'W/T/L':>11} {'gold':>6} {'base gold':>9}"
    )
    for name, e in rows:
        ci = f"{e['ci_low']:.1%}-{e['ci_high']:.1%}"
        wtl = f"{e['wins']}/{e['ties']}/{e['losses']}"
        print(
            f"{name:<16} {e['temperature']:>4g} {_pct(e['win_rate']):>9} {ci:>15} {wtl:>11} "
            f"{_num(e.get('gold_score'), 3):>6} {_num(e.get('baseline_gold_score'), 3):>9}"
        )


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def _num(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


@command("eval overoptimization", OveroptConfig)
def overoptimization(cfg: OveroptConfig) -> int:
    """gold and proxy reward against sqrt(KL): best-of-n and PPO runs

    Best-of-n (n = 1..64) from the policy and PPO runs at several beta: gold and proxy reward against
    sqrt(KL), with Gao et al. 2022's fits.

    example: posttrain eval overoptimization --policy runs/demo/sft --reward runs/demo/rm
    --prompts runs/demo/world/test.jsonl --ppo-run runs/ppo-b0.02 runs/ppo-b0.1 --out runs/demo/overopt
    """
    from posttrain.evaluation.overoptimization import study, write_overoptimization

    check_output(cfg.out, force=cfg.force, inputs=[cfg.policy, cfg.prompts, *cfg.ppo_run])
    records, world = read_world_prompts(cfg.prompts, cfg.world_seed, cfg.scale)
    if world is None:
        raise UserError(
            f"{cfg.prompts}: best-of-n needs the gold score, so prompts made by the built-in world"
        )
    result = study(cfg, records, world)
    page = write_overoptimization(result, cfg.out)
    for name, fit in result["fits"].items():
        print(f"{name:<28} alpha {fit['alpha']:>8.4f}  beta {fit['beta']:>8.4f}")
    bon = result["best_of_n"]
    if bon:
        best = max(range(len(bon["n"])), key=lambda i: bon["gold"][i])
        print(
            f"best-of-n: gold peaks at n = {bon['n'][best]} ({bon['gold'][best]:.3f}; n = 1: "
            f"{bon['gold'][0]:.3f})"
        )
    print(f"wrote {page}")
    return 0


@command("eval control-study", ControlConfig)
def control_study(cfg: ControlConfig) -> int:
    """RLHF vs SFT on extra demonstrations bought with the ranking budget

    Spend the rankings' labeler time on extra demonstrations, fine-tune the base model with the SFT
    run's settings, and compare RLHF and it with the SFT model.

    example: posttrain eval control-study --base assets/base-small-seed0 --sft runs/demo/sft
    --rlhf runs/demo/ppo --method dpo=runs/demo/dpo --demos runs/demo/world/demos.jsonl
    --rankings runs/demo/rankings.jsonl --out runs/demo/control
    """
    from posttrain.evaluation.report import write_report
    from posttrain.pipelines.control_study import control_study as run

    with StepBar("sft (more demos)", {"loss": "sft/loss"}) as bar:
        summary = run(cfg, on_step=bar)
    c = summary["control_study"]
    print(
        f"{c['rankings']} rankings = {c['labeler_minutes']:.0f} labeler minutes = {c['extra_demos']} extra "
        f"demonstrations at {c['demo_minutes']:g} min each (on top of {c['original_demos']})"
    )
    print_summary(summary)
    walls = ", ".join(
        f"{name} {'-' if s is None else f'{s / 60:.1f} min'}" for name, s in c["wall_seconds"].items()
    )
    print(f"training wall time: {walls}")
    page = write_report(summary, cfg.out / "report")
    print(f"\nwrote {page}")
    return 0
