"""Over-optimisation math (Gao, Schulman & Hilton 2022, "Scaling Laws for Reward Model Overoptimization").

Pure functions on arrays:

- `best_of_n_expectations`: from N samples of one prompt with proxy scores r and gold scores g,
  the expected proxy and gold score of the proxy-best of n samples drawn without replacement,
  for every n <= N, with the unbiased order-statistics estimator (Gao et al., appendix; Nakano
  et al. 2021): sort by proxy; the i-th smallest (1-based) is the best of a uniform n-subset
  with probability C(i-1, n-1) / C(N, n).
- `kl_best_of_n`: KL(best-of-n || policy) = log n - (n-1)/n (Stiennon et al. 2020, appendix G.3).
- `fit_best_of_n`, `fit_rl`: least-squares fits of R(d) = d(alpha - beta d) (best-of-n) and
  R(d) = d(alpha - beta log d) (RL), with d = sqrt(KL) and R measured from the initial policy.
"""

from __future__ import annotations

import math

import numpy as np


def order_statistic_weights(total: int, n: int) -> np.ndarray:
    """(total,) probability that the i-th smallest of `total` items is the largest of a uniform n-subset."""
    if not 1 <= n <= total:
        raise ValueError(f"n must be in 1..{total}, got {n}")
    denominator = math.comb(total, n)
    return np.array([math.comb(i, n - 1) / denominator for i in range(total)])  # i = rank - 1


def best_of_n_expectations(proxy, gold, ns) -> tuple[np.ndarray, np.ndarray]:
    """Expected (proxy, gold) score of the proxy-best of n, for each n in `ns`; one prompt's samples.

    Ties in proxy are broken by sample order (any fixed order is an unbiased choice among them).
    """
    proxy, gold = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    order = np.argsort(proxy, kind="stable")
    proxy_sorted, gold_sorted = proxy[order], gold[order]
    weights = np.stack([order_statistic_weights(proxy.size, n) for n in ns])  # (len(ns), N)
    return weights @ proxy_sorted, weights @ gold_sorted


def kl_best_of_n(n) -> np.ndarray:
    """KL divergence of best-of-n sampling from the sampled policy, in nats."""
    n = np.asarray(n, dtype=float)
    return np.log(n) - (n - 1) / n


def _least_squares(features: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    (alpha, beta), *_ = np.linalg.lstsq(features, r, rcond=None)
    return float(alpha), float(beta)


def fit_best_of_n(d, r) -> tuple[float, float]:
    """(alpha, beta) minimising sum (r - d(alpha - beta d))^2."""
    d, r = np.asarray(d, dtype=float), np.asarray(r, dtype=float)
    return _least_squares(np.stack([d, -d * d], axis=1), r)


def fit_rl(d, r) -> tuple[float, float]:
    """(alpha, beta) minimising sum (r - d(alpha - beta log d))^2 (d log d taken as 0 at d = 0)."""
    d, r = np.asarray(d, dtype=float), np.asarray(r, dtype=float)
    d_log_d = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return _least_squares(np.stack([d, -d_log_d], axis=1), r)


def best_of_n_curve(d, alpha: float, beta: float) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    return d * (alpha - beta * d)


def rl_curve(d, alpha: float, beta: float) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    return d * (alpha - beta * np.log(np.where(d > 0, d, 1.0)))
