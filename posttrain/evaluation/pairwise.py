"""Each model's win rates against the baseline, by each judge (`posttrain eval`, `compare.py`).

The headline is greedy: the first judge's win rate with its bootstrap interval, length-controlled rate,
tie rate and per-family rates, and the second judge's under `judge`. `by_temperature` repeats the win
rates and gold scores at every temperature measured, with both systems' rates at that temperature.
"""

from __future__ import annotations

from posttrain.evaluation.temperature import temperature_entry
from posttrain.evaluation.winrate import bootstrap_interval, length_controlled_win_rate, win_rate

GREEDY_ONLY = ("by_family", "knowledge_accuracy", "heldout_loss")  # not repeated in `by_temperature` entries


def with_rates(
    entries: list[dict], model_runs: dict[float, dict], base_runs: dict[float, dict]
) -> list[dict]:
    """`by_temperature` entries with the model's and the baseline's rates at that temperature (`rates`,
    `baseline_rates`: helpful, honest, harmless, task failures, refusals, words..., each with its n)."""
    pick = lambda rates: {k: v for k, v in rates.items() if k not in GREEDY_ONLY}  # noqa: E731
    return [
        {
            **e,
            "rates": pick(model_runs[e["temperature"]]["rates"]),
            "baseline_rates": pick(base_runs[e["temperature"]]["rates"]),
        }
        for e in entries
    ]


def judged(
    judges, records, model_runs: dict[float, dict], base_runs: dict[float, dict], bootstrap: int, seed: int
) -> dict:
    """The headline win rates (greedy) by the first judge, the second one's under `judge`, and
    `by_temperature`: both judges' win rates and the gold scores at every temperature."""
    outcomes = {
        t: [j.outcomes(list(zip(records, run["answers"], base_runs[t]["answers"]))) for j in judges]
        for t, run in model_runs.items()
    }  # per temperature, per judge
    lengths = [
        len(a.split()) - len(b.split()) for a, b in zip(model_runs[0.0]["answers"], base_runs[0.0]["answers"])
    ]
    out = win_rates(judges[0].name, outcomes[0.0][0], records, lengths, bootstrap, seed)
    if len(judges) > 1:
        out["judge"] = {
            "name": judges[1].name,
            **win_rates(judges[1].name, outcomes[0.0][1], records, lengths, bootstrap, seed),
        }
    out["by_temperature"] = [
        temperature_entry(
            t,
            [(j.name, o) for j, o in zip(judges, outcomes[t])],
            model_runs[t]["scores"],
            base_runs[t]["scores"],
            bootstrap=bootstrap,
            seed=seed,
        )
        for t in model_runs
    ]
    return out


def win_rates(judge_name: str, outcomes: list[float], records, lengths, bootstrap: int, seed: int) -> dict:
    """Win rate, interval, LC rate and tie rate of a judge's per-prompt outcomes (greedy answers);
    also the win rate per family when the records are the world's."""
    low, high = bootstrap_interval(outcomes, resamples=bootstrap, seed=seed)
    by_family: dict[str, list[float]] = {}
    for record, o in zip(records, outcomes):
        by_family.setdefault((record.get("meta") or {}).get("family"), []).append(o)
    out = {
        "win_rate": win_rate(outcomes),
        "win_rate_ci_low": low,
        "win_rate_ci_high": high,
        "lc_win_rate": length_controlled_win_rate(outcomes, lengths),
        "tie_rate": sum(o == 0.5 for o in outcomes) / len(outcomes),
        "win_rate_judge": judge_name,
    }
    if None not in by_family:
        out["win_rate_by_family"] = {f: win_rate(os) for f, os in by_family.items()}
    return out
