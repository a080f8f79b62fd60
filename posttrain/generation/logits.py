"""From next-token logits to a token, and what a caller may ask about them: the sampling distribution
(temperature, top-p), a logit bias, and log-probabilities of the tokens taken with the most likely ones
beside them.

Log-probabilities are the model's own, log softmax of the logits as the forward pass gives them: before
temperature, top-p and logit bias, as vLLM reports them by default ("raw" log-probabilities), so that a
scoring client (an evaluation harness) gets the same numbers whatever it samples with.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FLOAT32 = torch.finfo(torch.float32)


@dataclass(frozen=True)
class Scored:
    """A token's log-probability (None for a prompt's first token, which nothing predicts), and the `top`
    most likely tokens at its position, best first."""

    token: int
    logprob: float | None
    top: tuple[tuple[int, float], ...] = ()


def adjusted(
    logits: torch.Tensor, bias: dict[int, float] | None, allowed: torch.Tensor | None
) -> torch.Tensor:
    """One row's (V,) `logits` with its bias (token id -> value) added, as OpenAI's `logit_bias` is, and -inf
    wherever `allowed` (V,) is False (a grammar's constraint); a new tensor, the input is kept. Done row by
    row, so a batch pays for the rows that ask and for no others."""
    out = logits.clone()
    if bias:
        out[list(bias)] += torch.tensor(list(bias.values()), dtype=out.dtype, device=out.device)
    if allowed is not None:
        out.masked_fill_(~allowed.to(out.device), float("-inf"))
    return out


def scored(logits: torch.Tensor, tokens: torch.Tensor, top: list[int]) -> list[Scored]:
    """One `Scored` per row of (b, V) `logits` for the (b,) `tokens` taken there, with the row's `top[i]`
    most likely tokens."""
    logp = torch.log_softmax(logits.float(), dim=-1)  # (b, V)
    chosen = logp.gather(1, tokens[:, None]).squeeze(1).tolist()  # (b,)
    k = min(max(top, default=0), logp.size(-1))
    best = logp.topk(k, dim=-1) if k else None
    out = []
    for i, (token, lp) in enumerate(zip(tokens.tolist(), chosen)):
        pairs = (
            () if best is None else zip(best.indices[i, : top[i]].tolist(), best.values[i, : top[i]].tolist())
        )
        out.append(Scored(token, lp, tuple(pairs)))
    return out


def prompt_scored(logits: torch.Tensor, prompt: list[int], top: int) -> list[Scored]:
    """The log-probability of each prompt token after the ones before it, from the (P, V) logits of one
    forward pass over the prompt; the first token's is None."""
    following = torch.tensor(prompt[1:], dtype=torch.long, device=logits.device)  # (P - 1,)
    rest = scored(logits[:-1], following, [top] * len(following)) if len(prompt) > 1 else []
    return [Scored(prompt[0], None), *rest]


def probabilities(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """(..., V) float32 softmax(logits / temperature) restricted to the top-p nucleus (Holtzman et al.
    2020): what the serving decoder and posttrain's batched sampler draw from. For any temperature >= 0
    and top_p in (0, 1] it is a distribution, with no mass on a token whose logit is -inf or that
    falls outside the nucleus.

    The logits are shifted so that the largest is 0 before dividing (softmax is shift-invariant), so
    no temperature turns them into inf - inf = NaN. Below float32's smallest normal number the
    temperature is 0 or a denormal in float32, so it gives the limit there, one-hot on the argmax;
    above float32's largest it would be inf, and -inf / inf is NaN, so it is capped there."""
    if temperature < FLOAT32.tiny:
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()
    logits = logits.float()
    shifted = logits - logits.max(dim=-1, keepdim=True).values  # <= 0
    return nucleus((shifted / min(temperature, FLOAT32.max)).softmax(dim=-1), top_p)


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """`probs` (..., V) restricted to the smallest set of top tokens whose mass reaches `top_p`,
    renormalised. The most likely token always stays, also for a top_p that is 0 in float32."""
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p  # the tokens ranked above already hold top_p
    drop[..., 0] = False
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(drop, 0.0))
    return kept / kept.sum(dim=-1, keepdim=True)


def generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with `seed`, or with a fresh random seed."""
    g = torch.Generator()
    g.manual_seed(seed % (1 << 63) if seed is not None else secrets.randbits(63))
    return g
