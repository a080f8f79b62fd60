"""Log-probabilities, echo, token-id prompts and logit_bias over real HTTP, checked against a direct forward
of the model (a tiny random Llama): what an evaluation harness scores with must be the model's own numbers,
to 1e-5, whether prompts come alone or batched with others, streamed or not."""

import json

import httpx
import openai
import pytest
import torch

from posttrain.serving.formats import TokenText

MODEL = "tiny"
TOL = 1e-5


@pytest.fixture(scope="module")
def served(tiny_served):
    return tiny_served


@pytest.fixture(scope="module")
def server(tiny_server):
    return tiny_server


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def post(server, route: str, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/{route}", json={"model": MODEL, **body}, timeout=60)


def direct(served, ids: list[int]) -> torch.Tensor:
    """(T, V) log-probabilities of the token after each position, from one plain forward of `ids`."""
    with torch.no_grad():
        return served.model(input_ids=torch.tensor([ids])).logits[0].log_softmax(-1)


def test_echo_scores_every_prompt_token_as_a_direct_forward_does(server, served):
    names = TokenText(served.tokenizer)
    texts = ["The capital of Veloria is Tarn.", "Hi"]  # of different lengths: batched, left-padded
    ids = [served.text_prompt(t) for t in texts]
    r = post(server, "completions", prompt=texts, echo=True, logprobs=3, max_tokens=0)
    assert r.status_code == 200, r.text
    for prompt, text, choice in zip(ids, texts, r.json()["choices"]):
        lp, logp = choice["logprobs"], direct(served, prompt)
        assert choice["text"] == text and choice["finish_reason"] == "length"
        assert lp["tokens"] == [names(t)[0] for t in prompt]
        assert lp["token_logprobs"][0] is None and lp["top_logprobs"][0] is None
        want = logp[:-1].gather(1, torch.tensor(prompt[1:])[:, None]).squeeze(1)
        assert torch.allclose(torch.tensor(lp["token_logprobs"][1:]), want, atol=TOL, rtol=0)
        for position, top in enumerate(lp["top_logprobs"][1:]):
            best = logp[position].topk(3)
            expected = {names(t)[0]: v for t, v in zip(best.indices.tolist(), best.values.tolist())}
            expected.setdefault(names(prompt[position + 1])[0], float(want[position]))
            assert top.keys() == expected.keys()
            assert all(abs(top[k] - expected[k]) < TOL for k in top)
        starts = [sum(len(names(t)[0]) for t in prompt[:i]) for i in range(len(prompt))]
        assert lp["text_offset"] == starts


def test_token_id_prompts_and_generated_tokens_score_as_a_direct_forward(served, client):
    names = TokenText(served.tokenizer)
    prompt = served.text_prompt("Once upon a time")
    r = client.completions.create(
        model=MODEL, prompt=[prompt, prompt[:2]], echo=True, logprobs=2, max_tokens=4, temperature=0
    )
    for ids, choice in zip([prompt, prompt[:2]], r.choices):
        n = len(choice.logprobs.tokens) - len(ids)  # generated tokens (an EOS would end them early)
        whole = ids + generated_ids(served, ids, n)
        assert 1 <= n <= 4 and choice.logprobs.tokens == [names(t)[0] for t in whole]
        assert choice.text == served.tokenizer.decode(whole)
        logp = direct(served, whole)
        want = logp[:-1].gather(1, torch.tensor(whole[1:])[:, None]).squeeze(1)
        assert torch.allclose(torch.tensor(choice.logprobs.token_logprobs[1:]), want, atol=TOL, rtol=0)


def test_chat_logprobs_are_the_models_for_each_token_with_its_most_likely_rivals(served, client):
    names = TokenText(served.tokenizer)
    messages = [{"role": "user", "content": "What is the capital of Veloria?"}]
    r = client.chat.completions.create(
        model=MODEL, messages=messages, logprobs=True, top_logprobs=5, max_tokens=12, temperature=0
    )
    content = r.choices[0].logprobs.content
    prompt = served.chat_prompt(messages)
    tokens = generated_ids(served, prompt, len(content))
    assert content and [names(t)[0] for t in tokens] == [e.token for e in content]
    logp = direct(served, prompt + tokens)
    for i, (token, entry) in enumerate(zip(tokens, content)):
        row = logp[len(prompt) - 1 + i]
        assert abs(entry.logprob - float(row[token])) < TOL
        best = row.topk(5)
        assert [e.token for e in entry.top_logprobs] == [names(t)[0] for t in best.indices.tolist()]
        assert max(abs(e.logprob - v) for e, v in zip(entry.top_logprobs, best.values.tolist())) < TOL
        assert entry.top_logprobs[0].token == entry.token  # greedy
    # a random model writes bytes that are no UTF-8: each token's bytes are its own, exactly
    assert bytes(b for entry in content for b in entry.bytes).decode(
        errors="replace"
    ) == served.tokenizer.decode(tokens)


def generated_ids(served, prompt: list[int], n: int) -> list[int]:
    """The model's greedy continuation of `prompt`, `n` tokens, by a plain forward per token."""
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(direct(served, ids)[-1].argmax()))
    return ids[len(prompt) :]


def test_streamed_logprobs_are_the_whole_answers(server, client):
    messages = [{"role": "user", "content": "Hi"}]
    kw = dict(model=MODEL, messages=messages, logprobs=True, top_logprobs=2, max_tokens=10, temperature=0)
    whole = client.chat.completions.create(**kw).choices[0].logprobs.content
    chunks = list(client.chat.completions.create(**kw, stream=True))
    streamed = [
        e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content
    ]
    assert [e.model_dump() for e in streamed] == [e.model_dump() for e in whole]

    body = dict(prompt="The capital of", echo=True, logprobs=1, max_tokens=5, temperature=0)
    whole = post(server, "completions", **body).json()["choices"][0]
    lines = post(server, "completions", **body, stream=True).text.split("\n\n")
    chunks = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    parts = [c["choices"][0]["logprobs"] for c in chunks if c["choices"][0]["logprobs"]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["text"]
    for field in ("tokens", "token_logprobs", "top_logprobs", "text_offset"):
        assert [x for p in parts for x in p[field]] == whole["logprobs"][field]


def test_logprobs_are_left_out_unless_asked(server):
    chat = post(server, "chat/completions", messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
    text = post(server, "completions", prompt="Hi", max_tokens=3, echo=True)
    assert chat.json()["choices"][0]["logprobs"] is None
    assert text.json()["choices"][0]["logprobs"] is None and text.json()["choices"][0]["text"].startswith(
        "Hi"
    )


def test_logit_bias_steers_the_sampler(server, served):
    hi = [{"role": "user", "content": "Hi"}]
    plain = post(server, "chat/completions", messages=hi, max_tokens=6, temperature=0, logprobs=True)
    first = plain.json()["choices"][0]["logprobs"]["content"][0]["token"]
    favourite = served.text_prompt(" Tarn")[0]
    forced = post(
        server,
        "chat/completions",
        messages=hi,
        max_tokens=6,
        temperature=0.7,
        seed=1,
        logit_bias={favourite: 100},
    ).json()["choices"][0]["message"]["content"]
    assert forced == served.tokenizer.decode([favourite] * 6)
    banned = {t: -100 for t in range(served.vocab_size) if TokenText(served.tokenizer)(t)[0] == first}
    other = post(
        server, "chat/completions", messages=hi, max_tokens=6, temperature=0, logit_bias=banned, logprobs=True
    )
    assert other.json()["choices"][0]["logprobs"]["content"][0]["token"] != first


def test_completions_list_the_end_of_sequence_token_and_chat_does_not(server, served):
    """lm-eval's local-completions scores with max_tokens 1 and cuts the last entry off as the generated
    one: an EOS generated there must be listed, or the prompt's last token would be cut instead."""
    eos = served.tokenizer.eos_token_id
    ids = served.text_prompt("The capital of Veloria is")
    body = dict(echo=True, logprobs=1, max_tokens=1, temperature=0, logit_bias={eos: 100})
    choice = post(server, "completions", prompt=ids, **body).json()["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["text"] == served.tokenizer.decode(ids)
    assert len(choice["logprobs"]["tokens"]) == len(ids) + 1
    assert choice["logprobs"]["tokens"][-1] == served.tokenizer.eos_token
    assert abs(choice["logprobs"]["token_logprobs"][-1] - float(direct(served, ids)[-1, eos])) < TOL
    hi = [{"role": "user", "content": "Hi"}]
    chat = post(server, "chat/completions", messages=hi, logprobs=True, max_tokens=3, logit_bias={eos: 100})
    assert chat.json()["choices"][0]["logprobs"]["content"] == []
