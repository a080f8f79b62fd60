"""What PPO (and the critic-free RLOO and GRPO) do besides the update: models, prompts and corpora, rollouts,
and sample tables."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import SimpleNamespace

import torch

from posttrain.data.corpus import pack, read_documents
from posttrain.data.records import read_conversations
from posttrain.distributed import Dist, transformer_layers
from posttrain.errors import UserError
from posttrain.generation.backend import make_backend
from posttrain.generation.sampler import decode_responses, encode_prompts, row_draws
from posttrain.models.adapters import adapter_off, apply_lora, is_lora
from posttrain.models.load import load_causal_lm, loading
from posttrain.models.policy import episode_inputs, response_logprobs, response_mask, token_values
from posttrain.models.reward import RewardScorer, Scores, reward_from_pretrained

__all__ = ["Rollouts", "load_models", "load_prompts", "load_ptx", "rollout", "sample_table", "world_for"]


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


def load_prompts(path: Path) -> list[dict]:
    prompts = read_conversations(path, ends_with="user")
    if not prompts:
        raise UserError(f"{path}: no prompts")
    return prompts


def load_models(
    cfg, verifier: Callable[[dict, str], float] | None = None, dist: Dist = Dist()
) -> SimpleNamespace:
    """policy (trained), ref (frozen reference, by default a copy of the policy; None for a LoRA policy, whose
    reference is itself with the adapter off), value (from the reward model, trained; None for the critic-free
    cfg.algorithm rloo and grpo), reward (the frozen reward model; None with a `verifier`),
    score(batch, texts) -> a score per response (the reward model's, or `verifier(record, text)`'s),
    tokenizer; `trained` holds the trained modules (policy, and value when there is one) for checkpoints;
    train_policy and train_value are what training forwards call (DDP's wrappers, or the modules FSDP2
    sharded; the modules themselves in one process)."""
    policy, tokenizer = load_causal_lm(cfg.policy, trust_remote_code=cfg.trust_remote_code)
    policy = apply_lora(dist.cast(policy), cfg, seed=cfg.seed)
    ref = None
    if not is_lora(policy) or cfg.reference is not None:
        ref, ref_tokenizer = load_causal_lm(
            cfg.reference or cfg.policy, trust_remote_code=cfg.trust_remote_code
        )
        if ref_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise UserError(
                f"--reference {cfg.reference} has another tokenizer than --policy {cfg.policy}; "
                "the KL penalty compares their logprobs token by token, so they must share one"
            )
        ref = dist.cast(ref).requires_grad_(False)
    reward, value = None, None
    if verifier is not None:
        score = lambda batch, texts: [verifier(p, t) for p, t in zip(batch, texts)]
    else:
        with loading(cfg.reward):
            reward = RewardScorer(str(cfg.reward), put=dist.put)
        reward.model = dist.cast(reward.model).requires_grad_(False)
        score = lambda batch, texts: reward.score([(p["messages"], t) for p, t in zip(batch, texts)])
    if cfg.algorithm == "ppo":
        if reward.tokenizer.get_vocab() != tokenizer.get_vocab():
            raise UserError(
                f"{cfg.reward} was trained with another tokenizer than {cfg.policy}; the value "
                "function is initialised from the reward model, so train the reward model from this "
                "policy's SFT run"
            )
        with loading(cfg.reward):
            value = reward_from_pretrained(
                str(cfg.reward), tokenizer, trust_remote_code=cfg.trust_remote_code
            )
        with torch.no_grad():
            value.score.weight.mul_(reward.gain)  # the value head starts on the normalised reward scale
        value = apply_lora(dist.cast(value), cfg, head="score", seed=cfg.seed + 1)
    trained = {"policy": policy} if value is None else {"policy": policy, "value": value}
    train_policy = dist.wrap(policy)
    train_value = None if value is None else dist.wrap(Scores(value), layers=transformer_layers(value))
    return SimpleNamespace(
        policy=policy,
        ref=ref,
        value=value,
        reward=reward,
        score=score,
        tokenizer=tokenizer,
        trained=torch.nn.ModuleDict(trained),
        train_policy=train_policy,
        train_value=train_value,
        backend=make_backend(cfg.generation_backend, policy, tokenizer),
    )


def load_ptx(path: Path, tokenizer, seq_len: int, limit: int | None = None) -> torch.Tensor:
    """(N, seq_len + 1) packed rows of a pretraining corpus (the first `limit` rows)."""
    return pack(read_documents(path), tokenizer, seq_len)[:limit]


def world_for(prompts: list[dict], seed: int, scale: str):
    """The built-in world, when the prompts are its own (they carry a task): rollouts get a gold score."""
    if not all("task" in (p.get("meta") or {}) for p in prompts):
        return None
    from posttrain.world import World

    world = World(seed=seed, scale=scale)
    world.check_tasks(prompts)
    return world


@torch.no_grad()
def rollout(m, batch: list[dict], cfg, seed: int, dist: Dist = Dist()) -> Rollouts:
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
    z = lambda x: None if x is None else (x * mask).cpu()  # zero on padding
    local = Rollouts(
        query.cpu(),
        query_mask.cpu(),
        response.cpu(),
        mask.cpu(),
        ended.cpu(),
        z(logprobs),
        z(ref_logprobs),
        z(entropy),
        z(values),
        scores,
        decoded,
    )
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


def sample_table(r: Rollouts, batch: list[dict], world, path: Path, step: int, n: int = 4) -> list[dict]:
    """A few episodes of this step, appended to `samples.jsonl`."""
    rows = []
    for i in range(min(n, len(batch))):
        row = {
            "step": step,
            "prompt": batch[i]["messages"][-1]["content"],
            "response": r.texts[i],
            "score": round(float(r.scores[i]), 3),
        }
        if world is not None:
            row["gold"] = round(world.judge(batch[i], r.texts[i]).score, 3)
        rows.append(row)
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    return rows
