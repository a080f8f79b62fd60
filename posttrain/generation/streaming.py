"""Token-by-token decoding with a KV cache, for chat and serving.

`Decoder` runs a batch of prompts (left-padded, so every row's next token sits in the last
column) and yields one new token per row per step, so callers can stream text as it appears.
Rows finish independently: at EOS, at their own `max_tokens`, or when the caller calls
`finish(row)` (a stop sequence matched, the client went away). Each row samples from its own
seeded `torch.Generator`, so a request's seed gives the same text whatever else shares its batch
(up to float rounding from padding).

    decoder = Decoder(model, [prompt_ids], [Sampling(temperature=0.0, max_tokens=32)], eos_ids={eos})
    for tokens in decoder:          # tokens: [token id or None (row finished)] per row
        ...
    decoder.finish_reasons          # ["stop" | "length", ...]
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """How one row samples. Temperature 0 is greedy; `top_p` keeps the smallest set of tokens
    whose probability reaches it (nucleus sampling, Holtzman et al. 2020)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 64
    seed: int | None = None


class Decoder:
    """Iterate to decode; each step yields the new token of every row (None once a row is done)."""

    def __init__(self, model, prompts: list[list[int]], sampling: list[Sampling], *, eos_ids: set[int],
                 pad_id: int = 0):
        if len(prompts) != len(sampling) or not prompts:
            raise ValueError("Decoder needs one Sampling per prompt and at least one prompt")
        if any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        self.model, self.prompts, self.sampling = model, prompts, sampling
        self.eos_ids, self.pad_id = set(eos_ids), pad_id
        self.done = [False] * len(prompts)
        self.finish_reasons: list[str | None] = [None] * len(prompts)
        self.generated = [0] * len(prompts)     # tokens produced per row, EOS not counted
        self.generators = [_generator(s.seed) for s in sampling]

    def finish(self, row: int, reason: str = "stop") -> None:
        """End `row` early; it yields None from the next step on."""
        if not self.done[row]:
            self.done[row], self.finish_reasons[row] = True, reason

    @torch.no_grad()
    def __iter__(self):
        ids, mask = self._left_pad()                                   # (B, P) each
        position = (mask.cumsum(-1) - 1).clamp(min=0)                  # (B, P)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]          # logits: (B, V)
        position = position[:, -1:]                                    # (B, 1)
        while True:
            tokens = self._next_tokens(logits)                         # (B,)
            step = [self._account(row, int(t)) for row, t in enumerate(tokens.tolist())]
            if all(t is None for t in step) and all(self.done):
                return
            yield step
            if all(self.done):
                return
            fed = torch.tensor([[t if t is not None else self.pad_id] for t in step])   # (B, 1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            position = position + 1
            out = self.model(input_ids=fed, attention_mask=mask, position_ids=position,
                             past_key_values=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1]

    def _left_pad(self) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in self.prompts)
        ids = torch.full((len(self.prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(self.prompts):
            ids[row, width - len(prompt):] = torch.tensor(prompt)
            mask[row, width - len(prompt):] = 1
        return ids, mask

    def _account(self, row: int, token: int) -> int | None:
        """Record `token` for `row`; None if the row was already done or just ended at EOS."""
        if self.done[row]:
            return None
        if token in self.eos_ids:
            self.finish(row, "stop")
            return None
        self.generated[row] += 1
        if self.generated[row] >= self.sampling[row].max_tokens:
            self.finish(row, "length")
        return token

    def _next_tokens(self, logits: torch.Tensor) -> torch.Tensor:
        """One token per row: argmax for greedy rows, a draw from the row's own generator otherwise."""
        tokens = logits.argmax(dim=-1)                                 # (B,)
        for row, s in enumerate(self.sampling):
            if s.temperature > 0 and not self.done[row]:
                probs = nucleus(torch.softmax(logits[row].float() / s.temperature, dim=-1), s.top_p)
                tokens[row] = torch.multinomial(probs, 1, generator=self.generators[row])[0]
        return tokens


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """`probs` (V,) restricted to the smallest set of top tokens whose mass reaches `top_p`, renormalised."""
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(descending=True)
    before = sorted_probs.cumsum(0) - sorted_probs                     # mass of the tokens ranked above
    sorted_probs[before >= top_p] = 0.0                                # the top token always stays
    kept = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return kept / kept.sum()


def _generator(seed: int | None) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed % (1 << 63) if seed is not None else secrets.randbits(63))
    return g
