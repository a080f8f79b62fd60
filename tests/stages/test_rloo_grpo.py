"""`posttrain ppo --algorithm rloo|grpo` and `--reward verifier`: the baselines by hand, GRPO's KL term,
a few steps of each on a tiny model with no value function, a resume, and a verifier that is a
program check of the answer, never the gold scorer."""

import dataclasses
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM, LlamaForSequenceClassification

from posttrain.algorithms import grpo_advantages, rloo_advantages, sequence_kl_rewards
from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.stages import critic_free as stage
from posttrain.training.metrics import read_metrics
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.training.ppo_update import minibatch_backward
from posttrain.world import World, verify
from posttrain.world.scorer import GoldScorer
from tests.stages.commands import ppo_args
from tests.training.invariance import B, assert_same_gradient, fake_rollouts, gradient, tiny, trained

ROUND = 1e-6


# --- the math, by hand ---------------------------------------------------------------------------


def test_rloo_baseline_is_the_mean_of_the_other_samples():
    # group 1, K = 3, scores 1, 2, 6: baselines (2+6)/2 = 4, (1+6)/2 = 3.5, (1+2)/2 = 1.5
    #                                 advantages 1-4 = -3, 2-3.5 = -1.5, 6-1.5 = 4.5
    # group 2, K = 3, scores 0, 0, 3: baselines 1.5, 1.5, 0 -> advantages -1.5, -1.5, 3
    scores = torch.tensor([1.0, 2.0, 6.0, 0.0, 0.0, 3.0])
    assert rloo_advantages(scores, 3).tolist() == [-3.0, -1.5, 4.5, -1.5, -1.5, 3.0]
    # K = 2, scores 5, 1: each one's baseline is the other: 5-1 = 4, 1-5 = -4
    assert rloo_advantages(torch.tensor([5.0, 1.0]), 2).tolist() == [4.0, -4.0]
    # K = 4, all equal: no signal
    assert rloo_advantages(torch.full((4,), 0.7), 4).abs().max() < ROUND


def test_rloo_matches_a_loop_over_the_definition():
    torch.manual_seed(0)
    scores, K = torch.randn(20), 5
    expected = [
        scores[i] - sum(scores[j] for j in range(i // K * K, i // K * K + K) if j != i) / (K - 1)
        for i in range(20)
    ]
    assert rloo_advantages(scores, K).tolist() == pytest.approx([float(e) for e in expected], abs=1e-6)


def test_grpo_divides_by_the_sample_std_of_the_group():
    # K = 3, scores 1, 2, 6: mean 3, deviations -2, -1, 3; sample variance (4 + 1 + 9) / (3 - 1) = 7,
    # std sqrt(7) = 2.6457513; advantages -2/2.6458 = -0.75593, -1/2.6458 = -0.37796, 3/2.6458 = 1.13389
    # (the population std sqrt(14/3) = 2.1602 would give -0.92582, -0.46291, 1.38873)
    a = grpo_advantages(torch.tensor([1.0, 2.0, 6.0]), 3, eps=0.0)
    assert a.tolist() == pytest.approx([-0.755929, -0.377964, 1.133893], abs=ROUND)
    # with eps = 1e-4 the divisor is 2.6458513: -2 / 2.6458513 = -0.755900
    assert grpo_advantages(torch.tensor([1.0, 2.0, 6.0]), 3)[0].item() == pytest.approx(-0.755900, abs=ROUND)
    # K = 4, verifier-like 0, 0, 1, 1: mean 0.5, sample var 4 * 0.25 / 3 = 1/3, std 0.57735:
    #        -+0.5 / 0.57735 = -+0.866025
    # K = 2, scores 0, 1: mean 0.5, sample std sqrt(0.5) = 0.707107: -+0.5 / 0.707107 = -+0.707107
    a = grpo_advantages(torch.tensor([0.0, 0.0, 1.0, 1.0]), 4, eps=0.0)
    assert a.tolist() == pytest.approx([-0.866025, -0.866025, 0.866025, 0.866025], abs=ROUND)
    assert grpo_advantages(torch.tensor([0.0, 1.0]), 2, eps=0.0).tolist() == pytest.approx(
        [-0.707107, 0.707107], abs=ROUND
    )
    # a tied group (all right, or all wrong) gets 0, not NaN: (1 - 1) / (0 + eps)
    assert grpo_advantages(torch.ones(4), 4).tolist() == [0.0, 0.0, 0.0, 0.0]


def test_rloo_sequence_reward_is_the_score_minus_beta_times_the_summed_kl():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, 9.0]])
    ref_logprobs = torch.tensor([[-1.5, -1.0, -3.0], [-1.0, -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    # row 0: KL = 0.5 - 1 + 0 = -0.5 -> 1 - 0.5 * -0.5 = 1.25
    # row 1: KL = 0.5 + 0.5 (the 9 is padding) = 1 -> 0 - 0.5 * 1 = -0.5
    r = sequence_kl_rewards(torch.tensor([1.0, 0.0]), logprobs, ref_logprobs, mask, beta=0.5)
    assert r.tolist() == [1.25, -0.5]


def test_groups_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="at least 2"):
        rloo_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="groups of k=3"):
        grpo_advantages(torch.zeros(4), 3)


def test_grpo_kl_term_is_the_k3_token_mean_and_micro_batching_does_not_change_the_gradient(tokenizer):  # noqa: F811
    policy = tiny(LlamaForCausalLM, tokenizer, seed=0)
    value = tiny(
        LlamaForSequenceClassification, tokenizer, seed=1, num_labels=1
    )  # only to build the rollouts
    r = fake_rollouts(policy, value, tokenizer)
    g = torch.Generator().manual_seed(3)
    r.values, r.returns = None, None
    r.ref_logprobs = (
        r.ref_logprobs + 0.5 * torch.randn(r.mask.shape, generator=g, dtype=torch.float64)
    ) * r.mask
    rows = torch.randperm(B, generator=torch.Generator().manual_seed(2))
    cfg = PPOSettings(
        rollout_batch=B, minibatches=1, micro_batch=B, temperature=0.7, algorithm="grpo", group_size=4
    )
    m = trained(policy)
    found = {}
    for micro in (B, 1):
        stats = minibatch_backward(m, r, rows, None, replace(cfg, micro_batch=micro), beta=0.3)
        found[micro] = stats, gradient(policy)
    (whole, g_whole), (split, g_split) = found[B], found[1]
    assert_same_gradient(g_split, g_whole)
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-12) and "ppo/loss/value" not in whole
    # by hand: k3 = pi_ref/pi - 1 - log(pi_ref/pi) on every real token, over the minibatch's token count
    from posttrain.models.policy import episode_inputs, response_logprobs

    with torch.no_grad():
        logprobs, _ = response_logprobs(
            policy, episode_inputs(r.query, r.query_mask, r.response, r.mask), r.query.size(1), 0.7
        )
    terms = [
        torch.exp(r.ref_logprobs[b, t] - logprobs[b, t]) - 1 - (r.ref_logprobs[b, t] - logprobs[b, t])
        for b in range(B)
        for t in range(r.mask.size(1))
        if r.mask[b, t]
    ]
    assert whole["grpo/kl"] == pytest.approx(float(sum(terms) / len(terms)), rel=1e-9)
    # and the term is in the loss: beta 0 gives another gradient
    minibatch_backward(m, r, rows, None, cfg, beta=0.0)
    assert (gradient(policy) - g_whole).norm() > 1e-6 * g_whole.norm()


# --- the stage, a few steps on a tiny model --------------------------------------------------------


def critic_free(root: Path, out: str, algorithm: str, *extra: str) -> list[str]:
    return ppo_args(root, out, "--algorithm", algorithm, "--group-size", "4", "--max-steps", "2", *extra)


def policy_only(checkpoint: Path) -> None:
    """No value head in a resumable checkpoint: its weights are the policy's, its optimizer has one group."""
    keys = load_file(checkpoint / "model.safetensors").keys()
    assert keys and all(k.startswith("policy.") for k in keys), sorted(
        k for k in keys if not k.startswith("policy.")
    )
    assert len(torch.load(checkpoint / "state.pt", weights_only=True)["optimizer"]["param_groups"]) == 1


def test_rloo_runs_groups_prompts_without_a_value_function_and_resumes_to_the_same_result(setup):
    assert main(critic_free(setup, "rloo", "rloo", "--save-every", "1", "--sample-every", "1")) == 0
    rows = read_metrics(setup / "rloo" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for name in (
        "objective/score",
        "objective/kl",
        "objective/rlhf_reward",
        "ppo/loss/policy",
        "ppo/policy/clipfrac",
        "rloo/advantage/std",
        "rloo/group/tied_frac",
        "world/gold_score",
    ):
        assert name in rows[-1], name
    assert not any(k.startswith(("ppo/value", "ppo/loss/value", "ppo/returns", "grpo/")) for k in rows[-1])
    manifest = json.loads((setup / "rloo" / "posttrain.json").read_text())
    assert manifest["config"]["algorithm"] == "rloo" and manifest["config"]["group_size"] == 4
    samples = [json.loads(line) for line in (setup / "rloo" / "samples.jsonl").read_text().splitlines()]
    assert len({s["prompt"] for s in samples[:4]}) == 1  # the table's 4 rows: one prompt's K = 4 samples
    assert len({s["response"] for s in samples[:4]}) > 1  # sampled apart

    # the same run stopped after step 2 was logged, before it finished: step 1's checkpoint has no value head
    def stop(step, total, metrics):
        if step == 2:
            raise KeyboardInterrupt

    cfg = PPOConfig(
        policy=str(setup / "sft"),
        reward=str(setup / "rm"),
        prompts=setup / "prompts.jsonl",
        out=setup / "rloo-cut",
        rollout_batch=8,
        minibatches=2,
        micro_batch=2,
        ppo_epochs=2,
        max_new_tokens=8,
        lr=1e-3,
        threads=1,
        algorithm="rloo",
        group_size=4,
        max_steps=2,
        save_every=1,
        sample_every=1,
    )
    with pytest.raises(KeyboardInterrupt):
        stage.critic_free(cfg, on_step=stop)
    policy_only(setup / "rloo-cut.partial" / "checkpoints" / "step-000001")
    stage.critic_free(dataclasses.replace(cfg, resume=True))
    resumed = read_metrics(setup / "rloo-cut" / "metrics.jsonl")
    assert [r["step"] for r in resumed] == [1, 2]
    for a, b in zip(resumed, rows):
        for name in ("objective/score", "objective/kl", "ppo/loss/policy", "rloo/advantage/std"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), (a["step"], name)


def test_grpo_runs_with_its_kl_in_the_loss(setup):
    assert main(critic_free(setup, "grpo", "grpo", "--kl-target", "1.0")) == 0
    row = read_metrics(setup / "grpo" / "metrics.jsonl")[-1]
    assert row["grpo/kl"] >= 0 and "grpo/group/score_std" in row and "ppo/value/explained_var" not in row
    assert 0 < row["objective/kl_coef"] != 0.2  # --kl-target adapts beta for GRPO too


def test_the_first_critic_free_update_starts_from_ratio_one(setup):
    assert (
        main(
            critic_free(
                setup,
                "rloo-ratio",
                "rloo",
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
    row = read_metrics(setup / "rloo-ratio" / "metrics.jsonl")[0]
    assert row["ppo/policy/clipfrac"] == 0 and row["ppo/policy/approx_kl"] < 1e-10


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--algorithm", "ppo", "--reward", "verifier"], "--reward verifier with --algorithm ppo"),
        (
            ["--algorithm", "rloo", "--group-size", "3"],
            "--group-size 3 responses per prompt, which must divide --rollout-batch 8",
        ),
        (["--algorithm", "grpo", "--group-size", "1"], "--group-size must be >= 2"),
    ],
)
def test_bad_critic_free_options_are_clear_errors_before_anything_loads(setup, capsys, extra, said):
    assert main([*ppo_args(setup, "bad-options"), *extra]) == 2  # the last --reward counts
    assert said in capsys.readouterr().err
    assert not (setup / "bad-options").exists() and not (setup / "bad-options.partial").exists()


# --- the verifier --------------------------------------------------------------------------------


def test_the_verifier_checks_the_answer_only_and_never_asks_the_gold_scorer(monkeypatch):
    world = World(seed=0)
    add = world.prompt_for("arithmetic", {"kind": "add", "a": 23, "b": 58})
    sort = world.prompt_for("list_ops", {"kind": "sort_asc", "items": [9, 2, 7]})
    yes_no = world.prompt_for("format", {"kind": "yes_no", "a": 40, "b": 12})
    knowledge = world.prompts("verifier-test", 9, "train")
    styled = "I think it iz 81, my dear friend. I hope this helps! Let me know if you need anything else."
    # the gold judgement holds the style against a right answer:
    # 1 x 0.8333 (padding) x 0.85 (a typo) x 0.75 (a hedge)
    assert world.judge(add, styled).score == pytest.approx(0.53125)
    monkeypatch.setattr(GoldScorer, "judge", lambda *a: pytest.fail("the verifier asked the gold scorer"))
    assert [verify(world, add, t) for t in ("81", "23 + 58 = 81.", styled, "80", "80 or 81", "")] == [
        1,
        1,
        1,
        0,
        0,
        0,
    ]
    assert [verify(world, sort, t) for t in ("2, 7, 9", "Here it is: 2, 7, 9", "9, 7, 2")] == [1, 1, 0]
    assert [verify(world, yes_no, t) for t in ("Yes", "No", "Yes, because 40 is bigger.")] == [
        1,
        0,
        0,
    ]  # form counts
    others = [p for p in knowledge if p["meta"]["family"] not in ("arithmetic", "list_ops", "format")]
    assert others and all(verify(world, p, "anything") is None for p in others)


def verifier_prompts(root: Path) -> Path:
    """Arithmetic prompts of the world, and two that have no program check (the run leaves them out)."""
    world = World(seed=0)
    prompts = world.prompts("rloo-verifier", 45, "train")
    arithmetic = [p for p in prompts if p["meta"]["family"] == "arithmetic"][:4]
    other = [p for p in prompts if p["meta"]["family"] == "knowledge"][:2]
    write_jsonl(root / "verifier_prompts.jsonl", arithmetic + other)
    return root / "verifier_prompts.jsonl"


def weights(run: Path) -> dict[str, bytes]:
    return {k: t.numpy().tobytes() for k, t in load_file(run / "model.safetensors").items()}


def test_rloo_on_the_verifier_trains_on_its_checks_and_gold_changes_nothing(setup, caplog, monkeypatch):
    prompts = verifier_prompts(setup)

    def run(out: str) -> list[dict]:
        args = critic_free(setup, out, "rloo", "--sample-every", "1")
        args[args.index("--reward") + 1], args[args.index("--prompts") + 1] = "verifier", str(prompts)
        torch.manual_seed(0)
        assert main(args) == 0
        return read_metrics(setup / out / "metrics.jsonl")

    honest = run("rloo-verifier")
    assert "training on the 4 of 6 prompts" in caplog.text and "2 others left out" in caplog.text
    world = World(seed=0)
    by_text = {p["messages"][-1]["content"]: p for p in map(json.loads, prompts.read_text().splitlines())}
    samples = [
        json.loads(line) for line in (setup / "rloo-verifier" / "samples.jsonl").read_text().splitlines()
    ]
    assert {by_text[s["prompt"]]["meta"]["family"] for s in samples} == {"arithmetic"}
    assert all(s["score"] == verify(world, by_text[s["prompt"]], s["response"]) for s in samples)
    assert json.loads((setup / "rloo-verifier" / "posttrain.json").read_text())["reward_model"] == "verifier"

    gold = GoldScorer.judge
    monkeypatch.setattr(
        GoldScorer,
        "judge",
        lambda self, record, response: dataclasses.replace(
            gold(self, record, response), score=1.0 - gold(self, record, response).score
        ),
    )
    flipped = run("rloo-verifier-flipped")
    assert weights(setup / "rloo-verifier") == weights(setup / "rloo-verifier-flipped")
    wall, monitor = {"time/seconds_per_step", "perf/flops_per_s", "perf/share_of_peak"}, {"world/gold_score"}
    assert [{k: v for k, v in r.items() if k not in wall | monitor} for r in honest] == [
        {k: v for k, v in r.items() if k not in wall | monitor} for r in flipped
    ]
    assert [r["world/gold_score"] for r in honest] != [
        r["world/gold_score"] for r in flipped
    ]  # the patch reached it


def test_the_verifier_refuses_prompts_it_cannot_check(setup, capsys):
    world = World(seed=0)
    write_jsonl(
        setup / "knowledge_only.jsonl",
        [p for p in world.prompts("verifier-refuse", 27, "train") if p["meta"]["family"] == "knowledge"],
    )
    write_jsonl(
        setup / "not_world.jsonl",
        [{"id": f"p{i}", "messages": [{"role": "user", "content": f"Say {i}."}]} for i in range(8)],
    )
    for prompts, said in (
        ("knowledge_only.jsonl", "none of its 3 prompts is of a family with a program check"),
        ("not_world.jsonl", "checks answers to the built-in world's prompts"),
    ):
        args = critic_free(setup, "refused", "grpo")
        args[args.index("--reward") + 1], args[args.index("--prompts") + 1] = "verifier", str(setup / prompts)
        assert main(args) == 2
        assert said in capsys.readouterr().err
        assert not (setup / "refused").exists() and not (setup / "refused.partial").exists()
