"""The OpenAI wire format of answers: response bodies and stream chunks of chat and completions, with
log-probabilities in each one's shape.

A token in a log-probability answer is shown as the tokenizer decodes it alone (special tokens
included) and as its exact bytes (`TokenText`): a byte-level token holding part of a character decodes
to U+FFFD, and its bytes say which part. A log-probability is a finite float: -inf (a token the model
rules out) is written -9999.0, as OpenAI does, since JSON has no infinity.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from posttrain.generation.logits import Scored

UNLIKELY = -9999.0  # what OpenAI writes for a log-probability too small to show


@dataclass
class Choice:
    """One choice of a whole (not streamed) answer, as its events arrive."""

    text: str = ""
    reason: str = ""
    logprobs: list[Scored] = field(default_factory=list)  # the generated tokens'
    prompt_logprobs: list[Scored] | None = None  # the prompt's, with echo and logprobs


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class TokenText:
    """A token's text and UTF-8 bytes, for log-probability answers; cached, a token is looked up once."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
        # byte-level BPE (GPT-2, Llama 3, SmolLM2) spells each byte as one printable character
        self.byte_of = {c: b for b, c in byte_characters().items()} if is_byte_level(decoder) else None
        self._cache: dict[int, tuple[str, list[int]]] = {}

    def __call__(self, token: int) -> tuple[str, list[int]]:
        if token not in self._cache:
            text = self.tokenizer.decode([token], skip_special_tokens=False)
            raw = None
            if self.byte_of is not None:
                spelled = self.tokenizer.convert_ids_to_tokens(token) or ""
                if spelled and all(c in self.byte_of for c in spelled):
                    raw = [self.byte_of[c] for c in spelled]
            self._cache[token] = (text, raw if raw is not None else list(text.encode("utf-8")))
        return self._cache[token]


def is_byte_level(decoder) -> bool:
    from tokenizers import decoders

    return isinstance(decoder, decoders.ByteLevel)


def byte_characters() -> dict[int, str]:
    """GPT-2's table from a byte to the character byte-level BPE writes it as: printable Latin-1 bytes
    stand for themselves, the others are shifted past 255."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table, shift = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b], shift = chr(256 + shift), shift + 1
    return table


def finite(logprob: float) -> float:
    return logprob if logprob > UNLIKELY else UNLIKELY


class ChatFormat:
    """Bodies and stream chunks of `POST /v1/chat/completions`; `top_logprobs` None when the request did
    not ask for log-probabilities."""

    object, chunk_object, id_prefix = "chat.completion", "chat.completion.chunk", "chatcmpl"

    def __init__(
        self, model: str, with_usage: bool = False, names: TokenText | None = None, top: int | None = None
    ):
        self.id, self.model, self.with_usage, self.created = (
            new_id(self.id_prefix),
            model,
            with_usage,
            int(time.time()),
        )
        self.names, self.top = names, top

    def body(self, choices: list[Choice], use: dict) -> dict:
        out = [
            {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.reason,
                "logprobs": self.logprobs(i, c.logprobs),
            }
            for i, c in enumerate(choices)
        ]
        return self._envelope(self.object, out) | {"usage": use}

    def start_chunk(self, index: int) -> dict | None:
        return self._chunk(index, {"delta": {"role": "assistant", "content": ""}})

    def prompt_chunk(self, index: int, scores: list[Scored]) -> dict | None:
        return None

    def text_chunk(self, index: int, text: str, scores: list[Scored] | None = None) -> dict:
        return self._chunk(index, {"delta": {"content": text}}, logprobs=self.logprobs(index, scores or []))

    def finish_chunk(self, index: int, reason: str) -> dict:
        return self._chunk(index, {"delta": {}}, reason)

    def usage_chunk(self, use: dict) -> dict:
        return self._envelope(self.chunk_object, []) | {"usage": use}

    def logprobs(self, index: int, scores: list[Scored]) -> dict | None:
        """OpenAI's chat shape: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}], "refusal"}`."""
        if self.top is None:
            return None
        return {"content": [self._entry(s) | {"top_logprobs": self._top(s)} for s in scores], "refusal": None}

    def _top(self, s: Scored) -> list[dict]:
        return [self._entry(Scored(t, lp)) for t, lp in s.top[: self.top]]

    def _entry(self, s: Scored) -> dict:
        text, raw = self.names(s.token)
        return {"token": text, "logprob": finite(s.logprob), "bytes": raw}

    def _chunk(
        self, index: int, fields: dict, reason: str | None = None, logprobs: dict | None = None
    ) -> dict:
        choice = {"index": index, **fields, "finish_reason": reason, "logprobs": logprobs}
        chunk = self._envelope(self.chunk_object, [choice])
        return chunk | {"usage": None} if self.with_usage else chunk

    def _envelope(self, obj: str, choices: list) -> dict:
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "system_fingerprint": None,
        }


class CompletionFormat(ChatFormat):
    """Bodies and stream chunks of `POST /v1/completions` (legacy text completions); `echo` the prompt text
    each choice starts with, when the request asked for it."""

    object, chunk_object, id_prefix = "text_completion", "text_completion", "cmpl"

    def __init__(
        self,
        model: str,
        with_usage: bool = False,
        names: TokenText | None = None,
        top: int | None = None,
        echo: list[str] | None = None,
    ):
        super().__init__(model, with_usage, names, top)
        self.echo = echo
        self._offset: dict[int, int] = {}  # per choice: characters of its text the log-probabilities cover

    def body(self, choices: list[Choice], use: dict) -> dict:
        out = [
            {
                "index": i,
                "text": (self.echo[i] if self.echo else "") + c.text,
                "finish_reason": c.reason,
                "logprobs": self.logprobs(i, (c.prompt_logprobs or []) + c.logprobs),
            }
            for i, c in enumerate(choices)
        ]
        return self._envelope(self.object, out) | {"usage": use}

    def start_chunk(self, index: int) -> dict | None:
        """The echoed prompt, unless its log-probabilities come with it (`prompt_chunk`)."""
        return self._chunk(index, {"text": self.echo[index]}) if self.echo and self.top is None else None

    def prompt_chunk(self, index: int, scores: list[Scored]) -> dict | None:
        return self._chunk(index, {"text": self.echo[index]}, logprobs=self.logprobs(index, scores))

    def text_chunk(self, index: int, text: str, scores: list[Scored] | None = None) -> dict:
        return self._chunk(index, {"text": text}, logprobs=self.logprobs(index, scores or []))

    def finish_chunk(self, index: int, reason: str) -> dict:
        return self._chunk(index, {"text": ""}, reason)

    def logprobs(self, index: int, scores: list[Scored]) -> dict | None:
        """OpenAI's completions shape: `{"tokens", "token_logprobs", "top_logprobs", "text_offset"}`, one
        entry per token; `top_logprobs` maps the `top` most likely tokens' texts, and the token's own, to
        their log-probabilities; the prompt's first token has None for both. `text_offset` is where each
        token starts in the choice's text, counting each token's text as it decodes alone."""
        if self.top is None:
            return None
        out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for s in scores:
            text, _ = self.names(s.token)
            out["tokens"].append(text)
            out["text_offset"].append(self._offset.get(index, 0))
            self._offset[index] = self._offset.get(index, 0) + len(text)
            if s.logprob is None:
                out["token_logprobs"].append(None)
                out["top_logprobs"].append(None)
                continue
            out["token_logprobs"].append(finite(s.logprob))
            top: dict[str, float] = {}
            for t, lp in s.top[: self.top]:
                top.setdefault(self.names(t)[0], finite(lp))  # the likelier of two tokens with one text
            top.setdefault(text, finite(s.logprob))
            out["top_logprobs"].append(top)
        return out
