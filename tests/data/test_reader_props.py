"""Property-based tests of the file readers: whatever the bytes, a reader returns validated records
or raises a UserError that names the file; records written and read back are unchanged."""

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posttrain.data.corpus import read_documents
from posttrain.data.rankings import read_rankings, read_samples
from posttrain.data.records import read_conversations, read_jsonl, write_jsonl
from posttrain.errors import UserError

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

READERS = {
    "jsonl": lambda p: list(read_jsonl(p)),
    "conversations": read_conversations,
    "prompts": lambda p: read_conversations(p, ends_with="user"),
    "samples": read_samples,
    "rankings": read_rankings,
    "corpus": read_documents,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["system", "user", "assistant", "bot", 1, None])
messages = st.lists(
    st.fixed_dictionaries({"role": roles, "content": st.text(max_size=12) | st.integers()}), max_size=4
)
# records near the formats (the right keys, wrong or odd values), and any JSON at all
near_records = st.fixed_dictionaries(
    {
        "id": st.text(max_size=4) | st.integers(),
        "messages": messages,
        "prompt": messages,
        "completions": st.lists(
            st.fixed_dictionaries(
                {"text": st.text(max_size=6) | st.none(), "source": st.sampled_from(["model:x", "", 3])}
            ),
            max_size=3,
        ),
        "ranking": st.lists(st.lists(st.integers(-1, 3) | st.booleans(), max_size=3), max_size=3),
        "labeler": st.sampled_from(["a", "", None]),
        "likert": st.none() | st.lists(st.integers(0, 8) | st.text(max_size=2) | st.booleans(), max_size=3),
        "text": st.text(max_size=10) | st.integers(),
    }
)
lines = st.one_of(
    near_records.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=20),
    st.sampled_from(['{"id": "\\ud800"}', '{"text": "a\\udc00"}', "", "   "]),
)


def check_reader(name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("data.txt" if name == "corpus" and content[:1] == b"#" else "data.jsonl")
        path.write_bytes(content)
        try:
            READERS[name](path)
        except UserError as e:
            assert str(e).startswith(str(path)), e


@SETTINGS
@given(name=st.sampled_from(sorted(READERS)), content=st.binary(max_size=200))
def test_any_bytes_give_records_or_a_user_error(name, content):
    check_reader(name, content)


@SETTINGS
@given(name=st.sampled_from(sorted(READERS)), rows=st.lists(lines, min_size=1, max_size=4))
def test_any_json_lines_give_records_or_a_user_error(name, rows):
    check_reader(name, "\n".join(rows).encode("utf-8", "surrogatepass"))


text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # any text: no lone surrogates


@SETTINGS
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {
                "id": text.filter(bool),
                "messages": st.lists(
                    st.fixed_dictionaries({"role": st.just("user"), "content": text}), min_size=1, max_size=3
                ),
            }
        ),
        max_size=5,
    )
)
def test_written_records_read_back_unchanged(records):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "out.jsonl"
        write_jsonl(path, records)
        assert [r for _, r in read_jsonl(path)] == records
        assert read_conversations(path, ends_with="user") == records


# hostile lines: nesting far past MAX_DEPTH, numbers thousands of digits long, NaN and infinity, a BOM;
# each is a UserError naming the line (json.loads alone gives RecursionError, ValueError or non-JSON NaN)
deep = st.builds(
    lambda depth, opener, key: (
        '{"id": "x", "'
        + key
        + '": '
        + "".join(opener[i % len(opener)] for i in range(depth))
        + "".join("]" if opener[i % len(opener)] == "[" else "}" for i in reversed(range(depth)))
        + "}"
    ),
    st.integers(101, 20_000),
    st.sampled_from(["[", '[{"a": ']),
    st.sampled_from(["meta", "messages", "prompt"]),
)
huge_number = st.builds(
    lambda sign, digits, tail: sign + "9" * digits + tail,
    st.sampled_from(["", "-"]),
    st.integers(101, 6_000),
    st.sampled_from(["", ".5", "e7", "0e-3"]),
)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1E400"])
hostile = st.one_of(
    deep,
    st.builds(
        lambda n, key: '{"id": "x", "' + key + '": {"n": ' + n + "}}",
        huge_number,
        st.sampled_from(["meta", "likert", "text"]),
    ),
    st.builds(
        lambda n: '{"id": "x", "messages": [{"role": "user", "content": "hi"}], "meta": {"n": [' + n + "]}}",
        non_finite,
    ),
)


@SETTINGS
@given(
    name=st.sampled_from(sorted(READERS)), bad=hostile, before=st.lists(lines, max_size=2), bom=st.booleans()
)
def test_hostile_lines_give_a_user_error_naming_the_line(name, bad, before, bom):
    content = "\n".join([*before, bad]).encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "data.jsonl"
        path.write_bytes(b"\xef\xbb\xbf" * bom + content)
        try:
            READERS[name](path)
        except UserError as e:
            assert str(e).startswith(f"{path}:"), e
        else:
            raise AssertionError(f"{name} accepted a hostile line: {bad[:80]}")
