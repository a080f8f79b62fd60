"""`posttrain ppo`: rollouts read right, the first update starts at ratio 1, every metric is logged,
PPO-ptx mixes the LM loss, and a run killed with SIGKILL resumes to the same result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.models.load import load_causal_lm
from posttrain.models.policy import episode_inputs, response_logprobs, response_mask
from posttrain.training.metrics import read_metrics
from posttrain.world import World
from tests.stages.commands import ppo_args

PPO_METRICS = (
    "objective/score",
    "objective/kl",
    "objective/entropy",
    "objective/non_score_reward",
    "objective/kl_coef",
    "ppo/policy/clipfrac",
    "ppo/policy/approx_kl",
    "ppo/policy/entropy",
    "ppo/value/explained_var",
    "ppo/value/clipfrac",
    "ppo/loss/policy",
    "ppo/loss/value",
    "ppo/response_length",
    "ppo/eos_rate",
    "world/gold_score",
    "time/seconds_per_step",
)


def test_response_mask_stops_after_the_first_eos_even_when_pad_is_eos():
    eos = 5
    response = torch.tensor([[1, 2, eos, eos, eos], [1, 2, 3, 4, 6], [eos, eos, eos, eos, eos]])
    assert response_mask(response, eos).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def test_response_logprobs_do_not_depend_on_left_padding(setup):
    model, tokenizer = load_causal_lm(setup / "sft")
    prompt, response = torch.tensor([[11, 12, 13]]), torch.tensor([[21, 22, 23, 24]])
    mask = torch.ones_like(response)
    alone, _ = response_logprobs(
        model, episode_inputs(prompt, torch.ones_like(prompt), response, mask), 3, 0.7
    )
    padded_prompt = torch.cat([torch.full((1, 4), tokenizer.pad_token_id), prompt], 1)
    padded_mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), torch.ones_like(prompt)], 1)
    padded, _ = response_logprobs(model, episode_inputs(padded_prompt, padded_mask, response, mask), 7, 0.7)
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


def test_a_ppo_run_logs_every_metric_and_writes_a_policy(setup, capsys):
    assert main(ppo_args(setup, "ppo", "--max-steps", "2", "--sample-every", "1")) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "prompt -> response" in out
    rows = read_metrics(setup / "ppo" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(name in rows[-1] for name in PPO_METRICS), set(PPO_METRICS) - set(rows[-1])
    manifest = json.loads((setup / "ppo" / "posttrain.json").read_text())
    assert manifest["stage"] == "ppo" and manifest["parent"] == str(setup / "sft")
    policy, _ = load_causal_lm(setup / "ppo")  # an ordinary causal LM checkpoint
    before, _ = load_causal_lm(setup / "sft")
    assert any(not torch.equal(a, b) for a, b in zip(policy.parameters(), before.parameters()))


def test_the_first_update_starts_from_ratio_one(setup):
    """Rollout logprobs and the training forward pass agree, so the first minibatch is unclipped."""
    assert (
        main(
            ppo_args(
                setup,
                "ppo-ratio",
                "--max-steps",
                "1",
                "--ppo-epochs",
                "1",
                "--minibatches",
                "1",
                "--micro-batch",
                "8",
            )
        )
        == 0
    )
    row = read_metrics(setup / "ppo-ratio" / "metrics.jsonl")[0]
    assert row["ppo/policy/clipfrac"] == 0 and row["ppo/policy/approx_kl"] < 1e-10


def test_ptx_mixes_the_pretraining_loss_and_heldout_loss_is_logged(setup):
    assert (
        main(
            ppo_args(
                setup,
                "ppo-ptx",
                "--max-steps",
                "1",
                "--ptx",
                str(setup / "corpus.jsonl"),
                "--ptx-seq-len",
                "16",
                "--heldout-corpus",
                str(setup / "corpus.jsonl"),
            )
        )
        == 0
    )
    row = read_metrics(setup / "ppo-ptx" / "metrics.jsonl")[0]
    assert row["ppo/ptx_loss"] > 0 and row["alignment/heldout_loss"] > 0
    assert json.loads((setup / "ppo-ptx" / "posttrain.json").read_text())["data"]["ptx_sha256"]


def test_every_step_gets_a_full_batch_when_the_prompts_do_not_divide(setup):
    lines = (setup / "prompts.jsonl").read_text().splitlines(keepends=True)[:12]
    (setup / "prompts12.jsonl").write_text("".join(lines))
    args = ppo_args(setup, "ppo-12", "--max-steps", "2", "--ppo-epochs", "1")
    args[args.index("--prompts") + 1] = str(setup / "prompts12.jsonl")
    assert main(args) == 0  # step 2 spans the end of one pass over the prompts and the start of the next
    assert [r["step"] for r in read_metrics(setup / "ppo-12" / "metrics.jsonl")] == [1, 2]


def test_bad_batch_shape_is_a_clear_error(setup, capsys):
    assert main(ppo_args(setup, "ppo-bad", "--micro-batch", "3")) == 2
    assert "--micro-batch 3 must divide" in capsys.readouterr().err
    assert not (setup / "ppo-bad").exists() and not (setup / "ppo-bad.partial").exists()


def test_a_run_killed_with_sigkill_resumes_to_the_same_result(setup):
    args = ppo_args(setup, "ppo-killed", "--max-steps", "4", "--save-every", "1", "--kl-target", "1.0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "posttrain.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    checkpoint = setup / "ppo-killed.partial" / "checkpoints" / "step-000002"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), proc.stderr.read().decode()
    assert not (setup / "ppo-killed").exists()
    assert main([*args, "--resume"]) == 0
    assert (
        main(ppo_args(setup, "ppo-whole", "--max-steps", "4", "--save-every", "1", "--kl-target", "1.0")) == 0
    )
    resumed = read_metrics(setup / "ppo-killed" / "metrics.jsonl")
    whole = read_metrics(setup / "ppo-whole" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for a, b in zip(resumed, whole):
        for name in ("objective/score", "objective/kl", "objective/kl_coef", "ppo/loss/policy"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), (a["step"], name)


def test_the_loop_runs_rounds_keeps_the_labelers_choice_and_continues_where_it_stopped(setup, capsys):
    world = World(seed=0)
    write_jsonl(setup / "dev.jsonl", world.prompts("ppo-test-dev", 9, "train"))
    write_jsonl(setup / "rm_prompts.jsonl", world.prompts("ppo-test-loop", 12, "train"))
    args = [
        "loop",
        "--sft",
        str(setup / "sft"),
        "--rm-prompts",
        str(setup / "rm_prompts.jsonl"),
        "--ppo-prompts",
        str(setup / "prompts.jsonl"),
        "--eval-prompts",
        str(setup / "dev.jsonl"),
        "--out",
        str(setup / "loop"),
        "--rm-prompts-per-round",
        "6",
        "--ppo-prompts-per-round",
        "8",
        "--ppo-rollout-batch",
        "8",
        "--ppo-micro-batch",
        "2",
        "--k",
        "3",
        "--ppo-max-new-tokens",
        "6",
    ]
    assert main([*args, "--rounds", "1"]) == 0
    first = json.loads((setup / "loop" / "loop.json").read_text())
    assert [r["round"] for r in first["rounds"]] == [1]
    assert main([*args, "--rounds", "2"]) == 0  # continues: round 1 is not redone
    state = json.loads((setup / "loop" / "loop.json").read_text())
    assert state["rounds"][0] == first["rounds"][0] and [r["round"] for r in state["rounds"]] == [1, 2]
    kept = [r["round"] for r in state["rounds"] if r["kept"]]
    assert state["best"]["round"] == (kept[-1] if kept else 0)  # the last round the labelers preferred
    assert state["rounds"][1]["against"] == first["best"]["policy"]
    for r in state["rounds"]:
        assert r["judge"] == "sim" and r["kept"] == (r["win_rate_vs_best"] > 0.5)
        assert 0 <= r["monitor/gold_score"] <= 1 and 0 <= r["monitor/best_gold_score"] <= 1
    assert 0 <= state["sft"]["monitor/gold_score"] <= 1
    r2 = setup / "loop" / "round-2"
    n1 = sum(1 for _ in open(setup / "loop" / "round-1" / "rankings.jsonl"))
    assert sum(1 for _ in open(r2 / "rankings_so_far.jsonl")) == n1 + sum(
        1 for _ in open(r2 / "rankings.jsonl")
    )
    assert len(json.loads((r2 / "eval.json").read_text())["answers"]) == 9
    ppo_manifest = json.loads((r2 / "ppo" / "posttrain.json").read_text())
    assert (
        ppo_manifest["reference"] == str(setup / "sft") and ppo_manifest["parent"] == first["best"]["policy"]
    )
    out = capsys.readouterr().out
    assert "best:" in out and "gold (monitoring only)" in out


def test_off_the_world_the_rounds_reward_model_judges_and_no_gold_is_logged(setup):
    from posttrain.evaluation.judges import make_judge
    from posttrain.pipelines.loop import judge_round

    prompts = [
        {"id": f"p{i}", "messages": [{"role": "user", "content": f"Say {w}."}]} for i, w in enumerate("abcd")
    ]
    new, best = ["a", "b", "c", "d"], ["The answer is a.", "b b b", "", "d."]
    verdict = judge_round(make_judge("rm", reward=str(setup / "rm")), None, prompts, new, best)
    assert verdict["judge"] == "rm" and verdict["kept"] == (verdict["win_rate_vs_best"] > 0.5)
    assert not any(k.startswith("monitor/") for k in verdict)
