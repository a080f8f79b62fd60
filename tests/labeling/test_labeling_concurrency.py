"""The labeling server under contention, through real HTTP on 127.0.0.1: many labelers opening the
page at once, and a database whose write lock another process holds (issue 28, mechanism 3)."""

import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from posttrain.labeling.dbfile import BUSY_SECONDS
from posttrain.labeling.store import Store
from tests.labeling.live import client, ranking_body, running, samples

CLIENTS = 20
ROUNDS = 3  # each client asks for at most this many items: the loop is bounded


def test_twenty_labelers_at_once_never_get_the_same_item_under_one_labeler_per_item(tmp_path):
    store = Store(tmp_path / "labels.sqlite")
    store.add_items(samples(2 * CLIENTS), "s.jsonl")
    tokens = [store.add_labeler(f"labeler{i}") for i in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)

    def label_items(token: str) -> list[tuple[str, int]]:
        """(item id, status of the label sent for it) for each item this labeler was served."""
        done = []
        with client(url, token) as http:
            start.wait(30)  # every client asks at the same moment
            for _ in range(ROUNDS):
                item = http.get("/api/next").json()["item"]
                if item is None:
                    break
                r = http.post("/api/labels", json=ranking_body(item["id"], f"{token}-{item['id']}"))
                done.append((item["id"], r.status_code))
        return done

    with running(store, labelers_per_item=1, gold_rate=0) as url, ThreadPoolExecutor(CLIENTS) as pool:
        served = [x for done in pool.map(label_items, tokens) for x in done]
    to_how_many = Counter(item_id for item_id, _ in served)
    assert len(to_how_many) == len(served) == 2 * CLIENTS, f"served twice: {sorted(to_how_many.items())}"
    assert all(status == 200 for _, status in served)
    stored = Counter(label["item_id"] for label in store.labels())
    assert set(stored.values()) == {1} and len(stored) == 2 * CLIENTS


def test_a_label_beyond_the_items_labelers_is_refused(tmp_path):
    """An item whose first labeler left it open past the hold goes to a second labeler; once one of them
    has ranked it, the other's ranking is one more than --labelers-per-item asks for and is refused."""
    store = Store(tmp_path / "labels.sqlite")
    store.add_items(samples(1), "s.jsonl")
    ana, bo = store.add_labeler("ana"), store.add_labeler("bo")
    with running(store, labelers_per_item=1, gold_rate=0) as url:
        ana_http, bo_http = client(url, ana), client(url, bo)
        assert ana_http.get("/api/next").json()["item"]["id"] == "s0"
        assert bo_http.get("/api/next").json()["item"] is None  # ana holds it
        store.write("UPDATE served SET served = '2000-01-01T00:00:00.000+00:00'")  # ana's hold ran out
        assert bo_http.get("/api/next").json()["item"]["id"] == "s0"
        assert bo_http.post("/api/labels", json=ranking_body("s0", "bo-1")).status_code == 200
        late = ana_http.post("/api/labels", json=ranking_body("s0", "ana-1"))
        assert late.status_code == 409 and "already has the 1 ranking" in late.json()["error"]
        assert ana_http.get("/api/next").json()["item"] is None  # s0 is done: not shown to her again
        skip = ana_http.post("/api/skips", json={"submission_id": "ana-2", "item_id": "s0", "reason": "gone"})
        assert skip.status_code == 200  # a skip is not a ranking
    assert [x["labeler"] for x in store.labels(kind="ranked")] == ["bo"]


def test_a_held_write_lock_gives_503_soon_and_leaves_reads_alone(tmp_path):
    store = Store(tmp_path / "labels.sqlite")
    store.add_items(samples(3), "s.jsonl")
    ana, bo = store.add_labeler("ana"), store.add_labeler("bo")
    with running(store, labelers_per_item=1, gold_rate=0) as url:
        ana_http, bo_http = client(url, ana), client(url, bo)
        first = ana_http.get("/api/next").json()["item"]["id"]
        holder = sqlite3.connect(store.path, isolation_level=None)  # another process's connection, in effect
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE items SET added = added")
        try:
            with ThreadPoolExecutor(2) as pool:
                took = time.monotonic()
                waiting = pool.submit(bo_http.get, "/api/next")  # needs the write lock
                time.sleep(0.2)
                reads = [ana_http.get(path) for path in ("/api/me", "/api/labels", "/api/next")]
                read_seconds = time.monotonic() - took
                refused = waiting.result()
                refused_seconds = time.monotonic() - took
        finally:
            holder.rollback()
            holder.close()
        assert [r.status_code for r in reads] == [200, 200, 200] and read_seconds < 3, read_seconds  # < 5 s
        assert reads[2].json()["item"]["id"] == first  # a reload of an open item needs no write lock
        assert refused.status_code == 503 and refused_seconds < BUSY_SECONDS + 3, refused_seconds
        assert int(refused.headers["retry-after"]) >= 1
        assert "another process holds its write lock" in refused.json()["error"]
        assert str(store.path) in refused.json()["error"]
        assert bo_http.get("/api/next").json()["item"] is not None  # the lock is gone: served again
