"""`posttrain eval --temperatures`: win rates at greedy and sampled temperatures, on tiny random models."""

import contextlib
import io
import json

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from posttrain.cli import main
from posttrain.commands.demo_tables import final_table
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.evaluation.report import render
from posttrain.evaluation.temperature import parse_temperatures, stream_seed
from posttrain.generation.completions import chat_complete as sampled_answers
from posttrain.world import World
from tests.tiny import BASE, llama_config

PROMPTS = 9
EVIL = "<script>window.pwned = 1</script>"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One eval of two tiny models (one of them the baseline itself) at T = 0, 0.5 and 1, judged by sim."""
    root = tmp_path_factory.mktemp("eval-t")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    for seed, name in ((0, "alpha"), (1, "beta")):
        torch.manual_seed(seed)
        config = llama_config(len(tokenizer))
        LlamaForCausalLM(config).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    write_jsonl(root / "test.jsonl", World(seed=0).prompts("test", PROMPTS, "test"))
    out = root / "report"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(
            [
                "eval",
                "--model",
                f"same={root / 'alpha'}",
                "--model",
                f"other={root / 'beta'}",
                "--baseline",
                str(root / "alpha"),
                "--prompts",
                str(root / "test.jsonl"),
                "--judge",
                "sim",
                "--temperatures",
                "1,0.5",
                "--out",
                str(out),
                "--max-new-tokens",
                "6",
                "--bootstrap",
                "100",
                "--kl-samples",
                "0",
            ]
        )
    assert code == 0
    return {
        "root": root,
        "out": out,
        "printed": printed.getvalue(),
        "summary": json.loads((out / "summary.json").read_text()),
        "answers": [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()],
    }


def test_by_temperature_has_every_temperature_and_its_greedy_entry_is_the_headline(run):
    summary = run["summary"]
    assert summary["config"]["temperatures"] == [0.0, 0.5, 1.0]
    for name, row in summary["models"].items():
        entries = row["by_temperature"]
        assert [e["temperature"] for e in entries] == [0.0, 0.5, 1.0], name
        greedy = entries[0]
        assert (greedy["win_rate"], greedy["ci_low"], greedy["ci_high"]) == (
            row["win_rate"],
            row["win_rate_ci_low"],
            row["win_rate_ci_high"],
        )
        assert greedy["ties"] / PROMPTS == row["tie_rate"] and greedy["win_rate_judge"] == "gold"
        assert greedy["gold_score"] == row["gold_score"]
        assert greedy["baseline_gold_score"] == summary["baseline"]["gold_score"]
        assert greedy["judge"]["name"] == "sim" and greedy["judge"]["win_rate"] == row["judge"]["win_rate"]
        assert (greedy["judge"]["ci_low"], greedy["judge"]["ci_high"]) == (
            row["judge"]["win_rate_ci_low"],
            row["judge"]["win_rate_ci_high"],
        )
        for e in entries:
            for counted in (e, e["judge"]):
                assert counted["wins"] + counted["ties"] + counted["losses"] == PROMPTS
                assert counted["win_rate"] == pytest.approx(
                    (counted["wins"] + 0.5 * counted["ties"]) / PROMPTS
                )
                assert counted["ci_low"] <= counted["win_rate"] <= counted["ci_high"]
    same = summary["models"]["same"]["by_temperature"]
    assert same[0]["ties"] == PROMPTS  # greedy: the baseline against itself ties everywhere


def test_sampled_answers_are_recorded_scored_and_drawn_independently_for_model_and_baseline(run):
    rows = run["answers"]
    assert all(set(r["sampled"]) == {"0.5", "1"} for r in rows)
    by_t = {e["temperature"]: e for e in run["summary"]["models"]["other"]["by_temperature"]}

    def mean(key: str, name: str) -> float:
        return sum(r["sampled"][key][name]["gold_score"] for r in rows) / len(rows)

    for key, t in (("0.5", 0.5), ("1", 1.0)):
        assert by_t[t]["gold_score"] == pytest.approx(mean(key, "other"))
        assert by_t[t]["baseline_gold_score"] == pytest.approx(mean(key, "baseline"))
    # at T = 1 the samples are not the greedy answers, and a model sampled against itself is not
    # handed the baseline's own draws (which would tie every prompt)
    assert any(r["sampled"]["1"]["other"]["text"] != r["answers"]["other"]["text"] for r in rows)
    assert any(r["sampled"]["1"]["same"]["text"] != r["sampled"]["1"]["baseline"]["text"] for r in rows)


def test_sampling_is_reproducible_from_its_seed(run):
    from posttrain.models.load import load_causal_lm

    model, tokenizer = load_causal_lm(str(run["root"] / "alpha"))
    conversations = [r["messages"] for r in run["answers"]]

    def draw(seed: int) -> list[str]:
        return sampled_answers(model, tokenizer, conversations, temperature=1.0, max_new_tokens=6, seed=seed)

    first = draw(stream_seed(0, "model", 1.0))
    assert first == [r["sampled"]["1"]["same"]["text"] for r in run["answers"]]  # what the eval drew
    assert first == draw(stream_seed(0, "model", 1.0))
    assert first != draw(stream_seed(0, "baseline", 1.0))


def test_cli_prints_and_report_shows_the_temperature_table_and_curve(run):
    assert "W/T/L" in run["printed"] and "0.5" in run["printed"]
    page = (run["out"] / "index.html").read_text()
    assert (
        "Win rate by sampling temperature" in page and 'alt="win rate against sampling temperature"' in page
    )
    summary = json.loads(json.dumps(run["summary"]))
    summary["models"] = {EVIL: summary["models"]["other"]}
    for row in summary["models"].values():
        row["by_temperature"] = [e for e in row["by_temperature"] if e["temperature"] != 0.5]
    page = render(summary)
    assert "Win rate by sampling temperature" in page and "win rate against sampling temperature" not in page
    assert EVIL not in page and "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "0,,1", ""])
def test_a_bad_temperature_list_is_a_clear_error(value, tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, World(seed=0).prompts("test", 2, "test"))
    code = main(
        [
            "eval",
            "--model",
            str(tmp_path / "m"),
            "--baseline",
            str(tmp_path / "b"),
            "--prompts",
            str(prompts),
            "--out",
            str(tmp_path / "out"),
            f"--temperatures={value}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--temperatures" in err and "is not a temperature" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_temperatures_parse_sorted_and_distinct_with_greedy_always_in():
    assert parse_temperatures("0,1") == (0.0, 1.0)
    assert parse_temperatures("1") == (0.0, 1.0)
    assert parse_temperatures(" 0.7, 0 ,1,1.0") == (0.0, 0.7, 1.0)
    with pytest.raises(UserError, match="'-0.5' is not a temperature"):
        parse_temperatures("1,-0.5")


def test_demo_table_shows_the_temperature_one_win_rate_when_measured():
    rates = {
        "gold_score": 0.3,
        "refusal_rate_harmful": 0.5,
        "over_refusal_rate": 0.1,
        "hallucination_rate": 0.2,
    }
    model = {**rates, "win_rate": 0.6, "win_rate_ci_low": 0.55, "win_rate_ci_high": 0.65, "kl_to_sft": 2.0}
    sampled = {
        **model,
        "by_temperature": [
            {"temperature": 0.0, "win_rate": 0.6, "ci_low": 0.55, "ci_high": 0.65},
            {"temperature": 1.0, "win_rate": 0.625, "ci_low": 0.5, "ci_high": 0.75},
        ],
    }
    config = {"prompts": 450, "kl_samples": 1, "temperatures": [0.0, 1.0]}
    table = final_table({"baseline": rates, "models": {"ppo-ptx": sampled}, "config": config})
    head, _, row, *_ = table.splitlines()
    assert "ppo-ptx, T=1" in head and "62.5% [50.0%, 75.0%]" in row and "60.0% [55.0%, 65.0%]" in row
    assert row.index("62.5%") + len("62.5% [50.0%, 75.0%]") == head.index("ppo-ptx, T=1") + len(
        "ppo-ptx, T=1"
    )
    older = {"baseline": rates, "models": {"ppo-ptx": model}, "config": {**config, "temperatures": [0.0]}}
    assert "T=1" not in final_table(older)  # greedy only


def test_every_temperature_entry_has_both_systems_rates_with_their_n(run):
    summary = run["summary"]
    for row in summary["models"].values():
        greedy, *sampled = row["by_temperature"]
        assert greedy["rates"]["gold_score"] == row["gold_score"] and "by_family" not in greedy["rates"]
        assert greedy["baseline_rates"]["fails_task_rate"] == summary["baseline"]["fails_task_rate"]
        for e in sampled:
            for rates in (e["rates"], e["baseline_rates"]):
                assert rates["n"]["gold_score"] == rates["n"]["fails_task_rate"] == PROMPTS
            assert e["rates"]["gold_score"] == pytest.approx(e["gold_score"])
            assert e["baseline_rates"]["gold_score"] == pytest.approx(e["baseline_gold_score"])
    assert "What changed, per axis" in (run["out"] / "index.html").read_text()
