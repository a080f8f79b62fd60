"""Simulated labelers: InstructGPT-level agreement by default, moved by the noise knob, reproducible."""

from pathlib import Path

import pytest

from posttrain.world import World
from posttrain.world.labelers import (
    DEFAULT_NOISE,
    LabelerPool,
    model_like_answers,
    pairwise_agreement,
    tie_groups,
)
from posttrain.world.rng import derive
from tests.tiny import BASE


@pytest.fixture(scope="module")
def world():
    return World(seed=0, scale="small")


@pytest.fixture(scope="module")
def records(world):
    return world.prompts("agreement-test", 1800, "train")


SFT_SAMPLES = Path(__file__).parent / "data" / "small2_sft_samples.jsonl"  # runs/demo2-s0/samples.jsonl


def test_default_agreement_is_instructgpts_on_the_demo_sft_models_own_samples(capsys):
    """InstructGPT's 72.6% was measured on model samples: the default noise is set on the K = 4 samples
    the demo's SFT model (small2 world, run seed 0) drew for the reward model's 900 prompts."""
    from posttrain.cli import main

    assert main(["world", "agreement", "--samples", str(SFT_SAMPLES), "--scale", "small2"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.endswith("(default)"))
    noise, agreement, strict, _ = row.split()[:4]
    assert float(noise) == DEFAULT_NOISE and 70.6 <= float(agreement.rstrip("%")) <= 74.6, row
    assert int(strict) > 3000


def test_model_like_answers_are_easier_to_tell_apart_than_a_policys_own(world, records):
    result = pairwise_agreement(LabelerPool(world), records, k=4)
    assert result["agreement"] > 0.80 and result["strict_pairs"] > 5000, result


def test_agreement_moves_with_noise(world, records):
    sample = records[:600]
    default, more, most = (
        pairwise_agreement(LabelerPool(world, noise=n), sample)["agreement"]
        for n in (DEFAULT_NOISE, 0.32, 0.8)
    )
    assert default > more + 0.05 and more > most + 0.05


def test_rankings_are_reproducible_and_identical_texts_tie(world, records):
    pool = LabelerPool(world)
    record = records[0]
    answers = [*model_like_answers(world, record, 3, derive(0, "x")), "same text", "same text"]
    labeler = pool.labelers[0]
    first, again = pool.rank(labeler, record, answers), pool.rank(labeler, record, answers)
    assert first == again
    assert any({3, 4} <= set(group) for group in first["ranking"])
    assert sorted(i for g in first["ranking"] for i in g) == list(range(5))
    assert all(1 <= x <= 7 for x in first["likert"])


def test_biases_show(world):
    pool = LabelerPool(world, noise=0.0)
    record = world.prompt_for("harmful", {"kind": "recipe", "thing": world.kb.recipes[0].thing})
    by_bias = {lab.bias: lab for lab in pool.labelers}
    answers = ["I'm sorry, but I can't help with that.", "That is an interesting topic."]
    neutral = pool.rank(by_bias["neutral"], record, answers)["perceived"]
    happy = pool.rank(by_bias["refusal_happy"], record, answers)["perceived"]
    assert happy[0] > neutral[0] and happy[1] == neutral[1]


def test_flags_come_from_the_gold_flags(world):
    pool = LabelerPool(world, noise=0.0)
    record = world.prompt_for("benign", {"kind": "kill_process"})
    flags = [
        pool.rank(lab, record, ["I'm sorry, but I can't help with that."])["flags"][0]
        for lab in pool.labelers
    ]
    neutral = [f for lab, f in zip(pool.labelers, flags) if lab.bias != "refusal_happy"]
    assert any("over_refusal" in f for f in neutral)
    assert all(set(f) <= {"fails_task", "over_refusal"} for f in flags)


def test_labelers_per_item_are_distinct_and_bounded(world):
    pool = LabelerPool(world)
    assert len({lab.id for lab in pool.pick_labelers("item-1", 3)}) == 3
    with pytest.raises(ValueError, match="labelers per item"):
        pool.pick_labelers("item-1", 99)


def test_tie_groups():
    assert tie_groups([0.5, 0.9, 0.51, 0.1], margin=0.02) == [[1], [2, 0], [3]]


def test_agreement_on_given_answers_is_the_model_like_measure_on_the_same_answers(world, records):
    from posttrain.world.labelers import agreement_on

    sample = records[:300]
    rng = derive(0, "agreement")
    items = [(rec, model_like_answers(world, rec, 4, rng)) for rec in sample]
    assert agreement_on(LabelerPool(world), items) == pairwise_agreement(LabelerPool(world), sample, k=4)
    # answers that differ only in ways a labeler's bias and noise decide (two near-identical
    # right answers) are agreed on far less often than a right answer against a wrong one
    close = [
        (
            rec,
            [
                world.demonstrate(rec, derive(1, rec["id"])),
                world.demonstrate(rec, derive(2, rec["id"])) + " Sure.",
            ],
        )
        for rec in sample
    ]
    apart = [
        (
            rec,
            [
                world.demonstrate(rec, derive(1, rec["id"])),
                list(world.wrong_answers(rec, derive(3, rec["id"])).values())[0],
            ],
        )
        for rec in sample
    ]
    pool = LabelerPool(world)
    assert agreement_on(pool, apart)["agreement"] > agreement_on(pool, close)["agreement"] + 0.1


def _samples_file(world, records, path, rng):
    import json

    with open(path, "w") as f:
        for rec in records:
            answers = model_like_answers(world, rec, 4, rng)
            f.write(
                json.dumps(
                    {
                        "id": rec["id"],
                        "prompt": rec["messages"],
                        "meta": rec["meta"],
                        "completions": [{"text": a, "source": "model:test"} for a in answers],
                    }
                )
                + "\n"
            )


def test_world_agreement_on_samples_and_on_a_models_own_answers(world, records, tmp_path, capsys):

    from posttrain.cli import main

    _samples_file(world, records[:200], tmp_path / "samples.jsonl", derive(0, "agreement"))
    assert main(["world", "agreement", "--samples", str(tmp_path / "samples.jsonl"), "--noise", "0.32"]) == 0
    out = capsys.readouterr().out
    expected = pairwise_agreement(LabelerPool(world, noise=0.32), records[:200], k=4)["agreement"]
    assert f"{expected:.1%}" in out and "200 prompts, K=4" in out

    base = BASE
    assert (
        main(
            [
                "world",
                "agreement",
                "--model",
                str(base),
                "--prompts",
                "6",
                "--k",
                "3",
                "--max-new-tokens",
                "6",
                "--noise",
                "0.32",
            ]
        )
        == 0
    )
    assert "6 prompts, K=3" in capsys.readouterr().out


def test_world_agreement_refuses_foreign_samples_and_two_sources(tmp_path, capsys):
    import json

    from posttrain.cli import main

    path = tmp_path / "samples.jsonl"
    path.write_text(
        json.dumps(
            {
                "id": "x",
                "prompt": [{"role": "user", "content": "hi"}],
                "completions": [{"text": "a", "source": "human:me"}, {"text": "b", "source": "human:me"}],
            }
        )
        + "\n"
    )
    assert main(["world", "agreement", "--samples", str(path)]) == 2
    assert "no world task" in capsys.readouterr().err
    assert main(["world", "agreement", "--samples", str(path), "--model", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err


def test_label_sim_seed_is_a_run_seed_apart_from_the_world(world, records, tmp_path):
    import json

    from posttrain.labeling.simulated import LabelSimConfig, label_sim

    _samples_file(world, records[:150], tmp_path / "samples.jsonl", derive(0, "agreement"))

    def rankings(name, **seed):
        cfg = LabelSimConfig(
            samples=tmp_path / "samples.jsonl", out=tmp_path / name, labelers_per_item=2, **seed
        )
        cfg.check()
        label_sim(cfg)
        return [
            (r["labeler"], r["ranking"]) for r in map(json.loads, (tmp_path / name).read_text().splitlines())
        ]

    default, same, other = rankings("a.jsonl"), rankings("b.jsonl", seed=0), rankings("c.jsonl", seed=1)
    assert default == same  # the default draws are the world seed's, as before
    assert default != other  # another run seed: other labelers and other noise, same world
