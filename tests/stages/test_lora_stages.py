"""`--lora-r` through the stages: sft, rm and ppo train adapters only, save merged or adapter-only models
that load like any other, and LoRA PPO's reference is the policy with its adapter off (no second copy)."""

import json

import pytest
import torch

import posttrain.training.policy_models as policy_models
from posttrain.cli import main
from posttrain.models.load import load_causal_lm
from posttrain.models.reward import RewardScorer
from posttrain.training.metrics import read_metrics


def test_lora_sft_saves_a_plain_model_or_an_adapter(stage_inputs, tmp_path, caplog):
    args = [
        "sft",
        "--model",
        str(stage_inputs / "model"),
        "--data",
        str(stage_inputs / "demos.jsonl"),
        "--max-steps",
        "3",
        "--lr",
        "1e-2",
        "--lora-r",
        "4",
        "--threads",
        "1",
    ]
    with caplog.at_level("INFO"):
        assert main([*args, "--out", str(tmp_path / "merged")]) == 0
    assert "LoRA r=4 alpha=8 on all-linear:" in caplog.text and "parameters train" in caplog.text
    assert main([*args, "--lora-save", "adapter", "--out", str(tmp_path / "adapter")]) == 0
    assert (tmp_path / "adapter" / "adapter_config.json").is_file() and not (
        tmp_path / "adapter" / "config.json"
    ).exists()
    base, _ = load_causal_lm(stage_inputs / "model")
    merged, _ = load_causal_lm(tmp_path / "merged")
    adapter, _ = load_causal_lm(tmp_path / "adapter")
    ids = torch.tensor([[5, 17, 42, 9]])
    with torch.no_grad():
        logits = [m(input_ids=ids).logits for m in (base, merged, adapter)]
    assert not torch.allclose(logits[0], logits[1]), "the adapters did not train"
    assert torch.allclose(logits[1], logits[2], atol=1e-5)


def test_lora_rm_trains_its_head_and_scores(stage_inputs, tmp_path):
    out = tmp_path / "rm"
    assert (
        main(
            [
                "rm",
                "--model",
                str(stage_inputs / "model"),
                "--data",
                str(stage_inputs / "rankings.jsonl"),
                "--out",
                str(out),
                "--max-steps",
                "3",
                "--micro-batch",
                "4",
                "--lora-r",
                "4",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "posttrain.json").read_text())
    assert manifest["reward_normalisation"]["gain"] > 0
    scores = RewardScorer(str(out)).score(
        [([{"role": "user", "content": "hi"}], "hello"), ([{"role": "user", "content": "hi"}], "no")]
    )
    assert len(scores) == 2 and scores[0] != scores[1]


def test_lora_ppo_loads_no_reference_copy(stage_inputs, tmp_path, monkeypatch):
    loaded = []
    real = policy_models.load_causal_lm
    monkeypatch.setattr(
        policy_models, "load_causal_lm", lambda spec, **k: loaded.append(str(spec)) or real(spec, **k)
    )
    out = tmp_path / "ppo"
    assert (
        main(
            [
                "ppo",
                "--policy",
                str(stage_inputs / "model"),
                "--reward",
                str(stage_inputs / "rm"),
                "--prompts",
                str(stage_inputs / "prompts.jsonl"),
                "--out",
                str(out),
                "--rollout-batch",
                "4",
                "--minibatches",
                "1",
                "--micro-batch",
                "2",
                "--ppo-epochs",
                "2",
                "--max-new-tokens",
                "8",
                "--max-steps",
                "2",
                "--lr",
                "1e-2",
                "--lora-r",
                "4",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    assert loaded == [str(stage_inputs / "model")], (
        "the policy is loaded once: its reference is itself, adapter off"
    )
    steps = read_metrics(out / "metrics.jsonl")
    # at step 1 the adapters are still zero, so policy and reference are one function: the KL is 0 up to the
    # rounding between the sampler's logprobs (cached keys and values) and the reference's full forward
    assert abs(steps[0]["objective/kl"]) < 1e-5 and abs(steps[1]["objective/kl"]) > 1e-3
    assert (out / "config.json").is_file()  # merged by default: a plain model the next round loads


@pytest.mark.parametrize(
    "bad, message", [(["--lora-target", "nope"], "has no module named nope"), (["--lora-r", "0"], "--lora-r")]
)
def test_bad_lora_options_are_one_line_errors(stage_inputs, tmp_path, capsys, bad, message):
    args = [
        "sft",
        "--model",
        str(stage_inputs / "model"),
        "--data",
        str(stage_inputs / "demos.jsonl"),
        "--max-steps",
        "1",
        "--out",
        str(tmp_path / "x"),
    ]
    assert main([*args, *(["--lora-r", "4"] if "--lora-r" not in bad else []), *bad]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not (tmp_path / "x.partial").exists()
