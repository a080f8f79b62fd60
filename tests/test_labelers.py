"""Simulated labelers: InstructGPT-level agreement by default, moved by the noise knob, reproducible."""

import pytest

from posttrain.world import World
from posttrain.world.labelers import DEFAULT_NOISE, LabelerPool, model_like_answers, pairwise_agreement, tie_groups
from posttrain.world.rng import derive


@pytest.fixture(scope="module")
def world():
    return World(seed=0, scale="small")


@pytest.fixture(scope="module")
def records(world):
    return world.prompts("agreement-test", 1800, "train")


def test_default_agreement_is_near_instructgpt(world, records):
    result = pairwise_agreement(LabelerPool(world), records, k=4)
    assert 0.70 <= result["agreement"] <= 0.75, result
    assert result["strict_pairs"] > 5000


def test_agreement_moves_with_noise(world, records):
    sample = records[:600]
    low, default, high = (pairwise_agreement(LabelerPool(world, noise=n), sample)["agreement"]
                          for n in (0.1, DEFAULT_NOISE, 0.8))
    assert low > default + 0.05 and default > high + 0.05


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
    flags = [pool.rank(lab, record, ["I'm sorry, but I can't help with that."])["flags"][0] for lab in pool.labelers]
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
