"""The default generation backend: Hugging Face `generate` on chat-formatted prompts, batched."""

from __future__ import annotations

import torch

from posttrain.generation.sampler import encode_prompts


@torch.no_grad()
def chat_complete(model, tokenizer, conversations: list[list[dict]], *, max_new_tokens: int = 48,
                  temperature: float = 0.0, batch_size: int = 32, seed: int = 0) -> list[str]:
    """The next assistant turn for each conversation (greedy when temperature is 0)."""
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
    out: list[str] = []
    with torch.random.fork_rng():  # sampling draws from its own seeded stream
        torch.manual_seed(seed)
        for i in range(0, len(conversations), batch_size):
            input_ids, attention_mask = encode_prompts(tokenizer, conversations[i:i + batch_size])   # (B, P)
            ids = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **sampling)
            new = ids[:, input_ids.shape[1]:]                             # (B, <= max_new_tokens)
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return out


@torch.no_grad()
def complete(model, tokenizer, prefixes: list[str], *, max_new_tokens: int = 8, batch_size: int = 64) -> list[str]:
    """Greedy plain-text continuations of `prefixes` (no chat template)."""
    tokenizer.padding_side = "left"
    out: list[str] = []
    for i in range(0, len(prefixes), batch_size):
        enc = tokenizer(prefixes[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


@torch.no_grad()
def sample_k(model, tokenizer, conversations: list[list[dict]], *, k: int, temperature: float, top_p: float,
             max_new_tokens: int, seed: int) -> list[list[tuple[str, str]]]:
    """K sampled assistant turns per conversation, as (text, finish_reason) with finish_reason
    "stop" (EOS reached) or "length". One `generate` call for the whole batch, KV cache on."""
    input_ids, attention_mask = encode_prompts(tokenizer, conversations)       # (B, P)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ids = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=True,
                             temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=k,
                             max_new_tokens=max_new_tokens, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    new = ids[:, input_ids.shape[1]:]                                          # (B * K, <= max_new_tokens)
    finished = (new == tokenizer.eos_token_id).any(dim=1).tolist()
    decoded = [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    flat = [(text, "stop" if done else "length") for text, done in zip(decoded, finished)]
    return [flat[i * k:(i + 1) * k] for i in range(len(conversations))]

