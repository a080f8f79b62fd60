"""Conversation records and JSONL files: validated line by line, written atomically.

A conversation record (docs/design.md, "Data formats"):

    {"id": "demo-000001",
     "messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...],
     "source": "demonstrator:d2",
     "meta": {...}}

Every error names the file and line, the field, and what to do:

    >>> validate_conversation({"id": "x", "messages": []}, "demos.jsonl:3")
    Traceback (most recent call last):
    ...
    posttrain.errors.UserError: demos.jsonl:3: field 'messages' is empty; a conversation needs at least one message
"""  # a doctest's expected exception message is one line  # noqa: E501

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from posttrain.data.jsonline import dumps, parse_line
from posttrain.errors import UserError

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")
PROGRESS_EVERY = 100_000  # lines between progress log lines while reading a big file


def read_jsonl(path: str | Path, *, torn_tail: bool = False) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", record) for each non-blank line, reading one line at a time (a big file is
    never held whole; every PROGRESS_EVERY lines are logged). A UTF-8 byte-order mark at the start of
    the file is skipped. Bytes that are not UTF-8, malformed JSON, a line that is not an object, a
    string holding a lone surrogate, nesting deeper than MAX_DEPTH, a number longer than
    MAX_NUMBER_CHARS and NaN or infinity are UserErrors naming the line. With `torn_tail`, a last line
    without its newline that does not parse (a write cut short) is dropped with a warning instead."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path (expected a JSONL file, one record per line)")
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):  # Windows editors start UTF-8 files with one
                raw = raw[len(codecs.BOM_UTF8) :]
            if n % PROGRESS_EVERY == 0:
                log.info("%s: read %d lines", path, n)
            if not raw.strip():
                continue
            where = f"{path}:{n}"
            try:
                record = parse_line(raw, where)
            except UserError:
                if torn_tail and not raw.endswith(b"\n"):  # only the last line can lack its newline
                    log.warning("%s: dropped an unfinished last line (a write was cut short)", where)
                    return
                raise
            yield where, record


def read_text(path: Path) -> str:
    """A UTF-8 text file; bytes that are not UTF-8 are a UserError naming the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark at the start is skipped
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None


def check_unique_ids(pairs: Iterable[tuple[str, dict]]) -> None:
    """Where ids tie records together (samples to their rankings, an item to its labelers), a repeated
    id is a UserError naming both lines."""
    first: dict[str, str] = {}
    for where, record in pairs:
        seen = first.setdefault(record["id"], where)
        if seen != where:
            raise UserError(
                f"{where}: field 'id' {record['id']!r} is already used on {seen}; "
                "give every record its own id"
            )


def validate_conversation(record: dict, where: str, *, ends_with: str | None = None) -> dict:
    """Check a conversation record; `ends_with` ("user" for prompts) checks the last role."""
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise UserError(f"{where}: field 'id' must be a non-empty string")
    messages = record.get("messages")
    if not isinstance(messages, list):
        raise UserError(f"{where}: field 'messages' must be a list of {{'role', 'content'}} objects")
    if not messages:
        raise UserError(f"{where}: field 'messages' is empty; a conversation needs at least one message")
    for i, m in enumerate(messages):
        field = f"messages[{i}]"
        if not isinstance(m, dict):
            raise UserError(f"{where}: field '{field}' must be an object with 'role' and 'content'")
        if m.get("role") not in ROLES:
            raise UserError(
                f"{where}: field '{field}.role' is {m.get('role')!r}; use one of {', '.join(ROLES)}"
            )
        if not isinstance(m.get("content"), str):
            raise UserError(f"{where}: field '{field}.content' must be a string")
        if m["role"] == "system" and i != 0:
            raise UserError(
                f"{where}: field '{field}' is a system message after the start; "
                "put the system message first or drop it"
            )
    if ends_with and messages[-1]["role"] != ends_with:
        raise UserError(
            f"{where}: field 'messages' ends with a {messages[-1]['role']} turn; "
            f"this file needs conversations that end with a {ends_with} turn"
        )
    first = messages[1] if messages[0]["role"] == "system" and len(messages) > 1 else messages[0]
    if first["role"] == "assistant":
        raise UserError(
            f"{where}: field 'messages[{messages.index(first)}]' is an assistant turn before any user "
            "turn; a conversation starts with the user (after an optional system message)"
        )
    if "meta" in record and not isinstance(record["meta"], dict):
        raise UserError(f"{where}: field 'meta' must be an object")
    return record


def read_conversations(
    path: str | Path, *, ends_with: str | None = None, with_location: bool = False
) -> list:
    """Validated conversation records; with `with_location`, ("file:line", record) pairs."""
    pairs = [(where, validate_conversation(r, where, ends_with=ends_with)) for where, r in read_jsonl(path)]
    return pairs if with_location else [r for _, r in pairs]


def check_output(
    path: str | Path, *, force: bool, inputs: Iterable[str | Path | None] = (), flag: str = "--out"
) -> Path:
    """Before any work: `path` may replace an existing one only with --force, never one of `inputs` nor a
    folder holding one (posttrain/data/outputs.py), and its directory must be writable (or creatable)."""
    from posttrain.data.outputs import check_not_input

    path = Path(path)
    check_not_input(path, inputs, flag)  # not an input, nor a folder holding one (issue 28)
    if path.exists() and not force:
        raise UserError(f"{flag} {path} already exists; choose another {flag} or pass --force to replace it")
    check_writable(path, flag)
    return path


def check_writable(path: Path, flag: str = "--out") -> None:
    """The nearest existing folder above `path` must be a folder this process may write in."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(
            f"{flag} {path}: cannot write in {parent} (not a writable folder); "
            f"choose another {flag} or fix the permissions"
        )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl(path: str | Path, records: Iterable[dict]) -> int:
    """Write records atomically; returns how many were written."""
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for r in records:
            n += 1
            try:
                f.write(dumps(r) + "\n")
            except UserError as e:
                raise UserError(f"{path}: record {n}: {e}") from None
    return n
