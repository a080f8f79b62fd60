"""The pieces under the server: token-by-token decoding, text deltas with stop sequences, the worker queue."""

from pathlib import Path

import pytest
import torch

from posttrain.cli import main
from posttrain.generation.streaming import Decoder, Sampling, nucleus
from posttrain.serving.engine import Busy, Engine, Job
from posttrain.serving.model import load_served
from posttrain.serving.server import ServeConfig
from posttrain.serving.textstream import TextStream

BASE = Path(__file__).resolve().parent.parent / "assets" / "base-small-seed0"


@pytest.fixture(scope="module")
def served():
    return load_served(str(BASE))


def decode(served, prompts, sampling):
    decoder = Decoder(served.model, prompts, sampling, eos_ids=served.eos_ids, pad_id=served.tokenizer.pad_token_id)
    rows = [[] for _ in prompts]
    for step in decoder:
        for row, token in enumerate(step):
            if token is not None:
                rows[row].append(token)
    return rows, decoder


def test_greedy_decoding_matches_hf_generate_also_when_left_padded(served):
    prompts = [served.chat_prompt([{"role": "user", "content": q}]) for q in ("What is the capital of Veloria?", "Hi")]
    assert len(prompts[0]) != len(prompts[1])                  # so the shorter one is padded
    rows, decoder = decode(served, prompts, [Sampling(temperature=0.0, max_tokens=40)] * 2)
    for prompt, row, reason in zip(prompts, rows, decoder.finish_reasons):
        ids = served.model.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False,
                                    eos_token_id=served.tokenizer.eos_token_id,
                                    pad_token_id=served.tokenizer.pad_token_id)[0, len(prompt):].tolist()
        expected = ids[:ids.index(served.tokenizer.eos_token_id)] if served.tokenizer.eos_token_id in ids else ids
        assert row == expected
        assert reason == ("stop" if len(expected) < 40 else "length")
    assert decoder.finish_reasons == ["length", "stop"] and decoder.generated == [len(r) for r in rows]


def test_a_seed_gives_the_same_sample_whatever_shares_the_batch(served):
    hi = served.chat_prompt([{"role": "user", "content": "Hi"}])
    other = served.chat_prompt([{"role": "user", "content": "Tell me about the rivers of Keia, please."}])
    alone, _ = decode(served, [hi], [Sampling(temperature=1.0, top_p=0.9, max_tokens=12, seed=5)])
    shared, _ = decode(served, [other, hi], [Sampling(temperature=1.0, max_tokens=20, seed=1),
                                             Sampling(temperature=1.0, top_p=0.9, max_tokens=12, seed=5)])
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
    long = " ".join(f"naïve  日本語\n\n{i} — x<|end|>" for i in range(60))  # spaces, newlines, a special token
    long_ids = tok(long, add_special_tokens=False)["input_ids"]
    whole = TextStream(tok)
    released = "".join([whole.push(i) for i in long_ids] + [whole.flush()])
    assert released == tok.decode(long_ids, skip_special_tokens=True)
    stream = TextStream(tok, stops=["\nA:"])
    released = "".join(stream.push(i) for i in ids) + stream.flush()
    assert released == "Café ☕ then" and stream.stopped


def test_the_queue_refuses_work_beyond_its_limit(served):
    engine = Engine(served, max_batch=4, max_queue=2)          # not started: nothing drains the queue
    job = lambda: Job([([1, 2], Sampling())], [], emit=lambda event: None)
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


@pytest.mark.parametrize("args, message", [(["--port", "70000"], "is not a TCP port"),
                                           (["--max-batch", "0"], "--max-batch and --max-queue must be at least 1"),
                                           (["--api-key", " "], "--api-key is empty")])
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
