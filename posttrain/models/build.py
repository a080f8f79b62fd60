"""Small Llama-style causal LMs built from a transformers config (the world's base model)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


@dataclass(frozen=True)
class ModelSize:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_len: int = 512


# `base` is sized so the world's facts fit and a CPU pretrains it in minutes; `tiny` is for tests.
SIZES = {
    "tiny": ModelSize(d_model=32, n_layers=2, n_heads=2, d_ff=64, max_len=256),
    "base": ModelSize(d_model=256, n_layers=4, n_heads=4, d_ff=768, max_len=512),
}


def new_llama(size: ModelSize, tokenizer: PreTrainedTokenizerFast, seed: int) -> LlamaForCausalLM:
    """A freshly initialised Llama with tied embeddings, sized by `size`."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.d_model,
        intermediate_size=size.d_ff,
        num_hidden_layers=size.n_layers,
        num_attention_heads=size.n_heads,
        num_key_value_heads=size.n_heads,
        max_position_embeddings=size.max_len,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
