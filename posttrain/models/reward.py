"""The reward model: a causal LM's backbone with a scalar head read at the last token.

Built with `AutoModelForSequenceClassification(num_labels=1)`, so the head is the architecture's
own `score` layer and checkpoints are ordinary Hugging Face directories; the pooling is done
here, at the last real token of each right-padded row, whatever the pad token is.
After training, `gain` and `bias` (in posttrain.json) make SFT samples score mean 0, std 1.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from posttrain.data.chat import Example, chat_ids, right_pad
from posttrain.errors import UserError


def reward_from_pretrained(path: str, tokenizer, *, trust_remote_code: bool = False):
    """The scalar-head model of a directory (or peft adapter directory), checked against its config.json like
    every model posttrain loads (`posttrain.models.checks`)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from posttrain.models.load import pretrained

    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head is reported as "newly initialised": expected
    try:
        model = pretrained(
            AutoModelForSequenceClassification,
            path,
            num_labels=1,
            use_safetensors=True,
            dtype=torch.float32,
            trust_remote_code=trust_remote_code,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


# Rows per forward when right-padded rows are scored in chunks of like length: enough rows for the matmuls
# to run near the CPU's peak on the world's model (8 x ~70 tokens), few enough that a chunk's rows are alike.
CHUNK_ROWS = 8


class Scores(torch.nn.Module):
    """A scalar-head model's forward as one module call, what DDP and FSDP2 wrap (their hooks run on the
    module called): the head read at every position, (B, T). Holds the model; copies nothing."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lengths: torch.Tensor | None = None, **inputs) -> torch.Tensor:
        """(B, T) scores. With `lengths`, (B,) real tokens of right-padded rows taking no attention mask
        (`causal_only`), the rows are forwarded in chunks of like length (`length_chunks`), each cut to its
        longest row: rankings of K completions of different lengths are otherwise about half padding. A
        padding position's score is then 0. One module call either way, so DDP sees one forward; under FSDP2,
        whose layers all-gather at each call, ranks with different row counts would make different numbers of
        calls, so a sharded module forwards the rows at once (still without a mask)."""
        from posttrain.models.adapters import backbone

        if lengths is None or sharded(
            self
        ):  # FSDP2 gathers each layer per call: every rank must make the same calls
            hidden = backbone(self.model)(**inputs).last_hidden_state  # (B, T, H)
            return self.model.score(hidden).squeeze(-1)  # (B, T)
        ids = inputs.pop("input_ids")
        parts, rows = [], []
        for chunk in length_chunks(lengths):
            width = int(lengths[chunk].max())
            hidden = backbone(self.model)(
                input_ids=ids[chunk, :width], **inputs
            ).last_hidden_state  # (b, w, H)
            parts.append(F.pad(self.model.score(hidden).squeeze(-1), (0, ids.size(1) - width)))  # (b, T)
            rows.append(chunk)
        return torch.cat(parts)[torch.argsort(torch.cat(rows))]  # (B, T) in row order


def sharded(module: torch.nn.Module) -> bool:
    """Whether FSDP2 sharded `module` (fully_shard makes it an FSDPModule)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return False
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def length_chunks(lengths: torch.Tensor, rows: int = CHUNK_ROWS) -> list[torch.Tensor]:
    """Row indices ordered by length and cut into chunks of `rows`: each chunk pads only to its own
    longest."""
    return list(torch.argsort(lengths, stable=True).split(rows))


def as_scores(model) -> torch.nn.Module:
    """`model` when it already is a `Scores` (or DDP's wrapper of one), else a `Scores` of it."""
    return (
        model
        if isinstance(model, Scores) or isinstance(getattr(model, "module", None), Scores)
        else Scores(model)
    )


def rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N,) raw rewards of right-padded (N, T) rows, read at each row's last real token."""
    lengths = attention_mask.sum(dim=1)  # (N,)
    if causal_only(attention_mask) is None:  # right-padded: chunks of like length, no mask
        scores = as_scores(model)(input_ids=input_ids, lengths=lengths)  # (N, T)
    else:
        scores = as_scores(model)(input_ids=input_ids, attention_mask=attention_mask)
    last = lengths - 1  # (N,)
    return scores[torch.arange(scores.size(0)), last]


def causal_only(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """None for right-padded rows (every row's mask ones then zeros), else the mask. Under causal attention a
    real token never sees the padding after it, so without the mask its output is the same, and attention
    takes its causal kernel instead of building and applying a (B, 1, T, T) mask (what a padding position
    computes is never read: it has no label, and rewards are read at each row's last real token)."""
    if attention_mask is None or bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all()):
        return None
    return attention_mask


def encode_response(tokenizer, prompt: list[dict], response: str, max_len: int) -> Example:
    """The conversation with `response` as its final assistant turn, cut to `max_len` tokens
    from the left so the response (and its end) is what the head reads."""
    ids = chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": response}])[-max_len:]
    return Example(ids, ids)


def batch_rewards(model, examples: list[Example], pad: int, put=lambda batch: batch) -> torch.Tensor:
    """(N,) raw rewards of encoded conversations, one forward pass for all of them (`put` moves the batch
    to the model's device)."""
    padded = right_pad(examples, pad)
    batch = put({"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]})
    return rewards(model, batch["input_ids"], batch["attention_mask"])


class RewardScorer:
    """A trained reward model ready to score: normalised so SFT samples have mean 0, std 1."""

    def __init__(self, path: str, max_len: int = 512, put=lambda batch: batch):
        from posttrain.models.checkpoint import read_manifest
        from posttrain.models.load import load_tokenizer

        manifest = read_manifest(path)
        if "reward_normalisation" not in manifest:
            raise UserError(
                f"{path} is a {manifest.get('stage')!r} checkpoint, not a reward model (posttrain rm)"
            )
        self.tokenizer = load_tokenizer(path)
        self.model = reward_from_pretrained(path, self.tokenizer).eval()
        self.gain = manifest["reward_normalisation"]["gain"]
        self.bias = manifest["reward_normalisation"]["bias"]
        self.max_len, self.put = max_len, put  # put: a batch onto the model's device

    @torch.no_grad()
    def score(self, pairs: list[tuple[list[dict], str]], batch_size: int = 32) -> list[float]:
        """Normalised rewards of (prompt messages, response) pairs. A pair that occurs twice (K samples often
        repeat an answer) is scored once, so equal answers get equal scores: their float rounding would
        otherwise depend on the rows beside them, and break ties between them at random."""
        keys = [json.dumps(p, sort_keys=True) + "\0" + r for p, r in pairs]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}  # key -> its first pair
        distinct = [pairs[i] for i in sorted(first.values())]
        found: list[float] = []
        for i in range(0, len(distinct), batch_size):
            examples = [
                encode_response(self.tokenizer, p, r, self.max_len) for p, r in distinct[i : i + batch_size]
            ]
            raw = batch_rewards(self.model, examples, self.tokenizer.pad_token_id, self.put)
            found += (self.gain * raw + self.bias).tolist()
        at = {i: n for n, i in enumerate(sorted(first.values()))}
        return [found[at[first[k]]] for k in keys]
