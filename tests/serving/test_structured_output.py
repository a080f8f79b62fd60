"""Structured output: `response_format` json_object and json_schema constrain decoding (llguidance), so even a
random model writes JSON that follows the schema, and only the constrained rows of a batch are touched."""

import json
from typing import Annotated, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel, ConfigDict, Field

from posttrain.generation.streaming import Batch, Sampling

HI = [{"role": "user", "content": "Describe a city as JSON."}]


# Every string, number and list is bounded, so every answer that follows the schema ends within max_tokens
# (a string's character can take six tokens, as a \u escape).
Name = Annotated[str, Field(max_length=12)]


class Country(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    cities: int = Field(ge=0, le=999)


class City(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    capital: bool
    kind: Literal["port", "hill", "plain"]
    country: Country  # nested
    rivers: list[Name] = Field(max_length=3)


@pytest.fixture(scope="module")
def client(tiny_server):
    return openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def post(server, **body) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions", json={"model": "tiny", "messages": HI, **body}, timeout=60
    )


def test_parse_returns_a_valid_nested_object_every_time_even_from_a_random_model(client):
    for seed in range(4):
        r = client.chat.completions.parse(
            model="tiny", messages=HI, response_format=City, temperature=1.0, seed=seed, n=2, max_tokens=450
        )
        for choice in r.choices:
            assert choice.finish_reason == "stop", choice.message.content
            assert isinstance(choice.message.parsed, City)


def test_json_object_gives_a_json_object_streamed_or_not(tiny_server):
    body = dict(response_format={"type": "json_object"}, temperature=1.0, seed=3, max_tokens=200)
    whole = post(tiny_server, **body).json()["choices"][0]
    assert whole["finish_reason"] == "stop" and isinstance(json.loads(whole["message"]["content"]), dict)
    lines = post(tiny_server, **body, stream=True).text.split("\n\n")
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == whole["message"]["content"]
    )


def schema_format(schema: dict, strict: bool | None = True) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": strict}}


@pytest.mark.parametrize(
    "response_format, says",
    [
        (schema_format({"type": "object", "properties": {"a": {"$ref": "#/nope"}}}), "nope"),
        (schema_format({"type": "string", "format": "no-such-format"}), "no-such-format"),
        ({"type": "json_schema"}, "json_schema goes with type"),
        ({"type": "json_object", "json_schema": {"name": "a"}}, "json_schema goes with type"),
        ({"type": "xml"}, "type"),
        (schema_format({"type": "object"}) | {"extra": 1}, "unknown field"),
    ],
)
def test_a_schema_that_cannot_be_enforced_is_400(tiny_server, response_format, says):
    r = post(tiny_server, response_format=response_format, max_tokens=5)
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert error["param"] == "response_format" and says in error["message"]


def test_without_strict_a_keyword_the_grammar_cannot_enforce_is_ignored(tiny_server):
    schema = {"type": "object", "properties": {"when": {"type": "string", "format": "no-such-format"}}}
    r = post(tiny_server, response_format=schema_format(schema, strict=None), max_tokens=60, temperature=0)
    assert r.status_code == 200 and isinstance(json.loads(r.json()["choices"][0]["message"]["content"]), dict)


def test_a_constrained_row_leaves_the_others_in_its_batch_as_they_are(tiny_served):
    """The mask is applied to the constrained row's logits only: a greedy row beside it decodes the tokens
    it decodes alone, and the constrained one the JSON it writes alone."""
    prompt = tiny_served.chat_prompt(HI)
    grammar = tiny_served.grammars.json(City.model_json_schema(), strict=True)
    plain, constrained = (
        Sampling(temperature=0.0, max_tokens=30),
        Sampling(0.0, max_tokens=450, grammar=grammar),
    )

    def decode(rows: list[Sampling]) -> list[list[int]]:
        batch = Batch(
            tiny_served.model, eos_ids=tiny_served.eos_ids, pad_id=tiny_served.tokenizer.pad_token_id
        )
        for key, sampling in enumerate(rows):
            batch.add(key, prompt, sampling)
        out = [[] for _ in rows]
        while len(batch):
            for step in batch.step():
                out[step.key] += [step.token] if step.token is not None else []
        return out

    [alone], [json_alone] = decode([plain]), decode([constrained])
    together = decode([plain, constrained, plain])
    assert together == [alone, json_alone, alone]
    City.model_validate_json(tiny_served.tokenizer.decode(json_alone))
    assert alone != json_alone[: len(alone)]  # the constraint did change that row
