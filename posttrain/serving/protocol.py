"""The OpenAI wire format: request schemas, response and stream-chunk bodies, and API errors.

Only what posttrain implements is accepted with meaning; unknown fields are ignored, as
OpenAI-compatible servers commonly do, so clients that send extra options keep working.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_N = 16
MAX_STOPS = 4  # OpenAI's limit
# Each stop sequence is matched against every row's text on the one generation thread, so its length is
# bounded like everything else a request makes the worker do per token; stop sequences in use ("\n\n",
# "</answer>", "User:") are a few characters, and 256 leaves room for a whole line of a template.
MAX_STOP_CHARS = 256
# Messages (and a message's text parts) are validated on the event loop and rendered by the chat template
# while holding the GIL, so their number is bounded too: 200,000 one-letter messages (7 MB) took 17 s and
# made other clients' 16-token requests up to 28 times slower. Every message is at least one token, and
# 4096 is more turns than any context we serve holds.
MAX_MESSAGES = 4096


class APIError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    @field_validator("content", mode="before")
    @classmethod
    def _not_too_many_parts(cls, v):
        return at_most(v, MAX_MESSAGES, "text parts")

    def plain(self) -> dict:
        """{"role", "content"} with text parts joined; "developer" is OpenAI's newer name for system."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop sequences are allowed")
        if any(not s for s in stops):
            raise ValueError("stop sequences must be non-empty strings")
        if longest := max((len(s) for s in stops if len(s) > MAX_STOP_CHARS), default=0):
            raise ValueError(f"a stop sequence may be at most {MAX_STOP_CHARS} characters; one is {longest}")
        return stops

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class ChatRequest(SamplingRequest):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    @field_validator("messages", mode="before")
    @classmethod
    def _not_too_many(cls, v):
        return at_most(v, MAX_MESSAGES, "messages")

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, v):
        if v[-1].role != "user":
            raise ValueError("the last message must be a user turn; the model answers it")
        return v


class CompletionRequest(SamplingRequest):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for /v1/completions

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v):
        prompts = [v] if isinstance(v, str) else v
        if not prompts or len(prompts) > MAX_N:
            raise ValueError(f"give 1 to {MAX_N} prompts")
        return prompts


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[dict] = Field(min_length=1)

    @field_validator("messages", mode="before")
    @classmethod
    def _not_too_many(cls, v):
        return at_most(v, MAX_MESSAGES, "messages")

    completion: str
    rating: Literal["up", "down"] | None = None
    flags: list[str] = []
    preferred: str | None = None
    notes: str | None = None
    model: str | None = None


def at_most(value, limit: int, what: str):
    """`value`, unless it is a list longer than `limit`: checked before its items are validated one by one."""
    if isinstance(value, list) and len(value) > limit:
        raise ValueError(f"at most {limit} {what} are taken; this request has {len(value)}")
    return value


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ChatFormat:
    """Bodies and stream chunks of `POST /v1/chat/completions`."""

    object, chunk_object, id_prefix = "chat.completion", "chat.completion.chunk", "chatcmpl"

    def __init__(self, model: str, with_usage: bool = False):
        self.id, self.model, self.with_usage, self.created = (
            new_id(self.id_prefix),
            model,
            with_usage,
            int(time.time()),
        )

    def body(self, texts: list[str], reasons: list[str], use: dict) -> dict:
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": r, "logprobs": None}
            for i, (t, r) in enumerate(zip(texts, reasons))
        ]
        return self._envelope(self.object, choices) | {"usage": use}

    def role_chunk(self, index: int) -> dict | None:
        return self._chunk(index, {"delta": {"role": "assistant", "content": ""}})

    def text_chunk(self, index: int, text: str) -> dict:
        return self._chunk(index, {"delta": {"content": text}})

    def finish_chunk(self, index: int, reason: str) -> dict:
        return self._chunk(index, {"delta": {}}, reason)

    def usage_chunk(self, use: dict) -> dict:
        return self._envelope(self.chunk_object, []) | {"usage": use}

    def _chunk(self, index: int, fields: dict, reason: str | None = None) -> dict:
        choice = {"index": index, **fields, "finish_reason": reason, "logprobs": None}
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
    """Bodies and stream chunks of `POST /v1/completions` (legacy text completions)."""

    object, chunk_object, id_prefix = "text_completion", "text_completion", "cmpl"

    def body(self, texts: list[str], reasons: list[str], use: dict) -> dict:
        choices = [
            {"index": i, "text": t, "finish_reason": r, "logprobs": None}
            for i, (t, r) in enumerate(zip(texts, reasons))
        ]
        return self._envelope(self.object, choices) | {"usage": use}

    def role_chunk(self, index: int) -> dict | None:
        return None

    def text_chunk(self, index: int, text: str) -> dict:
        return self._chunk(index, {"text": text})

    def finish_chunk(self, index: int, reason: str) -> dict:
        return self._chunk(index, {"text": ""}, reason)
