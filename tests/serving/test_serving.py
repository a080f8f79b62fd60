"""The OpenAI-compatible server over real HTTP on 127.0.0.1, driven by the official `openai` client."""

import asyncio
import json

import httpx
import openai
import pytest
import torch

from posttrain.labeling.intake import items_from_feedback
from posttrain.serving.app import create_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FIELDS, FeedbackLog
from posttrain.serving.model import ServedModel, load_served
from posttrain.serving.server import BackgroundServer
from tests.tiny import BASE

KEY = "test-key-123"
HI = [{"role": "user", "content": "Hi"}]


class Faulty:
    """The model, but its forward pass can be told to fail after a few calls (a mid-stream failure)."""

    def __init__(self, model):
        self.model, self.fail_after = model, None

    def __call__(self, **inputs):
        if self.fail_after is not None:
            self.fail_after -= 1
            if self.fail_after < 0:
                self.fail_after = None
                raise RuntimeError("simulated failure in the forward pass")
        return self.model(**inputs)


@pytest.fixture(scope="module")
def served():
    loaded = load_served(str(BASE))
    return ServedModel(Faulty(loaded.model), loaded.tokenizer, loaded.name, loaded.context_length)


@pytest.fixture(scope="module")
def greedy(served):
    """The model's own greedy answer to HI in 30 tokens, by transformers' `generate` (no server, no engine):
    what every greedy request below must get, whatever the weights say."""
    ids = torch.tensor([served.chat_prompt(HI)])
    with torch.no_grad():
        out = served.model.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=30,
            eos_token_id=None,
            pad_token_id=served.tokenizer.pad_token_id,
        )
    text = served.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert len(text) > 40  # long enough for the stop sequences below
    return text


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    feedback = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
    engine = Engine(served, max_batch=32).start()
    with BackgroundServer(create_app(served, engine, FeedbackLog(feedback), api_key=KEY)) as srv:
        srv.feedback = feedback
        yield srv
    engine.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=60)


def chat(client, **kw):
    return client.chat.completions.create(
        **{"model": "base-small-seed0", "messages": HI, "temperature": 0, "max_tokens": 30, **kw}
    )


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list().data] == ["base-small-seed0"]
    health = httpx.get(server.url + "/health", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert health["status"] == "ok" and health["model"] == "base-small-seed0"


def test_a_plain_chat_completion_is_the_models_greedy_answer(client, served, greedy):
    r = chat(client)
    assert r.object == "chat.completion" and len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == greedy
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(served.chat_prompt(HI))
    assert r.usage.completion_tokens == 30 and r.usage.total_tokens == r.usage.prompt_tokens + 30


def test_streaming_sends_role_content_finish_and_the_same_text(client):
    chunks = list(chat(client, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant" and not chunks[0].choices[0].delta.content
    content = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(content) > 5 and all(content)  # streamed piece by piece
    assert chunks[-1].choices[0].finish_reason == "length" and not chunks[-1].choices[0].delta.content
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all(c.usage is None for c in chunks)
    assert "".join(content) == chat(client).choices[0].message.content


def test_include_usage_adds_a_last_chunk_with_usage(client, served):
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}, max_tokens=7))
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == 7
    assert last.usage.prompt_tokens == len(served.chat_prompt(HI))
    assert all(c.usage is None for c in chunks[:-1]) and chunks[-2].choices[0].finish_reason == "length"


def test_the_raw_stream_ends_with_done(server):
    body = {"model": "base-small-seed0", "messages": HI, "max_tokens": 3, "stream": True}
    r = httpx.post(server.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line for line in r.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)


def test_n_choices_with_a_seed_are_reproducible(client):
    first = chat(client, n=3, temperature=1.0, seed=7, max_tokens=20)
    again = chat(client, n=3, temperature=1.0, seed=7, max_tokens=20)
    texts = [c.message.content for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert texts == [c.message.content for c in again.choices]
    assert len(set(texts)) > 1  # each choice draws its own sample
    streamed = {}
    for chunk in chat(client, n=3, temperature=1.0, seed=7, max_tokens=20, stream=True):
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + (choice.delta.content or "")
    assert [streamed[i] for i in range(3)] == texts


def test_stop_sequences_cut_before_the_stop(client, greedy):
    stop = greedy[12:16]  # four characters inside the answer: it ends before their first occurrence
    r = chat(client, stop=[stop, "never in the text"])
    assert (
        r.choices[0].message.content == greedy[: greedy.index(stop)] and r.choices[0].finish_reason == "stop"
    )
    stop = greedy[30:33]
    pieces = [c.choices[0].delta.content or "" for c in chat(client, stop=stop, stream=True)]
    assert "".join(pieces) == greedy[: greedy.index(stop)]


def test_completions_plain_and_batched(client):
    r = client.completions.create(
        model="base-small-seed0", prompt="The capital of Keia is", temperature=0, max_tokens=3
    )
    plain = r.choices[0].text
    assert r.object == "text_completion" and plain.strip()
    r = client.completions.create(
        model="base-small-seed0",
        prompt=["The capital of Keia is", "Once upon a"],
        n=2,
        temperature=0,
        max_tokens=4,
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text != r.choices[2].text == r.choices[3].text
    assert r.choices[0].text.startswith(plain)  # greedy: 4 tokens go on from the same 3
    pieces = [
        c.choices[0].text
        for c in client.completions.create(
            model="base-small-seed0",
            prompt="The capital of Keia is",
            temperature=0,
            max_tokens=3,
            stream=True,
        )
    ]
    assert "".join(pieces) == plain


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"temperature": 5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 0}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
    ],
)
def test_invalid_parameters_are_400_with_the_field_named(client, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, **kw)
    assert e.value.status_code == 400
    error = e.value.body
    assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]


def test_a_prompt_longer_than_the_context_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, messages=[{"role": "user", "content": "word " * 600}])
    assert e.value.body["code"] == "context_length_exceeded" and "512" in e.value.body["message"]


def test_more_sequences_than_a_batch_holds_is_400(server, served, tmp_path):
    engine = Engine(served, max_batch=2).start()
    small = create_app(served, engine, FeedbackLog(tmp_path / "fb.jsonl"))
    with BackgroundServer(small) as srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as e:
            chat(client, n=3)
        assert e.value.body["param"] == "n" and "--max-batch" in e.value.body["message"]
        assert len(chat(client, n=2).choices) == 2
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            content=b"x" * (9 * 2**20),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    engine.close()


def test_an_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        chat(client, model="gpt-9")
    assert e.value.body["code"] == "model_not_found"


def test_malformed_json_is_400(server):
    r = httpx.post(
        server.url + "/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "route",
    [
        "GET /health",
        "GET /v1/models",
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /v1/feedback",
    ],
)
def test_a_wrong_or_missing_key_is_401_on_every_route(server, route):
    method, path = route.split()
    for headers in ({"Authorization": "Bearer wrong"}, {}, {"Authorization": KEY}):
        r = httpx.request(method, server.url + path, headers=headers, json={})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_the_openai_client_with_a_wrong_key_gets_an_authentication_error(server):
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.AuthenticationError):
        chat(bad)


def test_a_failure_mid_stream_is_an_error_event_and_the_server_goes_on(client, served, greedy):
    served.model.fail_after = 3
    stream = chat(client, stream=True, max_tokens=20)
    received = []
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            received.append(chunk)
    assert len(received) >= 2 and "simulated failure" in e.value.message
    served.model.fail_after = 0
    with pytest.raises(openai.InternalServerError) as e:
        chat(client)
    assert e.value.body["type"] == "server_error"
    assert chat(client).choices[0].message.content == greedy


def test_a_client_that_leaves_mid_stream_does_not_hurt_the_server(server, client, greedy):
    body = {
        "model": "base-small-seed0",
        "messages": HI,
        "max_tokens": 400,
        "temperature": 1.0,
        "stream": True,
    }
    with httpx.stream(
        "POST",
        server.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ) as r:
        first = next(r.iter_lines())
    assert first.startswith("data: ")  # left after the first event
    assert chat(client).choices[0].message.content == greedy


def test_feedback_is_appended_in_the_documented_format(server):
    auth = {"Authorization": f"Bearer {KEY}"}
    body = {
        "messages": HI,
        "completion": "Q: What should I do?",
        "rating": "down",
        "flags": ["fails_task"],
        "preferred": "Hello! How can I help?",
        "notes": "ignored the greeting",
    }
    r = httpx.post(server.url + "/v1/feedback", json=body, headers=auth)
    assert r.status_code == 200, r.text
    stored = json.loads(server.feedback.read_text().splitlines()[-1])
    assert list(stored) == list(FIELDS) and stored == r.json()
    assert (
        stored["model"] == "base-small-seed0" and stored["id"].startswith("fb-") and "T" in stored["created"]
    )
    assert {k: stored[k] for k in body} == body
    bad = httpx.post(server.url + "/v1/feedback", json={**body, "rating": "meh"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "rating"
    bad = httpx.post(
        server.url + "/v1/feedback",
        json={**body, "messages": [{"role": "assistant", "content": "x"}]},
        headers=auth,
    )
    assert bad.status_code == 400 and "end with a user turn" in bad.json()["error"]["message"]
    bad = httpx.post(server.url + "/v1/feedback", json={**body, "completion": " "}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "completion"
    assert len(server.feedback.read_text().splitlines()) == 1
    # the labeling tools read the file as it is: the preferred answer against the model's
    (item,) = items_from_feedback(server.feedback).items
    assert [c["text"] for c in item["completions"]] == [body["completion"], body["preferred"]]
    assert [c["source"] for c in item["completions"]] == ["model:base-small-seed0", "human:feedback"]


def test_fifty_concurrent_streams_all_complete(server):
    async def one(client, i):
        text, reasons = "", []
        stream = await client.chat.completions.create(
            model="base-small-seed0",
            messages=[{"role": "user", "content": f"Question {i}: what is {i} + 1?"}],
            max_tokens=16,
            temperature=1.0,
            seed=i,
            stream=True,
        )
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                reasons += [choice.finish_reason] if choice.finish_reason else []
        return text, reasons

    async def run():
        async with openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=120
        ) as client:
            return await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(50))), timeout=180)

    results = asyncio.run(run())
    assert len(results) == 50
    assert all(text and reasons in (["stop"], ["length"]) for text, reasons in results)
