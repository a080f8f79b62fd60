"""One JSONL line: parsed with bounds on what it may hold, and written the same way every time.

A line is read as UTF-8 JSON holding one object, nested at most MAX_DEPTH deep, with numbers of at most
MAX_NUMBER_CHARS characters and no NaN or infinity; anything else is a UserError naming the line
(`posttrain.data.records.read_jsonl` gives each line its "file:line"):

    >>> parse_line(b'{"id": "x", "n": 1}', "demos.jsonl:3")
    {'id': 'x', 'n': 1}
    >>> parse_line(b'[1, 2]', "demos.jsonl:4")
    Traceback (most recent call last):
    ...
    posttrain.errors.UserError: demos.jsonl:4: expected a JSON object, got list
"""

from __future__ import annotations

import json
import math
import re

from posttrain.errors import UserError

# Bounds on what one line may hold, so hostile input is an error naming the line, never a RecursionError
# or int()'s 4300-digit ValueError: posttrain's records nest 6 levels at most, and no count or id they
# hold needs 100 characters (a float's repr is at most 24).
MAX_DEPTH = 100
MAX_NUMBER_CHARS = 100
_STRUCTURE = re.compile(r'[\[\]{}"\\]')  # the characters that open, close or escape


def parse_line(raw: bytes, where: str) -> dict:
    """The object on one line (`where`: its "file:line", for the errors)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
            "save the file as UTF-8"
        ) from None
    check_depth(line, where)
    try:
        record = json.loads(line, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{where}: malformed JSON ({e.msg} at column {e.colno}); "
            "each line must be one complete JSON object"
        ) from None
    except _LongNumber as e:
        raise UserError(
            f"{where}: a number {len(e.text)} characters long (column {line.find(e.text) + 1}); "
            f"numbers may be at most {MAX_NUMBER_CHARS} characters: write it as a string, or "
            "drop it"
        ) from None
    except _NonFinite:  # parse again, keeping NaN and infinity, to name the field that holds one
        record = json.loads(line, parse_int=len)  # ints do not matter here, and a long one must not raise
        field, value = non_finite(record) or ("?", math.nan)
        raise UserError(
            f"{where}: field '{field}' is not a finite number ({value}); JSON has no NaN or "
            "infinity: write null or a finite number"
        ) from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "\\ud" in line.lower():  # an escaped surrogate: legal JSON, but a lone one is not text
        try:
            dumps(record).encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(
                f"{where}: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff without its "
                "pair), which is not text; fix or drop that character"
            ) from None
    return record


class _LongNumber(Exception):
    def __init__(self, text: str):
        self.text = text


class _NonFinite(Exception):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _LongNumber(text)
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _LongNumber(text)
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise _NonFinite
    return value


def _constant(text: str) -> float:  # NaN, Infinity, -Infinity: Python's json accepts them, JSON does not
    raise _NonFinite


def check_depth(line: str, where: str) -> None:
    """Arrays and objects nested more than MAX_DEPTH deep are a UserError (json.loads would recurse)."""
    if line.count("[") + line.count("{") <= MAX_DEPTH:  # the common case: too few to nest that deep
        return
    depth, in_string, escaped = 0, False, -1
    for m in _STRUCTURE.finditer(line):  # brackets inside strings do not count
        i, c = m.start(), m.group()
        if in_string:
            if i == escaped:
                continue
            if c == "\\":
                escaped = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise UserError(
                    f"{where}: nested more than {MAX_DEPTH} levels deep (column {i + 1}); "
                    "records nest a few levels: flatten that field or drop the line"
                )
        elif c in "]}":
            depth -= 1


def non_finite(value, path: str = "") -> tuple[str, float] | None:
    """(field path, value) of the first NaN or infinity in `value`: ("meta.score[1]", inf)."""
    if isinstance(value, float):
        return (path, value) if not math.isfinite(value) else None
    if isinstance(value, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for p, v in items if (found := non_finite(v, p))), None)


def dumps(record: dict) -> str:
    """One JSONL line; the same record always gives the same bytes. NaN and infinity, which JSON
    cannot hold, are a UserError naming the field."""
    try:
        return json.dumps(record, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
    except ValueError:
        field, value = non_finite(record) or ("?", math.nan)
        raise UserError(
            f"field '{field}' is {value}, which JSON cannot hold; "
            "check what computed it (a finite number or null)"
        ) from None
