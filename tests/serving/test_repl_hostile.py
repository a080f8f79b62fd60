"""The chat REPL under hostile input: extreme /set values, a /load of a file that is not text, a /save
over an existing file. Each is a one-line error (or a reply) and the session goes on."""

import io
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel
from posttrain.serving.repl import run_repl
from posttrain.serving.session import Session, Settings
from tests.tiny import BASE


class Repeats:
    """A fake causal LM that always prefers one token (`favourite`) and never ends."""

    def __init__(self, vocab: int, favourite: int):
        self.logits = torch.linspace(-3.0, 3.0, vocab).index_fill(0, torch.tensor([favourite]), 20.0)

    def __call__(self, input_ids: torch.Tensor, **kwargs):
        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1), past_key_values=None)


@pytest.fixture
def repl(tmp_path):
    """Run the REPL on scripted lines; returns what it showed."""
    tok = AutoTokenizer.from_pretrained(BASE)
    [word] = tok("ok", add_special_tokens=False)["input_ids"]
    served = ServedModel(Repeats(len(tok), word), tok, "fake", context_length=512)
    session = Session(served, FeedbackLog(tmp_path / "fb.jsonl"), Settings(max_tokens=3))

    def run(*lines: str) -> str:
        out, lines = io.StringIO(), iter([*lines, "/exit"])
        assert run_repl(session, read=lambda prompt: next(lines), out=out) == 0
        return out.getvalue()

    return run


def test_extreme_sampling_values_reply_or_explain(repl):
    shown = repl(
        "/set temperature 1e-45",
        "Hi",
        "/set temperature 1e-38",
        "Hi",
        "/set temperature 0.7",
        "/set top_p 1e-45",
        "Hi",
        "/set temperature nan",
        "/set temperature inf",
        "/set temperature -1",
        "/set top_p 0",
        "/set top_p 1.5",
        "/set max_tokens 0",
        "/set max_tokens 2.5",
        "/set",
    )
    assert shown.count("/512 tokens]") == 3  # three replies
    for error in [
        "temperature: must be between 0 and 2, got nan",
        "temperature: must be between 0 and 2, got inf",
        "temperature: must be between 0 and 2, got -1",
        "top_p: must be in (0, 1], got 0",
        "top_p: must be in (0, 1], got 1.5",
        "max_tokens: must be between 1 and 1e+06, got 0",
        "max_tokens: '2.5' is not an integer",
    ]:
        assert f"error: /set {error}\n" in shown
    assert shown.endswith("temperature 0.7, top_p 1e-45, max_tokens 3\n")


def test_load_of_a_file_that_is_not_text_says_where(repl, tmp_path):
    record = b'{"id": "x", "messages": [{"role": "user", "content": "Hi"}]}'
    (tmp_path / "chat.bin").write_bytes(record + b"\n\xff\xfe\x00garbage\n")
    shown = repl(f"/load {tmp_path / 'chat.bin'}", f"/load {tmp_path}", "/set")
    assert f"error: {tmp_path / 'chat.bin'}:2: not UTF-8 text" in shown
    assert f"error: {tmp_path}: no such file" in shown
    assert "temperature 0.7" in shown  # still running


def test_save_refuses_an_existing_file_unless_forced(repl, tmp_path):
    kept = tmp_path / "kept.jsonl"
    kept.write_text("precious\n")
    shown = repl("Hi", f"/save {kept}", f"/save {tmp_path / 'new.jsonl'}")
    assert f"error: /save: {kept} already exists; /save! {kept} replaces it\n" in shown
    assert kept.read_text() == "precious\n" and "saved 2 messages" in shown
    shown = repl(f"/save! {kept}", f"/save! {tmp_path}")
    assert '"role": "user", "content": "Hi"' in kept.read_text()
    assert f"error: /save: cannot write {tmp_path} (Is a directory)" in shown
