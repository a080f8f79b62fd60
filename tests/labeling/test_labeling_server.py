"""The labeling server through real HTTP: tokens on every API route, labelers kept apart, JSON
errors, and no acknowledged label lost when the server is killed with SIGKILL mid-stream."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from posttrain.labeling.store import Store
from tests.labeling.live import client, ranking_body, running, samples


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("labels") / "labels.sqlite")
    store.add_items(samples(4), "s.jsonl")
    tokens = {name: store.add_labeler(name) for name in ("ana", "bo")}
    tokens["admin"] = store.add_labeler("admin", admin=True)
    with running(store, labelers_per_item=2, gold_rate=0) as url:
        yield url, tokens


def test_the_page_shell_is_open_and_every_api_route_needs_a_token(app):
    url, _ = app
    anonymous = client(url)
    page = anonymous.get("/")
    assert page.status_code == 200 and "posttrain labeling" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert anonymous.get("/static/app.js").status_code == 200
    for method, path in [
        ("GET", "/api/me"),
        ("GET", "/api/next"),
        ("GET", "/api/labels"),
        ("GET", "/api/labels/1"),
        ("POST", "/api/labels"),
        ("POST", "/api/skips"),
        ("GET", "/api/admin/stats"),
    ]:
        for who in (anonymous, client(url, "not-a-token")):
            r = who.request(method, path, json={})
            assert r.status_code == 401, (method, path)
            assert "Bearer <token>" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"


def test_one_labeler_cannot_read_anothers_labels(app):
    url, tokens = app
    ana, bo, admin = client(url, tokens["ana"]), client(url, tokens["bo"]), client(url, tokens["admin"])
    item = ana.get("/api/next").json()["item"]
    assert "source" not in item["completions"][0]  # labelers rank blind
    ack = ana.post("/api/labels", json=ranking_body(item["id"], "ana-1", 3) | {"notes": "ana's secret note"})
    assert ack.status_code == 200 and ack.json()["saved"] is True
    label_id = ack.json()["label_id"]
    assert ana.get(f"/api/labels/{label_id}").json()["notes"] == "ana's secret note"
    assert [x["id"] for x in ana.get("/api/labels").json()["labels"]] == [label_id]
    assert bo.get("/api/labels").json() == {"labels": []}
    stolen = bo.get(f"/api/labels/{label_id}")
    assert stolen.status_code == 404 and "secret" not in stolen.text
    replay = bo.post("/api/labels", json=ranking_body(item["id"], "ana-1", 3))  # ana's item and submission id
    assert replay.status_code == 403 and "secret" not in replay.text
    assert bo.get("/api/admin/stats").status_code == 403
    assert "path label_id" in bo.get("/api/labels/abc").json()["error"]
    stats = admin.get("/api/admin/stats").json()
    assert stats["progress"]["ranked"] == 1 and stats["agreement"]["instructgpt"] == 0.726


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/labels", "not json", 422, "must be a JSON object"),
        ("/api/labels", {"item_id": "s1"}, 422, "field 'submission_id' must be a non-empty string"),
        ("/api/labels", {"submission_id": "x", "item_id": "nope"}, 404, "no item 'nope'"),
        (
            "/api/labels",
            {"submission_id": "x", "item_id": "s1", "ranking": [[0], [1]], "likert": [1, 1, 1]},
            422,
            "field 'ranking' leaves out completion 2",
        ),
        (
            "/api/skips",
            {"submission_id": "x", "item_id": "s1", "reason": "  "},
            422,
            "field 'reason' is empty",
        ),
    ],
)
def test_bad_submissions_are_json_errors(app, path, body, status, message):
    url, tokens = app
    bo = client(url, tokens["bo"])
    r = bo.post(path, content=body) if isinstance(body, str) else bo.post(path, json=body)
    assert r.status_code == status and message in r.json()["error"]


def test_a_second_label_for_the_same_item_is_a_conflict_and_a_retry_is_not(app):
    url, tokens = app
    bo = client(url, tokens["bo"])
    item_id = bo.get("/api/next").json()["item"]["id"]
    first = bo.post(
        "/api/skips", json={"submission_id": "bo-skip", "item_id": item_id, "reason": "cannot judge"}
    )
    retry = bo.post(
        "/api/skips", json={"submission_id": "bo-skip", "item_id": item_id, "reason": "cannot judge"}
    )
    assert first.status_code == retry.status_code == 200 and first.json() == retry.json()
    again = bo.post("/api/labels", json=ranking_body(item_id, "bo-rank"))
    assert again.status_code == 409 and f"already labeled item {item_id!r}" in again.json()["error"]


SERVER = """
import sys, uvicorn
from posttrain.labeling.server import create_app
from posttrain.labeling.store import Store
from tests.labeling.live import client, running, samples, ranking_body
uvicorn.run(create_app(Store(sys.argv[1])), fd=int(sys.argv[2]), log_level="warning")
"""


def test_sigkill_while_submissions_stream_in_loses_no_acknowledged_label(tmp_path):
    db = tmp_path / "labels.sqlite"
    store = Store(db)
    store.add_items(samples(300), "s.jsonl")
    tokens = [store.add_labeler(f"labeler{i}") for i in range(3)]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(db), str(listener.fileno())],
        pass_fds=[listener.fileno()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listener.close()  # the server holds its own copy; connections queue until it accepts
    acked: list[str] = []
    lock = threading.Lock()

    def submit_all(token: str, who: int) -> None:
        with client(url, token) as http:
            for i in range(300):
                submission = f"{who}-{i}"
                try:
                    item = http.get("/api/next").json()["item"]  # labels come only for items served
                    if item is None:
                        return
                    r = http.post("/api/labels", json=ranking_body(item["id"], submission))
                except httpx.HTTPError:
                    return  # the server is gone
                assert r.status_code == 200, r.text
                with lock:
                    acked.append(submission)

    threads = [threading.Thread(target=submit_all, args=(t, n)) for n, t in enumerate(tokens)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline and server.poll() is None:
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    for t in threads:
        t.join(30)
    assert server.returncode == -signal.SIGKILL and len(acked) >= 60, f"only {len(acked)} acknowledged"
    stored = {x["submission"] for x in Store(db).labels()}
    assert not set(acked) - stored, f"acknowledged but lost: {sorted(set(acked) - stored)}"
    assert len(acked) < 300, "every submission finished before the kill; the test killed nothing in flight"
