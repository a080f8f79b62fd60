"""`--micro-batch` is a memory setting: one optimizer step's gradient is the same whether its batch
goes through in one pass (1 x 8) or in eight accumulated ones (8 x 1), for PPO, the reward model
and SFT (TRL's invariance test). In float64, so the only differences left are rounding; the
episodes, rankings and conversations differ in length, so a per-micro-batch mean would show."""

from dataclasses import replace

import pytest
import torch
from transformers import LlamaForCausalLM, LlamaForSequenceClassification

from posttrain.data.chat import encode_chat
from posttrain.models.reward import encode_response
from posttrain.stages import rm, sft
from posttrain.training import rm_data
from posttrain.training.ppo_config import PPOSettings
from posttrain.training.ppo_update import minibatch_backward
from posttrain.world import World
from tests.training.invariance import B, assert_same_gradient, fake_rollouts, gradient, tiny, trained


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
