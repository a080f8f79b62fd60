"""posttrain.generation.sampler against `model.generate`: same tokens, faster loop."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM

from posttrain.generation.sampler import pick, sample, trim
from posttrain.models.load import load_causal_lm
from tests.tiny import llama_config

BASE = "assets/base-small-seed0"
PAD, EOS = 0, 1


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    config = llama_config(
        97,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def base():
    model, tokenizer = load_causal_lm(BASE)
    tokenizer.padding_side = "left"
    return model, tokenizer


def left_padded(lengths: list[int], vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) random prompts of the given lengths, left-padded with PAD, and their mask."""
    g = torch.Generator().manual_seed(seed)
    P = max(lengths)
    ids = torch.full((len(lengths), P), PAD)
    mask = torch.zeros((len(lengths), P), dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, P - n :] = torch.randint(2, vocab, (n,), generator=g)
        mask[row, P - n :] = 1
    return ids, mask


def generated(model, ids, mask, eos: int, **kwargs) -> torch.Tensor:
    out = model.generate(input_ids=ids, attention_mask=mask, pad_token_id=PAD, eos_token_id=eos, **kwargs)
    return out[:, ids.size(1) :]


def test_greedy_equals_generate_on_a_tiny_llama_with_left_padding(tiny):
    ids, mask = left_padded([5, 9, 1, 7], tiny.config.vocab_size)
    ours = sample(tiny, ids, mask, max_new_tokens=12, temperature=0, eos_token_id=EOS, pad_token_id=PAD)
    theirs = generated(tiny, ids, mask, EOS, max_new_tokens=12, do_sample=False)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)


def test_greedy_equals_generate_on_the_base_model(base):
    model, tokenizer = base
    texts = [
        "The capital of",
        "<|user|>\nWhat is 23 + 58?<|end|>\n<|assistant|>\n",
        "Once upon a time, in the land of",
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (enc.attention_mask == 0).any(), "the prompts must need left padding"
    ours = sample(
        model,
        enc.input_ids,
        enc.attention_mask,
        max_new_tokens=24,
        temperature=0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    theirs = model.generate(
        **enc,
        max_new_tokens=24,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )[:, enc.input_ids.size(1) :]
    assert torch.equal(ours, theirs)


def test_rows_end_at_their_first_eos_and_the_batch_is_trimmed(tiny):
    """A token greedy decoding emits mid-way is made the EOS: rows stop there (some leave the
    batch early, which exercises compaction) and the output still equals generate's."""
    ids, mask = left_padded([3, 8, 6, 2, 5, 4, 7, 1], tiny.config.vocab_size, seed=1)
    free = sample(tiny, ids, mask, max_new_tokens=10, temperature=0, eos_token_id=-1, pad_token_id=PAD)
    eos = int(free[0, 2])
    ends = [(r == eos).nonzero().flatten().tolist()[:1] for r in free]
    assert len({tuple(e) for e in ends}) >= 3, "rows must end at different steps, and some not at all"
    ours = sample(tiny, ids, mask, max_new_tokens=10, temperature=0, eos_token_id=eos, pad_token_id=PAD)
    theirs = generated(tiny, ids, mask, eos, max_new_tokens=10, do_sample=False)
    assert torch.equal(ours, theirs)
    for row in range(ours.size(0)):
        hits = (free[row] == eos).nonzero().flatten().tolist()
        end = hits[0] + 1 if hits else free.size(1)
        assert torch.equal(ours[row, :end], free[row, :end])
        assert (ours[row, end:] == PAD).all()
    assert ours.size(1) == (free.size(1) if [] in ends else max(e[0] for e in ends) + 1)


def test_all_rows_ending_at_once_gives_one_column(tiny):
    ids, mask = left_padded([4, 4], tiny.config.vocab_size)
    first = sample(tiny, ids, mask, max_new_tokens=1, temperature=0, eos_token_id=-1, pad_token_id=PAD)
    if first[0, 0] != first[1, 0]:
        ids[1], mask[1] = ids[0], mask[0]
    first = sample(tiny, ids, mask, max_new_tokens=1, temperature=0, eos_token_id=-1, pad_token_id=PAD)
    out = sample(
        tiny, ids, mask, max_new_tokens=8, temperature=0, eos_token_id=int(first[0, 0]), pad_token_id=PAD
    )
    assert out.shape == (2, 1)


def test_seeded_sampling_is_reproducible_and_seed_dependent(tiny):
    ids, mask = left_padded([5, 9, 1, 7], tiny.config.vocab_size)

    def draw(seed):
        return sample(
            tiny,
            ids,
            mask,
            max_new_tokens=16,
            temperature=1.0,
            eos_token_id=EOS,
            pad_token_id=PAD,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


def test_draws_follow_the_softmax_and_skip_impossible_tokens():
    logits = torch.tensor([2.0, 0.0, float("-inf"), 1.0, -1.0, float("-inf")])
    n = 40_000
    tokens = pick(logits.expand(n, -1), 1.0, 1.0, torch.Generator().manual_seed(0))
    freq = torch.bincount(tokens, minlength=6).double() / n
    assert freq[2] == 0 and freq[5] == 0
    assert torch.allclose(freq, logits.softmax(-1).double(), atol=0.01)  # 4 sigma is about 0.01 here
    hot = pick(logits.expand(n, -1), 0.5, 1.0, torch.Generator().manual_seed(1))
    assert torch.allclose(
        torch.bincount(hot, minlength=6).double() / n, (logits / 0.5).softmax(-1).double(), atol=0.01
    )


def test_a_tiny_nucleus_is_greedy(tiny):
    ids, mask = left_padded([5, 9, 1, 7], tiny.config.vocab_size)
    greedy = sample(tiny, ids, mask, max_new_tokens=10, temperature=0, eos_token_id=EOS, pad_token_id=PAD)
    nucleus = sample(
        tiny,
        ids,
        mask,
        max_new_tokens=10,
        temperature=1.0,
        top_p=1e-6,
        eos_token_id=EOS,
        pad_token_id=PAD,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(greedy, nucleus)


def test_trim_pads_after_the_first_eos():
    tokens = torch.tensor([[5, 1, 7, 1], [6, 6, 1, 9], [2, 3, 4, 5]])
    assert trim(tokens, 1, 0).tolist() == [[5, 1, 0, 0], [6, 6, 1, 0], [2, 3, 4, 5]]
    assert trim(tokens[:2], 1, 0).tolist() == [[5, 1, 0], [6, 6, 1]]


def test_bad_arguments_are_refused(tiny):
    ids, mask = left_padded([2], tiny.config.vocab_size)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample(tiny, ids, mask, max_new_tokens=0, temperature=0, eos_token_id=EOS, pad_token_id=PAD)
    with pytest.raises(ValueError, match="top_p"):
        sample(tiny, ids, mask, max_new_tokens=2, temperature=1, top_p=0, eos_token_id=EOS, pad_token_id=PAD)


def test_the_tokens_can_enter_a_training_forward(tiny):
    ids, mask = left_padded([3, 5], tiny.config.vocab_size)
    out = sample(tiny, ids, mask, max_new_tokens=4, temperature=0, eos_token_id=EOS, pad_token_id=PAD)
    assert not out.is_inference()  # an inference tensor cannot be saved for backward
    tiny.zero_grad()
    tiny.model.embed_tokens(out).sum().backward()
    grad = tiny.model.embed_tokens.weight.grad
    used = torch.zeros(tiny.config.vocab_size, dtype=torch.bool)
    used[out.flatten()] = True  # every sampled token's row gets a gradient, no other row
    assert grad[used].abs().sum(-1).gt(0).all() and not grad[~used].any()
    tiny.zero_grad()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_the_sampled_tokens_logprobs_equal_a_recomputation_by_a_full_forward(tiny, temperature):
    """PPO takes the old policy's logprobs and entropy from the sampler instead of a second forward over
    prompt + response: they must be what that forward (`response_logprobs`) gives, to 1e-5, on every
    response token; rows end at different steps (compaction), and positions after a row's EOS are 0."""
    from posttrain.models.policy import episode_inputs, response_logprobs, response_mask

    ids, mask = left_padded([3, 8, 6, 2, 5, 4, 7, 1, 6, 2, 8, 3], tiny.config.vocab_size, seed=2)

    def run(eos: int, **kw):
        return sample(
            tiny,
            ids,
            mask,
            max_new_tokens=40,
            temperature=temperature,
            eos_token_id=eos,
            pad_token_id=PAD,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )

    free = run(-1)
    eos = int(torch.bincount(free.flatten()).argmax())  # this random model's commonest token: rows stop at it
    out = run(eos, with_logprobs=True)
    assert torch.equal(out.tokens, run(eos))
    real = response_mask(out.tokens, eos)
    lengths = real.sum(1)
    assert lengths.min() < out.tokens.size(1) and len(set(lengths.tolist())) >= 3
    with torch.no_grad():
        logprobs, entropy = response_logprobs(
            tiny, episode_inputs(ids, mask, out.tokens, real), ids.size(1), temperature
        )
    assert torch.allclose(out.logprobs, logprobs * real, atol=1e-5, rtol=0)
    assert torch.allclose(out.entropy, entropy * real, atol=1e-5, rtol=0)
    assert (out.logprobs[real == 0] == 0).all() and (out.logprobs[real == 1] < 0).all()


def test_greedy_decoding_has_no_logprobs_to_give(tiny):
    ids, mask = left_padded([2], tiny.config.vocab_size)
    with pytest.raises(ValueError, match="temperature > 0"):
        sample(
            tiny,
            ids,
            mask,
            max_new_tokens=2,
            temperature=0,
            eos_token_id=EOS,
            pad_token_id=PAD,
            with_logprobs=True,
        )
