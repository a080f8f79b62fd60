"""`posttrain pretrain`: tokenizer, schedule, data order, and a SIGKILLed run that resumes to the same
curve."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from posttrain.data.records import write_jsonl
from posttrain.models.tokenizer import train_tokenizer
from posttrain.training.lm import batch_indices
from posttrain.training.metrics import read_metrics
from posttrain.training.schedule import cosine_lr
from posttrain.world import World
from posttrain.world.corpus import documents
from tests.tiny import BASE


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    write_jsonl(path, documents(World(seed=0), 300, "train"))
    return path


def posttrain(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "posttrain.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


TINY = [
    "--size",
    "tiny",
    "--seq-len",
    "32",
    "--micro-batch",
    "4",
    "--vocab-size",
    "400",
    "--max-steps",
    "400",
    "--save-every",
    "10",
    "--eval-every",
    "50",
    "--warmup-steps",
    "20",
    "--threads",
    "1",
]


def test_a_killed_run_resumes_to_the_same_loss_curve(corpus, tmp_path):
    reference = posttrain("pretrain", "--data", corpus, "--out", tmp_path / "ref", *TINY)
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    out = tmp_path / "killed"
    run = posttrain("pretrain", "--data", corpus, "--out", out, *TINY)
    first = tmp_path / "killed.partial" / "checkpoints" / "step-000020"
    deadline = time.monotonic() + 120
    while not first.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL and not out.exists(), "the run ended before it could be killed"
    killed_at = len(read_metrics(tmp_path / "killed.partial" / "metrics.jsonl"))

    resumed = posttrain("pretrain", "--data", corpus, "--out", out, *TINY, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert "resumed from" in resumed.stderr.read()
    ref_curve = [(m["step"], m["pretrain/loss"]) for m in read_metrics(tmp_path / "ref" / "metrics.jsonl")]
    new_curve = [(m["step"], m["pretrain/loss"]) for m in read_metrics(out / "metrics.jsonl")]
    assert killed_at < 400 and len(ref_curve) == 400
    assert new_curve == ref_curve
    ref_eval = [
        m["pretrain/heldout_loss"]
        for m in read_metrics(tmp_path / "ref" / "metrics.jsonl")
        if "pretrain/heldout_loss" in m
    ]
    assert ref_eval[-1] < ref_eval[0]  # it learned something
    manifest = json.loads((out / "posttrain.json").read_text())
    assert manifest["stage"] == "pretrain" and manifest["data"]["corpus_sha256"]
    assert (out / "model.safetensors").is_file() and not (out / "checkpoints").exists()


def test_finished_and_unfinished_runs_are_never_overwritten_silently(corpus, tmp_path):
    out = tmp_path / "run"
    (tmp_path / "run.partial").mkdir()
    r = posttrain("pretrain", "--data", corpus, "--out", out, *TINY)
    assert r.wait() == 2 and "--resume" in r.stderr.read()
    out.mkdir()
    r = posttrain("pretrain", "--data", corpus, "--out", out, *TINY)
    assert r.wait() == 2 and "already exists" in r.stderr.read()


def test_bad_corpus_lines_are_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "oops"}\n')
    r = posttrain("pretrain", "--data", bad, "--out", tmp_path / "x", *TINY)
    err = r.communicate()[1]
    assert r.returncode == 2 and "bad.jsonl:2: field 'text'" in err and "Traceback" not in err
    r = posttrain("pretrain", "--data", tmp_path / "missing.jsonl", "--out", tmp_path / "x", *TINY)
    assert r.wait() == 2 and "no such file" in r.stderr.read()
    assert list(tmp_path.iterdir()) == [bad]  # nothing written


def test_tokenizer_has_a_chat_template_and_a_pad_distinct_from_eos():
    tok = train_tokenizer(["The capital of Veloria is Tarn.", "What is 2 + 2? It is 4."] * 20, vocab_size=300)
    assert tok.pad_token_id != tok.eos_token_id
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|user|>\nHi<|end|>\n<|assistant|>\n"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids)[0] == "<|user|>" and tok.eos_token_id in ids
    assert tok.decode(tok("naïve café ✓")["input_ids"]) == "naïve café ✓"  # byte-level: nothing is unknown


def test_cosine_schedule_by_hand():
    assert cosine_lr(5, 100, 10, 1.0, 0.1) == pytest.approx(0.5)
    assert cosine_lr(10, 100, 10, 1.0, 0.1) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 10, 1.0, 0.1) == pytest.approx(0.55)
    assert cosine_lr(100, 100, 10, 1.0, 0.1) == pytest.approx(0.1)


def test_each_epoch_visits_every_block_once():
    n, batch = 10, 4
    seen = torch.cat([batch_indices(n, batch, step, seed=0) for step in range(5)])  # 20 rows = 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:20].tolist()) == list(range(10))
    assert torch.equal(batch_indices(n, batch, 3, seed=0), batch_indices(n, batch, 3, seed=0))
    assert not torch.equal(batch_indices(n, batch, 0, seed=0), batch_indices(n, batch, 0, seed=1))


def test_time_budget_stops_early_and_still_finishes(corpus, tmp_path):
    from posttrain.stages.pretrain import PretrainConfig, pretrain

    cfg = PretrainConfig(
        data=corpus,
        out=tmp_path / "run",
        size="tiny",
        seq_len=32,
        micro_batch=4,
        vocab_size=400,
        max_steps=100_000,
        time_budget=0.5,
        eval_every=10_000,
        save_every=10_000,
        threads=1,
    )
    summary = pretrain(cfg)
    assert 1 <= summary["steps"] < 100_000
    assert (tmp_path / "run" / "model.safetensors").is_file() and not (tmp_path / "run.partial").exists()
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert "pretrain/heldout_loss" in rows[-1]
    assert all(m["perf/flops_per_s"] > 0 and m["perf/share_of_peak"] > 0 for m in rows)


def test_pack_in_chunks_is_the_plain_concatenation():
    from transformers import AutoTokenizer

    from posttrain.data.corpus import pack

    tok = AutoTokenizer.from_pretrained(BASE)
    docs = [
        f"Document {i}: the capital of Veloria is Tarn, and {i} + {i} = {2 * i}." * (1 + i % 3)
        for i in range(40)
    ]
    stream = [t for d in docs for t in tok(d, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]]
    n = len(stream) // 17
    expected = torch.tensor(stream[: n * 17]).view(n, 17)
    for chunk in (1, 7, 100):
        assert torch.equal(pack(docs, tok, 16, chunk=chunk), expected)
