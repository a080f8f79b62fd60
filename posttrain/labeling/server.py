"""`posttrain label serve`: the labeling web app (FastAPI) over the SQLite store.

    posttrain label serve --samples samples.jsonl --db labels.sqlite [--host 127.0.0.1 --port 8000]

`/` and `/static/*` are the page shell (plain HTML, JS and CSS from posttrain/labeling/static);
every other route needs `Authorization: Bearer <token>` (docs/labeling.md lists them), checked
before the body is read (posttrain/web/guard.py: also the body limit and the Host allow-list).
A labeler labels or skips only items the server showed them, and a submission is answered only
after its transaction is committed. Model output reaches the page as JSON and is put on screen with
`textContent`; the Content-Security-Policy header forbids inline scripts as a second line of defence.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from posttrain.errors import UserError
from posttrain.labeling import queue
from posttrain.labeling.configs import LabelServeConfig
from posttrain.labeling.dbfile import Busy
from posttrain.labeling.quality import admin_stats
from posttrain.labeling.store import Conflict, Labeler, Store
from posttrain.labeling.submission import BadSubmission, check_ids, check_label, check_skip
from posttrain.web.guard import Guard, Refusal, TextJSONRoute, bearer_token

log = logging.getLogger(__name__)

STATIC = FilePath(__file__).parent / "static"
MAX_BODY = 2**20  # bytes; a submission holds at most two texts of 20,000 characters (submission.MAX_TEXT)
PAGE_SHELL = ("/", "/favicon.ico")  # and /static/*: open to all, as the page must load before its token
LABEL_ID = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite's INTEGER range: larger ids cannot exist
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class NotFound(UserError):
    """Something the request names does not exist, or is not the caller's to see (HTTP 404)."""


class Forbidden(UserError):
    """The caller's token is valid but not allowed here (HTTP 403)."""


STATUS = {BadSubmission: 422, Conflict: 409, NotFound: 404, Forbidden: 403, Busy: 503}
RETRY_AFTER = "2"  # seconds, on a 503: another process holds the database's write lock


def create_app(
    store: Store, labelers_per_item: int = 1, gold_rate: float = 0.1, hosts: Collection[str] | None = None
) -> FastAPI:
    """`hosts`: the Host names answered besides localhost, 127.0.0.1 and ::1; None for any (tokens guard the
    API)."""
    app = FastAPI(title="posttrain labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = TextJSONRoute
    _add_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_api(app, store, labelers_per_item, gold_rate)
    app.add_middleware(
        Guard,
        error=lambda r: {"error": r.message},
        max_body=MAX_BODY,
        hosts=hosts,
        authenticate=token_check(store),
    )
    return app


def token_check(store: Store):
    """Every request but the page shell's needs a labeler's token; the labeler rides along in the request's
    state."""

    async def authenticate(scope) -> Refusal | None:
        if scope["path"] in PAGE_SHELL or scope["path"].startswith("/static/"):
            return None
        token = bearer_token(scope)
        try:
            found = await run_in_threadpool(store.labeler_for, token) if token else None
        except Busy as e:  # only a lock that blocks readers too (another process's exclusive locking mode)
            return Refusal(503, str(e), "busy", {"Retry-After": RETRY_AFTER})
        if found is None:
            return Refusal(
                401,
                "a valid token is needed: send 'Authorization: Bearer <token>' "
                "(`posttrain label add-labeler` prints one)",
                "invalid_token",
                {"WWW-Authenticate": "Bearer"},
            )
        scope.setdefault("state", {})["labeler"] = found
        return None

    return authenticate


def _add_api(app: FastAPI, store: Store, labelers_per_item: int, gold_rate: float) -> None:
    async def labeler(request: Request) -> Labeler:
        return request.state.labeler

    def admin(me: Labeler = Depends(labeler)) -> Labeler:
        if not me.admin:
            raise Forbidden(
                "this view is for admins; an admin token comes from `posttrain label add-labeler --admin`"
            )
        return me

    @app.get("/api/me")
    def me(me: Labeler = Depends(labeler)) -> dict:
        return {"name": me.name, "admin": me.admin, "progress": queue.progress(store, me, labelers_per_item)}

    @app.get("/api/next")
    def next_item(me: Labeler = Depends(labeler)) -> dict:
        item = queue.next_item(store, me, labelers_per_item, gold_rate)
        shown = (
            None
            if item is None
            else {
                "id": item["id"],
                "prompt": item["prompt"],
                "completions": [{"text": c["text"]} for c in item["completions"]],
            }
        )
        return {"item": shown, "progress": queue.progress(store, me, labelers_per_item)}

    @app.post("/api/labels")
    def submit_label(body: dict = Body(...), me: Labeler = Depends(labeler)) -> dict:
        submission, item_id = check_ids(body)
        label = check_label(body, len(_item(store, item_id)["completions"]))
        _check_served(store, me, item_id)
        return _ack(store.save_label(me, item_id, submission, "ranked", label, labelers_per_item))

    @app.post("/api/skips")
    def submit_skip(body: dict = Body(...), me: Labeler = Depends(labeler)) -> dict:
        submission, item_id = check_ids(body)
        _item(store, item_id)
        skip = check_skip(body)
        _check_served(store, me, item_id)
        return _ack(store.save_label(me, item_id, submission, "skipped", skip))

    @app.get("/api/labels")
    def my_labels(me: Labeler = Depends(labeler)) -> dict:
        return {"labels": store.labels(me)}

    @app.get("/api/labels/{label_id}")
    def my_label(label_id: LABEL_ID, me: Labeler = Depends(labeler)) -> dict:
        found = store.label(me, label_id)
        if found is None:
            raise NotFound(f"you have no label {label_id}")
        return found

    @app.get("/api/admin/stats")
    def stats(_: Labeler = Depends(admin)) -> dict:
        return admin_stats(store.items(), store.labels(), labelers_per_item)


def serve(store: Store, cfg: LabelServeConfig) -> None:
    import uvicorn

    app = create_app(store, cfg.labelers_per_item, cfg.gold_rate, hosts=cfg.hosts())
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")


def _item(store: Store, item_id: str) -> dict:
    item = store.item(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r}; take item ids from GET /api/next")
    return item


def _check_served(store: Store, me: Labeler, item_id: str) -> None:
    """A labeler labels or skips only the items GET /api/next gave them."""
    if not store.was_served(me, item_id):
        raise Forbidden(f"item {item_id!r} was not served to you; label the items GET /api/next gives you")


def _ack(saved: dict) -> dict:
    return {
        "saved": True,
        "label_id": saved["id"],
        "submission_id": saved["submission"],
        "item_id": saved["item_id"],
    }


def _add_error_handlers(app: FastAPI) -> None:
    """Every error is `{"error": "<what was wrong and what to do>"}` with its HTTP status."""

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError) -> JSONResponse:
        status = next((code for cls, code in STATUS.items() if isinstance(e, cls)), 400)
        headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
        return JSONResponse({"error": str(e)}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        if first.get("type") == "json_invalid":
            return JSONResponse(
                {"error": f"the request body is not valid JSON: {first['ctx']['error']}"}, 400
            )
        loc = [str(x) for x in first.get("loc", ())]
        if loc[:1] == ["body"]:
            message = "the request body must be a JSON object (docs/labeling.md lists the fields)"
        else:
            message = f"{' '.join(loc) or 'request'}: {first.get('msg', 'invalid')}"
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse(
            {"error": f"internal error ({type(e).__name__}); the server's log has the details"}, 500
        )
