"""Schemathesis over both apps' OpenAPI schemas: requests generated from the schema, valid and
invalid, with credentials and without, never get a 5xx, and every error is a JSON body in the
app's format. The labeling API takes its submissions as a free-form JSON object (submission.py
checks them field by field), so Hypothesis also sends submissions of any shape. The apps run
in-process (ASGI); the model is the small test checkpoint with its context cut to 48 tokens, so
no generated request decodes for long."""

import json
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from posttrain.labeling.server import create_app as labeling_app
from posttrain.labeling.store import Store
from posttrain.labeling.submission import FLAGS
from posttrain.serving.app import create_app as serving_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel, load_served
from tests.tiny import BASE

KEY = "fuzz-key"
FUZZ = settings(
    max_examples=30, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
# schemathesis parametrizes from a schema it has at import (its fixture-based loader predates pytest 9)
WORK = Path(tempfile.mkdtemp(prefix="posttrain-fuzz-"))

loaded = load_served(str(BASE))
served = ServedModel(loaded.model, loaded.tokenizer, "m", context_length=48)
engine = Engine(served, max_batch=32)
# the test client calls itself "testserver": an allowed name, so the Host check is on and passed
serving = serving_app(served, engine, FeedbackLog(WORK / "feedback.jsonl"), api_key=KEY, hosts=["testserver"])
store = Store(WORK / "labels.sqlite")
store.add_items(
    [
        {
            "id": f"s{i}",
            "prompt": [{"role": "user", "content": f"Q{i}?"}],
            "completions": [{"text": "a"}, {"text": "b"}],
            "meta": {},
        }
        for i in range(3)
    ],
    "s.jsonl",
)
TOKEN = store.add_labeler("fuzz", admin=True)
for shown in store.items():
    store.serve(store.labeler_for(TOKEN), shown["id"])
labeling = labeling_app(store)


def schema(app):
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.app = app
    return loaded


SERVING, LABELING = schema(serving), schema(labeling)


@pytest.fixture(scope="module", autouse=True)
def generation_worker():
    engine.start()
    yield
    engine.close()


def check(response: schemathesis.Response, error_fields) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"][0] == "application/json", response.text
        error_fields(response.json()["error"])


def openai_error(error) -> None:
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error


def labeling_error(error) -> None:
    assert isinstance(error, str) and error, error


@SERVING.parametrize()
@FUZZ
def test_serving_with_the_key(case):
    if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
        case.body["model"] = served.name  # past the model check, into tokenising and generation
    check(case.call(headers={"Authorization": f"Bearer {KEY}"}), openai_error)


@SERVING.parametrize()
@FUZZ
def test_serving_without_a_key(case):
    response = case.call()
    check(response, openai_error)
    assert response.status_code == 401


@LABELING.parametrize()
@FUZZ
def test_labeling_with_a_token(case):
    check(case.call(headers={"Authorization": f"Bearer {TOKEN}"}), labeling_error)


@LABELING.parametrize()
@FUZZ
def test_labeling_without_a_token(case):
    response = case.call()
    check(response, labeling_error)
    assert response.status_code == 401


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SUBMISSION = st.fixed_dictionaries(
    {"submission_id": st.text(max_size=4) | JSON, "item_id": st.sampled_from(["s0", "s1", "s2"]) | JSON},
    optional={
        "ranking": st.lists(st.lists(st.integers(-1, 2) | JSON, max_size=3), max_size=3) | JSON,
        "likert": st.lists(st.integers(0, 8) | JSON, max_size=3) | JSON,
        "flags": st.lists(st.lists(st.sampled_from(FLAGS) | JSON, max_size=2), max_size=3) | JSON,
        **{name: JSON for name in ("notes", "better_answer", "reason", "none_acceptable", "order_touched")},
    },
)


@given(path=st.sampled_from(["/api/labels", "/api/skips"]), body=SUBMISSION)
@settings(FUZZ, max_examples=150)
def test_labeling_submissions_of_any_shape(path, body):
    with TestClient(labeling, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        sent = client.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )  # inf too
        check(schemathesis.Response.from_any(sent), labeling_error)
