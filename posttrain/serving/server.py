"""Run the API with uvicorn: in the foreground (`posttrain serve`) or on a background thread (tests,
bench)."""

from __future__ import annotations

import functools
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, RemoteCode, option
from posttrain.errors import UserError
from posttrain.serving.feedback import check_writable

API_KEY_ENV = "POSTTRAIN_API_KEY"

# How long a connection may hold the server's attention without a request to show for it (docs/serving.md):
HEAD_TIMEOUT = 10.0  # s from connecting, or from the last response, to a request's last header line
KEEP_ALIVE = 5.0  # s an idle connection stays open between requests (uvicorn's default)
MAX_HEAD = 16 * 1024  # bytes of request line and headers before a 400 (h11's default, written down here)


@dataclass(kw_only=True)
class ServeConfig(Options, RemoteCode):
    model: str = option(
        help="what to serve: a checkpoint or HF model directory, a .gguf file, or smollm2-135m",
        required=True,
        positional=True,
    )
    host: str = option("127.0.0.1", help="address to listen on; 127.0.0.1 keeps the server on this machine")
    port: int = option(8000, help="TCP port to listen on (0 picks a free one)", ge=0, le=65535)
    api_key: str | None = option(
        None,
        help=f"require 'Authorization: Bearer KEY' on every route; None: ${API_KEY_ENV} if set, else no key",
    )
    feedback: Path = option(
        Path("feedback.jsonl"), help="append-only JSONL file for POST /v1/feedback records"
    )
    name: str | None = option(
        None, help="the model id clients pass as `model`; None: MODEL's directory or file name"
    )
    max_batch: int = option(32, help="most sequences decoded together by the generation worker", ge=1)
    max_queue: int = option(256, help="most requests waiting for the worker; more get HTTP 503", ge=1)
    allowed_host: list[str] | None = option(
        None,
        repeat=True,
        help="a Host name clients may use besides localhost, 127.0.0.1 and "
        "--host; without an API key other names get HTTP 421 (a defence "
        "against DNS rebinding); with a key, any name unless this is given",
    )

    def resolve_key(self, environ) -> None:
        """Take the key from $POSTTRAIN_API_KEY when --api-key is not given (keeps it out of `ps`)."""
        if self.api_key is None:
            self.api_key = environ.get(API_KEY_ENV) or None

    def check(self) -> None:
        super().check()
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("--api-key is empty; give a key or leave the option out")
        check_writable(self.feedback)

    def hosts(self) -> list[str] | None:
        """The Host names answered besides the loopback ones; None for any (a key guards the server)."""
        if self.api_key and not self.allowed_host:
            return None
        return [self.host, *(self.allowed_host or ())]


class BackgroundServer:
    """uvicorn on a thread, listening on an already-bound socket so the port is known before it starts."""

    def __init__(
        self,
        app,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        head_timeout: float = HEAD_TIMEOUT,
        keep_alive: float = KEEP_ALIVE,
    ):
        import uvicorn

        self.socket = bind(host, port)
        self.host, self.port = host, self.socket.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn_config(app, "warning", head_timeout=head_timeout, keep_alive=keep_alive)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port} ({e.strerror}); pick another --port or --host"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_forever(app, sock: socket.socket) -> None:
    """Run uvicorn in the foreground on `sock` until Ctrl-C (uvicorn shuts down gracefully)."""
    import uvicorn

    try:
        uvicorn.Server(uvicorn_config(app, "info")).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once it has shut down cleanly
        pass


def uvicorn_config(
    app, log_level: str, *, head_timeout: float = HEAD_TIMEOUT, keep_alive: float = KEEP_ALIVE
):
    """uvicorn's settings with the connection limits above; h11 always (HeadTimedH11 is h11's protocol)."""
    import uvicorn

    from posttrain.serving.connection import HeadTimedH11

    return uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="off",
        http=functools.partial(HeadTimedH11, head_timeout=head_timeout),
        timeout_keep_alive=keep_alive,
        h11_max_incomplete_event_size=MAX_HEAD,
    )
