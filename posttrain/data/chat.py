"""Conversations to token ids, and to training rows with labels only on assistant turns (and their EOS),
right-padded into batches (`right_pad`).

`chat_ids` is the one place a conversation becomes token ids (SFT, reward scoring, rollouts,
serving, chat). The tokenizer's chat template renders it, and message content is always text:
a control token written inside a message (`<|end|>`, `<|system|>`) is encoded as its characters,
so only the template's own markers are control tokens and no message can forge a turn.

An assistant turn's span runs from where the conversation with `add_generation_prompt=True`
ends to the turn's EOS (or to the end of the turn, for templates without one); tokens inside a
span keep their id as label, every other token gets -100 and carries no loss.

    >>> from posttrain.models.tokenizer import train_tokenizer
    >>> tok = train_tokenizer(["What is 2 + 2? 4"] * 10, vocab_size=300)
    >>> ex = encode_chat(tok, [{"role": "user", "content": "What is 2 + 2?"},
    ...                        {"role": "assistant", "content": "4"}])
    >>> tok.decode([i for i, l in zip(ex.input_ids, ex.labels) if l != -100])
    '4<|end|>'
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from posttrain.errors import UserError

IGNORE = -100
OVERLONG = ("truncate", "drop", "error")


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE outside assistant turns

    @property
    def n_labeled(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def right_pad(examples: list[Example], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded (B, T) input_ids (`pad` after each row), attention_mask and labels (IGNORE on padding).

    >>> batch = right_pad([Example([5, 6, 7], [IGNORE, 6, 7]), Example([8], [8])], pad=0)
    >>> batch["input_ids"].tolist(), batch["attention_mask"].tolist(), batch["labels"].tolist()
    ([[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]], [[-100, 6, 7], [8, -100, -100]])
    """
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e.input_ids)
        ids[row, :n], labels[row, :n], mask[row, :n] = torch.tensor(e.input_ids), torch.tensor(e.labels), 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def chat_ids(tokenizer, messages: list[dict], *, add_generation_prompt: bool = False) -> list[int]:
    """Token ids of `messages` rendered by the tokenizer's chat template, with control-token strings
    inside message content encoded as plain text (transformers' `sanitize_control_tokens`). Content
    without such strings gets exactly the ids of the rendered text."""
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, sanitize_control_tokens=True, return_dict=False
    )


def assistant_spans(tokenizer, messages: list[dict], ids: list[int]) -> list[tuple[int, int]]:
    """The token spans [start, end) of the assistant turns in `ids`, the conversation's `chat_ids`."""
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        opened = chat_ids(tokenizer, messages[:i], add_generation_prompt=True)
        upto = chat_ids(tokenizer, messages[: i + 1])
        # The turn starts where `upto` parts from `opened`: at its end, or at its last token when the
        # turn's first characters merge into it (SmolLM2's "\n" and a leading "\n" make one "\n\n").
        start = next((k for k, (a, b) in enumerate(zip(opened, upto)) if a != b), len(opened))
        eos = tokenizer.eos_token_id
        end = upto.index(eos, start) + 1 if eos in upto[start:] else len(upto)
        if start < len(opened) - 1 or ids[:end] != upto[:end]:
            raise UserError(
                "the tokenizer's chat template renders a conversation differently from its prefixes, "
                "so assistant turns cannot be located; use a template whose output grows turn by turn"
            )
        spans.append((start, end))
    return spans


def encode_chat(tokenizer, messages: list[dict]) -> Example:
    ids = chat_ids(tokenizer, messages)
    labels = [IGNORE] * len(ids)
    for start, end in assistant_spans(tokenizer, messages, ids):
        labels[start:end] = ids[start:end]
    return Example(ids, labels)


def fit(example: Example, max_len: int, policy: str, where: str) -> Example | None:
    """Apply the over-long policy: `truncate` keeps the first `max_len` tokens, `drop` skips the
    example, `error` stops. An example left with no assistant token is dropped (returns None)."""
    if len(example.input_ids) <= max_len:
        return example
    if policy == "error":
        raise UserError(
            f"{where}: the conversation is {len(example.input_ids)} tokens, over --max-len {max_len}; "
            "raise --max-len, shorten it, or pass --overlong truncate|drop"
        )
    if policy == "drop":
        return None
    cut = Example(example.input_ids[:max_len], example.labels[:max_len])
    return cut if cut.n_labeled else None


def check_sft_record(record: dict, where: str) -> None:
    if not any(m["role"] == "assistant" for m in record["messages"]):
        raise UserError(
            f"{where}: field 'messages' has no assistant turn; SFT learns from assistant turns, "
            "so every demonstration needs at least one"
        )
