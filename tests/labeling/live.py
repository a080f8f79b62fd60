"""The labeling app on a real loopback port, a client for it, and the items and submissions its tests send
(tests/labeling/test_labeling_server.py and test_labeling_concurrency.py)."""

import contextlib
import threading
import time

import httpx
import uvicorn

from posttrain.labeling.server import create_app
from posttrain.labeling.store import Store


def samples(n: int, k: int = 3) -> list[dict]:
    return [
        {
            "id": f"s{i}",
            "prompt": [{"role": "user", "content": f"Question {i}?"}],
            "completions": [{"text": f"answer {i}.{j}", "source": "model:m"} for j in range(k)],
            "meta": {},
        }
        for i in range(n)
    ]


def ranking_body(item_id: str, submission: str, k: int = 3) -> dict:
    return {
        "submission_id": submission,
        "item_id": item_id,
        "ranking": [[k - 1 - j] for j in range(k)],
        "likert": [3] * k,
        "flags": [[]] * k,
        "order_touched": True,
    }


@contextlib.contextmanager
def running(store: Store, **options):
    """The app on a free loopback port, in a thread of this process."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, **options), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the labeling server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def client(url: str, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30
    )
