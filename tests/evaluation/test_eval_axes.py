"""The per-axis table (what RLHF changed: rows with their n, greedy and T = 1) and its mean and spread over
run seeds, on hand-made summaries; the n of each rate from real gold judgements."""

import pytest

from posttrain.evaluation.axes import axis_table, over_seeds, plain_table, spread, text_cells
from posttrain.evaluation.hhh import hhh_rates
from posttrain.evaluation.report import render
from posttrain.world import World

N = {"all": 450, "passage_qa": 50, "harmful": 40, "benign": 30}


def rates(
    gold: float, fails: float, hallucination: float | None, refused: float, over: float, words: float
) -> dict:
    every = ("gold_score", "helpful", "honest", "harmless", "fails_task_rate", "mean_words")
    return {
        "gold_score": gold,
        "helpful": gold + 0.1,
        "honest": 0.9,
        "harmless": 0.95,
        "fails_task_rate": fails,
        "hallucination_rate": hallucination,
        "refusal_rate_harmful": refused,
        "over_refusal_rate": over,
        "mean_words": words,
        "n": {
            **{k: N["all"] for k in every},
            "hallucination_rate": N["passage_qa"],
            "refusal_rate_harmful": N["harmful"],
            "over_refusal_rate": N["benign"],
        },
    }


def summary(win: float = 0.72, win_t1: float = 0.65, hallucination: float | None = 0.02) -> dict:
    """An eval of ppo-ptx against SFT, greedy and at T = 1, shaped as compare.compare_models writes it."""
    sft, sft_t1 = rates(0.24, 0.6, 0.3, 1.0, 0.82, 16.1), rates(0.2, 0.7, 0.4, 0.9, 0.8, 18.0)
    ppo, ppo_t1 = rates(0.27, 0.5, hallucination, 0.22, 0.02, 10.8), rates(0.25, 0.55, 0.1, 0.3, 0.05, 11.5)
    counts = {"wins": 300, "ties": 50, "losses": 100, "win_rate_judge": "gold"}
    entries = [
        {
            "temperature": 0.0,
            "win_rate": win,
            "ci_low": win - 0.04,
            "ci_high": win + 0.04,
            **counts,
            "rates": ppo,
            "baseline_rates": sft,
        },
        {
            "temperature": 1.0,
            "win_rate": win_t1,
            "ci_low": win_t1 - 0.05,
            "ci_high": win_t1 + 0.05,
            **counts,
            "rates": ppo_t1,
            "baseline_rates": sft_t1,
        },
    ]
    model = {
        "path": "ppo-ptx",
        **ppo,
        "win_rate": win,
        "win_rate_ci_low": win - 0.04,
        "win_rate_ci_high": win + 0.04,
        "lc_win_rate": win,
        "kl_to_sft": 3.7,
        "by_temperature": entries,
    }
    return {
        "baseline": {"path": "sft", **sft},
        "models": {"ppo-ptx": model},
        "config": {
            "judge": "gold",
            "prompts": N["all"],
            "kl_samples": 1,
            "max_new_tokens": 48,
            "bootstrap": 100,
            "temperatures": [0.0, 1.0],
        },
    }


def row(table: dict, key: str) -> dict:
    return next(r for r in table["rows"] if r["key"] == key)


def test_each_axis_row_has_its_n_and_a_figure_per_system_greedy_and_at_t1():
    table = axis_table(summary(), "SFT")
    assert [(c["system"], c["temperature"]) for c in table["columns"]] == [
        ("SFT", 0.0),
        ("ppo-ptx", 0.0),
        ("SFT", 1.0),
        ("ppo-ptx", 1.0),
    ]
    assert [r["key"] for r in table["rows"]] == [
        "win_rate",
        "gold_score",
        "task_success",
        "helpful",
        "honest",
        "harmless",
        "hallucination_rate",
        "refusal_rate_harmful",
        "over_refusal_rate",
        "mean_words",
        "kl_to_sft",
    ]
    assert {r["key"]: r["n"] for r in table["rows"]} == {
        "win_rate": 450,
        "gold_score": 450,
        "task_success": 450,
        "helpful": 450,
        "honest": 450,
        "harmless": 450,
        "hallucination_rate": 50,
        "refusal_rate_harmful": 40,
        "over_refusal_rate": 30,
        "mean_words": 450,
        "kl_to_sft": 450,
    }
    assert row(table, "win_rate")["values"] == [None, 0.72, None, 0.65]
    assert row(table, "win_rate")["ci"][3] == pytest.approx((0.6, 0.7))
    assert row(table, "task_success")["values"] == pytest.approx([0.4, 0.5, 0.3, 0.45])  # 1 - fails_task
    assert row(table, "refusal_rate_harmful")["values"] == [1.0, 0.22, 0.9, 0.3]
    assert row(table, "mean_words")["values"] == [16.1, 10.8, 18.0, 11.5]
    assert row(table, "kl_to_sft")["values"] == [None, 3.7, None, None]  # one figure, from T = 1 samples
    assert "passage QA" in row(table, "hallucination_rate")["label"]


def test_the_printed_table_shows_intervals_units_and_n():
    text = plain_table(axis_table(summary(), "SFT"))
    head, rule, *lines = text.splitlines()
    assert head.split() == [
        "axis",
        "n",
        "SFT,",
        "greedy",
        "ppo-ptx,",
        "greedy",
        "SFT,",
        "T=1",
        "ppo-ptx,",
        "T=1",
    ]
    assert set(rule) == {"-"}
    win = next(line for line in lines if line.startswith("win rate vs SFT"))
    assert "72.0% [68.0%, 76.0%]" in win and "65.0% [60.0%, 70.0%]" in win and win.split()[6] == "450"
    qa = next(line for line in lines if line.startswith("hallucination (passage QA)"))
    assert qa.split()[3:] == ["50", "30.0%", "2.0%", "40.0%", "10.0%"]
    assert next(line for line in lines if line.startswith("KL")).split()[-4:] == ["-", "3.70", "-", "-"]


def test_a_greedy_only_eval_and_an_older_summary_give_what_they_measured():
    greedy = summary()
    greedy["config"]["temperatures"] = [0.0]
    greedy["models"]["ppo-ptx"]["by_temperature"] = greedy["models"]["ppo-ptx"]["by_temperature"][:1]
    assert [c["temperature"] for c in axis_table(greedy)["columns"]] == [0.0, 0.0]
    old = summary()  # before the rates' n, fails_task_rate and the per-temperature rates
    for r in (old["baseline"], old["models"]["ppo-ptx"]):
        del r["n"], r["fails_task_rate"]
    for e in old["models"]["ppo-ptx"]["by_temperature"]:
        del e["rates"], e["baseline_rates"]
    table = axis_table(old, "SFT")
    assert "task_success" not in [r["key"] for r in table["rows"]]
    assert row(table, "gold_score")["n"] is None and row(table, "gold_score")["values"] == [
        0.24,
        0.27,
        None,
        None,
    ]
    assert row(table, "win_rate")["values"] == [None, 0.72, None, 0.65] and row(table, "win_rate")["n"] == 450
    headers, rows = text_cells(table)
    assert rows[1][:2] == ["gold score", "-"]


def test_spread_is_mean_sample_sd_and_range_of_what_was_measured():
    s = spread([0.6, 0.8, 0.7])
    assert s["mean"] == pytest.approx(0.7) and s["sd"] == pytest.approx(0.1)
    assert (s["min"], s["max"], s["values"]) == (0.6, 0.8, [0.6, 0.8, 0.7])
    assert spread([0.5])["sd"] is None and spread([None, None]) is None


def test_over_seeds_puts_each_cell_as_mean_and_range_and_keeps_n():
    tables = {
        seed: axis_table(summary(win=w, win_t1=t1, hallucination=h), "SFT")
        for seed, w, t1, h in ((0, 0.6, 0.5, 0.1), (1, 0.8, 0.7, None), (2, 0.7, 0.6, 0.4))
    }
    agg = over_seeds(tables)
    assert agg["seeds"] == [0, 1, 2] and agg["columns"] == tables[0]["columns"]
    win = row(agg, "win_rate")
    assert win["n"] == 450 and win["values"][0] is None and win["values"][2] is None
    assert win["values"][1]["mean"] == pytest.approx(0.7) and win["values"][1]["sd"] == pytest.approx(0.1)
    assert (win["values"][3]["min"], win["values"][3]["max"]) == (0.5, 0.7)
    qa = row(agg, "hallucination_rate")  # seed 1 measured none: the others' mean, its value kept as None
    assert qa["n"] == 50 and qa["values"][1]["mean"] == pytest.approx(0.25)
    assert qa["values"][1]["values"] == [0.1, None, 0.4]
    assert row(agg, "refusal_rate_harmful")["values"][0]["sd"] == 0.0
    text = plain_table(agg)
    line = next(x for x in text.splitlines() if x.startswith("win rate vs SFT"))
    assert "70.0% (60.0%..80.0%)" in line and "60.0% (50.0%..70.0%)" in line


def test_over_seeds_lists_n_when_the_seeds_measured_different_prompts():
    other = summary()
    other["config"]["prompts"] = 45
    agg = over_seeds({0: axis_table(summary()), 1: axis_table(other)})
    assert row(agg, "win_rate")["n"] == [450, 45]
    assert "450/45" in plain_table(agg)


def test_each_rate_says_how_many_prompts_it_is_over():
    world = World(seed=0)
    records = world.prompts("test", 60, "test")
    answers = ["I don't know."] * len(records)
    r = hhh_rates([world.judge(rec, a) for rec, a in zip(records, answers)], answers)
    count = lambda family: sum(rec["meta"]["family"] == family for rec in records)  # noqa: E731
    assert r["n"]["hallucination_rate"] == count("passage_qa") and r["n"]["over_refusal_rate"] == count(
        "benign"
    )
    assert r["n"]["refusal_rate_harmful"] == r["n"]["harmful_rate"] == count("harmful")
    assert r["n"]["gold_score"] == r["n"]["fails_task_rate"] == r["n"]["mean_words"] == 60
    assert "by_family" not in r["n"] and "n" not in r["n"]
    failed = sum(f["fails_task_rate"] * f["n"] for f in r["by_family"].values())
    assert r["fails_task_rate"] == pytest.approx(failed / 60)


def test_the_report_opens_with_the_per_axis_table():
    page = render(summary())
    assert page.index("What changed, per axis") < page.index("<h2>Headline</h2>")
    assert "hallucination (passage QA)" in page and "ppo-ptx, T=1" in page
    off_world = summary()
    del off_world["baseline"]["n"]
    assert "What changed, per axis" not in render(off_world)
