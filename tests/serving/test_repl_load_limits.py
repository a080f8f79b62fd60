"""The chat REPL's /load reads with the JSONL reader: a hostile file (nested 10,000 deep, a 5,000-digit
number, NaN) is a one-line error and the conversation goes on; a file saved with a BOM loads."""

import io
from types import SimpleNamespace

import torch
from transformers import AutoTokenizer

from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel
from posttrain.serving.repl import run_repl
from posttrain.serving.session import Session, Settings
from tests.tiny import BASE


class Says:
    """A fake causal LM that always prefers one token."""

    def __init__(self, vocab: int, favourite: int):
        self.logits = torch.linspace(-3.0, 3.0, vocab).index_fill(0, torch.tensor([favourite]), 20.0)

    def __call__(self, input_ids: torch.Tensor, **kwargs):
        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1), past_key_values=None)


def test_a_hostile_load_is_an_error_and_the_conversation_survives(tmp_path):
    tok = AutoTokenizer.from_pretrained(BASE)
    [word] = tok("ok", add_special_tokens=False)["input_ids"]
    session = Session(
        ServedModel(Says(len(tok), word), tok, "fake", context_length=512),
        FeedbackLog(tmp_path / "fb.jsonl"),
        Settings(max_tokens=3),
    )
    head = '{"id": "c", "messages": [{"role": "user", "content": "Hi"}], "meta": '
    files = {
        "deep.jsonl": head + "[" * 10_000 + "]" * 10_000 + "}",
        "digits.jsonl": head + "1" * 5_000 + "}",
        "nan.jsonl": head + "NaN}",
    }
    for name, line in files.items():
        (tmp_path / name).write_text(line + "\n")
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + (head + "{}}\n").encode())
    out, lines = io.StringIO(), iter(["Hello", *(f"/load {tmp_path / n}" for n in files), "/exit"])
    assert run_repl(session, read=lambda prompt: next(lines), out=out) == 0
    shown = out.getvalue()
    for name, error in [
        ("deep", "nested more than 100 levels deep"),
        ("digits", "a number 5000 characters long"),
        ("nan", "field 'meta' is not a finite number"),
    ]:
        assert f"error: {tmp_path / name}.jsonl:1: {error}" in shown, shown
    assert [m["content"] for m in session.messages][0] == "Hello" and len(session.messages) == 2  # kept
    assert session.load(str(tmp_path / "bom.jsonl")) == f"loaded 1 messages from {tmp_path / 'bom.jsonl'}"
