"""Conversations to training rows: token ids, and labels only on assistant turns (and their EOS).

The tokenizer's chat template renders the conversation. An assistant turn's span runs from
where the template with `add_generation_prompt=True` ends to the end of the turn's EOS (or of
the turn, for templates without one); tokens inside a span keep their id as label, every other
token gets -100 and carries no loss.

    >>> from posttrain.models.tokenizer import train_tokenizer
    >>> tok = train_tokenizer(["What is 2 + 2? 4"] * 10, vocab_size=300)
    >>> ex = encode_chat(tok, [{"role": "user", "content": "What is 2 + 2?"},
    ...                        {"role": "assistant", "content": "4"}])
    >>> tok.decode([i for i, l in zip(ex.input_ids, ex.labels) if l != -100])
    '4<|end|>'
"""

from __future__ import annotations

from dataclasses import dataclass

from posttrain.errors import UserError

IGNORE = -100
OVERLONG = ("truncate", "drop", "error")


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]      # IGNORE outside assistant turns

    @property
    def n_labeled(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans of its assistant turns."""
    render = lambda msgs, gen: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
    text = render(messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = render(messages[:i], True)
        upto = render(messages[: i + 1], False)
        if not (text.startswith(prefix) and text.startswith(upto)):
            raise UserError("the tokenizer's chat template renders a conversation differently from its prefixes, "
                            "so assistant turns cannot be located; use a template whose output grows turn by turn")
        start, end = len(prefix), len(upto)
        eos = tokenizer.eos_token
        at = upto.find(eos, start + len(m["content"])) if eos else -1
        spans.append((start, at + len(eos) if at >= 0 else end))
    return text, spans


def encode_chat(tokenizer, messages: list[dict]) -> Example:
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for token, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]):
        middle = (a + b) / 2
        labels.append(token if any(s <= middle < e for s, e in spans) else IGNORE)
    return Example(list(enc["input_ids"]), labels)


def fit(example: Example, max_len: int, policy: str, where: str) -> Example | None:
    """Apply the over-long policy: `truncate` keeps the first `max_len` tokens, `drop` skips the
    example, `error` stops. An example left with no assistant token is dropped (returns None)."""
    if len(example.input_ids) <= max_len:
        return example
    if policy == "error":
        raise UserError(f"{where}: the conversation is {len(example.input_ids)} tokens, over --max-len {max_len}; "
                        "raise --max-len, shorten it, or pass --overlong truncate|drop")
    if policy == "drop":
        return None
    cut = Example(example.input_ids[:max_len], example.labels[:max_len])
    return cut if cut.n_labeled else None


def check_sft_record(record: dict, where: str) -> None:
    if not any(m["role"] == "assistant" for m in record["messages"]):
        raise UserError(f"{where}: field 'messages' has no assistant turn; SFT learns from assistant turns, "
                        "so every demonstration needs at least one")
