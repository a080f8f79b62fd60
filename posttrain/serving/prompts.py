"""From a request that fits the schema to the engine's rows: the model named, prompts tokenised (text too
long for the context is refused by its length alone, before tokenising, and tokenising runs on a worker
thread so a huge prompt does not stall the event loop), token ids and logit-bias keys checked against the
vocabulary, and one (prompt ids, Sampling) row per prompt and choice.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from posttrain.generation.grammar import Grammar, GrammarError
from posttrain.generation.streaming import Sampling
from posttrain.serving.model import ServedModel
from posttrain.serving.protocol import (
    APIError,
    ChatRequest,
    CompletionRequest,
    ResponseFormat,
    SamplingRequest,
)


@dataclass
class Planned:
    rows: list[tuple[list[int], Sampling]]  # one per prompt and choice, choices of a prompt together
    prompt_tokens: int  # usage's count: the prompts' tokens, each prompt once
    echo: list[str] | None = None  # per row: the prompt text a completion choice starts with


async def chat_rows(served: ServedModel, req: ChatRequest) -> Planned:
    check_model(served, req.model)
    if len(req.messages) > served.context_length:  # each is a token at least: refuse before rendering
        raise APIError(
            400,
            f"the conversation has {len(req.messages)} messages, but this model's context is "
            f"{served.context_length} tokens; shorten the messages",
            param="messages",
            code="context_length_exceeded",
        )
    messages = [m.plain() for m in req.messages]
    check_length(served, sum(len(m["content"]) for m in messages), param="messages")
    prompt = await run_in_threadpool(served.chat_prompt, messages)
    grammar = await run_in_threadpool(response_grammar, served, req.response_format)
    top = (req.top_logprobs or 0) if req.logprobs else None
    limit = req.max_completion_tokens or req.max_tokens
    return Planned(plan_rows(served, req, [prompt], limit, logprobs=top, grammar=grammar), len(prompt))


def response_grammar(served: ServedModel, fmt: ResponseFormat | None) -> Grammar | None:
    """The grammar a chat answer must follow: JSON for `json_object` and `json_schema` (compiled here, on a
    worker thread, as a large schema takes up to a second), none for text."""
    if fmt is None or fmt.type == "text":
        return None
    spec = fmt.json_schema
    try:
        return served.grammars.json(spec.schema_ if spec else None, strict=bool(spec and spec.strict))
    except GrammarError as e:
        raise APIError(400, f"response_format: {e}", param="response_format") from None


async def completion_rows(served: ServedModel, req: CompletionRequest) -> Planned:
    check_model(served, req.model)
    if req.max_tokens == 0 and not req.echo:
        raise APIError(
            400,
            "max_tokens 0 generates nothing; it is taken with echo: true, to score the prompt",
            param="max_tokens",
        )
    for p in req.prompt:
        if isinstance(p, str):
            check_length(served, len(p), param="prompt")
        else:
            check_ids(served, p, param="prompt")
    prompts = await run_in_threadpool(
        lambda: [p if isinstance(p, list) else served.text_prompt(p) for p in req.prompt]
    )
    if any(not p for p in prompts):
        raise APIError(400, "prompt: an empty prompt gives the model nothing to continue", param="prompt")
    scoring = req.echo and req.logprobs is not None
    rows = plan_rows(
        served,
        req,
        prompts,
        req.max_tokens,
        logprobs=req.logprobs,
        prompt_logprobs=req.logprobs if scoring else None,
    )
    echo = None
    if req.echo:
        texts = [p if isinstance(p, str) else served.tokenizer.decode(p) for p in req.prompt]
        echo = [text for text in texts for _ in range(req.n)]
    return Planned(rows, sum(map(len, prompts)), echo)


def plan_rows(
    served: ServedModel,
    req: SamplingRequest,
    prompts: list[list[int]],
    max_tokens: int | None,
    *,
    logprobs: int | None,
    prompt_logprobs: int | None = None,
    grammar: Grammar | None = None,
) -> list[tuple[list[int], Sampling]]:
    """One row per (prompt, choice); max_tokens defaults to, and is capped by, the room left in the
    context (a prompt that fills it is taken only to score it, with max_tokens 0)."""
    param = "messages" if isinstance(req, ChatRequest) else "prompt"
    bias = checked_bias(served, req.logit_bias)
    rows = []
    for prompt in prompts:
        room = served.context_length - len(prompt)
        if room < (max_tokens != 0):
            raise APIError(
                400,
                f"the prompt is {len(prompt)} tokens, but this model's context is "
                f"{served.context_length} tokens; shorten the {param}",
                param=param,
                code="context_length_exceeded",
            )
        for i in range(req.n):
            sampling = Sampling(
                temperature=1.0 if req.temperature is None else req.temperature,
                top_p=1.0 if req.top_p is None else req.top_p,
                max_tokens=min(room if max_tokens is None else max_tokens, room),
                seed=None if req.seed is None else req.seed + i,
                logit_bias=bias,
                logprobs=logprobs,
                prompt_logprobs=prompt_logprobs,
                grammar=grammar,
            )
            rows.append((prompt, sampling))
    return rows


def check_model(served: ServedModel, name: str) -> None:
    if name != served.name:
        raise APIError(
            404,
            f"the model {name!r} does not exist; this server serves {served.name!r}",
            param="model",
            code="model_not_found",
        )


def check_length(served: ServedModel, chars: int, *, param: str) -> None:
    """Refuse text too long for the context by its length alone, before it is tokenised."""
    if served.max_prompt_chars is not None and chars > served.max_prompt_chars:
        raise APIError(
            400,
            f"the {param} text is {chars} characters; this model's context of {served.context_length} "
            f"tokens holds at most {served.max_prompt_chars}; shorten the {param}",
            param=param,
            code="context_length_exceeded",
        )


def check_ids(served: ServedModel, ids: list[int], *, param: str) -> None:
    """Token ids must be the model's: 0 to its vocabulary size - 1."""
    if (bad := next((t for t in ids if not 0 <= t < served.vocab_size), None)) is not None:
        raise APIError(
            400,
            f"{param}: token id {bad} is not in this model's vocabulary (0 to {served.vocab_size - 1})",
            param=param,
        )


def checked_bias(served: ServedModel, bias: dict[int, float] | None) -> dict[int, float]:
    check_ids(served, list(bias or ()), param="logit_bias")
    return {t: b for t, b in (bias or {}).items() if b}
