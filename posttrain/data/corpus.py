"""Pretraining text: read documents, tokenise them, pack them into fixed-length blocks.

A corpus is a JSONL file of `{"text": ...}` records (what `posttrain world export` writes) or
a plain `.txt` file (documents separated by blank lines).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from posttrain.data.records import read_jsonl, read_text
from posttrain.errors import UserError


def read_documents(path: str | Path) -> list[str]:
    path = Path(path)
    if path.suffix == ".txt":
        if not path.is_file():
            raise UserError(f"{path}: no such file; --data takes a .jsonl corpus or a .txt file")
        docs = [d.strip() for d in read_text(path).split("\n\n") if d.strip()]
    else:
        docs = []
        for where, record in read_jsonl(path):
            if not isinstance(record.get("text"), str) or not record["text"].strip():
                raise UserError(f"{where}: field 'text' must be a non-empty string (a corpus record is {{\"text\": ...}})")
            docs.append(record["text"])
    if not docs:
        raise UserError(f"{path}: no documents found")
    return docs


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def pack(docs: list[str], tokenizer, block: int) -> torch.Tensor:
    """Documents, each followed by EOS, concatenated and cut into rows of `block + 1` tokens.

    Returns (N, block + 1) int64: inputs are row[:-1], targets row[1:]. The tail that does not
    fill a row is dropped. Documents share rows (GPT-2 style packing), as is usual for pretraining.
    """
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
        stream.append(eos)
    n = len(stream) // (block + 1)
    if n == 0:
        raise UserError(f"the corpus has {len(stream)} tokens, fewer than one block of {block + 1}; "
                        "lower --seq-len or add text")
    return torch.tensor(stream[: n * (block + 1)], dtype=torch.long).view(n, block + 1)
