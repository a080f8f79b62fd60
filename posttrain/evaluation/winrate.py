"""Win rates against a baseline: the plain rate, its bootstrap interval, and a length-controlled rate.

Pure math on per-prompt outcomes: `outcomes[i]` is 1 when the model's answer to prompt i beat
the baseline's, 0.5 for a tie, 0 for a loss. Arrays in, numbers out; no I/O.

- `win_rate`: mean outcome (ties count half).
- `bootstrap_interval`: percentile bootstrap over prompts (Efron & Tibshirani 1993): resample the
  prompts with replacement, recompute the win rate, take the 2.5th and 97.5th percentiles.
- `length_controlled_win_rate`: AlpacaEval-LC's idea (Dubois et al. 2024, "Length-Controlled
  AlpacaEval") reduced to one pair of systems: a logistic regression of the outcome on
  tanh(length difference / its standard deviation) with an intercept; the LC win rate is the
  predicted win probability at zero length difference, sigmoid(intercept). With equal lengths
  everywhere the feature is 0 and the fit returns the plain win rate exactly.
"""

from __future__ import annotations

import math

import numpy as np

SLOPE_L2 = 1e-3  # ridge on the length slope only, so perfectly length-separated data still has a finite fit


def win_rate(outcomes) -> float:
    """Mean of per-prompt outcomes in {0, 0.5, 1}."""
    y = np.asarray(outcomes, dtype=float)
    if y.size == 0:
        raise ValueError("no outcomes to average")
    return float(y.mean())


def bootstrap_interval(
    outcomes, *, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """(low, high) percentile bootstrap interval of the win rate, resampling prompts."""
    y = np.asarray(outcomes, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, y.size, size=(resamples, y.size))  # (R, N) prompts of each resample
    means = y[idx].mean(axis=1)  # (R,)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def length_controlled_win_rate(outcomes, length_diff, *, iterations: int = 50) -> float:
    """Win probability at equal length, from a logistic fit of outcome on tanh(d / std(d)).

    `length_diff[i]` is len(model answer) - len(baseline answer) on prompt i (words). Fractional
    outcomes (ties, 0.5) are fine: the fit maximises the Bernoulli log-likelihood with soft labels.
    """
    y = np.asarray(outcomes, dtype=float)
    d = np.asarray(length_diff, dtype=float)
    if y.size == 0 or y.size != d.size:
        raise ValueError(f"need as many length differences as outcomes (got {d.size} and {y.size})")
    if np.all(y == y[0]):
        return float(y[0])  # all wins or all losses: the intercept is unbounded
    scale = d.std()
    x = np.tanh(d / scale) if scale > 0 else np.zeros_like(d)
    features = np.stack([np.ones_like(x), x], axis=1)  # (N, 2)
    ridge = np.diag([0.0, SLOPE_L2 * y.size])
    w = np.array([math.log(y.mean() / (1 - y.mean())), 0.0])  # start at the plain rate
    for _ in range(iterations):  # Newton-Raphson (IRLS)
        p = 1 / (1 + np.exp(-features @ w))
        grad = features.T @ (p - y) + ridge @ w
        hess = features.T @ (features * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    return float(1 / (1 + math.exp(-w[0])))


def pairwise_outcome(model_score: float, baseline_score: float) -> float:
    """1 if the model's score is higher, 0.5 if equal, 0 if lower."""
    return 1.0 if model_score > baseline_score else 0.5 if model_score == baseline_score else 0.0
