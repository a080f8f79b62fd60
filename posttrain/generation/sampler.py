"""posttrain's own batched sampler for Hugging Face causal LMs: the loop PPO rollouts run.

    input_ids, attention_mask = encode_prompts(tok, conversations)
    tokens = sample(model, input_ids, attention_mask, max_new_tokens=64, temperature=1.0,
                    eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, generator=g)
    texts = decode_responses(tok, tokens)

Greedy, the same tokens as `model.generate` token for token; sampled, draws from the same
distribution (softmax of logits / temperature, top-p), by inverting the CDF rather than with
`torch.multinomial`, which is about 20x slower on CPU. None of `generate`'s per-step machinery:
no logits processors or stopping criteria, no `prepare_inputs_for_generation`, no per-step mask
and position bookkeeping. One prefill, then a tight loop calling the model's
forward with an explicit `position_ids`, a slice of one preallocated attention mask, a KV cache
whose storage is allocated once (`kv_cache.preallocated_cache`: no `torch.cat` of the whole cache per
token) and `logits_to_keep=1` (only the last position's logits are computed), under
`torch.inference_mode`.

Finished rows leave the batch: when a quarter of the rows still being decoded have emitted EOS,
they are dropped from the input and from the KV cache (`DynamicCache.batch_select_indices`),
so a batch whose responses end early stops paying for them. `generate` keeps decoding every row
until the last one ends.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from posttrain.data.chat import chat_ids
from posttrain.generation.kv_cache import preallocated_cache
from posttrain.generation.logits import probabilities
from posttrain.models.policy import response_mask, upcast

# Compact the batch once this share of the active rows has finished: each compaction copies the
# whole KV cache, so doing it for every finished row costs more than decoding a few dead rows.
COMPACT_SHARE = 0.25


def encode_prompts(tokenizer, conversations: list[list[dict]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) input ids and attention mask of chat prompts, left-padded as `sample` takes them: each
    conversation's `chat_ids` with the assistant turn opened."""
    ids = [chat_ids(tokenizer, c, add_generation_prompt=True) for c in conversations]
    enc = tokenizer.pad({"input_ids": ids}, padding=True, padding_side="left", return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def decode_responses(tokenizer, tokens: torch.Tensor) -> list[str]:
    """The text of each row of `sample`'s (B, T) output, up to its first EOS, stripped."""
    is_eos = tokens == tokenizer.eos_token_id
    lengths = torch.where(is_eos.any(dim=1), is_eos.long().argmax(dim=1), tokens.size(1))  # (B,) before EOS
    return [
        tokenizer.decode(row[:n], skip_special_tokens=True).strip()
        for row, n in zip(tokens, lengths.tolist())
    ]


def sample_texts(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    temperature: float,
    max_new_tokens: int,
    generator: torch.Generator | None,
    batch_size: int,
    on_batch=lambda rows: None,
) -> list[str]:
    """One assistant turn per conversation (greedy at temperature 0), `batch_size` conversations
    per `sample` call; `on_batch(rows)` after each call (a progress bar)."""
    out: list[str] = []
    for i in range(0, len(conversations), batch_size):
        _, _, tokens = sample_chats(
            model, tokenizer, conversations[i : i + batch_size], temperature, max_new_tokens, generator
        )  # (B, T)
        out += decode_responses(tokenizer, tokens)
        on_batch(len(tokens))
    return out


def sample_chats(
    model, tokenizer, conversations: list[list[dict]], temperature: float, max_new_tokens: int, generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One `sample` call on chat prompts: (B, P) prompt ids and attention mask (`encode_prompts`), and
    (B, T) response tokens."""
    input_ids, attention_mask = encode_prompts(tokenizer, conversations)  # (B, P)
    tokens = sample(
        model,
        input_ids,
        attention_mask,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        generator=generator,
    )  # (B, T)
    return input_ids, attention_mask, tokens


class Sampled(NamedTuple):
    """`sample(..., with_logprobs=True)`'s result: the tokens and, at each of their positions, the sampled
    token's log-probability and the entropy under softmax(logits / temperature), what PPO calls the old
    policy's (0 after a row's EOS). An engine that cannot give them (vLLM: its numerics are not the
    trainer's) leaves them None, and PPO recomputes them."""

    tokens: torch.Tensor  # (B, T)
    logprobs: torch.Tensor | None  # (B, T)
    entropy: torch.Tensor | None  # (B, T)


def sample(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float = 1.0,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    draws: torch.Tensor | None = None,
    with_logprobs: bool = False,
) -> torch.Tensor | Sampled:
    """(B, T) response tokens for left-padded prompts (B, P); greedy when temperature == 0.

    After a row's EOS its positions hold `pad_token_id`; T <= max_new_tokens is the longest row.
    Sampling draws only from `generator` (default: torch's global generator), so a seeded
    generator gives the same tokens on every run. `draws`, (B, max_new_tokens) uniforms in [0, 1),
    replaces the generator: row i's token t is drawn with draws[i, t], so a row gets the same tokens
    whichever other rows share its batch (what splitting a batch across ranks needs; `row_draws`).
    `with_logprobs` returns a `Sampled`: the log-probability and entropy at every sampled position as
    well, from the logits each step computes anyway (temperature > 0; these are of softmax(logits /
    temperature), the policy before any top-p cut). They equal a recomputation by a full forward
    over prompt + response to float rounding (tests/generation/test_sampler.py), so PPO's rollout
    skips that forward.
    The results are ordinary tensors (not inference-mode ones), so a training forward can take them
    as input and save them for backward."""
    B, device = input_ids.size(0), input_ids.device
    check_settings(B, max_new_tokens, temperature, top_p, draws, with_logprobs)
    with torch.inference_mode():
        tokens = torch.full((B, max_new_tokens), pad_token_id, dtype=torch.long, device=device)  # (B, T)
        logprobs = entropy = None
        mask, next_position, cache, logits = prefill(model, input_ids, attention_mask, max_new_tokens)
        rows = torch.arange(B, device=device)  # output row of each row still in the batch
        done = torch.zeros(B, dtype=torch.bool, device=device)  # (b,)
        steps, P = 0, input_ids.size(1)
        for t in range(max_new_tokens):
            u = None if draws is None else draws[rows, t].to(logits.device).unsqueeze(1)  # (b, 1)
            next_tokens = pick(logits, temperature, top_p, generator, u)  # (b,)
            tokens[rows, t] = next_tokens  # a finished row's later tokens are padded by `trim`
            if with_logprobs:
                if logprobs is None:
                    logprobs = torch.zeros(tokens.shape, dtype=upcast(logits).dtype, device=device)  # (B, T)
                    entropy = torch.zeros_like(logprobs)
                record_logprobs(logprobs, entropy, (rows, t), logits, next_tokens, temperature)
            steps = t + 1
            done = done | (next_tokens == eos_token_id)
            n_done = int(done.sum())
            if n_done == len(rows) or steps == max_new_tokens:
                break
            if n_done >= COMPACT_SHARE * len(rows):
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                rows, mask, next_position, next_tokens, done = (
                    x[keep] for x in (rows, mask, next_position, next_tokens, done)
                )
            logits = last_logits(model, next_tokens[:, None], mask[:, : P + t + 1], next_position + t, cache)
        out = finish(tokens[:, :steps], logprobs, entropy, eos_token_id, pad_token_id)
    if not with_logprobs:
        return out.tokens.clone()
    return Sampled(*(x.clone() for x in out))


def row_draws(n_rows: int, max_new_tokens: int, seed: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """`sample`'s draws for the `rows` (default: all) of a batch of n_rows: the same numbers for a row
    whether the batch is sampled whole or split."""
    draws = torch.rand(
        n_rows, max_new_tokens, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    return draws if rows is None else draws[rows]


def prefill(model, input_ids, attention_mask, max_new_tokens: int):
    """The prompt's forward pass: the run's (B, P + max_new_tokens) attention mask, the (B, 1) position of
    the first new token, the KV cache holding the prompt, and the (B, V) logits of the first new token."""
    B, P = input_ids.shape
    # The whole run's attention mask, written once: step t reads its first P + t columns.
    mask = torch.cat(
        [attention_mask.long(), attention_mask.new_ones(B, max_new_tokens, dtype=torch.long)], dim=1
    )
    # Positions count real tokens only, so a left-padded row is positioned like an unpadded one
    # (what `generate` does: cumsum of the mask minus one).
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, P)
    next_position = positions[:, -1:] + 1  # (B, 1)
    cache = preallocated_cache(model.config, P + max_new_tokens)
    logits = last_logits(model, input_ids, mask[:, :P], positions, cache)  # (B, V)
    return mask, next_position, cache, logits


def finish(tokens, logprobs, entropy, eos_token_id: int, pad_token_id: int) -> Sampled:
    """The decoded columns trimmed (`trim`), and the log-probs and entropy (None when not recorded) cut to
    them and 0 after each row's EOS."""
    tokens = trim(tokens, eos_token_id, pad_token_id)
    if logprobs is None:
        return Sampled(tokens, None, None)
    T = tokens.size(1)
    after_eos = response_mask(tokens, eos_token_id) == 0  # a finished row's later positions
    return Sampled(
        tokens, logprobs[:, :T].masked_fill(after_eos, 0), entropy[:, :T].masked_fill(after_eos, 0)
    )


def check_settings(
    B: int, max_new_tokens: int, temperature: float, top_p: float, draws, with_logprobs
) -> None:
    """A ValueError naming the first of `sample`'s settings it cannot run with."""
    if draws is not None and tuple(draws.shape) != (B, max_new_tokens):
        raise ValueError(
            f"draws must be (B, max_new_tokens) = ({B}, {max_new_tokens}), got {tuple(draws.shape)}"
        )
    if with_logprobs and temperature == 0:
        raise ValueError("with_logprobs needs temperature > 0: greedy decoding has no sampling distribution")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if not 0 <= temperature < math.inf:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")


def last_logits(model, input_ids, attention_mask, position_ids, cache) -> torch.Tensor:
    """(b, V) logits at the last position of `input_ids` (b, n), its keys and values added to `cache`."""
    return model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]


def record_logprobs(logprobs, entropy, at, logits, next_tokens, temperature: float) -> None:
    """Write, at `at` ((rows, t)) of the (B, T) `logprobs` and `entropy`, the sampled tokens' log-probability
    and the entropy of softmax(logits / temperature) (the policy before any top-p cut)."""
    logp = torch.log_softmax(upcast(logits) / temperature, dim=-1)  # (b, V)
    logprobs[at] = logp.gather(1, next_tokens.unsqueeze(1)).squeeze(1)
    entropy[at] = -(logp.exp() * logp).sum(-1)


def pick(
    logits: torch.Tensor,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
    u: torch.Tensor | None = None,
) -> torch.Tensor:
    """(b,) next tokens from (b, V) logits: argmax at temperature 0, else a draw from `probabilities`."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    return categorical(probabilities(logits, temperature, top_p), generator, u)


def categorical(
    probs: torch.Tensor, generator: torch.Generator | None, u: torch.Tensor | None = None
) -> torch.Tensor:
    """(b,) one draw from each row of (b, V) probabilities, by inverting the CDF: token i is picked
    when u falls in [cdf_{i-1}, cdf_i), so zero-probability tokens never are. On CPU this is about
    20x faster than `torch.multinomial(probs, 1)` (25 ms for 16 x 49,152 there); the CDF is summed
    in float64 so that rounding cannot skip a token at the end of a large vocabulary."""
    cdf = probs.double().cumsum(dim=-1)  # (b, V)
    if u is None:  # (b, 1) one uniform per row
        u = torch.rand(probs.size(0), 1, generator=generator, dtype=torch.float64, device=probs.device)
    return torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp_(max=probs.size(1) - 1)


def trim(tokens: torch.Tensor, eos_token_id: int, pad_token_id: int) -> torch.Tensor:
    """Pad every position after a row's first EOS; cut the columns no row reaches."""
    is_eos = tokens == eos_token_id
    after_eos = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0  # (B, T)
    tokens = tokens.masked_fill(after_eos, pad_token_id)
    lengths = torch.where(is_eos.any(dim=1), is_eos.long().argmax(dim=1) + 1, tokens.size(1))  # (B,)
    return tokens[:, : int(lengths.max())] if tokens.numel() else tokens
