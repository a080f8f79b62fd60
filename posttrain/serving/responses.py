"""How the API answers a generation request (`app.py`): its rows submitted to the engine, then one JSON
body with every choice (`collect`) or server-sent events as tokens arrive (`stream`). A client that goes
away, or a batch that fails, cancels the request's rows.
"""

from __future__ import annotations

import asyncio
import json

from fastapi.responses import StreamingResponse

from posttrain.serving.engine import Busy, Engine, Event, Job
from posttrain.serving.formats import ChatFormat, Choice, usage
from posttrain.serving.protocol import APIError, CompletionRequest, SamplingRequest


async def respond(engine: Engine, req: SamplingRequest, rows, prompt_tokens: int, fmt: ChatFormat):
    if len(rows) > engine.max_batch:
        raise APIError(
            400,
            f"the request asks for {len(rows)} sequences (prompts x n); this server decodes at most "
            f"{engine.max_batch} at once (--max-batch); lower n",
            param="n",
        )
    loop, events = asyncio.get_running_loop(), asyncio.Queue()
    job = Job(
        rows,
        req.stop or [],
        emit=lambda ev: loop.call_soon_threadsafe(events.put_nowait, ev),
        eos_logprobs=isinstance(req, CompletionRequest),
    )
    try:
        engine.submit(job)
    except Busy as e:
        raise APIError(
            503, f"the server is busy: {e}", type="server_error", code="server_overloaded"
        ) from None
    if req.stream:
        return StreamingResponse(
            stream(job, events, len(rows), prompt_tokens, fmt, req.include_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    choices, completion_tokens = await collect(job, events, len(rows))
    return fmt.body(choices, usage(prompt_tokens, completion_tokens))


async def collect(job: Job, events: asyncio.Queue, n: int) -> tuple[list[Choice], int]:
    """A whole response: each choice's text, finish reason and log-probabilities, and the tokens
    generated."""
    choices = [Choice() for _ in range(n)]
    try:
        while (ev := await events.get()).kind != "done":
            choice = choices[ev.index]
            if ev.kind == "error":
                raise APIError(500, ev.text, type="server_error", code="generation_failed")
            if ev.kind == "delta":
                choice.text += ev.text
                choice.logprobs += ev.logprobs or []
            elif ev.kind == "prompt":
                choice.prompt_logprobs = ev.logprobs
            elif ev.kind == "finish":
                choice.reason = ev.finish_reason
    except BaseException:
        job.cancelled = True  # the client went away or the batch failed: stop generating its rows
        raise
    return choices, sum(ev.completion_tokens)


async def stream(
    job: Job, events: asyncio.Queue, n: int, prompt_tokens: int, fmt: ChatFormat, include_usage: bool
):
    """Server-sent events: role (or echoed prompt) chunks, content chunks, a finish chunk per choice, usage
    if asked, [DONE]."""
    done = False
    try:
        for i in range(n):
            if (chunk := fmt.start_chunk(i)) is not None:
                yield sse(chunk)
        while True:
            ev: Event = await events.get()
            if ev.kind == "prompt" and (chunk := fmt.prompt_chunk(ev.index, ev.logprobs)) is not None:
                yield sse(chunk)
            elif ev.kind == "delta":
                yield sse(fmt.text_chunk(ev.index, ev.text, ev.logprobs))
            elif ev.kind == "finish":
                yield sse(fmt.finish_chunk(ev.index, ev.finish_reason))
            elif ev.kind == "error":
                yield sse(APIError(500, ev.text, type="server_error", code="generation_failed").body())
                done = True
                return
            elif ev.kind == "done":
                if include_usage:
                    yield sse(fmt.usage_chunk(usage(prompt_tokens, sum(ev.completion_tokens))))
                yield "data: [DONE]\n\n"
                done = True
                return
    finally:
        job.cancelled = not done  # the client went away: stop generating its rows


def sse(data: dict) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
