"""Both HTTP apps against hostile clients, through real HTTP on 127.0.0.1.

Each server runs in a subprocess, so the peak memory measured is its own: a body is refused before
it is read (a chunked 1 GiB post moves the peak by less than 32 MiB), credentials are checked before
any body byte, errors are JSON whatever went wrong, a huge prompt is refused by its length alone,
and the labeling API takes labels only for items it served to the labeler, with submission ids scoped
per labeler. (Host names: test_server_hosts.py.)
"""

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from posttrain.labeling.server import create_app as labeling_app
from posttrain.labeling.store import Store
from posttrain.serving.server import BackgroundServer
from tests.tiny import BASE

KEY = "hostile-test-key"
MODEL = "base-small-seed0"
MiB = 2**20

SERVE = """
import sys, uvicorn
from posttrain.serving.app import create_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import load_served
served = load_served(sys.argv[1])
app = create_app(served, Engine(served).start(), FeedbackLog(sys.argv[2]), api_key=sys.argv[3])
uvicorn.run(app, fd=int(sys.argv[4]), log_level="warning")
"""
LABEL = """
import sys, uvicorn
from posttrain.labeling.server import create_app
from posttrain.labeling.store import Store
uvicorn.run(create_app(Store(sys.argv[1])), fd=int(sys.argv[2]), log_level="warning")
"""


class Server:
    """A server subprocess listening on a socket bound here: requests queue until it accepts them."""

    def __init__(self, route: str, script: str, *args: str):
        self.route = route  # a POST route that takes a JSON body
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, *args, str(listener.fileno())],
            pass_fds=[listener.fileno()],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        listener.close()

    def peak_rss(self) -> int:
        """The process's peak resident memory so far (VmHWM), in bytes."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(30)
        return self.proc.stderr.read()


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    feedback = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
    server = Server("/v1/chat/completions", SERVE, str(BASE), str(feedback), KEY)
    server.auth = {"Authorization": f"Bearer {KEY}"}
    warm = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    r = httpx.post(server.url + "/v1/chat/completions", json=warm, headers=server.auth, timeout=120)
    assert r.status_code == 200, r.text
    yield server
    assert "Traceback" not in server.stop()


@pytest.fixture(scope="module")
def labeling(tmp_path_factory):
    db = tmp_path_factory.mktemp("labels") / "labels.sqlite"
    store = Store(db)
    store.add_items([item(f"s{i}") for i in range(20)], "s.jsonl")
    server = Server("/api/labels", LABEL, str(db))
    server.store = store
    server.auth = {"Authorization": f"Bearer {labeler(store)}"}
    assert httpx.get(server.url + "/api/me", headers=server.auth, timeout=60).status_code == 200
    yield server
    assert "Traceback" not in server.stop()


def item(item_id: str, k: int = 2) -> dict:
    return {
        "id": item_id,
        "prompt": [{"role": "user", "content": f"Question {item_id}?"}],
        "completions": [{"text": f"answer {j}", "source": "model:m"} for j in range(k)],
        "meta": {},
    }


def labeler(store: Store) -> str:
    """A new labeler's token."""
    return store.add_labeler(f"labeler{len(store.labelers())}")


def ranking(item_id: str, submission: str) -> dict:
    return {"submission_id": submission, "item_id": item_id, "ranking": [[1], [0]], "likert": [3, 5]}


def message(r: httpx.Response) -> str:
    """The error message, in either app's format: {"error": {"message", ...}} or {"error": "..."}."""
    error = r.json()["error"]
    return error["message"] if isinstance(error, dict) else error


def gibibyte(sent: list[int]):
    """1 GiB in 1 MiB chunks, made as the client sends them (chunked: no Content-Length); counts what was
    taken."""
    chunk = b"x" * MiB
    for _ in range(1024):
        sent[0] += len(chunk)
        yield chunk


def post_gibibyte(url: str, headers: dict) -> tuple[int | None, int]:
    """(status, bytes sent) of a chunked 1 GiB POST; status None when the server closed the connection
    first."""
    sent = [0]
    try:
        r = httpx.post(
            url, content=gibibyte(sent), headers={"Content-Type": "application/json", **headers}, timeout=120
        )
    except httpx.TransportError:
        return None, sent[0]
    assert r.headers["content-type"] == "application/json", r.text[:200]
    return r.status_code, sent[0]


def raw_request(url: str, head: str) -> tuple[int, dict]:
    """Send only a request's head (its body never comes): the server must answer without waiting for it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the refusal closes the connection
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.fixture(params=["serving", "labeling"])
def server(request) -> Server:
    return request.getfixturevalue(request.param)


# --- bodies: refused before they are read ----------------------------------------------------
@pytest.mark.parametrize("authorized", [False, True], ids=["no-key", "key"])
def test_a_chunked_gibibyte_leaves_the_peak_memory_where_it_was(server, authorized):
    before = server.peak_rss()
    status, sent = post_gibibyte(server.url + server.route, server.auth if authorized else {})
    grown = server.peak_rss() - before
    assert status in (None, 413 if authorized else 401), status
    assert grown < 32 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB after {sent / MiB:.0f} MiB sent"
    assert sent < 256 * MiB, f"the client had to send {sent / MiB:.0f} MiB before the server stopped it"


def test_credentials_are_checked_before_the_body_arrives(server):
    status, body = raw_request(
        server.url,
        f"POST {server.route} HTTP/1.1\nHost: 127.0.0.1\n"
        "Content-Type: application/json\nContent-Length: 1000\n",
    )
    assert status == 401 and body["error"]


def test_a_content_length_over_the_limit_is_refused_at_once(server):
    token = server.auth["Authorization"]
    status, body = raw_request(
        server.url,
        f"POST {server.route} HTTP/1.1\nHost: 127.0.0.1\nAuthorization: {token}\nContent-Length: {10**12}\n",
    )
    assert status == 413 and body["error"]


def test_a_stream_completes_while_hostile_requests_are_refused(serving):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 40,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream(
        "POST", serving.url + "/v1/chat/completions", json=body, headers=serving.auth, timeout=120
    ) as stream:
        lines = stream.iter_lines()
        first = next(lines)
        assert post_gibibyte(serving.url + "/v1/chat/completions", {})[0] in (None, 401)
        assert post_gibibyte(serving.url + "/v1/completions", serving.auth)[0] in (None, 413)
        events = [first, *(line for line in lines if line)]
    assert events[-1] == "data: [DONE]" and len(events) > 5
    assert all(e.startswith("data: {") and "error" not in json.loads(e[6:]) for e in events[:-1])


def test_a_huge_prompt_is_refused_before_it_is_tokenised_and_health_answers_meanwhile(serving):
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "word " * 1_000_000}]}  # 5 MB
    answer = {}

    def post_huge():
        start = time.monotonic()
        answer["response"] = httpx.post(
            serving.url + "/v1/chat/completions", json=huge, headers=serving.auth, timeout=120
        )
        answer["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=post_huge)
    thread.start()
    waits = []
    while thread.is_alive():
        start = time.monotonic()
        assert httpx.get(serving.url + "/health", headers=serving.auth, timeout=60).status_code == 200
        waits.append(time.monotonic() - start)
        time.sleep(0.05)
    thread.join()
    assert answer["response"].json()["error"]["code"] == "context_length_exceeded"
    # tokenising 5 MB took 20 s of CPU here; its length alone says it cannot fit (issue 28)
    assert answer["seconds"] < 3, f"the huge prompt took {answer['seconds']:.1f} s to refuse"
    assert max(waits) < 1.0, f"/health waited {max(waits):.1f} s while the prompt was refused"


# --- errors: JSON, whatever went wrong ------------------------------------------------------
@pytest.mark.parametrize(
    "raw", [b'"\\ud800"', b'"\\udfff tail"', b'"\xff\xfe"'], ids=["high", "low", "not-utf8"]
)
def test_text_that_is_not_text_is_a_400(server, raw):
    body = (
        b'{"model": "%s", "messages": [{"role": "user", "content": %s}], "max_tokens": 2}'
        % (MODEL.encode(), raw)
        if server.route.startswith("/v1/")
        else b'{"submission_id": "x", "item_id": %s}' % raw
    )
    r = httpx.post(
        server.url + server.route,
        content=body,
        headers={"Content-Type": "application/json", **server.auth},
        timeout=60,
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/json", r.text
    assert "not valid JSON" in message(r) and ("surrogate" in message(r) or "UTF-8" in message(r))


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/nope"),
        ("DELETE", "/v1/models"),
        ("GET", "/api/nope"),
        ("DELETE", "/api/me"),
        ("GET", "/static/nope.js"),
    ],
)
def test_unknown_routes_and_methods_are_json(server, method, path):
    r = httpx.request(method, server.url + path, headers=server.auth, timeout=30)
    assert r.status_code in (404, 405) and r.headers["content-type"] == "application/json"
    assert r.json()["error"]


def test_an_unexpected_failure_is_a_json_500_without_the_traceback(tmp_path):
    class Broken(Store):
        def labels(self, *args, **kwargs):
            raise RuntimeError(f"disk on fire under {tmp_path}")

    store = Broken(tmp_path / "labels.sqlite")
    auth = {"Authorization": f"Bearer {labeler(store)}"}
    with BackgroundServer(labeling_app(store)) as srv:
        r = httpx.get(srv.url + "/api/labels", headers=auth, timeout=30)
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] and str(tmp_path) not in r.text and "Traceback" not in r.text


# --- the labeling API: ids, served items, submission ids ------------------------------------
@pytest.mark.parametrize("label_id", ["99999999999999999999", str(2**63), "-1", "0"])
def test_an_out_of_range_label_id_is_a_json_4xx(labeling, label_id):
    r = httpx.get(f"{labeling.url}/api/labels/{label_id}", headers=labeling.auth, timeout=30)
    assert r.status_code in (404, 422) and r.headers["content-type"] == "application/json"
    assert r.json()["error"]


@pytest.mark.parametrize("item_id", ["9" * 200, str(2**70), "s0\x00", "../../etc/passwd"])
def test_an_odd_item_id_is_a_json_4xx(labeling, item_id):
    r = httpx.post(
        labeling.url + "/api/labels", json=ranking(item_id, "odd"), headers=labeling.auth, timeout=30
    )
    assert r.status_code in (404, 422) and r.json()["error"]


@pytest.mark.parametrize("path, extra", [("/api/labels", {}), ("/api/skips", {"reason": "cannot judge"})])
def test_labels_and_skips_only_for_items_served_to_the_labeler(labeling, path, extra):
    ana, bo = ({"Authorization": f"Bearer {labeler(labeling.store)}"} for _ in range(2))
    shown = httpx.get(labeling.url + "/api/next", headers=ana, timeout=30).json()["item"]["id"]
    never_shown = next(i["id"] for i in labeling.store.items() if i["id"] != shown)
    for who, item_id in [(ana, never_shown), (bo, shown)]:
        r = httpx.post(labeling.url + path, json=ranking(item_id, "s1") | extra, headers=who, timeout=30)
        assert r.status_code == 403 and "was not served to you" in r.json()["error"], r.text
    r = httpx.post(labeling.url + path, json=ranking(shown, "s1") | extra, headers=ana, timeout=30)
    assert r.status_code == 200 and r.json()["item_id"] == shown


def test_submission_ids_are_scoped_per_labeler(labeling):
    ana, bo = ({"Authorization": f"Bearer {labeler(labeling.store)}"} for _ in range(2))
    acks = []
    for who in (ana, bo):
        shown = httpx.get(labeling.url + "/api/next", headers=who, timeout=30).json()["item"]["id"]
        acks.append(
            httpx.post(labeling.url + "/api/labels", json=ranking(shown, "same-id"), headers=who, timeout=30)
        )
    assert [r.status_code for r in acks] == [200, 200], [r.text for r in acks]
    assert acks[0].json()["item_id"] != acks[1].json()["item_id"]
    retry = httpx.post(
        labeling.url + "/api/labels",
        json=ranking(acks[1].json()["item_id"], "same-id"),
        headers=bo,
        timeout=30,
    )
    assert retry.json() == acks[1].json()  # a retry is the label already stored
    shown = httpx.get(labeling.url + "/api/next", headers=ana, timeout=30).json()["item"]["id"]
    reused = httpx.post(labeling.url + "/api/labels", json=ranking(shown, "same-id"), headers=ana, timeout=30)
    assert (
        reused.status_code == 409 and acks[0].json()["item_id"] in reused.json()["error"]
    )  # ana's own label


OLD_LABELS = """CREATE TABLE labels (
    id INTEGER PRIMARY KEY, submission TEXT UNIQUE NOT NULL, item_id TEXT NOT NULL REFERENCES items(id),
    labeler_id INTEGER NOT NULL REFERENCES labelers(id), \
kind TEXT NOT NULL CHECK (kind IN ('ranked', 'skipped')),
    body TEXT NOT NULL, seconds REAL, submitted TEXT NOT NULL, UNIQUE (item_id, labeler_id))"""


def test_a_database_from_before_per_labeler_submission_ids_is_migrated(tmp_path):
    db = tmp_path / "labels.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(OLD_LABELS)
    store = Store(db)
    store.add_items([item("a"), item("b")], "s.jsonl")
    for name in ("ana", "bo"):
        store.add_labeler(name)
    ana, bo = store.labelers()
    store.save_label(ana, "a", "x", "skipped", {"reason": "r"})
    store = Store(db)  # opened again: the migration ran once
    store.save_label(bo, "b", "x", "skipped", {"reason": "r"})
    assert [(x["labeler"], x["submission"]) for x in store.labels()] == [("ana", "x"), ("bo", "x")]
