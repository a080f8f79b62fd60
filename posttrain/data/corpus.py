"""Pretraining text: read documents, tokenise them, pack them into fixed-length blocks.

A corpus is a JSONL file of `{"text": ...}` records (what `posttrain world export` writes) or
a plain `.txt` file (documents separated by blank lines).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
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
                raise UserError(
                    f"{where}: field 'text' must be a non-empty string (a corpus record is {{\"text\": ...}})"
                )
            docs.append(record["text"])
    if not docs:
        raise UserError(f"{path}: no documents found")
    return docs


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(docs: list[str], tokenizer, block: int, chunk: int = 10_000) -> torch.Tensor:
    """Documents, each followed by EOS, concatenated and cut into rows of `block + 1` tokens.

    Returns (N, block + 1) int64: inputs are row[:-1], targets row[1:]. The tail that does not
    fill a row is dropped. Documents share rows (GPT-2 style packing), as is usual for pretraining.
    Tokenised `chunk` documents at a time into int32 arrays: a scaled corpus (90M tokens) held as
    Python lists of ints took 11 GB.
    """
    eos = tokenizer.eos_token_id
    parts: list[np.ndarray] = []
    for start in range(0, len(docs), chunk):
        ids = tokenizer(docs[start : start + chunk], add_special_tokens=False)["input_ids"]
        lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
        flat = np.empty(int(lengths.sum()), dtype=np.int32)
        ends = np.cumsum(lengths)
        flat[ends - 1] = eos
        for x, end, n in zip(ids, ends, lengths):
            flat[end - n : end - 1] = x
        parts.append(flat)
    stream = np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)
    n = len(stream) // (block + 1)
    if n == 0:
        raise UserError(
            f"the corpus has {len(stream)} tokens, fewer than one block of {block + 1}; "
            "lower --seq-len or add text"
        )
    return torch.from_numpy(stream[: n * (block + 1)].astype(np.int64)).view(n, block + 1)
