"""The inputs of a policy-optimisation run besides its models: the prompts (with `--reward verifier`,
those a program can check, and that check), their built-in world, and the PPO-ptx and held-out corpora."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from posttrain.data.corpus import pack, read_documents
from posttrain.data.records import read_conversations
from posttrain.errors import UserError
from posttrain.training.ppo_config import VERIFIER, PPOConfig

__all__ = ["load_prompts", "load_ptx", "stage_prompts", "verifiable_prompts", "world_for"]

log = logging.getLogger(__name__)


def stage_prompts(cfg: PPOConfig) -> tuple[list[dict], object, Callable[[dict, str], float] | None]:
    """The prompts to train on, their built-in world (None for other prompts) and, with --reward verifier, the
    program check that scores responses to them; refused when there are fewer than a step takes."""
    prompts = load_prompts(cfg.prompts)
    world = world_for(prompts, cfg.world_seed, cfg.scale)
    verifier = None
    if cfg.reward == VERIFIER:
        prompts, verifier = verifiable_prompts(prompts, world, cfg.prompts)
    if len(prompts) < cfg.prompts_per_step:
        per = (
            f" (--rollout-batch {cfg.rollout_batch} / --group-size {cfg.group_size})"
            if cfg.critic_free
            else ""
        )
        raise UserError(
            f"{cfg.prompts} has {len(prompts)} {'checkable ' if verifier else ''}prompts, fewer than the "
            f"{cfg.prompts_per_step} a step takes{per}; lower --rollout-batch or add prompts"
        )
    return prompts, world, verifier


def verifiable_prompts(
    prompts: list[dict], world, path: Path
) -> tuple[list[dict], Callable[[dict, str], float]]:
    """The prompts of families a program can check, and that check (posttrain.world.verify) for their
    world."""
    from posttrain.world.verifier import CHECKABLE, verifiable, verify

    if world is None:
        raise UserError(
            f"--reward verifier checks answers to the built-in world's prompts, and {path} has prompts "
            "without a world task (meta.task); score them with a reward model (--reward RUN/rm)"
        )
    kept = [p for p in prompts if verifiable(p)]
    if not kept:
        raise UserError(
            f"{path}: none of its {len(prompts)} prompts is of a family with a program check "
            f"({', '.join(CHECKABLE)}), so --reward verifier cannot score them; use a reward model"
        )
    if len(kept) < len(prompts):
        log.warning(
            "--reward verifier: training on the %d of %d prompts in %s whose family has a program check "
            "(%s); %d others left out",
            len(kept),
            len(prompts),
            path,
            ", ".join(CHECKABLE),
            len(prompts) - len(kept),
        )
    return kept, functools.partial(verify, world)


def load_prompts(path: Path) -> list[dict]:
    """The prompts of a conversation JSONL file, each ending with a user turn; refused when there are none."""
    prompts = read_conversations(path, ends_with="user")
    if not prompts:
        raise UserError(f"{path}: no prompts")
    return prompts


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
