"""The models a policy-optimisation step uses (`PolicyModels`) and how they load from a `posttrain ppo`
config: the policy and its frozen reference, the reward (a reward model, or the verifier's program
check) and, for PPO, the value function the reward model starts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from posttrain.distributed import Dist, transformer_layers
from posttrain.errors import UserError
from posttrain.generation.backend import GenerationBackend, make_backend
from posttrain.models.adapters import apply_lora, is_lora
from posttrain.models.load import load_causal_lm, loading
from posttrain.models.reward import RewardScorer, Scores, reward_from_pretrained
from posttrain.training.ppo_config import PPOConfig

__all__ = ["PolicyModels", "load_models"]


@dataclass
class PolicyModels:
    """What PPO, RLOO and GRPO train and consult. The policy has three handles, one per use: `policy`, the
    module itself (rollout forwards, checkpoints, the LoRA adapter switch); `train_policy`, what training
    forwards call (DDP's wrapper, or the module FSDP2 sharded; `policy` itself in one process); `backend`,
    the engine that samples from it (`load_weights` after every update). The value function likewise."""

    policy: torch.nn.Module  # the causal LM being trained
    ref: torch.nn.Module | None  # frozen reference; None for a LoRA policy: itself with the adapter off
    value: torch.nn.Module | None  # V(s), from the reward model, trained; None for RLOO and GRPO
    reward: RewardScorer | None  # the frozen reward model; None with --reward verifier
    score: Callable[[list[dict], list[str]], list[float]]  # (prompts, responses) -> a score per response
    tokenizer: object
    train_policy: torch.nn.Module
    train_value: torch.nn.Module | None  # None without a value function
    backend: GenerationBackend

    @property
    def trained(self) -> torch.nn.ModuleDict:
        """The trained modules by name (policy, and value when there is one): the optimizer's parameter
        groups, the gradient clip and the checkpoints."""
        modules = {"policy": self.policy, "value": self.value}
        return torch.nn.ModuleDict({name: m for name, m in modules.items() if m is not None})

    @property
    def trainers(self) -> list[torch.nn.Module]:
        """What the training forwards call, one per trained module, in the same order."""
        return [t for t in (self.train_policy, self.train_value) if t is not None]


def load_models(
    cfg: PPOConfig, verifier: Callable[[dict, str], float] | None = None, dist: Dist = Dist()
) -> PolicyModels:
    """The policy of `--policy` (with a LoRA adapter under `--lora-r`), its reference, the reward (the
    reward model of `--reward`, or `verifier(record, text)`) and, for `--algorithm ppo`, the value
    function, each cast and wrapped for `dist`."""
    policy, tokenizer = load_causal_lm(cfg.policy, trust_remote_code=cfg.trust_remote_code)
    policy = apply_lora(dist.cast(policy), cfg, seed=cfg.seed)
    ref = load_reference(cfg, policy, tokenizer, dist)
    reward, score = load_reward(cfg, verifier, dist)
    value = None if cfg.critic_free else load_value(cfg, reward, tokenizer, dist)
    return PolicyModels(
        policy=policy,
        ref=ref,
        value=value,
        reward=reward,
        score=score,
        tokenizer=tokenizer,
        train_policy=dist.wrap(policy),
        train_value=None if value is None else dist.wrap(Scores(value), layers=transformer_layers(value)),
        backend=make_backend(cfg.generation_backend, policy, tokenizer),
    )


def load_reference(cfg: PPOConfig, policy, tokenizer, dist: Dist) -> torch.nn.Module | None:
    """The frozen KL reference: `--reference`, by default a copy of `--policy`; none for a LoRA policy
    without `--reference` (its reference is itself with the adapter off)."""
    if is_lora(policy) and cfg.reference is None:
        return None
    ref, ref_tokenizer = load_causal_lm(cfg.reference or cfg.policy, trust_remote_code=cfg.trust_remote_code)
    if ref_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise UserError(
            f"--reference {cfg.reference} has another tokenizer than --policy {cfg.policy}; "
            "the KL penalty compares their logprobs token by token, so they must share one"
        )
    return dist.cast(ref).requires_grad_(False)


def load_reward(
    cfg: PPOConfig, verifier: Callable[[dict, str], float] | None, dist: Dist
) -> tuple[RewardScorer | None, Callable[[list[dict], list[str]], list[float]]]:
    """The frozen reward model (None with a `verifier`) and the scoring function of the responses."""
    if verifier is not None:
        return None, lambda batch, texts: [verifier(p, t) for p, t in zip(batch, texts)]
    with loading(cfg.reward):
        reward = RewardScorer(str(cfg.reward), put=dist.put)
    reward.model = dist.cast(reward.model).requires_grad_(False)
    return reward, lambda batch, texts: reward.score([(p["messages"], t) for p, t in zip(batch, texts)])


def load_value(cfg: PPOConfig, reward: RewardScorer, tokenizer, dist: Dist) -> torch.nn.Module:
    """PPO's value function: the reward model's weights, its head scaled to the normalised reward."""
    if reward.tokenizer.get_vocab() != tokenizer.get_vocab():
        raise UserError(
            f"{cfg.reward} was trained with another tokenizer than {cfg.policy}; the value "
            "function is initialised from the reward model, so train the reward model from this "
            "policy's SFT run"
        )
    with loading(cfg.reward):
        value = reward_from_pretrained(str(cfg.reward), tokenizer, trust_remote_code=cfg.trust_remote_code)
    with torch.no_grad():
        value.score.weight.mul_(reward.gain)  # the value head starts on the normalised reward scale
    return apply_lora(dist.cast(value), cfg, head="score", seed=cfg.seed + 1)
