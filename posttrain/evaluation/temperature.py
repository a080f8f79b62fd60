"""Win rate at sampling temperatures: greedy answers and one sample per prompt at each T > 0.

A greedy win rate says how the most likely answers compare; a deployed model is often sampled.
Rafailov et al. 2023 (DPO, figure 2 right, TL;DR) plot the win rate against sampling
temperature for that reason. For each T > 0 in `--temperatures` the model and the baseline each
answer every prompt once at temperature T (`generation.completions.chat_complete`: posttrain's own
sampler, full softmax, no top-p); the judges compare the two answers as they compare greedy ones,
ties counting half.

The model and the baseline draw from different seeded streams (`stream_seed`): sharing one would
couple their samples token by token (a model against itself would tie everywhere), and the win
rate of coupled samples is not the win rate of independent draws.
"""

from __future__ import annotations

import hashlib
import math

from posttrain.errors import UserError
from posttrain.evaluation.winrate import bootstrap_interval, win_rate


def parse_temperatures(text: str) -> tuple[float, ...]:
    """Sorted distinct temperatures from a comma list; 0 (greedy, the headline) is always among them.

    >>> parse_temperatures("1, 0.5")
    (0.0, 0.5, 1.0)
    """
    values = []
    for item in str(text).split(","):
        try:
            value = float(item)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < 0:
            raise UserError(
                f"--temperatures {text!r}: {item.strip()!r} is not a temperature; give a comma list "
                "of finite numbers >= 0, e.g. --temperatures 0,1 (0 is greedy)"
            )
        values.append(value)
    return tuple(sorted({0.0, *values}))


def stream_seed(seed: int, role: str, temperature: float) -> int:
    """A 63-bit generator seed for one system ("model" or "baseline") at one temperature."""
    digest = hashlib.sha256(f"eval-sample/{seed}/{role}/{temperature!r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def outcome_stats(outcomes: list[float], *, bootstrap: int, seed: int) -> dict:
    """Win rate (ties half), its 95% bootstrap interval, and the counts of wins, ties and losses."""
    low, high = bootstrap_interval(outcomes, resamples=bootstrap, seed=seed)
    return {
        "win_rate": win_rate(outcomes),
        "ci_low": low,
        "ci_high": high,
        "wins": sum(o == 1.0 for o in outcomes),
        "ties": sum(o == 0.5 for o in outcomes),
        "losses": sum(o == 0.0 for o in outcomes),
    }


def temperature_entry(
    temperature: float,
    judged: list[tuple[str, list[float]]],
    model_scores: list,
    base_scores: list,
    *,
    bootstrap: int,
    seed: int,
) -> dict:
    """One `by_temperature` entry. `judged`: (judge name, outcomes) for the headline judge, then
    optionally the chosen one; the scores are per-prompt gold scores (None off-world)."""
    (name, outcomes), *others = judged
    entry = {
        "temperature": temperature,
        **outcome_stats(outcomes, bootstrap=bootstrap, seed=seed),
        "win_rate_judge": name,
    }
    if None not in model_scores and None not in base_scores:
        entry["gold_score"] = sum(model_scores) / len(model_scores)
        entry["baseline_gold_score"] = sum(base_scores) / len(base_scores)
    for other, other_outcomes in others:
        entry["judge"] = {"name": other, **outcome_stats(other_outcomes, bootstrap=bootstrap, seed=seed)}
    return entry
