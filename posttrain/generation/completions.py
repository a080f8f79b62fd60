"""Text in, text out: completions from posttrain's own sampler (`generation.sampler`), batched:
`chat_complete` (the next assistant turn), `complete` (plain-text prefixes) and `sample_k` (K per
conversation). Greedy it gives `model.generate`'s tokens; on CPU it is about twice as fast
(docs/benchmarks.md). Sampling draws from a `torch.Generator` seeded per call, so a seed gives
the same text on every run without touching torch's global stream."""

from __future__ import annotations

import torch

from posttrain.generation.sampler import decode_responses, encode_prompts, sample, sample_texts


@torch.no_grad()
def chat_complete(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int = 48,
    temperature: float = 0.0,
    batch_size: int = 32,
    seed: int = 0,
) -> list[str]:
    """The next assistant turn for each conversation (greedy when temperature is 0), from one seeded
    stream."""
    return sample_texts(
        model,
        tokenizer,
        conversations,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        generator=torch.Generator().manual_seed(seed),
        batch_size=batch_size,
    )


@torch.no_grad()
def complete(
    model, tokenizer, prefixes: list[str], *, max_new_tokens: int = 8, batch_size: int = 64
) -> list[str]:
    """Greedy plain-text continuations of `prefixes` (no chat template), not stripped."""
    out: list[str] = []
    for i in range(0, len(prefixes), batch_size):
        enc = tokenizer(
            prefixes[i : i + batch_size],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        )  # (B, P)
        tokens = sample(
            model,
            enc["input_ids"],
            enc["attention_mask"],
            max_new_tokens=max_new_tokens,
            temperature=0,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )  # (B, T)
        out += tokenizer.batch_decode(tokens, skip_special_tokens=True)
    return out


@torch.no_grad()
def sample_k(
    model,
    tokenizer,
    conversations: list[list[dict]],
    *,
    k: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
) -> list[list[tuple[str, str]]]:
    """K sampled assistant turns per conversation, as (text, finish_reason) with finish_reason
    "stop" (EOS reached) or "length". One `sample` call for the whole batch, each prompt row
    repeated K times."""
    input_ids, attention_mask = encode_prompts(tokenizer, conversations)  # (B, P)
    tokens = sample(
        model,
        input_ids.repeat_interleave(k, dim=0),
        attention_mask.repeat_interleave(k, dim=0),
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(seed),
    )  # (B * K, T)
    finished = (tokens == tokenizer.eos_token_id).any(dim=1).tolist()
    flat = [
        (text, "stop" if done else "length")
        for text, done in zip(decode_responses(tokenizer, tokens), finished)
    ]
    return [flat[i * k : (i + 1) * k] for i in range(len(conversations))]
