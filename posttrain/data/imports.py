"""Imports into conversation JSONL (Hugging Face `messages` datasets, Alpaca) and ranking JSONL
(TRL and HH preference pairs, see data/preferences.py), and the export of rankings as pairs.

    posttrain data import --format messages --input HuggingFaceH4/some_chats --split train --out demos.jsonl
    posttrain data import --format alpaca --input alpaca_data.json --out demos.jsonl

`--input` is a local .json / .jsonl / .parquet file, a directory written by
`Dataset.save_to_disk`, or a hub dataset id (read with `datasets.load_dataset`). Alpaca rows
`{"instruction", "input", "output"}` become one user turn (instruction, then input after a blank
line when present) and one assistant turn. Every row is validated; an error names the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, Overwrite, option
from posttrain.data.preferences import from_hh, from_trl, row_id, to_pairs
from posttrain.data.rankings import iter_rankings
from posttrain.data.records import check_output, check_unique_ids, validate_conversation, write_jsonl
from posttrain.errors import UserError

FORMATS = ("messages", "alpaca", "trl", "hh")


@dataclass(kw_only=True)
class ImportConfig(Options, Overwrite):
    input: str = option(
        help="a .json/.jsonl/.parquet file, a save_to_disk directory, or a hub dataset id", required=True
    )
    format: str = option(
        help="messages: a column of [{role, content}] lists; alpaca: instruction/input/output "
        "(both give conversations); trl: prompt/chosen/rejected; hh: chosen/rejected "
        "transcripts (both give rankings of K = 2)",
        required=True,
        choices=FORMATS,
    )
    out: Path = option(help="JSONL to write (conversations, or rankings for trl and hh)", required=True)
    split: str = option("train", help="dataset split to read")
    source: str | None = option(None, help="the records' `source` field (default: the input's name)")


def load_rows(spec: str, split: str) -> list[dict]:
    import datasets

    path = Path(spec)
    builders = {".json": "json", ".jsonl": "json", ".parquet": "parquet"}
    try:
        if path.is_file():
            if path.suffix not in builders:
                raise UserError(
                    f"{spec}: unsupported file type {path.suffix!r}; use .json, .jsonl or .parquet"
                )
            data = datasets.load_dataset(builders[path.suffix], data_files=str(path), split="train")
        elif path.is_dir() and (path / "dataset_info.json").is_file():
            data = datasets.load_from_disk(str(path))
        else:
            data = datasets.load_dataset(spec, split=split)
    except UserError:
        raise
    except Exception as e:  # datasets raises many types for unreadable input
        raise UserError(f"{spec}: could not read the dataset ({type(e).__name__}: {e})") from None
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise UserError(f"{spec}: no split {split!r}; it has {', '.join(data)}")
        data = data[split]
    return list(data)


def to_conversation(row: dict, fmt: str, index: int, source: str) -> dict:
    where = f"row {index}"
    if fmt == "alpaca":
        for key in ("instruction", "output"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UserError(
                    f"{where}: field '{key}' must be a non-empty string (Alpaca rows have "
                    "instruction, input, output)"
                )
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
    else:
        if "messages" not in row:
            raise UserError(f"{where}: no 'messages' column; this format needs lists of {{role, content}}")
        if not isinstance(row["messages"], list):
            raise UserError(
                f"{where}: field 'messages' must be a list of {{role, content}} objects, "
                f"got {json_kind(row['messages'])}"
            )
        for j, m in enumerate(row["messages"]):
            if not isinstance(m, dict):
                raise UserError(
                    f"{where}: field 'messages[{j}]' must be an object with 'role' and 'content', "
                    f"got {json_kind(m)}"
                )
        messages = [{"role": m.get("role"), "content": m.get("content")} for m in row["messages"]]
    record = {"id": row_id(row, index, source), "messages": messages, "source": source, "meta": {}}
    return validate_conversation(record, where)


def json_kind(value) -> str:
    """'a string', 'a list', 'null': what a value is, in JSON's words."""
    kinds = {
        bool: "true or false",
        str: "a string",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return kinds.get(type(value), type(value).__name__)


def import_dataset(cfg: ImportConfig) -> int:
    """Write the converted records; returns how many."""
    check_output(cfg.out, force=cfg.force, inputs=[cfg.input])
    rows = load_rows(cfg.input, cfg.split)
    source = cfg.source or Path(cfg.input).stem
    if cfg.format in ("trl", "hh"):
        convert = from_trl if cfg.format == "trl" else from_hh
        records = [convert(row, i, source) for i, row in enumerate(rows)]
    else:
        records = [to_conversation(row, cfg.format, i, source) for i, row in enumerate(rows)]
    check_unique_ids(
        (f"row {i}", r) for i, r in enumerate(records)
    )  # ids tie samples to their rankings later
    return write_jsonl(cfg.out, records)


@dataclass(kw_only=True)
class DataExportConfig(Options, Overwrite):
    data: Path = option(help="rankings JSONL", required=True)
    out: Path = option(
        help="preference pairs JSONL to write, one row per strictly ordered pair", required=True
    )
    style: str = option(
        "conversational",
        help="conversational or plain TRL rows, or hh transcripts",
        choices=("conversational", "plain", "hh"),
    )


def export_pairs(cfg: DataExportConfig) -> int:
    """Read a ranking, write its pairs, read the next: memory stays flat however big the file (the output
    appears only once every ranking is valid)."""
    check_output(cfg.out, force=cfg.force, inputs=[cfg.data])
    rows = (row for _, record in iter_rankings(cfg.data) for row in to_pairs(record, cfg.style))
    return write_jsonl(cfg.out, rows)
