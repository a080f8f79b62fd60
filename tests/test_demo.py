"""`posttrain demo --preset tiny`: the whole chain through real checkpoints, then a re-run that continues."""

import json

from posttrain.cli import main
from posttrain.commands.demo import phase_table
from posttrain.data.records import write_jsonl

SUMMARY_FIELDS = ("win_rate", "win_rate_ci_low", "win_rate_ci_high", "kl_to_sft", "refusal_rate_harmful",
                  "over_refusal_rate", "hallucination_rate", "gold_score")


def test_the_tiny_demo_runs_every_stage_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "win rate vs SFT" in printed and "ppo-ptx" in printed
    assert "held-out labeler pairs" in printed and "two labelers agree on" in printed and "gold order" in printed
    assert "share of peak" in printed
    for stage in ("sft", "rm", "ppo-ptx"):
        assert json.loads((out / stage / "posttrain.json").read_text())["stage"] == stage.split("-")[0]
    summary = json.loads((out / "report" / "summary.json").read_text())
    row = summary["models"]["ppo-ptx"]
    assert all(isinstance(row[f], float) for f in SUMMARY_FIELDS), row
    assert row["win_rate_ci_low"] <= row["win_rate"] <= row["win_rate_ci_high"]
    assert (out / "report" / "index.html").stat().st_size > 10_000

    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0      # everything is there: nothing redone
    assert "SFT: done before" in capsys.readouterr().err


def test_the_phase_table_shows_each_training_phase_mean_share_of_peak(tmp_path):
    write_jsonl(tmp_path / "rm" / "metrics.jsonl", [{"step": 1, "rm/loss": 0.7, "perf/share_of_peak": 0.1},
                                                   {"step": 2, "rm/loss": 0.6, "perf/share_of_peak": 0.3},
                                                   {"step": 2, "rm/eval_accuracy": 0.6}])
    write_jsonl(tmp_path / "sft" / "metrics.jsonl", [{"step": 1, "sft/loss": 1.0}])   # a stage that does not log it
    write_jsonl(tmp_path / "samples.jsonl", [{"id": "a"}])
    table = phase_table([("SFT", tmp_path / "sft", None), ("sample K=4", tmp_path / "samples.jsonl", 12.4),
                         ("reward model", tmp_path / "rm", 61.0)]).splitlines()
    assert "share of peak" in table[0]
    assert table[2].split() == ["SFT", "done", "before", "-"]
    assert table[3].split() == ["sample", "K=4", "12", "-"]
    assert table[4].split() == ["reward", "model", "61", "20.0%"]
