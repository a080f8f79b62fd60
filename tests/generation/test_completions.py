"""posttrain.generation.completions on posttrain's sampler: greedy text equal to `model.generate`'s, K seeded
samples per conversation with the right finish reasons."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaForCausalLM

from posttrain.generation.completions import chat_complete, complete, sample_k
from posttrain.generation.sampler import decode_responses, encode_prompts, sample
from tests.tiny import llama_config

CONVERSATIONS = [
    [{"role": "user", "content": "hi"}],
    [{"role": "user", "content": "What is the capital of a country with a very long name?"}],
    [{"role": "user", "content": "x"}],
    [{"role": "user", "content": "Tell me a story, please."}],
]
PREFIXES = ["The capital of", "Once upon a time, in the land of", "x", "Mira Dovan was a"]


def tiny_llama(tokenizer, eos_bias: float) -> LlamaForCausalLM:
    """A random 2-layer Llama over the base tokenizer's vocabulary whose output layer adds
    `eos_bias` to the EOS logit, so that some responses end before max_new_tokens and some do not."""
    torch.manual_seed(0)
    config = llama_config(
        len(tokenizer),
        num_attention_heads=4,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config).eval()
    head = torch.nn.Linear(config.hidden_size, config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = eos_bias
    model.lm_head = head
    return model


@pytest.fixture(scope="module")
def greedy_model(tokenizer):
    # 0.33 puts EOS just among the largest random logits (std about 0.1 here): greedy decoding
    # reaches it in some rows only (asserted below).
    return tiny_llama(tokenizer, eos_bias=0.33)


@pytest.fixture(scope="module")
def sampling_model(tokenizer):
    # The random logits are all near 0, so at temperature 1 P(EOS) per step is about
    # e^b / (e^b + V - 1) = 0.2 for b = ln((V - 1) / 4), and every other token's is far less.
    return tiny_llama(tokenizer, eos_bias=math.log((len(tokenizer) - 1) / 4))


def generate(model, tokenizer, input_ids, attention_mask, max_new_tokens) -> torch.Tensor:
    ids = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return ids[:, input_ids.size(1) :]  # (B, <= max_new_tokens)


def ended_early_and_not(tokenizer, new: torch.Tensor) -> bool:
    ended = (new == tokenizer.eos_token_id).any(dim=1)
    return bool(ended.any()) and not bool(ended.all())


def test_chat_complete_greedy_equals_generate(greedy_model, tokenizer):
    input_ids, attention_mask = encode_prompts(tokenizer, CONVERSATIONS)
    new = generate(greedy_model, tokenizer, input_ids, attention_mask, 12)
    assert ended_early_and_not(tokenizer, new), "some rows must stop at EOS and some run to max_new_tokens"
    theirs = [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    assert chat_complete(greedy_model, tokenizer, CONVERSATIONS, max_new_tokens=12, batch_size=3) == theirs


def test_complete_greedy_equals_generate_and_leaves_the_tokenizer_as_it_was(greedy_model, tokenizer):
    assert tokenizer.padding_side == "right"
    enc = tokenizer(
        PREFIXES, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
    )
    assert (enc.attention_mask == 0).any(), "the prefixes must need left padding"
    new = generate(greedy_model, tokenizer, enc.input_ids, enc.attention_mask, 8)
    assert ended_early_and_not(tokenizer, new), "some rows must stop at EOS and some run to max_new_tokens"
    theirs = tokenizer.batch_decode(new, skip_special_tokens=True)
    assert complete(greedy_model, tokenizer, PREFIXES, max_new_tokens=8, batch_size=3) == theirs
    assert tokenizer.padding_side == "right"


def draw(model, tokenizer, seed: int, top_p: float = 1.0):
    return sample_k(
        model, tokenizer, CONVERSATIONS[:3], k=4, temperature=1.0, top_p=top_p, max_new_tokens=8, seed=seed
    )


def test_sample_k_gives_k_seeded_samples_per_conversation(sampling_model, tokenizer):
    first = draw(sampling_model, tokenizer, seed=0)
    assert [len(samples) for samples in first] == [4, 4, 4]
    reasons = {reason for samples in first for _, reason in samples}
    assert reasons == {"stop", "length"}
    assert first == draw(sampling_model, tokenizer, seed=0)
    assert first != draw(sampling_model, tokenizer, seed=1)


def test_sample_k_is_one_sample_call_on_prompts_repeated_k_times(sampling_model, tokenizer):
    """Conversation i's samples are rows iK..iK+K-1 of one seeded `sample` call; "stop" exactly
    for the rows that hold EOS."""
    input_ids, attention_mask = encode_prompts(tokenizer, CONVERSATIONS[:3])
    tokens = sample(
        sampling_model,
        input_ids.repeat_interleave(4, dim=0),
        attention_mask.repeat_interleave(4, dim=0),
        max_new_tokens=8,
        temperature=1.0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(0),
    )  # (12, T)
    stopped = (tokens == tokenizer.eos_token_id).any(dim=1).tolist()
    assert any(stopped) and not all(stopped)
    texts = decode_responses(tokenizer, tokens)
    flat = [s for samples in draw(sampling_model, tokenizer, seed=0) for s in samples]
    assert flat == [(t, "stop" if s else "length") for t, s in zip(texts, stopped)]


def test_sample_k_passes_top_p_on(sampling_model, tokenizer):
    """EOS holds about 0.2 of the mass and every other token far less, so a 0.1 nucleus is EOS
    alone: every sample stops at once, empty."""
    nucleus = draw(sampling_model, tokenizer, seed=0, top_p=0.1)
    assert all(samples == [("", "stop")] * 4 for samples in nucleus)
