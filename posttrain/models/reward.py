"""The reward model: a causal LM's backbone with a scalar head read at the last token.

Built with `AutoModelForSequenceClassification(num_labels=1)`, so the head is the architecture's
own `score` layer and checkpoints are ordinary Hugging Face directories; the pooling is done
here, at the last real token of each right-padded row, whatever the pad token is.
After training, `gain` and `bias` (in posttrain.json) make SFT samples score mean 0, std 1.
"""

from __future__ import annotations

import torch

from posttrain.data.chat import Example, chat_ids
from posttrain.errors import UserError


def reward_from_pretrained(path: str, tokenizer, *, trust_remote_code: bool = False):
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head is reported as "newly initialised": expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, use_safetensors=True, dtype=torch.float32, trust_remote_code=trust_remote_code)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


class Scores(torch.nn.Module):
    """A scalar-head model's forward as one module call, what DDP and FSDP2 wrap (their hooks run on the
    module called): the head read at every position, (B, T). Holds the model; copies nothing."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs) -> torch.Tensor:
        from posttrain.models.adapters import backbone

        hidden = backbone(self.model)(**inputs).last_hidden_state                     # (B, T, H)
        return self.model.score(hidden).squeeze(-1)                                   # (B, T)


def as_scores(model) -> torch.nn.Module:
    """`model` when it already is a `Scores` (or DDP's wrapper of one), else a `Scores` of it."""
    return model if isinstance(model, Scores) or isinstance(getattr(model, "module", None), Scores) else Scores(model)


def rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(N,) raw rewards of right-padded (N, T) rows, read at each row's last real token."""
    scores = as_scores(model)(input_ids=input_ids, attention_mask=causal_only(attention_mask))      # (N, T)
    last = attention_mask.sum(dim=1) - 1                                                             # (N,)
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
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        ids[row, :len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[row, :len(e.input_ids)] = 1
    batch = put({"input_ids": ids, "attention_mask": mask})
    return rewards(model, batch["input_ids"], batch["attention_mask"])


class RewardScorer:
    """A trained reward model ready to score: normalised so SFT samples have mean 0, std 1."""

    def __init__(self, path: str, max_len: int = 512, put=lambda batch: batch):
        from posttrain.models.checkpoint import read_manifest
        from posttrain.models.load import load_tokenizer

        manifest = read_manifest(path)
        if "reward_normalisation" not in manifest:
            raise UserError(f"{path} is a {manifest.get('stage')!r} checkpoint, not a reward model (posttrain rm)")
        self.tokenizer = load_tokenizer(path)
        self.model = reward_from_pretrained(path, self.tokenizer).eval()
        self.gain = manifest["reward_normalisation"]["gain"]
        self.bias = manifest["reward_normalisation"]["bias"]
        self.max_len, self.put = max_len, put   # put: a batch onto the model's device

    @torch.no_grad()
    def score(self, pairs: list[tuple[list[dict], str]], batch_size: int = 32) -> list[float]:
        """Normalised rewards of (prompt messages, response) pairs."""
        out: list[float] = []
        for i in range(0, len(pairs), batch_size):
            examples = [encode_response(self.tokenizer, p, r, self.max_len) for p, r in pairs[i:i + batch_size]]
            raw = batch_rewards(self.model, examples, self.tokenizer.pad_token_id, self.put)
            out += (self.gain * raw + self.bias).tolist()
        return out
