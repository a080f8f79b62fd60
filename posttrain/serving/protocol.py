"""The OpenAI wire format of requests, and API errors.

No field is ignored in silence: a field posttrain implements is taken with its meaning; one that cannot
change the answer (`user`, `metadata`, `store`, ...) is accepted; one of OpenAI's it does not implement
is accepted only with a value that asks for nothing (no penalty, no tools) and is a 400 naming it
otherwise (unsupported.py); any other field is a 400 too, so a client that sends an option learns it was
not applied rather than getting an answer without it. docs/serving.md lists them all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from posttrain.serving.unsupported import CHAT_UNSUPPORTED, MESSAGE_UNSUPPORTED, asks_nothing

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
MAX_TOP_LOGPROBS = 20  # chat's top_logprobs, OpenAI's limit
MAX_COMPLETION_LOGPROBS = 5  # completions' logprobs, OpenAI's limit
# logit_bias entries are added to a row's logits at every step on the one generation thread
MAX_LOGIT_BIAS = 1024


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
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    content: str | list[TextPart]
    name: Any = None
    tool_calls: Any = None
    tool_call_id: Any = None
    refusal: Any = None
    # what an answer's message carries when a client sends it back as history, empty
    annotations: Any = None
    audio: Any = None
    function_call: Any = None

    _unsupported = field_validator(*MESSAGE_UNSUPPORTED)(asks_nothing)

    @field_validator("role")
    @classmethod
    def _role(cls, v):
        if v not in ("system", "developer", "user", "assistant"):
            raise ValueError(
                f"role {v!r} is not supported (tool and function results are not); "
                "roles are system, developer, user, assistant"
            )
        return v

    @field_validator("content", mode="before")
    @classmethod
    def _text_only(cls, v):
        if v is None:
            raise ValueError("content is null; give the message's text (tool calls are not supported)")
        if isinstance(v, list):
            at_most(v, MAX_MESSAGES, "text parts")
            for i, part in enumerate(v):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind != "text":
                    raise ValueError(
                        f"part {i} is of type {kind!r}; only text parts ({{'type': 'text', 'text': ...}}) "
                        "are supported"
                    )
        return v

    def plain(self) -> dict:
        """{"role", "content"} with text parts joined; "developer" is OpenAI's newer name for system."""
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    include_obfuscation: bool = True  # no effect: its padding guards against side channels on the network


class JSONSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")  # OpenAI's rule for the name
    description: str | None = None
    schema_: dict | None = Field(None, alias="schema")  # None: any JSON object
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """`{"type": "text"}`, `{"type": "json_object"}`, or `{"type": "json_schema", "json_schema": {...}}`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchema | None = Field(None, validate_default=True)

    @field_validator("json_schema")
    @classmethod
    def _schema_with_its_type(cls, v, info: ValidationInfo):
        if (v is None) != (info.data.get("type") != "json_schema"):
            raise ValueError("json_schema goes with type 'json_schema', and only with it")
        return v


class SamplingRequest(BaseModel):
    """The fields chat and completions share."""

    model_config = ConfigDict(extra="forbid")

    model: str
    n: int = Field(1, ge=1, le=MAX_N)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    logit_bias: dict[int, float] | None = None
    user: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None

    _unsupported = field_validator("frequency_penalty", "presence_penalty")(asks_nothing)

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

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _bias_size(cls, v):
        if isinstance(v, dict) and len(v) > MAX_LOGIT_BIAS:
            raise ValueError(f"at most {MAX_LOGIT_BIAS} tokens may be biased; this request has {len(v)}")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias_range(cls, v):
        if v and (bad := next((t for t, b in v.items() if not -100 <= b <= 100), None)) is not None:
            raise ValueError(f"token {bad}'s bias is {v[bad]}; a bias is from -100 to 100")
        return v

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class ChatRequest(SamplingRequest):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    metadata: Any = None
    store: Any = None
    service_tier: Any = None
    safety_identifier: Any = None
    prompt_cache_key: Any = None
    parallel_tool_calls: Any = None
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    response_format: ResponseFormat | None = None
    modalities: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: Any = None
    verbosity: Any = None

    _chat_unsupported = field_validator(*CHAT_UNSUPPORTED)(asks_nothing)

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

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, v, info: ValidationInfo):
        if v is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return v


class CompletionRequest(SamplingRequest):
    # a string, a list of token ids, or a list of up to MAX_N of either (what evaluation harnesses send)
    prompt: list[str | list[int]]
    max_tokens: int | None = Field(16, ge=0)  # OpenAI's default for /v1/completions; 0 with echo scores
    logprobs: int | None = Field(None, ge=0, le=MAX_COMPLETION_LOGPROBS)
    echo: bool = False
    suffix: Any = None
    best_of: Any = None

    _completion_unsupported = field_validator("suffix", "best_of")(asks_nothing)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompts(cls, v):
        if isinstance(v, str) or (isinstance(v, list) and v and all(type(t) is int for t in v)):
            v = [v]
        if not isinstance(v, list) or not v or len(v) > MAX_N:
            raise ValueError(f"give a string, a list of token ids, or a list of 1 to {MAX_N} of either")
        return v


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
