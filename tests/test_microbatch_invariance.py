"""`--micro-batch` is a memory setting: one optimizer step's gradient is the same whether its batch
goes through in one pass (1 x 8) or in eight accumulated ones (8 x 1), for PPO, the reward model
and SFT (TRL's invariance test). In float64, so the only differences left are rounding; the
episodes, rankings and conversations differ in length, so a per-micro-batch mean would show."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from posttrain.data.chat import encode_chat
from posttrain.models.policy import episode_inputs, response_logprobs, token_values
from posttrain.models.reward import encode_response
from posttrain.stages import rm, sft
from posttrain.training import rm_data
from posttrain.training.policy_models import PolicyModels
from posttrain.training.ppo_config import PPOSettings
from posttrain.training.ppo_update import minibatch_backward
from posttrain.training.rollout import Rollouts
from posttrain.world import World

BASE = Path(__file__).resolve().parent.parent / "assets" / "base-small-seed0"
B = 8  # one optimizer step's batch: 1 x 8 against 8 x 1


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(BASE)


def tiny(cls, tokenizer, seed: int, **extra):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )
    return cls(config).double().eval()


def gradient(*models) -> torch.Tensor:
    """All parameters' .grad, flattened into one vector, then cleared."""
    grads = [p.grad.flatten() for m in models for p in m.parameters() if p.grad is not None]
    for m in models:
        m.zero_grad(set_to_none=True)
    return torch.cat(grads)


def assert_same_gradient(split: torch.Tensor, whole: torch.Tensor):
    assert whole.norm() > 0
    assert (split - whole).norm() <= 1e-6 * whole.norm(), (split - whole).norm() / whole.norm()


def trained(policy, value=None) -> PolicyModels:
    """The models of a minibatch update in one process: the policy and value function train themselves."""
    return PolicyModels(
        policy=policy,
        ref=None,
        value=value,
        reward=None,
        score=None,
        tokenizer=None,
        train_policy=policy,
        train_value=value,
        backend=None,
    )


def fake_rollouts(policy, value, tokenizer) -> Rollouts:
    """B episodes with prompts of 2..6 tokens and responses of 1..7: old logprobs and values near the
    models' own, so some ratios and values clip and some do not."""
    g = torch.Generator().manual_seed(0)
    P, T, pad = 6, 7, tokenizer.pad_token_id
    prompt_len, response_len = [2, 6, 3, 5, 4, 6, 2, 3], [7, 1, 4, 2, 7, 3, 6, 5]
    query = torch.randint(10, len(tokenizer), (B, P), generator=g)
    query_mask = (torch.arange(P) >= P - torch.tensor(prompt_len).unsqueeze(1)).long()  # left-padded
    response = torch.randint(10, len(tokenizer), (B, T), generator=g)
    mask = (torch.arange(T) < torch.tensor(response_len).unsqueeze(1)).long()  # right-padded
    query, response = query.masked_fill(query_mask == 0, pad), response.masked_fill(mask == 0, pad)
    with torch.no_grad():
        inputs = episode_inputs(query, query_mask, response, mask)
        logprobs, entropy = response_logprobs(policy, inputs, P, 0.7)
        values = token_values(value, inputs, P)

    def noise(scale: float) -> torch.Tensor:
        return scale * torch.randn(B, T, generator=g, dtype=torch.float64)

    def z(x: torch.Tensor) -> torch.Tensor:
        return x * mask

    return Rollouts(
        query,
        query_mask,
        response,
        mask,
        ended=mask[:, -1] == 0,
        logprobs=z(logprobs + noise(0.3)),
        ref_logprobs=z(logprobs),
        entropy=z(entropy),
        values=z(values + noise(0.3)),
        scores=torch.zeros(B, dtype=torch.float64),
        texts=[""] * B,
        advantages=z(noise(1.0)),
        returns=z(values + noise(1.0)),
    )


def test_ppo_minibatch_gradient_does_not_depend_on_micro_batch(tokenizer):
    policy = tiny(LlamaForCausalLM, tokenizer, seed=0)
    value = tiny(LlamaForSequenceClassification, tokenizer, seed=1, num_labels=1)
    r = fake_rollouts(policy, value, tokenizer)
    ptx = torch.randint(10, len(tokenizer), (B, 9), generator=torch.Generator().manual_seed(1))
    rows = torch.randperm(
        B, generator=torch.Generator().manual_seed(2)
    )  # a shuffled minibatch, as in ppo_epochs
    cfg = PPOSettings(rollout_batch=B, minibatches=1, micro_batch=B, temperature=0.7, ptx_coef=0.5)
    found = {}
    for micro in (B, 1):
        stats = minibatch_backward(
            trained(policy, value),
            r,
            rows,
            ptx,
            replace(cfg, micro_batch=micro),
        )
        found[micro] = stats, gradient(policy, value)
    (whole, g_whole), (split, g_split) = found[B], found[1]
    assert_same_gradient(g_split, g_whole)
    assert 0 < whole["ppo/policy/clipfrac"] < 1 and 0 < whole["ppo/value/clipfrac"] < 1  # both branches taken
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-12)  # the logged metrics too


def rankings(tokenizer) -> list[rm_data.Item]:
    """B rankings of K = 2..5 completions of different lengths, with ties, a left-out completion,
    Likert margins, and one ranking that is all ties (no pair: it must not count)."""
    ranks = [
        [0, 1],
        [2, 0, 1],
        [0, 0, 1, 2],
        [1, 0, -1, 2, 3],
        [0, 0, 0],
        [3, 2, 1, 0, 4],
        [1, 0, 1],
        [0, 1, 1, 2],
    ]
    items = []
    for i, r in enumerate(ranks):
        prompt = [{"role": "user", "content": f"Question {i}: " + "why " * (i % 3)}]
        examples = [
            encode_response(tokenizer, prompt, f"answer {j}" + " more" * ((i + 2 * j) % 5), 512)
            for j in range(len(r))
        ]
        items.append(
            rm_data.Item(
                examples,
                r,
                [0.1 * ((i + j) % 4) for j in range(len(r))],
                [True] * len(r),
                None,
                None,
                f"item-{i}",
            )
        )
    return items


def test_rm_gradient_does_not_depend_on_micro_batch(tokenizer):
    model = tiny(LlamaForSequenceClassification, tokenizer, seed=0, num_labels=1)
    items = rankings(tokenizer)
    whole = rm.accumulate_gradients(model, items, B, tokenizer.pad_token_id), gradient(model)
    split = rm.accumulate_gradients(model, items, 1, tokenizer.pad_token_id), gradient(model)
    assert_same_gradient(split[1], whole[1])
    assert split[0] == pytest.approx(whole[0], rel=1e-9)  # loss and accuracy


def test_sft_gradient_does_not_depend_on_micro_batch(tokenizer):
    model = tiny(LlamaForCausalLM, tokenizer, seed=0)
    batch = [encode_chat(tokenizer, r["messages"]) for r in World(seed=0).demonstrations(B)]
    assert len({e.n_labeled for e in batch}) > 1  # a per-row mean would differ
    whole = sft.accumulate_gradients(model, batch, B, tokenizer.pad_token_id), gradient(model)
    split = sft.accumulate_gradients(model, batch, 1, tokenizer.pad_token_id), gradient(model)
    assert_same_gradient(split[1], whole[1])
    assert split[0] == pytest.approx(whole[0], rel=1e-9)
