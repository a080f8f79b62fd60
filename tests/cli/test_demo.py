"""`posttrain demo --preset tiny`: the whole chain through real checkpoints, then a re-run that continues;
the run seed in every stage, the world seed, demo.json old and new, and --seeds."""

import json
from pathlib import Path

import pytest

import posttrain.commands.demo as demo
import posttrain.commands.demo_presets as presets
import posttrain.commands.demo_steps as steps
from posttrain.cli import main
from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_folder import differences, fingerprint
from posttrain.commands.demo_presets import PRESETS
from posttrain.commands.demo_steps import stage_configs
from posttrain.commands.demo_tables import phase_table
from posttrain.data.records import write_jsonl
from posttrain.world import World

SUMMARY_FIELDS = (
    "win_rate",
    "win_rate_ci_low",
    "win_rate_ci_high",
    "kl_to_sft",
    "refusal_rate_harmful",
    "over_refusal_rate",
    "hallucination_rate",
    "gold_score",
)


def test_the_tiny_demo_runs_every_stage_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "win rate vs SFT" in printed and "ppo-ptx" in printed
    headline, novel = printed.split("test_novel.jsonl: 45 prompts")
    assert "test.jsonl: 45 prompts" in headline and "ppo-ptx, T=1" in headline and "T=1" not in novel
    for label in (
        "task success (1 - fails_task)",
        "helpful (mean)",
        "hallucination (passage QA)",
        "harmful requests refused",
        "over-refusal (benign look-alikes)",
        "mean words per answer",
    ):
        line = next(x for x in headline.splitlines() if x.startswith(label))
        assert line[len(label) :].split()[0].isdigit(), line  # its n
        assert label in novel
    assert (
        "held-out labeler pairs" in printed and "two labelers agree on" in printed and "gold order" in printed
    )
    assert "share of peak" in printed
    for stage in ("sft", "rm", "ppo-ptx"):
        assert json.loads((out / stage / "posttrain.json").read_text())["stage"] == stage.split("-")[0]
    summary = json.loads((out / "report" / "summary.json").read_text())
    row = summary["models"]["ppo-ptx"]
    assert all(isinstance(row[f], float) for f in SUMMARY_FIELDS), row
    assert row["win_rate_ci_low"] <= row["win_rate"] <= row["win_rate_ci_high"]
    assert (out / "report" / "index.html").stat().st_size > 10_000
    assert summary["config"]["test_set"] == "test.jsonl" and summary["baseline"]["n"]["gold_score"] == 45
    novel = json.loads((out / "report-novel" / "summary.json").read_text())
    assert novel["config"]["prompts"] == 45 and novel["config"]["temperatures"] == [0.0]
    assert all(
        r["meta"]["split"] == "test_novel"
        for r in map(json.loads, (out / "world" / "test_novel.jsonl").open())
    )
    assert json.loads((out / "demo.json").read_text())["seed"] == 0

    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 0  # everything is there: nothing redone
    assert "SFT: done before" in capsys.readouterr().err


def test_the_phase_table_shows_each_training_phase_mean_share_of_peak(tmp_path):
    write_jsonl(
        tmp_path / "rm" / "metrics.jsonl",
        [
            {"step": 1, "rm/loss": 0.7, "perf/share_of_peak": 0.1},
            {"step": 2, "rm/loss": 0.6, "perf/share_of_peak": 0.3},
            {"step": 2, "rm/eval_accuracy": 0.6},
        ],
    )
    write_jsonl(
        tmp_path / "sft" / "metrics.jsonl", [{"step": 1, "sft/loss": 1.0}]
    )  # a stage that does not log it
    write_jsonl(tmp_path / "samples.jsonl", [{"id": "a"}])
    table = phase_table(
        [
            ("SFT", tmp_path / "sft", None),
            ("sample K=4", tmp_path / "samples.jsonl", 12.4),
            ("reward model", tmp_path / "rm", 61.0),
        ]
    ).splitlines()
    assert "share of peak" in table[0]
    assert table[2].split() == ["SFT", "done", "before", "-"]
    assert table[3].split() == ["sample", "K=4", "12", "-"]
    assert table[4].split() == ["reward", "model", "61", "20.0%"]


def test_the_run_seed_reaches_every_stage_and_the_world_stays_seed_0(tmp_path):
    c = stage_configs(DemoConfig(out=tmp_path, seed=7), PRESETS["tiny"])
    assert {name: cfg.seed for name, cfg in c.items()} == {
        "sft": 7,
        "sample": 7,
        "label": 7,
        "rm": 7,
        "ppo": 7,
    }
    assert c["label"].world_seed == c["rm"].world_seed == c["ppo"].world_seed == 0
    assert c["sft"].model == str(presets.demo_world().base)
    # run seed 0 is what the demo ran before the run seed: the stages' default seeds, the labelers' world seed
    c0 = stage_configs(DemoConfig(out=tmp_path), PRESETS["tiny"])
    assert {cfg.seed for cfg in c0.values()} == {0} and c0["label"].world_seed == 0


def test_the_run_seed_seeds_the_evaluation_and_each_test_set_is_evaluated(tmp_path, monkeypatch):
    import posttrain.evaluation.compare as compare
    import posttrain.evaluation.report as report

    world = tmp_path / "world"
    for split in ("test", "test_novel"):
        write_jsonl(world / f"{split}.jsonl", World(seed=0).prompts(split, 3, split))
    write_jsonl(world / "corpus_heldout.jsonl", [{"text": "A held-out page."}])
    calls = []
    monkeypatch.setattr(compare, "compare_models", lambda *a, **k: calls.append((a, k)) or {"config": {}})
    monkeypatch.setattr(report, "write_report", lambda summary, out: calls.append((summary, out)))
    cfg = DemoConfig(out=tmp_path, seed=5)
    for test_set in presets.TEST_SETS:
        steps.evaluate_test_set(cfg, test_set)
    (args, kw), (summary, out), (novel_args, novel_kw), (novel_summary, novel_out) = calls
    assert kw["seed"] == novel_kw["seed"] == 5 and args[3].seed == novel_args[3].seed == 0
    assert kw["temperatures"] == (0.0, 1.0) and kw["kl_samples"] == 1 and kw["heldout_documents"]
    assert novel_kw["temperatures"] == (0.0,) and novel_kw["kl_samples"] == 0 and not novel_kw["knowledge"]
    assert [r["meta"]["split"] for r in novel_args[2]] == ["test_novel"] * 3
    assert (out, novel_out) == (tmp_path / "report", tmp_path / "report-novel")
    assert (summary["config"]["test_set"], novel_summary["config"]["test_set"]) == (
        "test.jsonl",
        "test_novel.jsonl",
    )


def test_another_world_seed_is_refused_without_its_own_base_model(tmp_path, capsys, no_steps):
    out = tmp_path / "demo"
    assert main(["demo", "--world-seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--world-seed 1" in err and "posttrain pretrain" in err and "--base" in err and "--seed" in err
    assert not out.exists() and not no_steps
    base = tmp_path / "base1"
    base.mkdir()
    assert main(["demo", "--world-seed", "1", "--base", str(base), "--out", str(out)]) == 2
    assert "the steps would run now" in capsys.readouterr().err
    cfg = no_steps[-1]
    assert stage_configs(cfg, PRESETS["small"])["sft"].model == str(base)
    assert stage_configs(cfg, PRESETS["small"])["ppo"].world_seed == 1
    assert json.loads((out / "demo.json").read_text())["world_seed"] == 1


def test_each_run_seed_has_its_own_default_out(tmp_path, monkeypatch, no_steps):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--seed", "3"]) == 2 and main(["demo", "--preset", "tiny", "--seed", "2"]) == 2
    assert [c.out for c in no_steps] == [Path("runs/demo-seed3"), Path("runs/demo-tiny-seed2")]


def test_demo_json_records_run_seed_world_seed_and_base(tmp_path, capsys, no_steps):
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--seed", "2", "--out", str(out)]) == 2
    assert json.loads((out / "demo.json").read_text()) == {
        "preset": "tiny",
        "seed": 2,
        "world_seed": 0,
        "scale": presets.SCALE,
        "base": None,
        "sizes": vars(PRESETS["tiny"]),
    }
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2
    assert "--seed was 2, now 0" in capsys.readouterr().err and len(no_steps) == 1
    base = str(presets.demo_world().base)
    assert main(["demo", "--preset", "tiny", "--seed", "2", "--base", base, "--out", str(out)]) == 2
    assert "--base was None, now" in capsys.readouterr().err and len(no_steps) == 1


def test_an_older_demo_json_seed_is_its_world_seed_with_run_seed_0(tmp_path, monkeypatch, capsys, no_steps):
    monkeypatch.setattr(presets, "SCALE", "small")  # an older demo ran on the small world, the only one then
    out = tmp_path / "demo"
    out.mkdir()
    old = {"preset": "tiny", "seed": 0, "sizes": vars(PRESETS["tiny"])}  # before run seeds: the world seed
    (out / "demo.json").write_text(json.dumps(old))
    assert main(["demo", "--preset", "tiny", "--seed", "1", "--out", str(out)]) == 2
    assert "--seed was 0, now 1" in capsys.readouterr().err and not no_steps
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2  # run seed 0 on world 0: it continues
    assert "the steps would run now" in capsys.readouterr().err
    assert json.loads((out / "demo.json").read_text())["world_seed"] == 0
    # an older demo of world 1 (the shipped base, which never saw it) is world 1, not run seed 1
    was = {"preset": "small", "seed": 1}
    now = fingerprint(DemoConfig(out=out, world_seed=1, base="b1"))
    assert differences(was, now) == ["--base was None, now 'b1'"]
    assert differences(was, fingerprint(DemoConfig(out=out, seed=1))) == [
        "--seed was 0, now 1",
        "--world-seed was 1, now 0",
    ]


@pytest.mark.parametrize("seeds", ["0,0", "a", "1,-2", "", "4294967296"])
def test_a_bad_seed_list_is_a_clear_error(seeds, tmp_path, capsys):
    assert main(["demo", "--seeds", seeds, "--out", str(tmp_path / "d")]) == 2
    assert "--seeds" in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_seed_and_seeds_exclude_each_other(tmp_path, capsys):
    assert main(["demo", "--seed", "1", "--seeds", "0,1", "--out", str(tmp_path / "d")]) == 2
    assert "--seed 1 and --seeds 0,1" in capsys.readouterr().err


def fake_summary(win: float, words: float) -> dict:
    rates = {
        "gold_score": 0.3,
        "fails_task_rate": 0.5,
        "mean_words": words,
        "n": {"gold_score": 45, "fails_task_rate": 45, "mean_words": 45},
    }
    model = {
        **rates,
        "win_rate": win,
        "win_rate_ci_low": win - 0.1,
        "win_rate_ci_high": win + 0.1,
        "kl_to_sft": 2.0,
        "by_temperature": [
            {
                "temperature": 0.0,
                "win_rate": win,
                "ci_low": 0,
                "ci_high": 1,
                "rates": rates,
                "baseline_rates": rates,
            }
        ],
    }
    return {
        "baseline": rates,
        "models": {"ppo-ptx": model},
        "config": {"prompts": 45, "kl_samples": 1, "temperatures": [0.0]},
    }


def test_seeds_runs_a_demo_per_seed_and_reports_mean_and_range(tmp_path, capsys, monkeypatch):
    ran = []

    def run_steps(cfg):  # each seed's demo, reduced to its two summaries
        ran.append((cfg.seed, cfg.out, json.loads((cfg.out / "demo.json").read_text())["seed"]))
        for test_set, win in (("report", 0.6 + cfg.seed / 10), ("report-novel", 0.5)):
            (cfg.out / test_set).mkdir(exist_ok=True)
            (cfg.out / test_set / "summary.json").write_text(json.dumps(fake_summary(win, 10.0 + cfg.seed)))
        return []

    monkeypatch.setattr(demo, "run_steps", run_steps)
    out = tmp_path / "seeds"
    assert main(["demo", "--preset", "tiny", "--seeds", "0,2,1", "--out", str(out)]) == 0
    assert ran == [(s, out / f"seed-{s}", s) for s in (0, 2, 1)]
    printed = capsys.readouterr().out
    assert "over run seeds 0, 2, 1: mean (min..max)" in printed and "70.0% (60.0%..80.0%)" in printed
    result = json.loads((out / "seeds.json").read_text())
    assert result["seeds"] == [0, 2, 1] and set(result["test_sets"]) == {"test.jsonl", "test_novel.jsonl"}
    words = next(r for r in result["test_sets"]["test.jsonl"]["rows"] if r["key"] == "mean_words")
    assert words["n"] == 45 and words["values"][0] == {
        "mean": 11.0,
        "sd": 1.0,
        "min": 10.0,
        "max": 12.0,
        "values": [10.0, 12.0, 11.0],
    }
    assert main(["demo", "--preset", "tiny", "--seeds", "0,1", "--out", str(out)]) == 0  # each seed continues
    (out / "notes.txt").write_text("mine")
    assert main(["demo", "--preset", "tiny", "--seeds", "0", "--out", str(out)]) == 2
    assert "notes.txt" in capsys.readouterr().err
    (out / "notes.txt").unlink()
    assert (
        main(["demo", "--seeds", "0,1", "--out", str(out)]) == 2
    )  # another preset: refused before any seed runs
    assert "--preset was 'tiny', now 'small'" in capsys.readouterr().err and len(ran) == 5
