"""No request field is ignored in silence: what the server does not implement is a 400 naming the field and
saying what is supported, what has no effect is accepted, and docs/serving.md lists every field."""

import re

import httpx
import pytest

from posttrain.serving.protocol import ChatRequest, CompletionRequest, Message, StreamOptions
from posttrain.serving.unsupported import NO_EFFECT, UNSUPPORTED
from tests.tiny import ROOT

HI = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}
# a value for each unsupported field that asks for something
ASKING = {
    "frequency_penalty": 0.5,
    "presence_penalty": -1,
    "tools": [TOOL],
    "tool_choice": "required",
    "functions": [{"name": "add"}],
    "function_call": {"name": "add"},
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"},
    "web_search_options": {},
    "reasoning_effort": "low",
    "verbosity": "low",
    "suffix": "!",
    "best_of": 3,
    "name": "bob",
    "tool_calls": [{"id": "1", "type": "function", "function": {"name": "add", "arguments": "{}"}}],
    "tool_call_id": "1",
    "refusal": "no",
    "annotations": [{"type": "url_citation"}],
}
ON_MESSAGE = {"name", "tool_calls", "tool_call_id", "refusal", "annotations"}
ON_COMPLETIONS = {"suffix", "best_of", "presence_penalty"}  # presence_penalty: both routes take it


def post(server, route: str, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/{route}", json={"model": "tiny", **body}, timeout=60)


def error(r: httpx.Response) -> dict:
    assert r.status_code == 400, r.text[:300]
    return r.json()["error"]


@pytest.mark.parametrize("field", sorted(ASKING))
def test_an_unsupported_field_asking_for_something_is_400_saying_what_is_supported(tiny_server, field):
    if field in ON_MESSAGE:
        r = post(tiny_server, "chat/completions", messages=[{**HI[0], field: ASKING[field]}], max_tokens=1)
        assert error(r)["param"] == "messages" and UNSUPPORTED[field][1] in error(r)["message"]
        return
    route = "completions" if field in ON_COMPLETIONS else "chat/completions"
    body = {"prompt": "Hi"} if route == "completions" else {"messages": HI}
    e = error(post(tiny_server, route, **body, max_tokens=1, **{field: ASKING[field]}))
    assert e["param"] == field and e["message"] == f"{field}: {UNSUPPORTED[field][1]}"
    assert e["type"] == "invalid_request_error" and e["code"] == "invalid_value"


def test_fields_with_no_effect_or_asking_for_nothing_are_accepted(tiny_server):
    chat = {f: None for f in NO_EFFECT} | dict(
        messages=[{**HI[0], "name": None}, {"role": "assistant", "content": "Hello", "refusal": None}, *HI],
        max_tokens=2,
        user="u-1",
        metadata={"run": "x"},
        store=False,
        parallel_tool_calls=True,
        frequency_penalty=0,
        presence_penalty=0.0,
        tools=[],
        tool_choice="none",
        response_format={"type": "text"},
        modalities=["text"],
    )
    assert post(tiny_server, "chat/completions", **chat).status_code == 200
    text = dict(prompt="Hi", max_tokens=2, user="u-1", best_of=1, suffix="", frequency_penalty=0)
    assert post(tiny_server, "completions", **text).status_code == 200
    stream = {"include_usage": True, "include_obfuscation": False}
    assert post(tiny_server, "completions", **text, stream=True, stream_options=stream).status_code == 200


def test_an_unknown_field_is_400_naming_it(tiny_server):
    e = error(post(tiny_server, "chat/completions", messages=HI, top_k=5))
    assert e["param"] == "top_k" and "unknown field" in e["message"] and "docs/serving.md" in e["message"]
    e = error(
        post(tiny_server, "completions", prompt="Hi", metadata={})
    )  # a chat field, not a completions one
    assert e["param"] == "metadata"


@pytest.mark.parametrize(
    "message, says",
    [
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]},
            "only text parts",
        ),
        ({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}, "part 1"),
        ({"role": "user", "content": None}, "content is null"),
        ({"role": "tool", "content": "3", "tool_call_id": "1"}, "role 'tool' is not supported"),
    ],
)
def test_messages_other_than_text_are_400_saying_only_text_is_supported(tiny_server, message, says):
    e = error(post(tiny_server, "chat/completions", messages=[message, *HI]))
    assert e["param"] == "messages" and says in e["message"]


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("chat/completions", {"messages": HI, "top_logprobs": 2}, "top_logprobs"),
        ("chat/completions", {"messages": HI, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ("completions", {"prompt": "Hi", "logprobs": 6}, "logprobs"),
        ("completions", {"prompt": "Hi", "max_tokens": 0}, "max_tokens"),
        ("chat/completions", {"messages": HI, "max_tokens": 0}, "max_tokens"),
        ("completions", {"prompt": [5, 4096]}, "prompt"),
        ("completions", {"prompt": [[5, -1]]}, "prompt"),
        ("completions", {"prompt": []}, "prompt"),
        ("completions", {"prompt": [[]]}, "prompt"),
        ("completions", {"prompt": ["a"] * 17}, "prompt"),
        ("completions", {"prompt": [5] * 513, "echo": True, "max_tokens": 0}, "prompt"),
        ("chat/completions", {"messages": HI, "logit_bias": {"4096": 1}}, "logit_bias"),
        ("chat/completions", {"messages": HI, "logit_bias": {"a": 1}}, "logit_bias"),
        ("chat/completions", {"messages": HI, "logit_bias": {"5": 101}}, "logit_bias"),
        ("chat/completions", {"messages": HI, "logit_bias": {str(i): 1 for i in range(1025)}}, "logit_bias"),
    ],
)
def test_log_probability_prompt_and_bias_values_out_of_range_are_400(tiny_server, route, body, param):
    e = error(post(tiny_server, route, **body))
    assert e["param"] == param and param in e["message"]


def test_a_prompt_filling_the_context_is_scored_with_max_tokens_0(tiny_server):
    r = post(tiny_server, "completions", prompt=[5] * 512, echo=True, logprobs=0, max_tokens=0)
    assert r.status_code == 200 and len(r.json()["choices"][0]["logprobs"]["token_logprobs"]) == 512
    assert (
        error(post(tiny_server, "completions", prompt=[5] * 512, max_tokens=1))["code"]
        == "context_length_exceeded"
    )


def test_an_unknown_route_is_404_in_the_documented_shape(tiny_server):
    r = httpx.post(tiny_server.url + "/v1/embeddings", json={"model": "tiny", "input": "x"})
    assert r.status_code == 404
    e = r.json()["error"]
    assert e["type"] == "invalid_request_error" and e["code"] is None and e["param"] is None
    assert (
        e["message"].startswith("Invalid URL (POST /v1/embeddings)")
        and "POST /v1/completions" in e["message"]
    )
    assert (
        "| 404 | an unknown route | `invalid_request_error` / null |"
        in (ROOT / "docs/serving.md").read_text()
    )


def test_docs_list_every_request_field_with_its_status():
    doc = (ROOT / "docs/serving.md").read_text()
    table = doc.split("### Request fields")[1].split("\n### ")[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`([a-z_.]+)`", cell)}
    fields = {*ChatRequest.model_fields, *CompletionRequest.model_fields} - {"stream_options"}
    fields |= {f"messages.{f}" for f in Message.model_fields} | {
        f"stream_options.{f}" for f in StreamOptions.model_fields
    }
    assert listed == fields
