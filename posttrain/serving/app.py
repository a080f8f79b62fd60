"""The OpenAI-compatible HTTP API (FastAPI): routes, the API key, errors, server-sent events.

    GET  /health                 liveness, the served model, queued requests
    GET  /v1/models              the one served model
    POST /v1/chat/completions    chat, streamed or not; n, temperature, top_p, max_tokens, stop, seed,
                                 logit_bias, logprobs and top_logprobs
    POST /v1/completions         plain-text continuation of prompts (text or token ids); echo and logprobs
                                 score a prompt
    POST /v1/feedback            store a rating, flags or a preferred answer (feedback.py's format)

Every error, also one that happens mid-stream, is `{"error": {"message", "type", "param", "code"}}`.
Before a route sees a request, `Guard` (posttrain/web/guard.py) checks its Host header against
`hosts`, its `Authorization: Bearer KEY` when an API key is set, and its body size (MAX_BODY) and
pace (BODY_TIMEOUT), reading no body byte for a refusal. A field the server does not implement is a
400 naming it (protocol.py). Text too long for the context by its length alone is refused untokenised,
and tokenising runs on a worker thread, so a huge prompt does not stall the others (prompts.py).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Collection

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from posttrain.errors import UserError
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackError, FeedbackLog, feedback_record
from posttrain.serving.formats import ChatFormat, CompletionFormat, TokenText
from posttrain.serving.model import ServedModel
from posttrain.serving.prompts import chat_rows, check_model, completion_rows
from posttrain.serving.protocol import APIError, ChatRequest, CompletionRequest, FeedbackRequest
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
    """POST /v1/chat/completions and /v1/completions: planned into rows (`prompts.py`), then answered by
    `responses.respond`."""
    names = TokenText(served.tokenizer)

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest):
        plan = await chat_rows(served, req)
        top = (req.top_logprobs or 0) if req.logprobs else None
        fmt = ChatFormat(served.name, req.include_usage, names, top)
        return await respond(engine, req, plan.rows, plan.prompt_tokens, fmt)

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        plan = await completion_rows(served, req)
        fmt = CompletionFormat(served.name, req.include_usage, names, req.logprobs, plan.echo)
        return await respond(engine, req, plan.rows, plan.prompt_tokens, fmt)


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


ROUTES = (
    "the routes are GET /health, GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, "
    "POST /v1/completions and POST /v1/feedback"
)
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


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, e: APIError):
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return JSONResponse(validation_error(e).body(), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        where = f"{request.method} {request.url.path}"
        message = f"Invalid URL ({where}); {ROUTES}" if e.status_code == 404 else f"{where}: {e.detail}"
        return JSONResponse(APIError(e.status_code, message).body(), status_code=e.status_code)

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
    if first.get("type") == "extra_forbidden":
        detail = "unknown field; the server does not implement it (docs/serving.md lists the fields it takes)"
    where = ".".join(loc)
    return APIError(400, f"{where}: {detail}" if where else detail, param=param, code="invalid_value")
