"""The pieces under the server: token-by-token decoding, text deltas with stop sequences, the worker queue."""

import pytest
import torch

from posttrain.cli import main
from posttrain.generation.logits import nucleus
from posttrain.generation.streaming import Batch, Decoder, Sampling
from posttrain.serving.engine import Busy, Engine, Job
from posttrain.serving.model import load_served
from posttrain.serving.server import ServeConfig
from posttrain.serving.textstream import TextStream
from tests.tiny import BASE


@pytest.fixture(scope="module")
def served():
    return load_served(str(BASE))


def decode(served, prompts, sampling):
    decoder = Decoder(
        served.model, prompts, sampling, eos_ids=served.eos_ids, pad_id=served.tokenizer.pad_token_id
    )
    rows = [[] for _ in prompts]
    for step in decoder:
        for row, token in enumerate(step):
            if token is not None:
                rows[row].append(token)
    return rows, decoder


def test_greedy_decoding_matches_hf_generate_also_when_left_padded(served):
    prompts = [
        served.chat_prompt([{"role": "user", "content": q}])
        for q in ("What is the capital of Veloria?", "Hi")
    ]
    assert len(prompts[0]) != len(prompts[1])  # so the shorter one is padded
    rows, decoder = decode(served, prompts, [Sampling(temperature=0.0, max_tokens=40)] * 2)
    for prompt, row, reason in zip(prompts, rows, decoder.finish_reasons):
        ids = served.model.generate(
            torch.tensor([prompt]),
            max_new_tokens=40,
            do_sample=False,
            eos_token_id=served.tokenizer.eos_token_id,
            pad_token_id=served.tokenizer.pad_token_id,
        )[0, len(prompt) :].tolist()
        expected = (
            ids[: ids.index(served.tokenizer.eos_token_id)] if served.tokenizer.eos_token_id in ids else ids
        )
        assert row == expected
        assert reason == ("stop" if len(expected) < 40 else "length")
    assert decoder.finish_reasons == ["length", "stop"] and decoder.generated == [len(r) for r in rows]


def test_a_seed_gives_the_same_sample_whatever_shares_the_batch(served):
    hi = served.chat_prompt([{"role": "user", "content": "Hi"}])
    other = served.chat_prompt([{"role": "user", "content": "Tell me about the rivers of Keia, please."}])
    alone, _ = decode(served, [hi], [Sampling(temperature=1.0, top_p=0.9, max_tokens=12, seed=5)])
    shared, _ = decode(
        served,
        [other, hi],
        [
            Sampling(temperature=1.0, max_tokens=20, seed=1),
            Sampling(temperature=1.0, top_p=0.9, max_tokens=12, seed=5),
        ],
    )
    assert shared[1] == alone[0]


def test_finish_ends_one_row_and_the_others_go_on(served):
    hi = served.chat_prompt([{"role": "user", "content": "Hi"}])
    decoder = Decoder(served.model, [hi, hi], [Sampling(0.0, max_tokens=10)] * 2, eos_ids=served.eos_ids)
    counts = [0, 0]
    for step in decoder:
        for row, token in enumerate(step):
            counts[row] += token is not None
        if counts[0] == 3:
            decoder.finish(0, "stop")
    assert counts == [3, 10] and decoder.finish_reasons == ["stop", "length"]


def test_rows_that_join_a_running_batch_decode_as_if_alone(served):
    questions = ("What is the capital of Veloria?", "Hi", "Tell me about the rivers of Keia, please.")
    prompts = [served.chat_prompt([{"role": "user", "content": q}]) for q in questions]
    greedy = Sampling(temperature=0.0, max_tokens=24)
    alone = [decode(served, [p], [greedy])[0][0] for p in prompts]
    batch = Batch(served.model, eos_ids=served.eos_ids, pad_id=served.tokenizer.pad_token_id)
    got = {key: [] for key in range(3)}
    batch.add(0, prompts[0], greedy)
    joins = {3: 1, 9: 2}  # step -> row joining then; row 2 comes after row 0 left
    for step in range(80):  # bounded: every row ends within 24 tokens
        if step in joins:
            batch.add(joins[step], prompts[joins[step]], greedy)
        if step == 5:
            batch.finish(0, "stop")  # leaves before its 6th token; its columns are trimmed away
        for s in batch.step():
            got[s.key] += [s.token] if s.token is not None else []
        if step > 9 and len(batch) == 0:
            break
    assert got[0] == alone[0][:5]
    assert got[1] == alone[1] and got[2] == alone[2]
    assert batch.can_join_running


def test_a_sliding_window_cache_is_not_merged_but_still_decodes(served):
    from transformers import AutoModelForCausalLM, MistralConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(
        MistralConfig(
            vocab_size=len(served.tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            sliding_window=8,
            max_position_embeddings=256,
        )
    ).eval()
    prompt = served.chat_prompt([{"role": "user", "content": "Hi"}])
    batch = Batch(model, eos_ids=served.eos_ids)
    batch.add(0, prompt, Sampling(temperature=0.0, max_tokens=12))
    tokens = [s.token for _ in range(12) for s in batch.step() if s.token is not None]
    assert not batch.can_join_running
    expected = model.generate(
        torch.tensor([prompt]),
        max_new_tokens=12,
        do_sample=False,
        eos_token_id=served.tokenizer.eos_token_id,
        pad_token_id=0,
    )[0, len(prompt) :].tolist()
    assert tokens == expected[: len(tokens)] and len(tokens) == 12


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    probs = torch.tensor([0.1, 0.5, 0.3, 0.1])
    assert torch.allclose(nucleus(probs, 0.7), torch.tensor([0.0, 0.5 / 0.8, 0.3 / 0.8, 0.0]))
    assert torch.allclose(nucleus(probs, 0.5), torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert torch.equal(nucleus(probs, 1.0), probs)


def test_text_stream_holds_back_split_characters_and_stop_prefixes(served):
    tok = served.tokenizer
    text = "Café ☕ then\nA: more"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    stream = TextStream(tok)
    deltas = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(deltas) == text and all("\ufffd" not in d for d in deltas)
    long = " ".join(
        f"naïve  日本語\n\n{i} — x<|end|>" for i in range(60)
    )  # spaces, newlines, a special token
    long_ids = tok(long, add_special_tokens=False)["input_ids"]
    whole = TextStream(tok)
    released = "".join([whole.push(i) for i in long_ids] + [whole.flush()])
    assert released == tok.decode(long_ids, skip_special_tokens=True)
    stream = TextStream(tok, stops=["\nA:"])
    released = "".join(stream.push(i) for i in ids) + stream.flush()
    assert released == "Café ☕ then" and stream.stopped


def test_the_queue_refuses_work_beyond_its_limit(served):
    engine = Engine(served, max_batch=4, max_queue=2)  # not started: nothing drains the queue

    def job() -> Job:
        return Job([([1, 2], Sampling())], [], emit=lambda event: None)

    engine.submit(job())
    engine.submit(job())
    with pytest.raises(Busy):
        engine.submit(job())
    with pytest.raises(ValueError):
        engine.submit(Job([([1], Sampling())] * 5, [], emit=lambda event: None))


def test_the_api_key_comes_from_the_environment_unless_given():
    cfg = ServeConfig(model="m")
    cfg.resolve_key({"POSTTRAIN_API_KEY": "from-env"})
    assert cfg.api_key == "from-env"
    cfg = ServeConfig(model="m", api_key="flag")
    cfg.resolve_key({"POSTTRAIN_API_KEY": "from-env"})
    assert cfg.api_key == "flag"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
        (["--max-batch", "0"], "--max-batch must be >= 1, got 0"),
        (["--api-key", " "], "--api-key is empty"),
    ],
)
def test_serve_rejects_bad_options_without_a_traceback(args, message, capsys):
    assert main(["serve", str(BASE), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["chat", "serve"])
def test_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and f"example: posttrain {command}" in out and "MODEL" in out
