"""`posttrain rejection-sampling`: the reward model's best of K, then SFT on the picks; a re-run continues."""

import json
from pathlib import Path

import pytest

from posttrain.cli import main
from posttrain.data.records import read_conversations, write_jsonl
from posttrain.models.reward import RewardScorer
from posttrain.world import World
from tests import tiny

BASE = str(tiny.BASE)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("rejection")
    world, rows = World(seed=0), []
    for p in world.prompts("rm", 4, "train"):
        rows.append(
            {
                "id": p["id"],
                "prompt": p["messages"],
                "meta": p["meta"],
                "labeler": "sim:a",
                "completions": [{"text": "yes", "source": "model:x"}, {"text": "no", "source": "model:x"}],
                "ranking": [[0], [1]],
            }
        )
    write_jsonl(d / "rankings.jsonl", rows)
    assert (
        main(
            [
                "rm",
                "--model",
                BASE,
                "--data",
                str(d / "rankings.jsonl"),
                "--out",
                str(d / "rm"),
                "--max-steps",
                "1",
                "--eval-fraction",
                "0",
            ]
        )
        == 0
    )
    write_jsonl(d / "prompts.jsonl", world.prompts("ppo", 6, "train"))
    return d


def args(d: Path, out: Path) -> list[str]:
    return [
        "rejection-sampling",
        "--model",
        BASE,
        "--reward",
        str(d / "rm"),
        "--prompts",
        str(d / "prompts.jsonl"),
        "--out",
        str(out),
        "--k",
        "3",
        "--max-new-tokens",
        "8",
    ]


def test_picks_are_the_reward_models_best_and_the_policy_is_fine_tuned_on_them(setup, tmp_path, capsys):
    out = tmp_path / "rs"
    assert main(args(setup, out)) == 0
    assert "6 picks: reward-model score of the best of 3" in capsys.readouterr().out
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    picks = read_conversations(out / "picks.jsonl")
    scorer = RewardScorer(str(setup / "rm"))
    for s, p in zip(samples, picks, strict=True):
        scores = scorer.score([(s["prompt"], c["text"]) for c in s["completions"]])
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        assert (
            p["messages"][:-1] == s["prompt"]
            and p["messages"][-1]["content"] == s["completions"][best]["text"]
        )
        assert p["meta"]["picked"] == best
    manifest = json.loads((out / "policy" / "posttrain.json").read_text())
    assert (
        manifest["stage"] == "sft"
        and manifest["parent"] == BASE
        and manifest["metrics"]["train_examples"] == 6
    )


def test_a_rerun_continues_without_redoing_finished_steps(setup, tmp_path, monkeypatch):
    import posttrain.pipelines.rejection as pipeline

    out = tmp_path / "rs"
    assert main(args(setup, out)) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    for step in ("sample", "sft", "best_of_k"):
        monkeypatch.setattr(pipeline, step, lambda *a, **k: pytest.fail("a finished step ran again"))
    assert main(args(setup, out)) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
