"""`posttrain eval` and its sub-actions end to end on tiny random models, through real checkpoints."""

import json

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM, LlamaForSequenceClassification

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.models.checkpoint import write_manifest
from posttrain.world import World
from tests.tiny import BASE, llama_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Two tiny policies, a tiny reward model and a world directory with 18 test prompts."""
    root = tmp_path_factory.mktemp("eval")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    dirs = {}
    for seed, name in ((0, "alpha"), (1, "beta")):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llama_config(len(tokenizer)))
        if name == "beta":  # peaked where alpha is near uniform, so their KL is far from the estimate's noise
            # (two random tiny models are both near uniform: the sampled KL was 1e-4 and once below 0)
            with torch.no_grad():
                model.lm_head.weight.mul_(40)
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        dirs[name] = root / name
    torch.manual_seed(2)
    config = llama_config(len(tokenizer))
    config.num_labels = 1
    LlamaForSequenceClassification(config).save_pretrained(root / "rm")
    tokenizer.save_pretrained(root / "rm")
    write_manifest(root / "rm", {"stage": "rm", "reward_normalisation": {"gain": 1.0, "bias": 0.0}})
    dirs["rm"] = root / "rm"
    world = World(seed=0)
    (root / "world").mkdir()
    write_jsonl(root / "world" / "test.jsonl", world.prompts("test", 18, "test"))
    write_jsonl(
        root / "world" / "corpus_heldout.jsonl",
        [{"text": "The capital of Veloria is Tarn. " * 20}, {"text": "A story about a fox. " * 30}],
    )
    dirs["world"] = root / "world"
    return dirs


@pytest.mark.parametrize("args", [["eval"], ["eval", "overoptimization"], ["eval", "control-study"]])
def test_help(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0 and "example: posttrain eval" in capsys.readouterr().out


def test_eval_writes_win_rates_hhh_tax_and_kl(setup, tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(
            [
                "eval",
                "--model",
                str(setup["alpha"]),
                "--model",
                f"other={setup['beta']}",
                "--baseline",
                str(setup["alpha"]),
                "--prompts",
                str(setup["world"] / "test.jsonl"),
                "--judge",
                "sim",
                "--out",
                str(out),
                "--max-new-tokens",
                "6",
                "--bootstrap",
                "200",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "win rate" in printed and "wrote" in printed
    summary = json.loads((out / "summary.json").read_text())
    same, other = summary["models"]["alpha"], summary["models"]["other"]
    assert same["win_rate"] == 0.5 and same["tie_rate"] == 1.0  # the baseline against itself
    assert same["kl_to_sft"] == pytest.approx(0.0, abs=1e-4) and other["kl_to_sft"] > 0.01
    for field in (
        "win_rate",
        "win_rate_ci_low",
        "win_rate_ci_high",
        "lc_win_rate",
        "kl_to_sft",
        "refusal_rate_harmful",
        "over_refusal_rate",
        "hallucination_rate",
        "gold_score",
        "heldout_loss",
        "knowledge_accuracy",
    ):
        assert field in other, field
    assert other["win_rate_ci_low"] <= other["win_rate"] <= other["win_rate_ci_high"]
    assert other["win_rate_judge"] == "gold" and other["judge"]["name"] == "sim"
    assert summary["baseline"]["by_family"]["harmful"]["n"] == 2
    assert same["win_rate_by_family"]["harmful"] == 0.5 and len(other["win_rate_by_family"]) == 9
    assert '<img src="data:image/png;base64,' in (out / "index.html").read_text()


def test_eval_with_a_reward_model_judge_and_clear_errors(setup, tmp_path, capsys):
    prompts = str(setup["world"] / "test.jsonl")
    out = tmp_path / "rm-report"
    assert (
        main(
            [
                "eval",
                "--model",
                f"b={setup['beta']}",
                "--baseline",
                str(setup["alpha"]),
                "--prompts",
                prompts,
                "--judge",
                "rm",
                "--reward",
                str(setup["rm"]),
                "--out",
                str(out),
                "--max-new-tokens",
                "4",
                "--kl-samples",
                "0",
                "--bootstrap",
                "100",
            ]
        )
        == 0
    )
    b = json.loads((out / "summary.json").read_text())["models"]["b"]
    assert b["judge"]["name"] == "rm" and "kl_to_sft" not in b
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # argparse: usage and the missing option, exit 2
        main(["eval", "--baseline", str(setup["alpha"]), "--prompts", prompts, "--out", str(out)])
    assert exited.value.code == 2 and "required: --model" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--model",
                str(setup["beta"]),
                "--baseline",
                str(setup["alpha"]),
                "--prompts",
                prompts,
                "--judge",
                "rm",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "--judge rm needs --reward" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "messages": [{"role": "user", "content": "hi"}]}\n{"id": "y"}\n')
    assert (
        main(
            [
                "eval",
                "--model",
                str(setup["beta"]),
                "--baseline",
                str(setup["alpha"]),
                "--prompts",
                str(bad),
                "--out",
                str(tmp_path / "new"),
            ]
        )
        == 2
    )
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--model",
                str(setup["beta"]),
                "--baseline",
                str(setup["alpha"]),
                "--prompts",
                prompts,
                "--out",
                str(out),
            ]
        )
        == 2
    )  # a finished report stays unless --force
    assert "already exists; choose another --out or pass --force" in capsys.readouterr().err


def test_overoptimization_samples_best_of_n_and_reads_ppo_runs(setup, tmp_path, capsys):
    run = tmp_path / "ppo"
    run.mkdir()
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "step": s,
                    "objective/kl": 0.5 * s,
                    "objective/score": 0.1 * s,
                    "world/gold_score": 0.2,
                    "objective/kl_coef": 0.05,
                }
            )
            + "\n"
            for s in (1, 2, 3)
        )
    )
    out = tmp_path / "overopt"
    assert (
        main(
            [
                "eval",
                "overoptimization",
                "--policy",
                str(setup["alpha"]),
                "--reward",
                str(setup["rm"]),
                "--prompts",
                str(setup["world"] / "test.jsonl"),
                "--ppo-run",
                str(run),
                "--out",
                str(out),
                "--n-max",
                "4",
                "--max-prompts",
                "2",
                "--max-new-tokens",
                "4",
            ]
        )
        == 0
    )
    result = json.loads((out / "overoptimization.json").read_text())
    assert result["best_of_n"]["n"] == [1, 2, 3, 4] and result["ppo"][0]["beta"] == 0.05
    proxy = result["best_of_n"]["proxy"]
    assert all(a <= b + 1e-9 for a, b in zip(proxy, proxy[1:]))  # best of more never scores lower
    assert "bon/gold" in capsys.readouterr().out


def test_control_study_buys_demonstrations_with_the_ranking_budget(setup, tmp_path, capsys):
    world = World(seed=0)
    demos = tmp_path / "demos.jsonl"
    write_jsonl(demos, world.demonstrations(24))
    write_jsonl(tmp_path / "corpus_heldout.jsonl", [{"text": "The capital of Veloria is Tarn. " * 30}])
    sft_dir = tmp_path / "sft"
    assert (
        main(
            [
                "sft",
                "--model",
                str(setup["alpha"]),
                "--data",
                str(demos),
                "--out",
                str(sft_dir),
                "--max-steps",
                "2",
                "--micro-batch",
                "4",
                "--eval-fraction",
                "0",
                "--lr",
                "1e-3",
            ]
        )
        == 0
    )
    completions = [{"text": t, "source": "model:x"} for t in ("a", "b", "c", "d")]
    rankings = tmp_path / "rankings.jsonl"
    write_jsonl(
        rankings,
        [
            {
                "id": f"r{i}",
                "prompt": [{"role": "user", "content": "hi"}],
                "completions": completions,
                "ranking": [[0], [1], [2], [3]],
                "labeler": "L01",
            }
            for i in range(2)
        ],
    )
    out = tmp_path / "control"
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "control-study",
                "--base",
                str(setup["alpha"]),
                "--sft",
                str(sft_dir),
                "--rlhf",
                str(setup["beta"]),
                "--demos",
                str(demos),
                "--rankings",
                str(rankings),
                "--prompts",
                str(setup["world"] / "test.jsonl"),
                "--out",
                str(out),
                "--demo-minutes",
                "2",
                "--kl-samples",
                "0",
                "--method",
                f"other={sft_dir}",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "6 labeler minutes = 3 extra demonstrations" in printed and "training wall time: rlhf" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    c = summary["control_study"]
    assert c["extra_demos"] == 3 and set(summary["models"]) == {"rlhf", "other", "sft-more-demos"}
    assert (
        c["wall_seconds"]["other"] == json.loads((sft_dir / "posttrain.json").read_text())["wall_seconds"] > 0
    )
    assert c["wall_seconds"]["sft-more-demos"] > 0
    assert "training wall time" in (out / "report" / "index.html").read_text()
    assert "heldout_loss" in summary["models"]["sft-more-demos"]  # corpus_heldout.jsonl beside --demos
    manifest = json.loads((out / "sft-more-demos" / "posttrain.json").read_text())
    assert manifest["config"]["max_steps"] == 2 and manifest["config"]["lr"] == 1e-3  # the SFT run's settings
    assert len((out / "demos_plus.jsonl").read_text().splitlines()) == 27


def test_prompts_from_outside_the_world_are_judged_by_a_reward_model_only(setup, tmp_path, capsys):
    prompts = tmp_path / "mine.jsonl"
    write_jsonl(
        prompts,
        [
            {"id": f"q{i}", "messages": [{"role": "user", "content": f"Tell me about item {i}."}]}
            for i in range(6)
        ],
    )
    base = [
        "eval",
        "--model",
        f"b={setup['beta']}",
        "--baseline",
        str(setup["alpha"]),
        "--prompts",
        str(prompts),
        "--max-new-tokens",
        "4",
        "--kl-samples",
        "0",
        "--bootstrap",
        "50",
    ]
    assert main([*base, "--out", str(tmp_path / "gold")]) == 2
    assert "--judge gold needs prompts made by the built-in world" in capsys.readouterr().err
    assert main([*base, "--judge", "rm", "--reward", str(setup["rm"]), "--out", str(tmp_path / "rm")]) == 0
    summary = json.loads((tmp_path / "rm" / "summary.json").read_text())
    b = summary["models"]["b"]
    assert b["win_rate_judge"] == "rm" and "gold_score" not in b and "judge" not in b
    assert "Sample answers" in (tmp_path / "rm" / "index.html").read_text()
