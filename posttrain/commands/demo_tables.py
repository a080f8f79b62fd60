"""What a demo prints when it is done: each test set's table of what PPO-ptx changed per axis (over the
run seeds with --seeds), the reward model's accuracies beside its labelers' agreement, and where the time
went, phase by phase."""

from __future__ import annotations

import json
from pathlib import Path

from posttrain.commands.demo_presets import TEST_SETS


def summaries(out: Path) -> dict[str, dict]:
    """{test file: summary.json} of the demo in `out`, for each test set it evaluated."""
    paths = {t.file: out / t.report / "summary.json" for t in TEST_SETS}
    return {name: json.loads(path.read_text()) for name, path in paths.items() if path.is_file()}


def set_title(file: str, summary: dict) -> str:
    about = next((t.about for t in TEST_SETS if t.file == file), "")
    return f"{file}: {summary['config']['prompts']} prompts ({about}); gold judge, ties half"


def seeds_table(per_seed: dict[int, dict]) -> dict:
    """The final table's figures over the seeds' summaries ({seed: summary}): mean, sd, min and max each."""
    from posttrain.evaluation.axes import axis_table, over_seeds

    return over_seeds({s: axis_table(summary, "SFT") for s, summary in per_seed.items()})


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
