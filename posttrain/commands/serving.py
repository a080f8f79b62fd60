"""`posttrain chat` and `posttrain serve`: talk to a model in the terminal or over the OpenAI API."""

from __future__ import annotations

import os

from posttrain.commands import command
from posttrain.serving.repl import ChatConfig
from posttrain.serving.server import ServeConfig


@command("chat", ChatConfig)
def chat(cfg: ChatConfig) -> int:
    """talk to a model in the terminal (streamed, multi-turn, feedback)

    Chat with a model: replies stream as they are generated; slash commands edit the conversation,
    change sampling and record feedback (/help lists them).

    example: posttrain chat runs/demo/sft --temperature 0.7 --feedback feedback.jsonl
    """
    from posttrain.serving.feedback import FeedbackLog
    from posttrain.serving.model import load_served
    from posttrain.serving.repl import run_repl
    from posttrain.serving.session import Session, Settings

    # ChatConfig is a Settings: cfg.check() already applied the ranges /set applies
    settings = Settings(
        temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=cfg.seed
    )
    served = load_served(cfg.model, trust_remote_code=cfg.trust_remote_code)
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass
    return run_repl(Session(served, FeedbackLog(cfg.feedback), settings, system=cfg.system))


@command("serve", ServeConfig)
def serve(cfg: ServeConfig) -> int:
    """serve a model over an OpenAI-compatible HTTP API

    Serve a model with the OpenAI API: /v1/chat/completions, /v1/completions, /v1/models, /health, and
    /v1/feedback for ratings (docs/serving.md).

    example: posttrain serve runs/demo/sft --port 8000 --api-key secret
    (then: OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='secret'))
    """
    from posttrain.serving.app import create_app
    from posttrain.serving.engine import Engine
    from posttrain.serving.feedback import FeedbackLog
    from posttrain.serving.model import load_served
    from posttrain.serving.server import bind, serve_forever

    cfg.resolve_key(os.environ)
    cfg.check()  # again: the key may have come from the environment
    sock = bind(cfg.host, cfg.port)  # fail on a taken port before loading the model
    served = load_served(cfg.model, name=cfg.name, trust_remote_code=cfg.trust_remote_code)
    engine = Engine(served, max_batch=cfg.max_batch, max_queue=cfg.max_queue).start()
    app = create_app(served, engine, FeedbackLog(cfg.feedback), api_key=cfg.api_key, hosts=cfg.hosts())
    host, port = sock.getsockname()[:2]
    print(
        f"serving {served.name!r} (context {served.context_length} tokens) at http://{host}:{port}/v1; "
        f"feedback to {cfg.feedback}; API key {'required' if cfg.api_key else 'not required'}",
        flush=True,
    )
    if host not in ("127.0.0.1", "::1", "localhost") and not cfg.api_key:
        print(
            f"warning: listening on {host} without an API key; anyone who can reach this port can use the "
            f"model by the Host names localhost, {', '.join(cfg.hosts())} (others get 421; add names with "
            "--allowed-host)",
            flush=True,
        )
    try:
        serve_forever(app, sock)
    finally:
        engine.close()
    return 0
