"""Fixtures several test files share."""

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.world import World
from posttrain.world.labelers import LabelerPool, model_like_answers
from posttrain.world.rng import derive

BASE = Path(__file__).resolve().parent.parent / "assets" / "base-small-seed0"


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory):
    """A tiny Llama, demonstrations, rankings (K = 4..6), PPO prompts and a pretraining corpus."""
    d = tmp_path_factory.mktemp("stage-inputs")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    ).save_pretrained(d / "model")
    tokenizer.save_pretrained(d / "model")
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
    checks let through, and with which config (tests/test_demo.py, tests/test_outputs_safety.py)."""
    import posttrain.commands.demo as demo
    from posttrain.errors import UserError

    seen = []

    def plan(cfg, preset):
        seen.append(cfg)
        raise UserError("the steps would run now")

    monkeypatch.setattr(demo, "plan", plan)
    return seen
