"""LoRA through peft (posttrain.models.adapters): a wrapped model starts as its base, only the adapters
and the scalar head train, the adapter switches off to the exact base (PPO's reference), both final
saves load back with the trained model's logits, checkpoints round-trip, and bad targets are UserErrors."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, LlamaForCausalLM

from posttrain.config import Adapters
from posttrain.errors import UserError
from posttrain.models.adapters import (
    adapter_off,
    apply_lora,
    backbone,
    final_model,
    is_lora,
    trainable_parameters,
)
from posttrain.models.checkpoint import RunDir
from posttrain.models.load import load_causal_lm, pretrained, resolve
from posttrain.models.reward import reward_from_pretrained
from tests.tiny import llama_config

LORA = Adapters(lora_r=4)  # alpha 8, all-linear


@pytest.fixture(scope="module")
def base(tmp_path_factory, tokenizer) -> Path:
    """A tiny Llama with tied embeddings (as the shipped base has), saved with its tokenizer. Its weights
    are drawn 10x wider than transformers' default (std 0.2): the frozen output layer is then able to give
    a confident prediction, which the learning test needs (at 0.02 every logit stays under ~0.6)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        llama_config(
            len(tokenizer),
            max_position_embeddings=64,
            pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=True,
            initializer_range=0.2,
        )
    )
    directory = tmp_path_factory.mktemp("base")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def ids(tokenizer) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(2, len(tokenizer), (4, 12), generator=g)  # (B, T)


def policy(base: Path, seed: int = 0, cfg: Adapters = LORA):
    """The base loaded as the stages load it, then wrapped (lora_A drawn from `seed`)."""
    model = load_causal_lm(base)[0]
    torch.manual_seed(seed)
    return apply_lora(model, cfg)


def reward(base: Path, tokenizer, seed: int = 0):
    torch.manual_seed(seed)  # the new scalar head
    return apply_lora(reward_from_pretrained(str(base), tokenizer), LORA, head="score")


def train(model, ids: torch.Tensor, steps: int, lr: float = 1e-2) -> list[float]:
    """`steps` AdamW steps on one batch (next-token loss, or for a reward model regression to 1); the
    losses."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr
    )  # frozen weights never get a .grad: AdamW skips them
    model.train()
    losses = []
    for _ in range(steps):
        labels = ids if is_causal(model) else torch.ones(ids.size(0))
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def is_causal(model) -> bool:
    return model.get_output_embeddings() is not None


def test_without_lora_r_every_helper_is_the_identity(base):
    model = load_causal_lm(base)[0]
    assert apply_lora(model, Adapters()) is model and not is_lora(model)
    assert final_model(model, "merged") is model and backbone(model) is model.model
    trainable, total = trainable_parameters(model)
    assert trainable == total == sum(p.numel() for p in model.parameters())
    with pytest.raises(TypeError, match="needs a LoRA model"):
        adapter_off(model)


def test_a_wrapped_model_starts_as_its_base(base, tokenizer, ids):
    plain = load_causal_lm(base)[0]
    with torch.no_grad():
        before = plain(input_ids=ids).logits
        after = policy(base)(input_ids=ids).logits
        assert torch.equal(after, before)  # B = 0: each adapter adds exactly zero
        torch.manual_seed(0)
        scorer = reward_from_pretrained(str(base), tokenizer)
        before = scorer(input_ids=ids).logits
        assert torch.equal(apply_lora(scorer, LORA, head="score")(input_ids=ids).logits, before)


def test_only_adapters_and_the_head_train(base, tokenizer, ids, caplog):
    with caplog.at_level("INFO", logger="posttrain.models.adapters"):
        model = policy(base)
    trainable, total = trainable_parameters(model)
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    # r (in + out) per adapted linear layer, 7 per block:
    # q k v o (32 -> 32), gate up (32 -> 64), down (64 -> 32)
    assert trainable == sum(p.numel() for p in lora.values()) == 2 * 4 * (4 * (32 + 32) + 3 * (32 + 64))
    assert f"{trainable} of {total} parameters train" in caplog.text
    assert not any(
        "lm_head" in n or "embed" in n for n in lora
    )  # all-linear leaves out the (tied) output layer
    model(input_ids=ids, labels=ids).loss.backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == set(lora)
    assert all(p.grad.abs().sum() > 0 for n, p in lora.items() if "lora_B" in n)  # A's is 0 while B = 0

    scorer = reward(base, tokenizer)
    head = [n for n, p in scorer.named_parameters() if p.requires_grad and "lora_" not in n]
    assert head == ["base_model.model.score.modules_to_save.default.weight"]  # the head, in full
    assert not any(
        "score" in n and "lora_" in n for n, _ in scorer.named_parameters()
    )  # and no adapter on it
    scorer(input_ids=ids, labels=torch.ones(4)).loss.backward()
    got = {n for n, p in scorer.named_parameters() if p.grad is not None}
    assert got == {n for n, p in scorer.named_parameters() if p.requires_grad} and set(head) <= got
    assert scorer.score.weight.grad.abs().sum() > 0


def test_twenty_steps_of_lora_lower_the_loss(base, ids):
    losses = train(policy(base), ids, 20)
    assert losses[-1] < 0.7 * losses[0], losses  # 9.06 -> 4.65 when written


def test_with_the_adapter_off_the_model_is_its_base(base, tokenizer, ids):
    with torch.no_grad():
        want = load_causal_lm(base)[0](input_ids=ids).logits
    model = policy(base)
    train(model, ids, 3)
    model.eval()
    with torch.no_grad():
        with adapter_off(model):
            off = model(input_ids=ids).logits
        on = model(input_ids=ids).logits
    assert torch.equal(off, want)
    assert (on - want).abs().max() > 1e-3

    torch.manual_seed(0)
    with torch.no_grad():
        want = reward_from_pretrained(str(base), tokenizer)(input_ids=ids).logits
    scorer = reward(base, tokenizer)
    train(scorer, ids, 3)
    with torch.no_grad(), adapter_off(scorer):  # the head's original, untrained weights too
        assert torch.equal(scorer(input_ids=ids).logits, want)


def test_the_backbone_holds_the_adapters_and_the_head_reads_it(base, tokenizer, ids):
    # what posttrain's rewards() and token_values() need: model.base_model on a peft model is peft's
    # LoraModel, whose forward is the whole classifier's
    scorer = reward(base, tokenizer)
    train(scorer, ids, 3)
    scorer.eval()
    with torch.no_grad():
        hidden = backbone(scorer)(input_ids=ids).last_hidden_state  # (B, T, H)
        ours = scorer.score(hidden[:, -1]).squeeze(-1)  # (B,) at the last token (no padding)
        assert torch.allclose(ours, scorer(input_ids=ids).logits.squeeze(-1), atol=1e-6)
        with adapter_off(scorer):
            assert not torch.allclose(backbone(scorer)(input_ids=ids).last_hidden_state, hidden, atol=1e-4)


def test_the_merged_save_is_an_ordinary_model_directory(base, tokenizer, ids, tmp_path):
    model = policy(base)
    train(model, ids, 3)
    model.eval()
    with torch.no_grad():
        want = model(input_ids=ids).logits
    final_model(model, "merged").save_pretrained(tmp_path / "out")
    tokenizer.save_pretrained(tmp_path / "out")
    assert (tmp_path / "out" / "config.json").is_file() and not (
        tmp_path / "out" / "adapter_config.json"
    ).exists()
    loaded = load_causal_lm(tmp_path / "out")[0]
    assert not is_lora(loaded) and not any("lora_" in n for n, _ in loaded.named_parameters())
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, want, atol=1e-5)


def test_the_adapter_save_loads_as_its_base_with_the_adapter_merged(base, tokenizer, ids, tmp_path):
    model = policy(base)
    train(model, ids, 3)
    model.eval()
    with torch.no_grad():
        want = model(input_ids=ids).logits
    out = tmp_path / "adapter"
    final_model(model, "adapter").save_pretrained(out)
    tokenizer.save_pretrained(out)
    assert not (out / "config.json").exists()
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    assert (out / "adapter_model.safetensors").stat().st_size < (
        base / "model.safetensors"
    ).stat().st_size / 4
    assert resolve(str(out)) == str(out)
    loaded = load_causal_lm(out)[0]
    assert not is_lora(loaded)
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, want, atol=1e-5)

    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    with pytest.raises(UserError, match="names no base model"):
        load_causal_lm(out)


def test_a_reward_model_adapter_keeps_its_trained_head(base, tokenizer, ids, tmp_path):
    scorer = reward(base, tokenizer)
    train(scorer, ids, 3)
    scorer.eval()
    with torch.no_grad():
        want = scorer(input_ids=ids).logits
    final_model(scorer, "adapter").save_pretrained(tmp_path / "rm")
    loaded = pretrained(AutoModelForSequenceClassification, str(tmp_path / "rm"), num_labels=1)
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, want, atol=1e-5)


def test_a_checkpoint_restores_lora_policy_and_value_and_their_optimizer(base, tokenizer, ids, tmp_path):
    def models(seed):  # as PPO checkpoints them: one ModuleDict, tied embeddings in the policy
        return torch.nn.ModuleDict({"policy": policy(base, seed), "value": reward(base, tokenizer, seed)})

    trained = models(0)
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        (
            trained["policy"](input_ids=ids, labels=ids).loss
            + trained["value"](input_ids=ids, labels=torch.ones(4)).loss
        ).backward()
        optimizer.step()
    run = RunDir(tmp_path / "out", resume=False, force=False)
    run.begin()
    run.save(2, trained, optimizer)

    fresh = models(1)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    want = trained.state_dict()
    assert not all(torch.equal(v, fresh.state_dict()[k]) for k, v in want.items())
    assert RunDir(tmp_path / "out", resume=True, force=False).restore(fresh, fresh_optimizer) == 2
    got = fresh.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(v, got[k]) for k, v in want.items())
    assert fresh["policy"].get_input_embeddings().weight is fresh["policy"].get_output_embeddings().weight
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys() and len(saved) == trainable_tensors(trained)
    assert all(torch.equal(saved[i]["exp_avg"], loaded[i]["exp_avg"]) for i in saved)


def trainable_tensors(module) -> int:
    return sum(p.requires_grad for p in module.parameters())


def test_bad_targets_and_models_are_user_errors(base):
    model = load_causal_lm(base)[0]
    with pytest.raises(UserError, match=r"no module named qproj; its linear layers are .*q_proj"):
        apply_lora(model, Adapters(lora_r=4, lora_target="q_proj,qproj"))
    with pytest.raises(
        UserError, match="peft cannot add LoRA adapters to this LlamaForCausalLM.*LlamaRMSNorm"
    ):
        apply_lora(model, Adapters(lora_r=4, lora_target="input_layernorm"))
    with pytest.raises(UserError, match="wraps transformers models, not a Sequential"):
        apply_lora(torch.nn.Sequential(torch.nn.Linear(4, 4)), Adapters(lora_r=4))
    targeted = apply_lora(
        load_causal_lm(base)[0], Adapters(lora_r=2, lora_alpha=1.0, lora_target="q_proj, v_proj")
    )
    assert {n.split(".")[-4] for n, _ in targeted.named_parameters() if "lora_" in n} == {"q_proj", "v_proj"}
    assert targeted.peft_config["default"].lora_alpha == 1.0
