"""A model directory is checked against its config before anything trains or serves it: a config.json that
does not describe the weights beside it (another architecture, another layer count, another width, an untied
head that is not there), an unknown model_type and a --model that is a local path leading nowhere are one-line
UserErrors naming the directory, the config field and what to do; honest directories (the shipped base, tiny
Llamas and GPT-2s, reward heads, peft adapters) load as before."""

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from posttrain.cli import main
from posttrain.config import Adapters
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.models.adapters import apply_lora, final_model
from posttrain.models.load import load_causal_lm, resolve
from posttrain.models.reward import reward_from_pretrained
from posttrain.world import World
from tests import tiny
from tests.tiny import BASE


def llama_config(vocab: int, **changes) -> LlamaConfig:
    sizes = dict(intermediate_size=48, num_hidden_layers=3, max_position_embeddings=64)
    return tiny.llama_config(vocab, **{**sizes, **changes})


def save(model, directory: Path, tokenizer) -> Path:
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer) -> Path:
    """Honest directories: `llama` (3 layers, untied head), `tied` (a tied Llama, as the shipped base is) and
    `gpt2` (2 layers), each with the base's tokenizer."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save(LlamaForCausalLM(llama_config(len(tokenizer))), root / "llama", tokenizer)
    save(LlamaForCausalLM(llama_config(len(tokenizer), tie_word_embeddings=True)), root / "tied", tokenizer)
    save(
        GPT2LMHeadModel(
            GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64)
        ),
        root / "gpt2",
        tokenizer,
    )
    return root


def lying(models: Path, tmp_path: Path, source: str, **changes) -> Path:
    """A copy of models/`source` whose config.json has `changes`; `config` replaces it whole."""
    directory = tmp_path / f"{source}-lying"
    shutil.copytree(models / source, directory)
    config = json.loads((directory / "config.json").read_text())
    config = changes.pop("config", config)
    (directory / "config.json").write_text(json.dumps({**config, **changes}))
    return directory


def refused(spec, *patterns: str) -> str:
    """The UserError load_causal_lm raises for `spec`, checked to hold each regex pattern and be one line."""
    with pytest.raises(UserError) as caught:
        load_causal_lm(spec)
    message = str(caught.value)
    assert "\n" not in message, message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in: {message}"
    return message


# --- 1. a config.json that lies about the weights is refused, not trained -----------------------------------


def test_a_gpt2_config_over_llama_weights_is_refused(models, tmp_path):
    gpt2 = json.loads((models / "gpt2" / "config.json").read_text())
    directory = lying(models, tmp_path, "llama", config=gpt2)
    refused(
        directory,
        str(directory),
        "model_type 'gpt2'",
        r"model\.layers\.0\.",
        r"transformer\.h\.0\.",
        "config.json saved with these weights",
    )


def test_a_llama_config_over_gpt2_weights_is_refused(models, tmp_path):
    llama = json.loads((models / "llama" / "config.json").read_text())
    directory = lying(models, tmp_path, "gpt2", config=llama)
    refused(directory, "model_type 'llama'", r"transformer\.h\.0\.")


def test_a_config_with_fewer_layers_than_the_weights_is_refused(models, tmp_path):
    directory = lying(models, tmp_path, "llama", num_hidden_layers=2)
    refused(directory, str(directory), "num_hidden_layers = 2", "3 layers", r"model\.layers\.2\.")


def test_a_config_with_more_layers_than_the_weights_is_refused(models, tmp_path):
    refused(
        lying(models, tmp_path, "llama", num_hidden_layers=5),
        "num_hidden_layers = 5",
        "3 layers",
        r"model\.layers\.3\.",
    )
    refused(
        lying(models, tmp_path / "g", "gpt2", n_layer=3), "n_layer = 3", "2 layers", r"transformer\.h\.2\."
    )


def test_a_config_that_unties_a_tied_head_is_refused(models, tmp_path):
    # saved tied, the weights hold no lm_head: read as untied, the output layer would be random
    refused(
        lying(models, tmp_path, "tied", tie_word_embeddings=False), "tie_word_embeddings", r"lm_head\.weight"
    )


def test_sft_and_serve_refuse_a_lying_directory_in_one_line(models, tmp_path, capsys):
    from posttrain.serving.model import load_served

    directory = lying(models, tmp_path, "llama", num_hidden_layers=2)
    demos = tmp_path / "demos.jsonl"
    write_jsonl(demos, World(seed=0).demonstrations(4))
    assert (
        main(
            [
                "sft",
                "--model",
                str(directory),
                "--data",
                str(demos),
                "--out",
                str(tmp_path / "out"),
                "--max-steps",
                "1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "num_hidden_layers = 2" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (
        err
    )
    with pytest.raises(UserError, match="num_hidden_layers = 2"):
        load_served(str(directory))


def test_a_reward_model_from_a_lying_directory_is_refused(models, tokenizer, tmp_path):
    with pytest.raises(UserError, match="num_hidden_layers = 4"):
        reward_from_pretrained(str(lying(models, tmp_path, "llama", num_hidden_layers=4)), tokenizer)


# --- 2. a config whose sizes disagree with the weights is a clear error, not a size-mismatch traceback ------


@pytest.mark.parametrize(
    ("field", "value", "weights"),
    [("hidden_size", 64, 32), ("intermediate_size", 64, 48), ("vocab_size", 900, None)],
)
def test_a_config_whose_sizes_disagree_is_a_clear_error(models, tokenizer, tmp_path, field, value, weights):
    weights = weights or len(tokenizer)
    refused(
        lying(models, tmp_path, "llama", **{field: value}),
        f"{field} = {value}",
        f"weights' {weights}",
        r"\[\d+(, \d+)?\]",
        "config.json saved with these weights",
    )


def test_a_gpt2_config_whose_width_disagrees_names_n_embd(models, tmp_path):
    refused(lying(models, tmp_path, "gpt2", n_embd=64), "n_embd = 64", "weights' 32")


# --- 3. an unknown model_type is a clear error; remote code stays off unless asked --------------------------


def test_an_unknown_model_type_is_a_clear_error(models, tmp_path):
    refused(
        lying(models, tmp_path, "llama", model_type="frobnicator"),
        "model_type 'frobnicator'",
        "installed transformers",
        "pip install -U transformers",
    )
    shipped_code = lying(
        models,
        tmp_path / "remote",
        "llama",
        model_type="frobnicator",
        auto_map={"AutoModelForCausalLM": "modeling_frob.FrobForCausalLM"},
    )
    refused(shipped_code, "--trust-remote-code", "only if you trust")


def test_a_config_without_a_model_type_is_a_clear_error(models, tmp_path):
    config = json.loads((models / "llama" / "config.json").read_text())
    del config["model_type"]
    refused(lying(models, tmp_path, "llama", config=config), "no model_type")


def test_a_config_transformers_cannot_build_is_a_clear_error(models, tmp_path):
    refused(
        lying(models, tmp_path, "llama", num_attention_heads=3, num_key_value_heads=3),
        "config.json",
        "not a multiple",
    )
    refused(lying(models, tmp_path / "clip", "llama", model_type="clip"), "model_type 'clip'", "causal")


# --- 4. a --model that is a local path never goes to the hub ------------------------------------------------


def test_a_symlink_loop_or_a_broken_link_is_refused_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink("loop", "loop")
    os.symlink("nowhere", "broken")
    for spec in ("loop", "broken", str(tmp_path / "loop"), "loop/sub"):
        started = time.monotonic()
        with pytest.raises(UserError, match="link"):
            resolve(spec)
        assert time.monotonic() - started < 1
    started = time.monotonic()
    refused("loop", "loop", "link")
    assert time.monotonic() - started < 5


def test_a_missing_path_under_a_local_directory_is_not_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for spec in ("runs/sft", f"runs{os.sep}sft", "~/no-such-posttrain-model"):
        with pytest.raises(UserError, match="no such model directory"):
            resolve(spec)
    assert resolve("org/name") == "org/name"  # a hub id stays one


# --- honest directories still load: no false alarm for tied heads, buffers, reward heads or adapters --------


def test_honest_directories_load(models, tokenizer):
    assert load_causal_lm(BASE)[0].config.tie_word_embeddings
    for name in ("llama", "tied", "gpt2"):
        model, _ = load_causal_lm(models / name)
        assert not model.training
    for name in ("llama", "tied", "gpt2"):  # a new scalar head over a causal LM's weights: expected
        assert reward_from_pretrained(str(models / name), tokenizer).score.weight.shape[0] == 1


def test_legacy_buffers_saved_with_the_weights_are_no_false_alarm(models, tmp_path):
    for source, extra in [
        ("llama", {"model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(8)}),
        (
            "gpt2",
            {
                "transformer.h.0.attn.bias": torch.ones(1, 1, 64, 64),
                "transformer.h.0.attn.masked_bias": torch.tensor(-1e4),
            },
        ),
    ]:
        directory = lying(models, tmp_path / source, source)
        weights = load_file(directory / "model.safetensors")
        save_file({**weights, **extra}, directory / "model.safetensors", metadata={"format": "pt"})
        load_causal_lm(directory)


def test_a_peft_adapter_over_its_base_loads_and_over_a_lying_base_is_refused(models, tokenizer, tmp_path):
    model = apply_lora(load_causal_lm(models / "llama")[0], Adapters(lora_r=2))
    final_model(model, "adapter").save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    load_causal_lm(tmp_path / "adapter")
    base = lying(models, tmp_path, "llama", num_hidden_layers=2)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": str(base)})
    )
    refused(tmp_path / "adapter", str(base), "num_hidden_layers = 2")


@pytest.mark.parametrize(
    ("other", "pattern"),
    [
        ({"hidden_size": 64}, "size mismatch"),
        ({"num_hidden_layers": 2}, r"no place in the base \(.*layers\.2\."),
        ({"num_hidden_layers": 4}, r"not in it \(.*layers\.3\."),
    ],
)
def test_an_adapter_trained_on_another_base_is_a_clear_error(models, tokenizer, tmp_path, other, pattern):
    model = apply_lora(load_causal_lm(models / "llama")[0], Adapters(lora_r=2))
    final_model(model, "adapter").save_pretrained(tmp_path / "adapter")
    tokenizer.save_pretrained(tmp_path / "adapter")
    torch.manual_seed(0)
    wrong = save(LlamaForCausalLM(llama_config(len(tokenizer), **other)), tmp_path / "wrong", tokenizer)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        json.dumps({**config, "base_model_name_or_path": str(wrong)})
    )
    refused(tmp_path / "adapter", "peft adapter does not fit its base model", str(wrong), pattern)
