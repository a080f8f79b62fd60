"""`posttrain world headroom`: best-of-n against greedy by hand, by brute force, and end to end on a tiny
model."""

import itertools
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM, LlamaForSequenceClassification

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.evaluation.headroom import (
    average_over_ties,
    best_of_ns,
    captured,
    oracle_win_rates,
    picked_win_rates,
)
from posttrain.models.checkpoint import write_manifest
from posttrain.world import World
from tests.tiny import BASE, llama_config


# --- the math, by hand -----------------------------------------------------------------
def test_reported_n_are_1_4_16_up_to_k_and_k():
    assert best_of_ns(16) == [1, 4, 16]
    assert best_of_ns(4) == [1, 4]
    assert best_of_ns(8) == [1, 4, 8]
    assert best_of_ns(2) == [1, 2]
    assert best_of_ns(1) == [1]
    assert best_of_ns(32) == [1, 4, 16, 32]


def test_oracle_best_of_n_against_greedy_by_hand():
    # one sample below greedy, one above: a single sample wins half the time, the best of both always
    assert oracle_win_rates([0.2, 0.8], 0.5, [1, 2]) == pytest.approx([0.5, 1.0])
    # ties count half: samples equal to greedy
    assert oracle_win_rates([0.5, 0.5], 0.5, [1, 2]) == pytest.approx([0.5, 0.5])
    # outcomes 0.5, 0, 1; pairs {0.5, 0.2} -> 0.5, {0.5, 0.9} -> 1, {0.2, 0.9} -> 1
    assert oracle_win_rates([0.5, 0.2, 0.9], 0.5, [1, 2, 3]) == pytest.approx([0.5, 2.5 / 3, 1.0])
    # nothing better than greedy anywhere: best-of-n never wins
    assert oracle_win_rates([0.1, 0.3, 0.2], 0.5, [1, 3]) == pytest.approx([0.0, 0.0])


def test_reward_model_picked_best_of_n_by_hand():
    # outcomes against greedy 0.5: 0, 1, 0.5; the RM likes the worst sample most
    gold, rm = [0.2, 0.8, 0.5], [3.0, 1.0, 2.0]
    # pairs: {0, 1} -> picks 0 (loss), {0, 2} -> picks 0 (loss), {1, 2} -> picks 2 (tie)
    assert picked_win_rates(rm, gold, 0.5, [1, 2, 3]) == pytest.approx([0.5, 0.5 / 3, 0.0])
    # a perfect RM picks as the oracle does
    assert picked_win_rates(gold, gold, 0.5, [1, 2, 3]) == pytest.approx(
        oracle_win_rates(gold, 0.5, [1, 2, 3])
    )


def test_reward_model_ties_are_averaged_not_broken_by_sample_order():
    assert picked_win_rates([1.0, 1.0], [0.2, 0.8], 0.5, [2]) == pytest.approx([0.5])
    assert picked_win_rates([1.0, 1.0], [0.8, 0.2], 0.5, [2]) == pytest.approx([0.5])
    # outcomes 0, 1, 1; pairs {0, 1} -> tie of the RM: 0.5, {0, 2} -> 0, {1, 2} -> 1; all three -> 0.5
    assert picked_win_rates([1.0, 1.0, 0.0], [0.2, 0.8, 0.9], 0.5, [2, 3]) == pytest.approx([0.5, 0.5])
    assert average_over_ties([2, 1, 2], [0.0, 1.0, 1.0]) == pytest.approx([0.5, 1.0, 0.5])


def brute_force(picker, gold, greedy, n):
    """Mean over every n-subset of the outcome of a uniform pick among its top-`picker` samples."""
    total, subsets = 0.0, list(itertools.combinations(range(len(gold)), n))
    for subset in subsets:
        top = max(picker[i] for i in subset)
        picks = [i for i in subset if picker[i] == top]
        total += np.mean([1.0 if gold[i] > greedy else 0.5 if gold[i] == greedy else 0.0 for i in picks])
    return total / len(subsets)


def test_picked_and_oracle_rates_match_brute_force_over_all_subsets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(1, 8))
        gold = rng.integers(0, 4, size=k) / 4  # few values: ties with greedy and between samples
        rm = rng.integers(0, 3, size=k).astype(float)  # ties of the RM
        greedy = float(rng.integers(0, 4) / 4)
        ns = list(range(1, k + 1))
        assert picked_win_rates(rm, gold, greedy, ns) == pytest.approx(
            [brute_force(rm, gold, greedy, n) for n in ns]
        )
        assert oracle_win_rates(gold, greedy, ns) == pytest.approx(
            [brute_force(gold, gold, greedy, n) for n in ns]
        )


def test_share_of_oracle_room_captured():
    assert captured(0.75, 1.0) == pytest.approx(0.5)
    assert captured(0.5, 0.9) == pytest.approx(0.0)
    assert captured(0.4, 0.5) is None  # no room: greedy is as good as the best sample
    assert captured(0.2, 0.3) is None


# --- the command on a tiny model -------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random policy, a tiny reward model and 9 world test prompts (one per family)."""
    root = tmp_path_factory.mktemp("headroom")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(len(tokenizer))).save_pretrained(root / "policy")
    tokenizer.save_pretrained(root / "policy")
    torch.manual_seed(1)
    config = llama_config(len(tokenizer))
    config.num_labels = 1
    LlamaForSequenceClassification(config).save_pretrained(root / "rm")
    tokenizer.save_pretrained(root / "rm")
    write_manifest(root / "rm", {"stage": "rm", "reward_normalisation": {"gain": 1.0, "bias": 0.0}})
    write_jsonl(root / "test.jsonl", World(seed=0).prompts("test", 9, "test"))
    return root


def command(setup, out, *extra):
    return [
        "world",
        "headroom",
        "--model",
        str(setup / "policy"),
        "--prompts",
        str(setup / "test.jsonl"),
        "--k",
        "4",
        "--max-new-tokens",
        "4",
        "--out",
        str(out),
        *extra,
    ]


def test_headroom_writes_numbers_in_range_that_the_samples_reproduce(setup, tmp_path, capsys):
    out = tmp_path / "headroom"
    assert main(command(setup, out, "--reward", str(setup / "rm"))) == 0
    printed = capsys.readouterr().out
    assert "oracle@4" in printed and "rm@4" in printed and "\nall " in printed
    result = json.loads((out / "headroom.json").read_text())
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert result["n"] == [1, 4] and len(rows) == 9 and result["all"]["prompts"] == 9
    assert len(result["by_family"]) == 9 and all(r["prompts"] == 1 for r in result["by_family"].values())
    for r in [*result["by_family"].values(), result["all"]]:
        for value in (
            r["greedy_gold"],
            r["sampled_gold"],
            r["any_better"],
            *r["oracle_win_rate"].values(),
            *r["rm_win_rate"].values(),
        ):
            assert 0.0 <= value <= 1.0
        assert r["oracle_win_rate"]["1"] <= r["oracle_win_rate"]["4"] + 1e-12  # best of more never worse
        assert r["rm_win_rate"]["4"] <= r["oracle_win_rate"]["4"] + 1e-12  # no picker beats the oracle
        assert r["rm_captured"] is None or r["rm_captured"] <= 1 + 1e-9
    for row in rows:
        assert len(row["samples"]) == 4 and {"text", "gold", "rm"} <= set(row["samples"][0])
    # the overall numbers follow from samples.jsonl by brute force
    greedy = [r["greedy"]["gold"] for r in rows]
    gold = [[s["gold"] for s in r["samples"]] for r in rows]
    rm = [[s["rm"] for s in r["samples"]] for r in rows]
    a = result["all"]
    assert a["greedy_gold"] == pytest.approx(np.mean(greedy))
    assert a["sampled_gold"] == pytest.approx(np.mean(gold))
    assert a["any_better"] == pytest.approx(np.mean([max(g) > g0 for g, g0 in zip(gold, greedy)]))
    assert a["oracle_win_rate"]["4"] == pytest.approx(
        np.mean([brute_force(g, g, g0, 4) for g, g0 in zip(gold, greedy)])
    )
    assert a["rm_win_rate"]["1"] == pytest.approx(
        np.mean([brute_force(r, g, g0, 1) for r, g, g0 in zip(rm, gold, greedy)])
    )

    # an existing --out is refused without --force; with it, the same seed samples the same texts
    assert main(command(setup, out)) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(command(setup, out, "--force")) == 0
    again = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["samples"][0]["text"] for r in again] == [r["samples"][0]["text"] for r in rows]
    assert (
        "rm" not in again[0]["samples"][0]
        and "rm_win_rate" not in json.loads((out / "headroom.json").read_text())["all"]
    )


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--k", "0", "--k must be >= 1"),
        ("--temperature", "0", "--temperature must be >= 0.01, got 0.0"),
        ("--temperature", "nan", "--temperature must be a finite number, got nan"),
        ("--max-new-tokens", "0", "--max-new-tokens must be >= 1"),
    ],
)
def test_bad_settings_exit_2_with_a_clear_error(setup, tmp_path, capsys, flag, value, message):
    assert main([*command(setup, tmp_path / "out"), flag, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_prompts_from_outside_the_world_are_refused(setup, tmp_path, capsys):
    prompts = tmp_path / "mine.jsonl"
    write_jsonl(prompts, [{"id": "q0", "messages": [{"role": "user", "content": "Tell me about item 0."}]}])
    args = command(setup, tmp_path / "out")
    args[args.index("--prompts") + 1] = str(prompts)
    assert main(args) == 2
    assert "not made by the built-in world" in capsys.readouterr().err
