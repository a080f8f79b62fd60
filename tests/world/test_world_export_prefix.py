"""`posttrain world export --corpus-documents N`: corpus.jsonl is the whole export's first N lines, byte for
byte, the manifest says it is cut, and it never passes for the corpus a base model was pretrained on."""

import dataclasses
import json

import pytest

from posttrain.cli import main
from posttrain.data.corpus import file_sha256
from posttrain.world import World, core
from posttrain.world.export import export
from tests.tiny import BASE


def corpus(d) -> bytes:
    return (d / "corpus.jsonl").read_bytes()


def test_a_cut_small_corpus_is_the_whole_ones_first_lines_and_says_so(tmp_path):
    full = export(World(seed=0, scale="small"), tmp_path / "full")
    cut = export(World(seed=0, scale="small"), tmp_path / "cut", corpus_documents=100)
    whole, first = corpus(tmp_path / "full"), corpus(tmp_path / "cut")
    assert whole.startswith(first) and first.count(b"\n") == 100 and first.endswith(b"\n")
    assert cut["corpus_prefix"] == {"documents": 100, "of": 6000} and "corpus_prefix" not in full
    assert sum(cut["counts"]["corpus.jsonl"].values()) == 100
    others = {name for name in full["sha256"] if name != "corpus.jsonl"}
    assert {n: cut["sha256"][n] for n in others} == {n: full["sha256"][n] for n in others}
    # a cut never passes for the whole corpus, which a base model records (test_base_checkpoint.py)
    recorded = json.loads((BASE / "posttrain.json").read_text())["data"]["corpus_sha256"]
    assert cut["sha256"]["corpus.jsonl"] not in (full["sha256"]["corpus.jsonl"], recorded)
    assert cut["sha256"]["corpus.jsonl"] == file_sha256(tmp_path / "cut" / "corpus.jsonl")


def test_a_cut_at_or_past_the_whole_corpus_is_the_whole_export(tmp_path):
    export(World(seed=0, scale="small"), tmp_path / "full")
    export(World(seed=0, scale="small"), tmp_path / "all", corpus_documents=6000)
    export(World(seed=0, scale="small"), tmp_path / "more", corpus_documents=10**9)
    for d in ("all", "more"):
        assert (tmp_path / d / "manifest.json").read_bytes() == (
            tmp_path / "full" / "manifest.json"
        ).read_bytes()


@pytest.fixture
def small2_of_few_tokens(monkeypatch):
    """small2 with a corpus of 60k tokens rather than 80M: its generator, shuffle included, in a second."""
    scale = dataclasses.replace(core.SCALES["small2"], corpus_tokens=60_000, heldout_docs=40)
    monkeypatch.setitem(core.SCALES, "small2", scale)


def test_a_cut_scaled_corpus_is_the_whole_ones_first_lines(tmp_path, small2_of_few_tokens):
    full = export(World(seed=0, scale="small2"), tmp_path / "full")
    cut = export(World(seed=0, scale="small2"), tmp_path / "cut", corpus_documents=50)
    whole, first = corpus(tmp_path / "full"), corpus(tmp_path / "cut")
    assert whole.startswith(first) and first.count(b"\n") == 50
    n = whole.count(b"\n")
    assert n > 50 and cut["corpus_prefix"] == {"documents": 50, "of": n}
    assert cut["sha256"]["corpus_heldout.jsonl"] == full["sha256"]["corpus_heldout.jsonl"]


def test_the_command_prints_the_cut_and_refuses_zero(tmp_path, capsys):
    out = tmp_path / "w"
    assert main(["world", "export", "--out", str(out), "--corpus-documents", "10"]) == 0
    assert "corpus.jsonl is the first 10 of the corpus's 6000 documents" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["corpus_prefix"] == {"documents": 10, "of": 6000}
    assert main(["world", "export", "--out", str(tmp_path / "z"), "--corpus-documents", "0"]) == 2
    assert "--corpus-documents must be >= 1" in capsys.readouterr().err
