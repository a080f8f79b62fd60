"""`posttrain demo --preset tiny`: the whole chain through real checkpoints, then a re-run that continues."""

import json

from posttrain.cli import main

SUMMARY_FIELDS = ("win_rate", "win_rate_ci_low", "win_rate_ci_high", "kl_to_sft", "refusal_rate_harmful",
                  "over_refusal_rate", "hallucination_rate", "gold_score")


def test_the_tiny_demo_runs_every_stage_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "win rate vs SFT" in printed and "ppo-ptx" in printed
    assert "held-out labeler pairs" in printed and "two labelers agree on" in printed and "gold order" in printed
    for stage in ("sft", "rm", "ppo-ptx"):
        assert json.loads((out / stage / "posttrain.json").read_text())["stage"] == stage.split("-")[0]
    summary = json.loads((out / "report" / "summary.json").read_text())
    row = summary["models"]["ppo-ptx"]
    assert all(isinstance(row[f], float) for f in SUMMARY_FIELDS), row
    assert row["win_rate_ci_low"] <= row["win_rate"] <= row["win_rate_ci_high"]
    assert (out / "report" / "index.html").stat().st_size > 10_000

    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0      # everything is there: nothing redone
    assert "SFT: done before" in capsys.readouterr().err
