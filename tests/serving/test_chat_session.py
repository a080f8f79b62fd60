"""A chat session's commands and the REPL loop in-process (the terminal itself:
tests/serving/test_chat.py)."""

import io
import json
import re

import pytest

from posttrain.errors import UserError
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel, load_served
from posttrain.serving.repl import printable, read_message, run_repl
from posttrain.serving.session import Session, Settings
from tests.tiny import BASE


@pytest.fixture(scope="module")
def served():
    return load_served(str(BASE))


@pytest.fixture
def session(served, tmp_path):
    return Session(served, FeedbackLog(tmp_path / "fb.jsonl"), Settings(temperature=0.0, max_tokens=40))


def scripted(lines):
    """An `input` that types `lines`, then Ctrl-D."""
    lines = iter(lines)

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


def test_a_greedy_reply_and_regen_give_the_same_text(session):
    session.add_user("Hi")
    first = "".join(session.reply())
    assert first.startswith("Q: What should I do after touching poison ivy?")
    session.add_reply(first)
    assert session.command("/regen").generate and session.messages == [{"role": "user", "content": "Hi"}]
    assert "".join(session.reply()) == first


def test_system_save_load_and_undo(session, tmp_path):
    session.command("/system Be brief.")
    session.add_user("Hi")
    session.add_reply("Hello.")
    session.command(f"/save {tmp_path / 'c.jsonl'}")
    session.command("/reset")
    assert session.messages == [] and session.system == "Be brief."
    session.command("/system -")
    assert session.system is None
    assert (
        session.command(f"/load {tmp_path / 'c.jsonl'}").message
        == f"loaded 2 messages from {tmp_path / 'c.jsonl'}"
    )
    assert session.system == "Be brief." and session.conversation()[0] == {
        "role": "system",
        "content": "Be brief.",
    }
    assert not session.command(f"/load {tmp_path / 'c.jsonl'}").generate  # it ends with a reply
    (tmp_path / "q.jsonl").write_text(
        json.dumps({"id": "q", "messages": [{"role": "user", "content": "Hi"}]}) + "\n"
    )
    assert session.command(f"/load {tmp_path / 'q.jsonl'}").generate  # it ends with a question
    session.command("/undo")
    assert session.messages == []
    with pytest.raises(UserError, match="the conversation is empty"):
        session.command("/undo")


@pytest.mark.parametrize(
    "line, message",
    [
        ("/set top_p 0", "must be in (0, 1], got 0"),
        ("/set max_tokens x", "is not an integer"),
        ("/set speed 2", "unknown setting 'speed'"),
        ("/good", "no reply to give"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("/flag", "at least one name"),
        ("/load /nonexistent.jsonl", "no such file"),
    ],
)
def test_bad_commands_explain_themselves(session, line, message):
    with pytest.raises(UserError, match=re.escape(message)):
        session.command(line)


def test_prefer_records_a_better_answer_against_the_reply(session, tmp_path):
    session.add_user("What is the capital of Keia?")
    session.add_reply("Keia is big.")
    session.command("/prefer The capital of Keia is Nir.")
    record = json.loads((tmp_path / "fb.jsonl").read_text())
    assert record["preferred"] == "The capital of Keia is Nir." and record["completion"] == "Keia is big."
    assert record["rating"] is None and record["messages"][-1]["role"] == "user"


def test_the_repl_loop_streams_counts_tokens_and_survives_errors(served, tmp_path):
    out = io.StringIO()
    small = ServedModel(served.model, served.tokenizer, served.name, context_length=30)  # a tiny context
    session = Session(small, FeedbackLog(tmp_path / "fb.jsonl"), Settings(temperature=0.0, max_tokens=5))
    code = run_repl(session, read=scripted(["Hi", "/bogus", "word " * 40, "/set", "/exit"]), out=out)
    shown = out.getvalue()
    assert code == 0
    assert "Q: What should" in shown and "/30 tokens]" in shown
    assert "error: unknown command /bogus" in shown
    assert "error: the conversation is" in shown and "/undo or /reset" in shown
    assert len(session.messages) == 2  # the message that did not fit was dropped
    assert "temperature 0.0, top_p 0.95, max_tokens 5" in shown


def test_multi_line_input_and_terminal_escapes():
    assert read_message(scripted(['"""', "a", "", "b", '"""'])) == "a\n\nb"
    assert read_message(scripted(["one \\", "two"])) == "one \ntwo"
    assert printable("ok\x1b[2J\x07 done\n\tx") == "ok[2J done\n\tx"


def test_json_makes_replies_follow_a_schema_until_it_is_ended(tiny_served, tmp_path):
    """/json is the server's strict response_format in the REPL: even a random model's reply follows it."""
    session = Session(
        tiny_served, FeedbackLog(tmp_path / "fb.jsonl"), Settings(temperature=1.0, max_tokens=60)
    )
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    (tmp_path / "answer.json").write_text(json.dumps(schema))
    assert session.command(f"/json {tmp_path / 'answer.json'}").message.startswith("replies follow")
    session.add_user("What is 2 + 2?")
    for _ in range(3):
        reply = json.loads("".join(session.reply()))
        assert set(reply) == {"answer"} and 0 <= reply["answer"] <= 99
    assert session.command("/json -").message == "replies are free text" and session.json is None
    (tmp_path / "bad.json").write_text('{"type": "string", "format": "no-such-format"}')
    (tmp_path / "notes.txt").write_text("not JSON")
    for bad, says in (
        ("bad.json", "no-such-format"),
        ("missing.json", "cannot read"),
        ("notes.txt", "Expecting"),
    ):
        with pytest.raises(UserError, match=says):
            session.command(f"/json {tmp_path / bad}")
