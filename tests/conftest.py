"""Fixtures several test files share."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.world import World
from posttrain.world.labelers import LabelerPool, model_like_answers
from posttrain.world.rng import derive
from tests.tiny import BASE, llama_config, tiny_checkpoint


@pytest.fixture(scope="module")
def tokenizer():
    """The shipped base model's tokenizer (a fresh one per module: tests may set its fields)."""
    return AutoTokenizer.from_pretrained(BASE)


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    """A tiny Llama, demonstrations, rankings (K = 4..6), PPO prompts and a pretraining corpus."""
    d = tmp_path_factory.mktemp("stage-inputs")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    tiny_checkpoint(d / "model", tokenizer)
    w = World(seed=0)
    write_jsonl(d / "demos.jsonl", w.demonstrations(27))
    rng, pool, rankings = derive(0, "dist-test"), LabelerPool(w), []
    for i, p in enumerate(w.prompts("dist-test", 30, "train")):
        texts = list(dict.fromkeys(model_like_answers(w, p, 4 + i % 3, rng)))
        if len(texts) > 1:
            lab = pool.pick_labelers(p["id"], 1)[0]
            rankings.append(
                {
                    "id": p["id"],
                    "prompt": p["messages"],
                    "ranking": pool.rank(lab, p, texts)["ranking"],
                    "completions": [{"text": t, "source": "model:test"} for t in texts],
                    "labeler": lab.id,
                    "meta": {**p["meta"], "item": p["id"]},
                }
            )
    write_jsonl(d / "rankings.jsonl", rankings)
    write_jsonl(d / "prompts.jsonl", w.prompts("ppo", 24, "train"))
    write_jsonl(
        d / "corpus.jsonl", [{"text": f"The capital of Veloria is Tarn. Fact number {i}."} for i in range(40)]
    )
    # the reward model PPO scores with (and starts its value function from), trained in one process
    assert (
        main(
            [
                "rm",
                "--model",
                str(d / "model"),
                "--data",
                str(d / "rankings.jsonl"),
                "--out",
                str(d / "rm"),
                "--max-steps",
                "2",
                "--micro-batch",
                "4",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    return d


@pytest.fixture
def no_steps(monkeypatch):
    """`posttrain demo` with its steps replaced by one that records the config and stops: what the demo's
    checks let through, and with which config (tests/cli/test_demo.py, tests/cli/test_run_folders.py)."""
    import posttrain.commands.demo as demo
    from posttrain.errors import UserError

    seen = []

    def plan(cfg, preset):
        seen.append(cfg)
        raise UserError("the steps would run now")

    monkeypatch.setattr(demo, "plan", plan)
    return seen


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random policy, a reward model trained from it for a few steps, world prompts and corpus
    (PPO's tests and those that run PPO on them; a module's own `setup` fixture takes its place)."""
    root = tmp_path_factory.mktemp("ppo")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(len(tokenizer))).save_pretrained(root / "sft")
    tokenizer.save_pretrained(root / "sft")
    world, rng = World(seed=0), derive(0, "ppo-test")
    pool = LabelerPool(world)
    rankings = []
    for p in world.prompts("ppo-test-rm", 24, "train"):
        texts = list(dict.fromkeys(model_like_answers(world, p, 4, rng)))
        lab = pool.pick_labelers(p["id"], 1)[0]
        rankings.append(
            {
                "id": p["id"],
                "prompt": p["messages"],
                "completions": [{"text": t, "source": "model:t"} for t in texts],
                "ranking": pool.rank(lab, p, texts)["ranking"],
                "labeler": lab.id,
                "meta": p["meta"],
            }
        )
    write_jsonl(root / "rankings.jsonl", rankings)
    assert (
        main(
            [
                "rm",
                "--model",
                str(root / "sft"),
                "--data",
                str(root / "rankings.jsonl"),
                "--out",
                str(root / "rm"),
                "--max-steps",
                "2",
                "--micro-batch",
                "4",
            ]
        )
        == 0
    )
    write_jsonl(root / "prompts.jsonl", world.prompts("ppo-test", 16, "train"))
    write_jsonl(
        root / "corpus.jsonl",
        [{"text": f"The capital of Veloria is Tarn. Fact number {i}."} for i in range(40)],
    )
    return root


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """40 demonstrations of the built-in world (seed 0)."""
    path = tmp_path_factory.mktemp("demos") / "demos.jsonl"
    write_jsonl(path, World(seed=0).demonstrations(40))
    return path
