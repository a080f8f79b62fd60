"""One batch of episodes (`Rollouts`): how a policy-optimisation step samples and scores it
(`rollout`), and, under torchrun, how the ranks' blocks are gathered into the whole batch."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields

import torch

from posttrain.distributed import Dist
from posttrain.generation.sampler import decode_responses, encode_prompts, row_draws
from posttrain.models.adapters import adapter_off
from posttrain.models.policy import episode_inputs, response_logprobs, response_mask, token_values
from posttrain.training.policy_models import PolicyModels

__all__ = ["Rollouts", "gather_rollouts", "rollout"]


@dataclass
class Rollouts:
    """One batch of episodes. B episodes, P prompt tokens (left-padded), T response tokens."""

    query: torch.Tensor  # (B, P) prompt ids, left-padded
    query_mask: torch.Tensor  # (B, P) 1 on real prompt tokens
    response: torch.Tensor  # (B, T) sampled ids, padding after the first EOS
    mask: torch.Tensor  # (B, T) 1 on response tokens up to and including the first EOS
    ended: torch.Tensor  # (B,) True when the response reached EOS (not cut at max_new_tokens)
    logprobs: torch.Tensor  # (B, T) log pi_old(a_t|s_t), at the sampling temperature
    ref_logprobs: torch.Tensor  # (B, T) log pi_ref(a_t|s_t)
    entropy: torch.Tensor  # (B, T) entropy of pi_old(.|s_t)
    values: torch.Tensor | None  # (B, T) V_old(s_t); None without a value function (RLOO, GRPO)
    scores: torch.Tensor  # (B,) normalised reward-model score, or the verifier's 0/1 (minus the missing-EOS
    # penalty)
    texts: list[str]  # decoded responses
    advantages: torch.Tensor | None = (
        None  # (B, T) whitened GAE advantages, or RLOO's / GRPO's on every token
    )
    returns: torch.Tensor | None = None  # (B, T) GAE returns (value targets)

    def to(self, device: torch.device) -> Rollouts:
        """The episodes with every tensor on `device` (rollouts are kept on the CPU, trained on the
        device)."""
        return Rollouts(
            **{
                f.name: (
                    getattr(self, f.name).to(device)
                    if isinstance(getattr(self, f.name), torch.Tensor)
                    else getattr(self, f.name)
                )
                for f in fields(self)
            }
        )

    def select(self, rows: torch.Tensor) -> Rollouts:
        """The episodes `rows`, with the prompt and response trimmed to what they need."""
        picked = {
            f.name: (
                getattr(self, f.name)[rows]
                if isinstance(getattr(self, f.name), torch.Tensor)
                else getattr(self, f.name)
            )
            for f in fields(self)
        }
        picked["texts"] = [self.texts[i] for i in rows.tolist()]
        left = int(
            (picked["query_mask"].sum(0) == 0).long().cumprod(0).sum()
        )  # all-padding columns on the left
        width = int(picked["mask"].sum(1).max())
        picked["query"], picked["query_mask"] = picked["query"][:, left:], picked["query_mask"][:, left:]
        for name in (
            "response",
            "mask",
            "logprobs",
            "ref_logprobs",
            "entropy",
            "values",
            "advantages",
            "returns",
        ):
            if picked[name] is not None:
                picked[name] = picked[name][:, :width]
        return Rollouts(**picked)


@torch.no_grad()
def rollout(m: PolicyModels, batch: list[dict], cfg, seed: int, dist: Dist = Dist()) -> Rollouts:
    """Sample a response per prompt (a prompt repeated K times gets K samples) with its logprobs (the
    sampler's; a forward pass for an engine that gives none); score it; reference logprobs and values (when
    there is a value function) by forward passes. Under torchrun each rank does this for its block of the
    batch and the blocks are gathered: every rank returns the whole batch, as one process would have sampled
    it (each row draws from its own uniforms, `row_draws`)."""
    tok = m.tokenizer
    query, query_mask = encode_prompts(tok, [p["messages"] for p in batch])  # (B, P) all rows
    rows = dist.block(len(batch))  # this rank's
    on_device = dist.put({"query": query[rows], "query_mask": query_mask[rows]})
    query, query_mask, mine = on_device["query"], on_device["query_mask"], batch[rows]
    draws = row_draws(len(batch), cfg.max_new_tokens, seed)[rows]  # (b, max_new_tokens)
    with dist.gathered(m.policy):
        sampled = m.backend.generate(
            query,
            query_mask,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=1.0,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            draws=draws,
        )
        response = sampled.tokens  # (b, T)
        mask = response_mask(response, tok.eos_token_id)
        ended = (response == tok.eos_token_id).any(1)
        decoded = decode_responses(tok, response)
        scores = torch.tensor(m.score(mine, decoded))
        scores = scores - cfg.missing_eos_penalty * (~ended).float()
        inputs = episode_inputs(query, query_mask, response, mask)
        P = query.size(1)
        if sampled.logprobs is not None:  # the sampler's own, from the logits it sampled with
            logprobs, entropy = sampled.logprobs, sampled.entropy
        else:
            logprobs, entropy = response_logprobs(m.policy, inputs, P, cfg.temperature)
        with contextlib.nullcontext() if m.ref is not None else adapter_off(m.policy):
            ref_logprobs, _ = response_logprobs(
                m.ref if m.ref is not None else m.policy, inputs, P, cfg.temperature
            )
    values = None
    if m.value is not None:
        with dist.gathered(m.train_value):
            values = token_values(dist.local(m.train_value), inputs, P)

    def z(x: torch.Tensor | None) -> torch.Tensor | None:  # zero on padding
        return None if x is None else (x * mask).cpu()

    on_cpu = [x.cpu() for x in (query, query_mask, response, mask, ended)]
    local = Rollouts(*on_cpu, *map(z, (logprobs, ref_logprobs, entropy, values)), scores, decoded)
    return gather_rollouts(local, dist, tok.pad_token_id)


def gather_rollouts(r: Rollouts, dist: Dist, pad: int) -> Rollouts:
    """Every rank's block of episodes joined in rank order, the response side padded to the longest row."""
    if not dist.on:
        return r
    T = max(dist.gather_objects(r.response.size(1)))
    out = {}
    for f in fields(r):
        x = getattr(r, f.name)
        if isinstance(x, torch.Tensor):
            if x.dim() == 2 and f.name not in ("query", "query_mask"):
                x = torch.nn.functional.pad(x, (0, T - x.size(1)), value=pad if f.name == "response" else 0)
            parts = [torch.empty_like(x) for _ in range(dist.world)]
            torch.distributed.all_gather(parts, x.contiguous())
            x = torch.cat(parts)
        elif f.name == "texts":
            x = [t for part in dist.gather_objects(x) for t in part]
        out[f.name] = x
    return Rollouts(**out)
