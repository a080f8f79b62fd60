"""What both HTTP apps (the OpenAI server, the labeling app) check before a request reaches a route.

`Guard` is ASGI middleware around the whole app, so a refusal reads nothing it does not need:

1. the Host header, when an allow-list is on: a web page elsewhere cannot reach a server on
   127.0.0.1 through a name of its own that it points there (DNS rebinding); 421 otherwise;
2. a Content-Length over the limit: 413 at once;
3. the credentials, through the app's `authenticate`: 401 before a byte of the body is read;
4. the body, counted as it arrives (a chunked body has no Content-Length): 413 once it passes the limit,
   408 when it has not all arrived `body_timeout` seconds after the head (a client trickling a body
   holds a connection and the route's task for as long as it likes otherwise).

A refusal is the app's own JSON error and closes the connection, so the client stops sending.
`TextJSONRoute` makes a JSON body that is not text (bytes that are not UTF-8, a lone UTF-16
surrogate such as "\\ud800") a malformed body, answered 400 like any other, rather than a 500
wherever the string is first encoded (the tokenizer, SQLite).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# s from the request head to the body's last byte: 8 MiB, the largest body taken, at 150 KB/s
BODY_TIMEOUT = 60.0


@dataclass
class Refusal:
    status: int
    message: str
    code: str
    headers: dict[str, str] = field(default_factory=dict)


class Guard:
    """`error` renders a refusal as the app's JSON error body; `hosts`: the Host names answered besides
    the loopback ones, None for any; `authenticate` returns a refusal, or None to let the request in."""

    def __init__(
        self,
        app,
        *,
        error: Callable[[Refusal], dict],
        max_body: int,
        hosts: Collection[str] | None = None,
        authenticate: Callable[[dict], Awaitable[Refusal | None]] | None = None,
        body_timeout: float = BODY_TIMEOUT,
    ):
        self.app, self.error, self.max_body, self.authenticate = app, error, max_body, authenticate
        self.body_timeout = body_timeout
        self.hosts = None if hosts is None else LOOPBACK | {host_name(h) for h in hosts}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check_headers(Headers(scope=scope))
        if refusal is None and self.authenticate is not None:
            refusal = await self.authenticate(scope)
        if refusal is not None:
            await self.refuse(refusal, scope, receive, send)
            return
        await self.app(scope, *self.counted(scope, receive, send))

    def check_headers(self, headers: Headers) -> Refusal | None:
        host = host_name(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return Refusal(
                421,
                f"this server does not answer to the host name {host!r} (a defence against DNS "
                f"rebinding); reach it as 127.0.0.1 or localhost, or start it with --allowed-host "
                f"{host or 'NAME'}",
                "host_not_allowed",
            )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return Refusal(
                413,
                f"the request body is {int(length)} bytes; the limit is {self.max_body}",
                "request_too_large",
            )
        return None

    def counted(self, scope, receive, send):
        """The app's receive and send: past the size or time limit the 413 or 408 is answered here, the app is
        told the client left, and what it sends after that is dropped."""
        received, started, refused, complete = 0, False, False, False
        deadline = asyncio.get_running_loop().time() + self.body_timeout

        async def receive_counted() -> dict:
            nonlocal received, refused, complete
            if refused:
                return {"type": "http.disconnect"}
            if complete:  # the body is in; what is left to wait for is the client leaving
                return await receive()
            try:
                message = await asyncio.wait_for(
                    receive(), max(0.0, deadline - asyncio.get_running_loop().time())
                )
            except TimeoutError:
                return await refuse(
                    Refusal(
                        408,
                        f"the request body did not arrive within {self.body_timeout:g} s "
                        "of its headers; send it all at once",
                        "request_timeout",
                    )
                )
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received <= self.max_body:
                return message
            return await refuse(
                Refusal(
                    413, f"the request body is over the limit of {self.max_body} bytes", "request_too_large"
                )
            )

        async def refuse(refusal: Refusal) -> dict:
            nonlocal refused
            refused = True
            if not started:
                await self.refuse(refusal, scope, receive, send)
            return {"type": "http.disconnect"}

        async def send_unless_refused(message: dict) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(message)

        return receive_counted, send_unless_refused

    async def refuse(self, refusal: Refusal, scope, receive, send) -> None:
        headers = {**refusal.headers, "Connection": "close"}  # the client may be mid-body: stop it there
        await JSONResponse(self.error(refusal), refusal.status, headers)(scope, receive, send)


def host_name(value: str) -> str:
    """The name in a Host header (or an --allowed-host value), lower case, without port or brackets.

    >>> host_name("[::1]:8000"), host_name("LocalHost:80"), host_name("example.org"), host_name("[::1")
    ('::1', 'localhost', 'example.org', '')
    """
    try:
        return urlsplit(f"//{value}").hostname or ""
    except ValueError:
        return ""


def bearer_token(scope) -> str:
    """The TOKEN of an `Authorization: Bearer TOKEN` header; "" when there is none."""
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class TextJSONRoute(APIRoute):
    """A route whose JSON body must be text (the module docstring says why)."""

    def get_route_handler(self):
        handle = super().get_route_handler()

        async def handle_text(request: Request):
            return await handle(TextJSONRequest(request.scope, request.receive))

        return handle_text


class TextJSONRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = loads_text(await self.body())
        return self._json


def loads_text(body: bytes):
    r"""`json.loads`, but bytes that are not UTF-8 and lone surrogates are JSON errors (a pair is a
    character).

    >>> loads_text(b'["\\ud83d\\ude00"]')
    ['😀']
    >>> loads_text(b'["\\ud800"]')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    json.decoder.JSONDecodeError: a lone UTF-16 surrogate (...) is not text; ...
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise json.JSONDecodeError(f"byte {e.start} is not UTF-8; send the body in UTF-8", "", 0) from None
    value = json.loads(text)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # only a lone surrogate fails to encode
    except UnicodeEncodeError as e:
        raise json.JSONDecodeError(
            f"a lone UTF-16 surrogate ({e.object[e.start]!r}) is not text; send characters "
            "as UTF-8 or as \\u escapes of surrogate pairs",
            "",
            0,
        ) from None
    return value
