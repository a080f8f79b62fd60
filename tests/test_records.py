"""Conversation JSONL: clear file:line errors, and atomic writes that never damage what exists."""

import pytest

from posttrain.data.records import read_conversations, write_jsonl
from posttrain.errors import UserError


def write(tmp_path, *lines):
    p = tmp_path / "demos.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = '{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}'


@pytest.mark.parametrize("line, message", [
    ('{"id": "b", "messages": [', r"demos.jsonl:2: malformed JSON"),
    ('{"id": "b", "messages": [{"role": "bot", "content": "x"}]}', r"demos.jsonl:2: field 'messages\[0\].role' is 'bot'"),
    ('{"id": "b", "messages": []}', r"demos.jsonl:2: field 'messages' is empty"),
    ('{"messages": [{"role": "user", "content": "x"}]}', r"demos.jsonl:2: field 'id'"),
    ('{"id": "b", "messages": [{"role": "user", "content": 3}]}', r"messages\[0\].content' must be a string"),
    ('[1, 2]', r"demos.jsonl:2: expected a JSON object"),
])
def test_bad_lines_name_file_line_and_field(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        read_conversations(write(tmp_path, GOOD, line))


def test_a_prompt_file_must_end_with_a_user_turn(tmp_path):
    with pytest.raises(UserError, match="demos.jsonl:1: .*ends with a assistant turn"):
        read_conversations(write(tmp_path, GOOD), ends_with="user")


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_conversations(tmp_path / "nope.jsonl")


def test_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"id": "old"}])

    def records():
        yield {"id": "new"}
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl(path, records())
    assert path.read_text() == '{"id": "old"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
