"""Conversation JSONL: clear file:line errors, and atomic writes that never damage what exists."""

import logging
import re

import pytest

from posttrain.data.jsonline import dumps
from posttrain.data.records import read_conversations, read_jsonl, write_jsonl
from posttrain.errors import UserError


def write(tmp_path, *lines):
    p = tmp_path / "demos.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = (
    '{"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}'
)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "b", "messages": [', r"demos.jsonl:2: malformed JSON"),
        (
            '{"id": "b", "messages": [{"role": "bot", "content": "x"}]}',
            r"demos.jsonl:2: field 'messages\[0\].role' is 'bot'",
        ),
        ('{"id": "b", "messages": []}', r"demos.jsonl:2: field 'messages' is empty"),
        ('{"messages": [{"role": "user", "content": "x"}]}', r"demos.jsonl:2: field 'id'"),
        (
            '{"id": "b", "messages": [{"role": "user", "content": 3}]}',
            r"messages\[0\].content' must be a string",
        ),
        ("[1, 2]", r"demos.jsonl:2: expected a JSON object"),
    ],
)
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


# --- hostile input: bounded nesting and numbers, a BOM, non-finite numbers, duplicate ids, big files --------


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '{"id": "b", "meta": ' + "[" * 10_000 + "]" * 10_000 + "}",
            r"demos.jsonl:2: .*nested more than 100 levels deep",
        ),
        ('{"id": "b", "meta": {"n": ' + "7" * 5_000 + "}}", r"demos.jsonl:2: a number 5000 characters long"),
        (
            '{"id": "b", "meta": {"n": -' + "7" * 5_000 + ".5}}",
            r"demos.jsonl:2: a number 5003 characters long",
        ),
    ],
)
def test_deep_nesting_and_huge_numbers_are_clear_errors(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        read_conversations(write(tmp_path, GOOD, line))


def test_nesting_inside_strings_does_not_count(tmp_path):
    line = '{"id": "b", "messages": [{"role": "user", "content": "' + "[{" * 5_000 + '"}]}'
    assert read_conversations(write(tmp_path, line))[0]["messages"][0]["content"] == "[{" * 5_000


def test_a_utf8_bom_at_the_start_of_a_file_is_accepted(tmp_path):
    p = tmp_path / "demos.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n" + GOOD.encode() + b"\n")
    assert len(read_conversations(p)) == 2
    p.write_bytes(GOOD.encode() + b"\n\xef\xbb\xbf" + GOOD.encode() + b"\n")  # only at the start of the file
    with pytest.raises(UserError, match="demos.jsonl:2: "):
        read_conversations(p)


@pytest.mark.parametrize(
    "value, field", [("1e999", "meta.score"), ("NaN", "meta.score"), ("[1, -Infinity]", "meta.score[1]")]
)
def test_non_finite_numbers_are_refused_naming_the_field(tmp_path, value, field):
    line = '{"id": "b", "messages": [{"role": "user", "content": "x"}], "meta": {"score": ' + value + "}}"
    with pytest.raises(UserError, match=rf"demos.jsonl:2: field '{re.escape(field)}' is not a finite number"):
        read_conversations(write(tmp_path, GOOD, line))


def test_non_finite_numbers_are_never_written(tmp_path):
    with pytest.raises(UserError, match=r"out.jsonl: record 2: field 'meta.score' is inf"):
        write_jsonl(tmp_path / "out.jsonl", [{"id": "a"}, {"id": "b", "meta": {"score": float("inf")}}])
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(UserError, match=r"field 'x\[0\]' is nan"):
        dumps({"x": [float("nan")]})


def test_duplicate_ids_name_both_lines(tmp_path):
    from posttrain.data.records import check_unique_ids

    p = write(tmp_path, GOOD, GOOD.replace('"a"', '"b"'), GOOD)
    with pytest.raises(UserError, match=r"demos.jsonl:3: field 'id' 'a' is already used on .*demos.jsonl:1;"):
        check_unique_ids(read_conversations(p, with_location=True))


def test_a_big_file_is_read_line_by_line_with_progress(tmp_path, caplog, monkeypatch):
    import posttrain.data.records as records

    monkeypatch.setattr(records, "PROGRESS_EVERY", 1000)
    p = tmp_path / "big.jsonl"
    p.write_text((GOOD + "\n") * 2500)
    reader = read_jsonl(p)
    next(reader)  # lazily: one record read, not the whole file
    with caplog.at_level(logging.INFO, logger="posttrain.data.records"):
        assert sum(1 for _ in reader) == 2499
    assert [r.getMessage() for r in caplog.records] == [f"{p}: read 1000 lines", f"{p}: read 2000 lines"]


def test_a_text_corpus_with_a_bom_reads_without_it(tmp_path):
    from posttrain.data.corpus import read_documents

    p = tmp_path / "corpus.txt"
    p.write_bytes(b"\xef\xbb\xbfFirst doc.\n\nSecond doc.\n")
    assert read_documents(p) == ["First doc.", "Second doc."]
