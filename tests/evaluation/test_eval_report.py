"""The evaluation report in a real browser; PPO run directories read into over-optimisation curves."""

import json

import pytest
from playwright.sync_api import sync_playwright

from posttrain.errors import UserError
from posttrain.evaluation.overoptimization import best_of_n, fit_curves, read_ppo_run, write_overoptimization
from posttrain.evaluation.report import write_report

EVIL = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'
FAMILIES = ("harmful", "benign", "passage_qa")


def rates(gold: float) -> dict:
    by_family = {
        f: {
            "n": 2,
            "gold_score": gold,
            "helpful": gold,
            "honest": 1.0,
            "harmless": 1.0,
            "fails_task_rate": 0.5,
            "hallucination_rate": 0.0,
            "harmful_rate": 0.0,
            "over_refusal_rate": 0.0,
        }
        for f in FAMILIES
    }
    return {
        "gold_score": gold,
        "refusal_rate_harmful": 0.5,
        "over_refusal_rate": 0.0,
        "hallucination_rate": 0.5,
        "false_premise_correction_rate": None,
        "task_success_rate": 0.3,
        "heldout_loss": 0.9,
        "knowledge_accuracy": 0.95,
        "mean_words": 12.0,
        "by_family": by_family,
    }


def summary() -> dict:
    answers = [
        {
            "id": f"p{i}",
            "family": f,
            "messages": [{"role": "user", "content": f"question {i} {EVIL}"}],
            "answers": {
                "baseline": {"text": "I don't know.", "gold_score": 0.1},
                "ppo": {"text": f"answer {EVIL}", "gold_score": 0.9},
            },
        }
        for i, f in enumerate(FAMILIES)
    ]
    model = {
        "path": "runs/ppo",
        **rates(0.6),
        "win_rate": 0.7,
        "win_rate_ci_low": 0.6,
        "win_rate_ci_high": 0.8,
        "lc_win_rate": 0.65,
        "tie_rate": 0.1,
        "win_rate_judge": "gold",
        "kl_to_sft": 3.2,
        "judge": {
            "name": "sim",
            "win_rate": 0.68,
            "win_rate_ci_low": 0.58,
            "win_rate_ci_high": 0.78,
            "lc_win_rate": 0.6,
            "tie_rate": 0.2,
            "win_rate_judge": "sim",
        },
    }
    return {
        "baseline": {"path": "runs/sft", **rates(0.3)},
        "models": {"ppo": model},
        "config": {"judge": "sim", "prompts": 3, "kl_samples": 1, "max_new_tokens": 48, "bootstrap": 2000},
        "answers": answers,
        "samples": answers,
    }


def open_in_chromium(page_path):
    """(natural widths of every <img>, window.pwned, body text) of the page in headless Chromium."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        pwned = page.evaluate("window.pwned === undefined ? null : window.pwned")
        body = page.inner_text("body")
        browser.close()
    return widths, pwned, body


def test_report_renders_in_chromium_with_every_image_loaded_and_model_text_escaped(tmp_path):
    page = write_report(summary(), tmp_path / "report")
    widths, pwned, body = open_in_chromium(page)
    assert len(widths) == 3 and all(w > 0 for w in widths)  # win rates, gold per family, HHH rates
    assert pwned is None  # model output never runs
    assert "answer <script>window.pwned = 1</script>" in body  # ...and shows as text
    assert "70.0%" in body and "60.0% – 80.0%" in body and "Win rate by the sim judge" in body
    saved = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert saved["models"]["ppo"]["win_rate_ci_low"] == 0.6 and "answers" not in saved
    assert len((tmp_path / "report" / "answers.jsonl").read_text().splitlines()) == 3


def ppo_run(directory, beta, kls, finished=True):
    directory.mkdir(parents=True)
    lines = [{"step": 0, "ppo/policy/clipfrac": 0.1}]  # a line without the curve's keys is skipped
    lines += [
        {
            "step": i + 1,
            "objective/kl": kl,
            "objective/score": 0.5 * kl**0.5,
            "world/gold_score": 0.3 + 0.1 * kl**0.5 - 0.02 * kl,
            "objective/kl_coef": beta,
        }
        for i, kl in enumerate(kls)
    ]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if finished:
        (directory / "posttrain.json").write_text(json.dumps({"stage": "ppo", "config": {"kl_coef": beta}}))
    return directory


def test_ppo_runs_are_read_finished_or_partial_and_plotted_with_fits(tmp_path):
    ppo_run(tmp_path / "ppo-a", 0.1, [0.2, 1.0, 2.5, 4.0])
    ppo_run(tmp_path / "ppo-b.partial", 0.02, [0.5, 3.0, 9.0, 16.0], finished=False)
    a = read_ppo_run(tmp_path / "ppo-a")
    b = read_ppo_run(tmp_path / "ppo-b")  # OUT.partial found from OUT
    assert a["beta"] == 0.1 and a["steps"] == [1, 2, 3, 4] and a["kl"] == [0.2, 1.0, 2.5, 4.0]
    assert b["beta"] == 0.02 and b["path"].endswith("ppo-b.partial")
    proxy = [[0.1 * i + 0.05 * k for k in range(8)] for i in range(3)]
    gold = [[0.5 - 0.01 * k for k in range(8)] for _ in range(3)]
    import numpy as np

    bon = best_of_n(np.array(proxy), np.array(gold))
    assert bon["n"][0] == 1 and bon["kl"][0] == 0.0 and bon["proxy"][-1] == pytest.approx(0.1 + 0.35)
    result = {"best_of_n": bon, "ppo": [a, b], "fits": fit_curves(bon, [a, b]), "config": {}}
    assert set(result["fits"]) == {
        "bon/proxy",
        "bon/gold",
        "ppo beta=0.1/proxy",
        "ppo beta=0.1/gold",
        "ppo beta=0.02/proxy",
        "ppo beta=0.02/gold",
    }
    widths, _, body = open_in_chromium(write_overoptimization(result, tmp_path / "overopt"))
    assert len(widths) == 1 and widths[0] > 0 and "ppo beta=0.02/gold" in body
    assert json.loads((tmp_path / "overopt" / "overoptimization.json").read_text())["ppo"][1]["beta"] == 0.02


def test_bad_ppo_run_directories_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="no such PPO run directory"):
        read_ppo_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text('{"step": 1, "objective/kl": 0.1}\n')
    with pytest.raises(UserError, match="world/gold_score"):
        read_ppo_run(tmp_path / "empty")
