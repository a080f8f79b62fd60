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
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from posttrain.errors import UserError

log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant")


def read_jsonl(path: str | Path, *, torn_tail: bool = False) -> Iterator[tuple[str, dict]]:
    """Yield ("file:line", record) for each non-blank line. Bytes that are not UTF-8, malformed JSON,
    a line that is not an object and a string holding a lone surrogate are UserErrors naming the line.
    With `torn_tail`, a last line without its newline that does not parse (a write cut short) is
    dropped with a warning instead."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; check the path (expected a JSONL file, one record per line)")
    with path.open("rb") as f:
        lines = f.read().split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = parse_line(raw, where)
        except UserError:
            if torn_tail and n == len(lines):
                log.warning("%s: dropped an unfinished last line (a write was cut short)", where)
                return
            raise
        yield where, record


def read_text(path: Path) -> str:
    """A UTF-8 text file; bytes that are not UTF-8 are a UserError naming the line."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None


def parse_line(raw: bytes, where: str) -> dict:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                        "save the file as UTF-8") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: malformed JSON ({e.msg} at column {e.colno}); "
                        "each line must be one complete JSON object") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "\\ud" in line.lower():   # an escaped surrogate: legal JSON, but a lone one is not text
        try:
            dumps(record).encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"{where}: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its "
                            "pair), which is not text; fix or drop that character") from None
    return record


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
            raise UserError(f"{where}: field '{field}.role' is {m.get('role')!r}; use one of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise UserError(f"{where}: field '{field}.content' must be a string")
        if m["role"] == "system" and i != 0:
            raise UserError(f"{where}: field '{field}' is a system message after the start; "
                            "put the system message first or drop it")
    if ends_with and messages[-1]["role"] != ends_with:
        raise UserError(f"{where}: field 'messages' ends with a {messages[-1]['role']} turn; "
                        f"this file needs conversations that end with a {ends_with} turn")
    first = messages[1] if messages[0]["role"] == "system" and len(messages) > 1 else messages[0]
    if first["role"] == "assistant":
        raise UserError(f"{where}: field 'messages[{messages.index(first)}]' is an assistant turn before any user "
                        "turn; a conversation starts with the user (after an optional system message)")
    if "meta" in record and not isinstance(record["meta"], dict):
        raise UserError(f"{where}: field 'meta' must be an object")
    return record


def read_conversations(path: str | Path, *, ends_with: str | None = None, with_location: bool = False) -> list:
    """Validated conversation records; with `with_location`, ("file:line", record) pairs."""
    pairs = [(where, validate_conversation(r, where, ends_with=ends_with)) for where, r in read_jsonl(path)]
    return pairs if with_location else [r for _, r in pairs]


def dumps(record: dict) -> str:
    """One JSONL line; the same record always gives the same bytes."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


def check_output(path: str | Path, *, force: bool, inputs: Iterable[str | Path | None] = (),
                 flag: str = "--out") -> Path:
    """Before any work: `path` may replace an existing one only with --force, never one of `inputs`,
    and its directory must be writable (or creatable)."""
    path = Path(path)
    for given in inputs:
        if given is not None and Path(given).exists() and path.exists() and path.resolve() == Path(given).resolve():
            raise UserError(f"{flag} {path} is also an input of this command; write the output somewhere else")
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
        raise UserError(f"{flag} {path}: cannot write in {parent} (not a writable folder); "
                        f"choose another {flag} or fix the permissions")


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
            f.write(dumps(r) + "\n")
            n += 1
    return n
