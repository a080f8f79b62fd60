"""Where PPO's rollouts are generated: one small interface, two engines.

    backend = make_backend("sampler", policy, tokenizer)    # posttrain's sampler (CPU and GPU), the default
    tokens = backend.generate(query, query_mask, max_new_tokens=48, temperature=1.0, top_p=1.0,
                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, draws=draws)
    ...                                                       # a PPO step changes the policy's weights
    backend.load_weights(policy)                              # the engine generates with the new ones

`generate` takes left-padded (B, P) prompts and returns (B, T) response tokens, padded with
`pad_token_id` after each row's first EOS, T the longest row (what `posttrain.generation.sampler.sample`
returns). `draws` holds (B, max_new_tokens) uniforms, one per row and position: the sampler draws
each token with them (so a row's sample does not depend on the rest of its batch, or on how the
batch is split across ranks); an engine with its own sampling derives each row's seed from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from posttrain.generation.sampler import sample


class GenerationBackend(Protocol):
    name: str

    def generate(self, query: torch.Tensor, query_mask: torch.Tensor, *, max_new_tokens: int, temperature: float,
                 top_p: float, eos_token_id: int, pad_token_id: int, draws: torch.Tensor) -> torch.Tensor: ...

    def load_weights(self, model: torch.nn.Module) -> None: ...


class SamplerBackend:
    """posttrain's own sampler, on the trained module itself: nothing to copy after a step."""

    name = "sampler"

    def __init__(self, model: torch.nn.Module, tokenizer=None):
        self.model = model

    def generate(self, query, query_mask, *, max_new_tokens, temperature, top_p, eos_token_id, pad_token_id,
                 draws):
        return sample(self.model, query, query_mask, max_new_tokens=max_new_tokens, temperature=temperature,
                      top_p=top_p, eos_token_id=eos_token_id, pad_token_id=pad_token_id, draws=draws)

    def load_weights(self, model: torch.nn.Module) -> None:
        self.model = model


BACKENDS: dict[str, Callable[..., GenerationBackend]] = {"sampler": SamplerBackend}


def make_backend(name: str, model: torch.nn.Module, tokenizer) -> GenerationBackend:
    return BACKENDS[name](model, tokenizer)
