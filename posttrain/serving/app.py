"""The OpenAI-compatible HTTP API (FastAPI): routes, the API key, errors, server-sent events.

    GET  /health                 liveness, the served model, queued requests
    GET  /v1/models              the one served model
    POST /v1/chat/completions    chat, streamed or not; n, temperature, top_p, max_tokens, stop, seed
    POST /v1/completions         plain-text continuation of a prompt (or a list of prompts)
    POST /v1/feedback            store a rating, flags or a preferred answer (feedback.py's format)

Every error, also one that happens mid-stream, is `{"error": {"message", "type", "param", "code"}}`.
Before a route sees a request, `Guard` (posttrain/web/guard.py) checks its Host header against
`hosts`, its `Authorization: Bearer KEY` when an API key is set, and its body size (MAX_BODY) and
pace (BODY_TIMEOUT), reading no body byte for a refusal. Text too long for the context by its length
alone is refused untokenised, and tokenising runs on a worker thread, so a huge prompt does not
stall the others.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from posttrain.errors import UserError
from posttrain.generation.streaming import Sampling
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackError, FeedbackLog, feedback_record
from posttrain.serving.model import ServedModel
from posttrain.serving.protocol import (
    APIError,
    ChatFormat,
    ChatRequest,
    CompletionFormat,
    CompletionRequest,
    FeedbackRequest,
    SamplingRequest,
)
from posttrain.serving.responses import respond
from posttrain.web.guard import BODY_TIMEOUT, Guard, Refusal, TextJSONRoute, bearer_token

log = logging.getLogger(__name__)


def create_app(
    served: ServedModel,
    engine: Engine,
    feedback: FeedbackLog,
    *,
    api_key: str | None = None,
    hosts: Collection[str] | None = (),
    body_timeout: float = BODY_TIMEOUT,
) -> FastAPI:
    """`hosts`: the Host names answered besides localhost, 127.0.0.1 and ::1; None for any. `body_timeout`:
    seconds from a request's head to its body's last byte (408 after)."""
    app = FastAPI(title="posttrain", docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = TextJSONRoute
    app.add_middleware(
        Guard,
        error=lambda r: APIError(r.status, r.message, code=r.code).body(),
        max_body=MAX_BODY,
        hosts=hosts,
        authenticate=None if api_key is None else key_check(api_key),
        body_timeout=body_timeout,
    )
    add_error_handlers(app)
    add_model_routes(app, served, engine)
    add_generation_routes(app, served, engine)
    add_feedback_route(app, served, feedback)
    return app


def add_model_routes(app: FastAPI, served: ServedModel, engine: Engine) -> None:
    """GET /health, /v1/models and /v1/models/{id}."""

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": served.name, "queued": engine.queued}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card(served)]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        check_model(served, model_id)
        return model_card(served)


def add_generation_routes(app: FastAPI, served: ServedModel, engine: Engine) -> None:
    """POST /v1/chat/completions and /v1/completions: checked, tokenised on a worker thread, then answered by
    `responses.respond`."""

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest):
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
        limit = req.max_completion_tokens or req.max_tokens
        rows = plan_rows(served, req, [prompt], limit, param="messages")
        return await respond(engine, req, rows, len(prompt), ChatFormat(served.name, req.include_usage))

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        check_model(served, req.model)
        for p in req.prompt:
            check_length(served, len(p), param="prompt")
        prompts = await run_in_threadpool(lambda: [served.text_prompt(p) for p in req.prompt])
        if any(not p for p in prompts):
            raise APIError(400, "prompt: an empty prompt gives the model nothing to continue", param="prompt")
        rows = plan_rows(served, req, prompts, req.max_tokens, param="prompt")
        return await respond(
            engine, req, rows, sum(map(len, prompts)), CompletionFormat(served.name, req.include_usage)
        )


def add_feedback_route(app: FastAPI, served: ServedModel, feedback: FeedbackLog) -> None:
    """POST /v1/feedback: one record appended to the feedback log."""

    @app.post("/v1/feedback")
    def store_feedback(req: FeedbackRequest):  # sync: the fsync runs in FastAPI's thread pool
        try:
            record = feedback_record(
                model=req.model or served.name,
                messages=req.messages,
                completion=req.completion,
                rating=req.rating,
                flags=req.flags,
                preferred=req.preferred,
                notes=req.notes,
            )
        except FeedbackError as e:
            raise APIError(400, str(e).removeprefix("feedback: "), param=e.field) from None
        try:
            return feedback.append(record)
        except UserError as e:  # the file cannot be written: the server's problem, not the request's
            raise APIError(500, str(e), type="server_error", code="feedback_not_stored") from None


MAX_BODY = 8 * 2**20  # bytes; far more than any context holds, little enough to refuse junk early


def key_check(api_key: str):
    async def authenticate(scope) -> Refusal | None:
        if hmac.compare_digest(bearer_token(scope).encode(), api_key.encode()):
            return None
        return Refusal(
            401,
            "missing or incorrect API key; send 'Authorization: Bearer KEY' with the key "
            "the server was started with",
            "invalid_api_key",
        )

    return authenticate


def model_card(served: ServedModel) -> dict:
    return {
        "id": served.name,
        "object": "model",
        "created": 0,
        "owned_by": "posttrain",
        "context_length": served.context_length,
    }


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


def plan_rows(
    served: ServedModel, req: SamplingRequest, prompts: list[list[int]], max_tokens: int | None, *, param: str
) -> list[tuple[list[int], Sampling]]:
    """One row per (prompt, choice); max_tokens defaults to, and is capped by, the room left in the
    context."""
    rows = []
    for prompt in prompts:
        room = served.context_length - len(prompt)
        if room < 1:
            raise APIError(
                400,
                f"the prompt is {len(prompt)} tokens, but this model's context is "
                f"{served.context_length} tokens; shorten the {param}",
                param=param,
                code="context_length_exceeded",
            )
        for i in range(req.n):
            seed = None if req.seed is None else req.seed + i
            rows.append(
                (
                    prompt,
                    Sampling(
                        temperature=1.0 if req.temperature is None else req.temperature,
                        top_p=1.0 if req.top_p is None else req.top_p,
                        max_tokens=min(max_tokens or room, room),
                        seed=seed,
                    ),
                )
            )
    return rows


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse(validation_error(e).body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        kind = "not_found" if e.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            APIError(e.status_code, f"{request.method} {request.url.path}: {e.detail}", type=kind).body(),
            status_code=e.status_code,
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception):
        log.exception("request failed")
        return JSONResponse(
            APIError(500, f"internal error: {type(e).__name__}", type="server_error").body(), status_code=500
        )


def validation_error(e: RequestValidationError) -> APIError:
    """The first problem of a request that does not fit the schema, with the field as `param`."""
    first = e.errors()[0]
    if first.get("type") == "json_invalid":
        return APIError(
            400, f"the request body is not valid JSON: {first['ctx']['error']}", code="invalid_json"
        )
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    # a union field (str | list) reports which branch failed; the field's name is what a person needs
    param = loc[0] if loc else None
    detail = first.get("msg", "invalid value").removeprefix("Value error, ")
    where = ".".join(loc)
    return APIError(400, f"{where}: {detail}" if where else detail, param=param, code="invalid_value")
