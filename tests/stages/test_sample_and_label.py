"""`posttrain sample` and `posttrain label sim`: K completions with provenance, rankings by simulated
labelers."""

import json

import pytest

from posttrain.cli import main
from posttrain.data.rankings import read_rankings, read_samples
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.labeling.simulated import agreement_from_rankings
from posttrain.world import World
from tests import tiny

BASE = str(tiny.BASE)


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    write_jsonl(path, World(seed=0).prompts("t", 12, "train"))
    return path


def sample_args(prompts, out, *extra):
    return [
        "sample",
        "--model",
        BASE,
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--k",
        "3",
        "--max-new-tokens",
        "12",
        "--batch-size",
        "4",
        *extra,
    ]


def test_k_completions_with_provenance(prompts, tmp_path):
    out = tmp_path / "samples.jsonl"
    assert main(sample_args(prompts, out)) == 0
    records = [r for _, r in read_samples(out)]
    assert len(records) == 12 and all(len(r["completions"]) == 3 for r in records)
    first = records[0]["completions"][0]
    assert first["source"] == f"model:{BASE}" and first["finish_reason"] in ("stop", "length")
    assert first["sampling"] == {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12, "seed": 0}
    assert records[0]["meta"]["family"] and records[0]["prompt"][-1]["role"] == "user"


def test_bad_sampling_requests_are_clear_errors(prompts, tmp_path, capsys):
    assert main(sample_args(prompts, tmp_path / "s.jsonl", "--k", "10")) == 2
    assert "--k must be between 2 and 9" in capsys.readouterr().err
    demos = tmp_path / "demos.jsonl"
    write_jsonl(demos, World(seed=0).demonstrations(2))
    assert main(sample_args(demos, tmp_path / "s.jsonl")) == 2
    assert "demos.jsonl:1: field 'messages' ends with a assistant turn" in capsys.readouterr().err
    assert not (tmp_path / "s.jsonl").exists()


def world_samples(path, n=40, k=4):
    from posttrain.world.labelers import model_like_answers
    from posttrain.world.rng import derive

    world, rng = World(seed=0), derive(0, "samples")
    records = []
    for p in world.prompts("s", n, "train"):
        texts = model_like_answers(world, p, k, rng)
        records.append(
            {
                "id": p["id"],
                "prompt": p["messages"],
                "meta": p["meta"],
                "completions": [{"text": t, "source": "model:test"} for t in texts],
            }
        )
    write_jsonl(path, records)
    return path


def test_label_sim_writes_valid_rankings_by_distinct_labelers(tmp_path, capsys):
    samples = world_samples(tmp_path / "samples.jsonl")
    out = tmp_path / "rankings.jsonl"
    assert (
        main(["label", "sim", "--samples", str(samples), "--out", str(out), "--labelers-per-item", "2"]) == 0
    )
    rankings = [r for _, r in read_rankings(out)]
    assert len(rankings) == 80
    by_item = {}
    for r in rankings:
        by_item.setdefault(r["meta"]["item"], []).append(r["labeler"])
        assert len(r["likert"]) == len(r["flags"]) == 4 and r["labeler"].startswith("sim:")
    assert all(len(set(labelers)) == 2 for labelers in by_item.values())
    result = agreement_from_rankings(out)
    assert result["items"] == 40 and 0.5 < result["agreement"] <= 1.0
    assert (
        main(["label", "agreement", "--data", str(out)]) == 0
        and "InstructGPT: 72.6%" in capsys.readouterr().out
    )


def test_label_sim_needs_world_prompts(tmp_path, capsys):
    samples = tmp_path / "samples.jsonl"
    write_jsonl(
        samples,
        [
            {
                "id": "x",
                "prompt": [{"role": "user", "content": "hi"}],
                "meta": {},
                "completions": [{"text": "a", "source": "model:m"}, {"text": "b", "source": "model:m"}],
            }
        ],
    )
    assert main(["label", "sim", "--samples", str(samples), "--out", str(tmp_path / "r.jsonl")]) == 2
    assert "samples.jsonl:1: field 'meta' has no world task" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ranking": [[0], [5]]}, "index 5, out of range for 2 completions"),
        ({"ranking": [[0, 1], [1]]}, "ranks completion 1 twice"),
        ({"ranking": [[0]]}, "leaves out completions [1]"),
        ({"completions": [{"text": "a", "source": "model:m"}]}, "at least 2 completions"),
        (
            {"completions": [{"text": "a", "source": "model:m"}, {"text": " ", "source": "model:m"}]},
            "completions[1].text' must be a non-empty string",
        ),
    ],
)
def test_bad_ranking_records_name_file_line_and_field(tmp_path, change, message):
    good = {
        "id": "x",
        "prompt": [{"role": "user", "content": "hi"}],
        "ranking": [[1], [0]],
        "labeler": "ann",
        "completions": [{"text": "a", "source": "model:m"}, {"text": "b", "source": "human:ann"}],
    }
    path = tmp_path / "rankings.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, **change}) + "\n")
    with pytest.raises(
        UserError, match=r"rankings.jsonl:2: .*" + message.replace("[", r"\[").replace("]", r"\]")
    ):
        read_rankings(path)
