"""Constrained decoding: JSON that follows a schema, token by token, with llguidance.

A `Grammar` is compiled once per request (`Grammars.json`, off the decoding thread: a large schema takes
up to a second), and each row decoding under it gets its own `Matcher` (a cheap copy of the compiled
one). At every step the decoder asks the row's matcher for the tokens the grammar allows next
(`allowed`), sets the others' logits to -inf before sampling, and tells it the token taken (`take`);
once the JSON is complete the matcher allows only end-of-sequence.

Why llguidance (over xgrammar and outlines-core; docs/serving.md says more): its Python 3.11 wheel is one
abi3 file with no dependencies (xgrammar's pulls in triton and apache-tvm-ffi); it builds no index over
the vocabulary ahead of time (outlines-core compiles one per schema, and its vocabulary helper reads from
the hub); each mask is computed on demand within per-step parser limits, whatever the schema; and vLLM,
SGLang and llama.cpp decode with it, so it is kept up.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

# How generated JSON is spaced: one space after ':' and ',' and no newlines, as json.dumps writes it. Any
# whitespace (JSON's grammar) lets a weak model spend its tokens on blank lines; one fixed spacing costs
# nothing to a client that parses the text.
SPACING = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
BITS = torch.arange(32, dtype=torch.int32)


class GrammarError(ValueError):
    """A schema that cannot be compiled, or that uses a keyword the grammar cannot enforce (strict)."""


class Grammars:
    """Grammars over one tokenizer's vocabulary of `vocab` tokens (the logits' width), EOS `eos`."""

    def __init__(self, tokenizer, vocab: int, eos: int):
        from llguidance import LLTokenizer

        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise GrammarError("structured output needs a fast (Rust) tokenizer; this model's is not one")
        self.vocab, self.eos = vocab, eos
        self.tokenizer = LLTokenizer(backend.to_str(), n_vocab=len(tokenizer), eos_token=eos)

    def json(self, schema: dict | None, *, strict: bool) -> Grammar:
        """JSON following `schema` (any JSON object when None). `strict`: every keyword of the schema is
        enforced, and one the grammar cannot enforce is a GrammarError; otherwise such keywords are
        ignored (the answer still follows the rest)."""
        from llguidance import LLMatcher

        schema = {"type": "object"} if schema is None else schema
        try:
            text = LLMatcher.grammar_from_json_schema(schema, overrides={**SPACING, "lenient": not strict})
        except ValueError as e:
            raise GrammarError(f"the schema is not a JSON object: {e}") from None
        failed, messages = LLMatcher.validate_grammar_with_warnings(text, self.tokenizer)
        if failed:
            raise GrammarError(messages[0])
        matcher = LLMatcher(self.tokenizer, text, log_level=0)
        if matcher.is_error():
            raise GrammarError(matcher.get_error())
        return Grammar(matcher, self.vocab, self.eos)


class Grammar:
    """A compiled grammar; never advanced itself, each row starts a `Matcher` from it."""

    def __init__(self, matcher, vocab: int, eos: int):
        self._matcher, self.vocab, self.eos = matcher, vocab, eos

    def start(self) -> Matcher:
        return Matcher(self._matcher.deep_copy(), self.vocab, self.eos)


class Matcher:
    """One row's place in its grammar."""

    def __init__(self, matcher, vocab: int, eos: int):
        self.matcher, self.vocab, self.eos = matcher, vocab, eos

    def allowed(self) -> torch.Tensor:
        """(V,) True for the tokens the grammar allows next: only EOS once the JSON is complete, and only EOS
        if the matcher has failed (a parser limit reached), so the row ends instead of writing past it."""
        words = torch.frombuffer(bytearray(self.matcher.compute_bitmask()), dtype=torch.int32)  # (W,)
        allowed = ((words[:, None] >> BITS) & 1).bool().flatten()  # (32 W,)
        allowed = torch.nn.functional.pad(allowed, (0, max(0, self.vocab - len(allowed))))[: self.vocab]
        if self.matcher.is_error() or not allowed.any():
            log.warning("constrained decoding stopped: %s", self.matcher.get_error() or "no token allowed")
            allowed = torch.zeros(self.vocab, dtype=torch.bool)
            allowed[self.eos] = True
        return allowed

    def take(self, token: int) -> None:
        self.matcher.consume_token(token)
