"""A loaded causal LM with what chat and serving need: prompts as token ids and the context length."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from posttrain.data.chat import chat_ids
from posttrain.errors import UserError


@dataclass
class ServedModel:
    model: object
    tokenizer: object
    name: str  # the id clients pass as `model`
    context_length: int  # prompt + completion tokens the model can attend to

    @property
    def eos_ids(self) -> set[int]:
        """The tokenizer's EOS and any the generation config adds (Llama 3 ends turns with two)."""
        config = getattr(self.model, "generation_config", None)
        extra = getattr(config, "eos_token_id", None)
        extra = [] if extra is None else [extra] if isinstance(extra, int) else list(extra)
        return {self.tokenizer.eos_token_id, *extra}

    @cached_property
    def vocab_size(self) -> int:
        """Token ids a request may name: the tokenizer's, and no more than the model's embedding has rows."""
        rows = getattr(getattr(self.model, "config", None), "vocab_size", None)
        return min(len(self.tokenizer), rows) if rows else len(self.tokenizer)

    @cached_property
    def max_prompt_chars(self) -> int | None:
        """Characters of text that cannot fit the context whatever their tokens, so they are refused before
        tokenising (seconds of CPU for megabytes): no token covers more characters than its vocabulary entry
        has (byte-level entries have one per byte), times 4 for normalisers that combine characters (NFC
        joins a letter and its accent). None when the vocabulary cannot be read."""
        try:
            longest = max(len(token) for token in self.tokenizer.get_vocab())
        except (AttributeError, TypeError, ValueError):
            return None
        return self.context_length * longest * 4

    @cached_property
    def grammars(self):
        """JSON grammars over this model's vocabulary (`posttrain.generation.grammar`), built at the first
        request for structured output."""
        from posttrain.generation.grammar import Grammars

        width = getattr(getattr(self.model, "config", None), "vocab_size", None) or len(self.tokenizer)
        return Grammars(self.tokenizer, vocab=width, eos=self.tokenizer.eos_token_id)

    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """Token ids of `messages` rendered by the chat template, ready for the assistant's turn; message
        content is text, so control tokens written in it cannot forge a turn (`chat_ids`)."""
        return chat_ids(self.tokenizer, messages, add_generation_prompt=True)

    def text_prompt(self, prompt: str) -> list[int]:
        """Token ids of a plain-text prompt (no chat template), as
        `posttrain.generation.completions.complete` encodes them."""
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]


def load_served(spec: str, *, name: str | None = None, trust_remote_code: bool = False) -> ServedModel:
    """Load anything `load_causal_lm` accepts; the served name defaults to the directory or file name."""
    from posttrain.models.load import load_causal_lm

    model, tokenizer = load_causal_lm(spec, trust_remote_code=trust_remote_code)
    return ServedModel(model, tokenizer, name or default_name(spec), context_length(model, tokenizer))


def default_name(spec: str) -> str:
    path = Path(spec)
    return path.name if path.name else str(spec)


def context_length(model, tokenizer) -> int:
    """The model's position limit, or the tokenizer's when the config has none."""
    n = getattr(model.config, "max_position_embeddings", None)
    if not n:
        n = getattr(tokenizer, "model_max_length", None)
    if not n or n > 10**7:  # transformers' "no limit" sentinel is a huge number
        raise UserError("cannot tell the model's context length (no max_position_embeddings in its config)")
    return int(n)
