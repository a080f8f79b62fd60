"""Evaluation math by hand: win rates, bootstrap, length control, best-of-n, KL_bon, Gao fits, HHH rates."""

import itertools
import math
import random

import numpy as np
import pytest

from posttrain.evaluation import scaling
from posttrain.evaluation.hhh import hhh_rates
from posttrain.evaluation.winrate import (
    bootstrap_interval,
    length_controlled_win_rate,
    pairwise_outcome,
    win_rate,
)
from posttrain.pipelines.control_study import (
    demos_for_budget,
    extra_demonstrations,
    prompt_key,
    ranking_minutes,
)
from posttrain.world import World


def test_win_rate_counts_ties_half():
    outcomes = [pairwise_outcome(a, b) for a, b in [(0.9, 0.1), (0.5, 0.5), (0.2, 0.7), (1.0, 0.0)]]
    assert outcomes == [1.0, 0.5, 0.0, 1.0]
    assert win_rate(outcomes) == pytest.approx(2.5 / 4)


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_prompts():
    pattern = [1, 1, 0, 0.5, 1, 0, 1, 0.5, 1, 0]  # win rate 0.6
    small, large = pattern * 4, pattern * 40
    lo_s, hi_s = bootstrap_interval(small, seed=1)
    lo_l, hi_l = bootstrap_interval(large, seed=1)
    assert win_rate(small) == pytest.approx(0.6) and lo_s < win_rate(small) < hi_s
    assert lo_l < win_rate(large) < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 2  # ~1/sqrt(10) as wide with 10x the prompts
    # the normal approximation's width for n = 400 with this spread
    sd = np.std(large) / math.sqrt(len(large))
    assert hi_l - lo_l == pytest.approx(2 * 1.96 * sd, rel=0.15)


def test_length_controlled_rate_equals_the_plain_rate_when_lengths_are_equal():
    outcomes = [1, 0, 0.5, 1, 1, 0, 1, 0.5, 0, 1, 1]
    assert length_controlled_win_rate(outcomes, [0] * len(outcomes)) == pytest.approx(
        win_rate(outcomes), abs=1e-9
    )
    assert length_controlled_win_rate([1, 1, 1], [5, -2, 0]) == 1.0


def test_length_controlled_rate_discounts_wins_bought_with_length():
    rng = np.random.default_rng(0)
    diff = rng.normal(0, 10, 4000)  # words longer than the baseline's answer
    outcomes = (rng.random(4000) < 1 / (1 + np.exp(-2 * np.tanh(diff / 10)))).astype(float)
    # a coin flip at equal length; longer answers win more often
    assert win_rate(outcomes) == pytest.approx(0.5, abs=0.03)
    assert length_controlled_win_rate(outcomes, diff) == pytest.approx(0.5, abs=0.03)
    longer = diff > 0  # a model whose answers are all longer
    plain = win_rate(outcomes[longer])
    assert plain > 0.65
    assert length_controlled_win_rate(outcomes[longer], diff[longer]) < plain - 0.1


def test_best_of_n_estimator_matches_brute_force_over_all_subsets():
    rng = np.random.default_rng(3)
    proxy, gold = rng.normal(size=7), rng.normal(size=7)
    ns = list(range(1, 8))
    est_proxy, est_gold = scaling.best_of_n_expectations(proxy, gold, ns)
    for n, ep, eg in zip(ns, est_proxy, est_gold):
        subsets = list(itertools.combinations(range(7), n))
        best = [max(s, key=lambda i: proxy[i]) for s in subsets]
        assert ep == pytest.approx(np.mean([proxy[i] for i in best]))
        assert eg == pytest.approx(np.mean([gold[i] for i in best]))
    assert est_gold[0] == pytest.approx(gold.mean()) and est_proxy[-1] == pytest.approx(proxy.max())


def test_kl_of_best_of_n():
    assert scaling.kl_best_of_n([1, 2, 64]).tolist() == pytest.approx(
        [0.0, math.log(2) - 0.5, math.log(64) - 63 / 64]
    )


def test_gao_fits_recover_known_coefficients():
    d = np.linspace(0.05, 3.0, 40)
    assert scaling.fit_best_of_n(d, d * (0.8 - 0.15 * d)) == pytest.approx((0.8, 0.15))
    assert scaling.fit_rl(d, d * (0.5 - 0.2 * np.log(d))) == pytest.approx((0.5, 0.2))
    noisy = d * (0.8 - 0.15 * d) + np.random.default_rng(0).normal(0, 0.01, d.size)
    alpha, beta = scaling.fit_best_of_n(d, noisy)
    assert alpha == pytest.approx(0.8, abs=0.03) and beta == pytest.approx(0.15, abs=0.02)
    assert scaling.rl_curve([0.0], 0.5, 0.2).tolist() == [0.0]


def test_hhh_rates_of_the_world_demonstrator_and_of_a_refuse_everything_policy():
    world = World(seed=0)
    records = world.prompts("hhh-test", 27, "test")  # 3 per family
    good = [world.demonstrate(r, random.Random(i)) for i, r in enumerate(records)]
    rates = hhh_rates([world.judge(r, a) for r, a in zip(records, good)], good)
    assert rates["refusal_rate_harmful"] == 1.0 and rates["over_refusal_rate"] == 0.0
    assert rates["hallucination_rate"] == 0.0 and rates["false_premise_correction_rate"] == 1.0
    refuse = ["I'm sorry, but I can't help with that."] * len(records)
    rates = hhh_rates([world.judge(r, a) for r, a in zip(records, refuse)], refuse)
    assert rates["refusal_rate_harmful"] == 1.0 and rates["over_refusal_rate"] == 1.0
    assert rates["by_family"]["benign"]["n"] == 3 and rates["task_success_rate"] == pytest.approx(3 / 27)


def test_cost_model_and_extra_demonstrations_that_repeat_no_original():
    rankings = [{"completions": [{}] * 4}, {"completions": [{}] * 6}]
    assert ranking_minutes(rankings, 1.0, 0.5) == pytest.approx(3.0 + 4.0)
    assert demos_for_budget(7.0, 8.0) == 0 and demos_for_budget(24.0, 8.0) == 3
    world = World(seed=0)
    originals = world.demonstrations(40)
    extra = extra_demonstrations(world, originals, 12)
    assert len(extra) == 12
    assert not {r["id"] for r in extra} & {r["id"] for r in originals}
    assert not {prompt_key(r) for r in extra} & {prompt_key(r) for r in originals}
    assert all(r["messages"][-1]["role"] == "assistant" for r in extra)
