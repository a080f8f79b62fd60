"""Token-by-token decoding with a KV cache, for chat and serving.

`Batch` decodes rows together, one new token per row per step, so callers can stream text as
it appears, and rows can join and leave between steps (continuous batching, as in Orca, Yu et al.
2022): a joining row's prompt is encoded on its own and its KV cache is merged into the running
one, left-padded so every row's next token sits in the last column. Rows finish independently:
at EOS, at their own `max_tokens`, or when the caller calls `finish(key)` (a stop sequence
matched, the client went away). Each row samples from its own seeded `torch.Generator`, so a
request's seed gives the same text whatever else shares its batch (up to float rounding from
padding). `Decoder` is the fixed-batch view of it for callers with all prompts at hand.

    decoder = Decoder(model, [prompt_ids], [Sampling(temperature=0.0, max_tokens=32)], eos_ids={eos})
    for tokens in decoder:          # tokens: [token id or None (row finished)] per row
        ...
    decoder.finish_reasons          # ["stop" | "length", ...]
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from posttrain.generation.grammar import Grammar, Matcher
from posttrain.generation.logits import (
    Scored,
    adjusted,
    generator,
    probabilities,
    prompt_scored,
    scored,
)


@dataclass(frozen=True)
class Sampling:
    """How one row samples. Temperature 0 is greedy; `top_p` keeps the smallest set of tokens
    whose probability reaches it (nucleus sampling, Holtzman et al. 2020); `logit_bias` adds to a
    token's logit before either (OpenAI's `logit_bias`), and a `grammar` allows only the tokens that
    keep the text in it (structured output; each row follows it from its own `Matcher`). `max_tokens` 0
    decodes nothing: the row only scores its prompt. `logprobs` asks for each new token's log-probability
    with that many of the most likely tokens beside it; `prompt_logprobs` the same for every prompt token
    (None: not computed)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64
    seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    grammar: Grammar | None = None


class Step(NamedTuple):
    """What one `Batch.step` says about a row."""

    key: Hashable
    token: int | None  # the new token; None when the row ended (EOS, or ended before)
    reason: str | None  # "stop" | "length" | the caller's reason, once the row is done
    logprobs: Scored | None = None  # the sampled token's, when its Sampling asks; an EOS's too (token None)
    prompt_logprobs: list[Scored] | None = None  # on the row's first step, when its Sampling asks


@dataclass
class _Row:
    key: Hashable
    sampling: Sampling
    generator: torch.Generator
    generated: int = 0  # tokens produced, EOS not counted
    finish_reason: str | None = None  # set once the row is done
    prompt_logprobs: list[Scored] | None = None  # computed when it joins, handed out at its first step
    matcher: Matcher | None = None  # its place in its Sampling's grammar


class Batch:
    """Rows keyed by the caller; `add` them any time, `step` to get one token for each."""

    def __init__(self, model, *, eos_ids: set[int], pad_id: int = 0):
        self.model, self.eos_ids, self.pad_id = model, set(eos_ids), pad_id
        self.rows: list[_Row] = []  # in the order of the tensors' batch dimension
        self.joining: list[tuple[_Row, list[int]]] = []
        self.past = None  # the model's KV cache for `rows`
        self.mask: torch.Tensor | None = None  # (B, T) 1 where a cached position is real
        self.position: torch.Tensor | None = None  # (B, 1) position of the last cached token
        self.logits: torch.Tensor | None = None  # (B, V) next-token logits, when not stale
        self.fed: torch.Tensor | None = None  # (B, 1) tokens sampled but not yet run
        self.can_join_running = True  # False for caches that cannot be merged (set at first prefill)

    def __len__(self) -> int:
        return len(self.rows) + len(self.joining)

    def add(self, key: Hashable, prompt: list[int], sampling: Sampling) -> None:
        if not prompt:
            raise ValueError("every prompt needs at least one token")
        matcher = sampling.grammar.start() if sampling.grammar is not None else None
        self.joining.append((_Row(key, sampling, generator(sampling.seed), matcher=matcher), prompt))

    def finish(self, key: Hashable, reason: str = "stop") -> None:
        """End a row early; it leaves the batch at the next step."""
        for row in self.rows:
            if row.key == key and row.finish_reason is None:
                row.finish_reason = reason

    @torch.no_grad()
    def step(self) -> list[Step]:
        """A `Step` for every row in the batch: its new token, finish reason and what it asked to be told."""
        self._drop_finished()
        if self.rows and self.fed is not None:
            self._forward(self.fed)
        if self.joining:
            self._join()
        if not self.rows:
            return []
        tokens = _next_tokens(self.logits, self.rows)  # (B,)
        logprobs = _logprobs(self.logits, tokens, self.rows)
        out = []
        for row, token, lp in zip(self.rows, tokens.tolist(), logprobs):
            decoding = row.finish_reason is None and row.sampling.max_tokens > 0
            token = self._account(row, token)
            prompt, row.prompt_logprobs = row.prompt_logprobs, None
            out.append(Step(row.key, token, row.finish_reason, lp if decoding else None, prompt))
        self.fed = torch.tensor([[s.token if s.token is not None else self.pad_id] for s in out])  # (B, 1)
        return out

    def _account(self, row: _Row, token: int) -> int | None:
        if row.finish_reason is not None:
            return None
        if row.sampling.max_tokens == 0:  # scoring the prompt only
            row.finish_reason = "length"
            return None
        if token in self.eos_ids:
            row.finish_reason = "stop"
            return None
        row.generated += 1
        if row.matcher is not None:
            row.matcher.take(token)
        if row.generated >= row.sampling.max_tokens:
            row.finish_reason = "length"
        return token

    def _forward(self, ids: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        self.position = self.position + 1
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=self.position,
            past_key_values=self.past,
            use_cache=True,
        )
        self.past, self.logits = out.past_key_values, out.logits[:, -1]

    def _join(self) -> None:
        """Encode the joining prompts together, then merge their cache into the running one."""
        rows, prompts = zip(*self.joining)
        self.joining = []
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt) :] = torch.tensor(prompt)
            mask[i, width - len(prompt) :] = 1
        position = (mask.cumsum(-1) - 1).clamp(min=0)  # (B', P)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
        for i, (row, prompt) in enumerate(zip(rows, prompts)):
            if (top := row.sampling.prompt_logprobs) is not None:  # from this one forward over the prompt
                row.prompt_logprobs = prompt_scored(out.logits[i, width - len(prompt) :], prompt, top)
        if not self.rows:
            self.past, self.mask, self.position = out.past_key_values, mask, position[:, -1:]
            self.logits, self.rows = out.logits[:, -1], list(rows)
            self.can_join_running = mergeable(self.past)
            return
        merge_caches(self.past, self.mask.shape[1], out.past_key_values, width)
        t = max(self.mask.shape[1], width)
        self.mask = torch.cat([F.pad(self.mask, (t - self.mask.shape[1], 0)), F.pad(mask, (t - width, 0))])
        self.position = torch.cat([self.position, position[:, -1:]])
        self.logits = torch.cat([self.logits, out.logits[:, -1]])
        self.rows += rows

    def _drop_finished(self) -> None:
        keep = [i for i, row in enumerate(self.rows) if row.finish_reason is None]
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.past, self.mask, self.position, self.logits, self.fed = (
                [],
                None,
                None,
                None,
                None,
                None,
            )
            return
        index = torch.tensor(keep)
        self.rows = [self.rows[i] for i in keep]
        self.past.batch_select_indices(index)
        self.mask, self.position = self.mask[index], self.position[index]
        self.logits, self.fed = self.logits[index], self.fed[index] if self.fed is not None else None
        first = int(self.mask.any(dim=0).nonzero()[0])  # columns that only left rows used
        if first and self.can_join_running:
            self.mask = self.mask[:, first:]
            for layer in self.past.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]


def mergeable(past) -> bool:
    """Whether `merge_caches` can grow this cache: plain per-layer (B, H, T, D) tensors."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(past, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def merge_caches(past, length: int, new, new_length: int) -> None:
    """Append `new`'s rows to `past` (in place), left-padding the shorter with zeros along time."""
    t = max(length, new_length)
    for layer, extra in zip(past.layers, new.layers):
        layer.keys = torch.cat(
            [F.pad(layer.keys, (0, 0, t - length, 0)), F.pad(extra.keys, (0, 0, t - new_length, 0))]
        )
        layer.values = torch.cat(
            [F.pad(layer.values, (0, 0, t - length, 0)), F.pad(extra.values, (0, 0, t - new_length, 0))]
        )


class Decoder:
    """A fixed batch: iterate to decode; each step yields the new token of every row (None once it is
    done)."""

    def __init__(
        self, model, prompts: list[list[int]], sampling: list[Sampling], *, eos_ids: set[int], pad_id: int = 0
    ):
        if len(prompts) != len(sampling) or not prompts:
            raise ValueError("Decoder needs one Sampling per prompt and at least one prompt")
        self.batch = Batch(model, eos_ids=eos_ids, pad_id=pad_id)
        for row, (prompt, s) in enumerate(zip(prompts, sampling)):
            self.batch.add(row, prompt, s)
        self.done = [False] * len(prompts)
        self.finish_reasons: list[str | None] = [None] * len(prompts)
        self.generated = [0] * len(prompts)  # tokens produced per row, EOS not counted

    def finish(self, row: int, reason: str = "stop") -> None:
        """End `row` early; it yields None from the next step on."""
        if not self.done[row]:
            self.done[row], self.finish_reasons[row] = True, reason
            self.batch.finish(row, reason)

    def __iter__(self):
        while not all(self.done):
            tokens: list[int | None] = [None] * len(self.done)
            for step in self.batch.step():
                tokens[step.key] = step.token
                self.generated[step.key] += step.token is not None
                if step.reason is not None and not self.done[step.key]:
                    self.done[step.key], self.finish_reasons[step.key] = True, step.reason
            if all(t is None for t in tokens) and all(self.done):
                return
            yield tokens


def _next_tokens(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """One token per row from its logits, biased and restricted to what its grammar allows when it asks:
    argmax for greedy rows, a draw from the row's own generator otherwise."""
    tokens = logits.argmax(dim=-1)  # (B,)
    for i, row in enumerate(rows):
        s, row_logits = row.sampling, logits[i]  # (V,)
        if row.finish_reason is not None:
            continue
        if s.logit_bias or row.matcher is not None:
            row_logits = adjusted(row_logits, s.logit_bias, row.matcher and row.matcher.allowed())
            tokens[i] = row_logits.argmax()
        if s.temperature > 0:
            probs = probabilities(row_logits, s.temperature, s.top_p)  # (V,)
            tokens[i] = torch.multinomial(probs, 1, generator=row.generator)[0]
    return tokens


def _logprobs(logits: torch.Tensor, tokens: torch.Tensor, rows: list[_Row]) -> list[Scored | None]:
    """The new token's `Scored` for each row whose Sampling asks for log-probabilities, None for the others;
    computed for those rows only."""
    asking = [i for i, row in enumerate(rows) if row.sampling.logprobs is not None]
    out: list[Scored | None] = [None] * len(rows)
    if asking:
        index = torch.tensor(asking, device=logits.device)
        top = [rows[i].sampling.logprobs for i in asking]
        for i, s in zip(asking, scored(logits[index], tokens[index], top)):
            out[i] = s
    return out
