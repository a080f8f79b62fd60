"""The config of `posttrain ppo`, one for the command's three algorithms: PPO (and PPO-ptx), run by
posttrain/stages/ppo.py, and the critic-free RLOO and GRPO, run by posttrain/stages/critic_free.py.
It lives here, with the code the two stages share, because no stage imports another."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.config import (
    Adapters,
    Cadence,
    Length,
    ModelOptions,
    Options,
    Resumable,
    SamplingOptions,
    Scaling,
    WorldRef,
    option,
    tuned,
)
from posttrain.errors import UserError
from posttrain.recipes import SMALL

ALGORITHMS = ("ppo", "rloo", "grpo")
GENERATION_BACKENDS = ("sampler", "vllm")
VERIFIER = "verifier"  # --reward verifier: the world's program check in place of a reward model


@dataclass(kw_only=True)
class PPOSettings(Options, tuned(SamplingOptions, max_new_tokens=SMALL.max_new_tokens)):
    """PPO's hyper-parameters (defaults: the small world's measured recipe); the loop sets them every
    round."""

    lr: float = option(SMALL.ppo_lr, help="policy learning rate (AdamW, constant)", gt=0)
    value_lr: float | None = option(None, help="value function learning rate (default: --lr)", gt=0)
    kl_coef: float = option(SMALL.kl_coef, help="beta: per-token KL penalty to the reference policy", ge=0)
    kl_target: float | None = option(
        None,
        help="adaptive beta: target KL per episode (Ziegler et al. 2019); fixed beta when not given",
        gt=0,
    )
    kl_horizon: int = option(10000, help="adaptive beta: horizon in episodes", ge=1)
    ptx_coef: float = option(
        SMALL.ptx_coef,
        help="gamma_ptx: weight of the pretraining LM loss (mean per token) in PPO-ptx (with --ptx)",
        ge=0,
    )
    ptx_batch: int = option(8, help="pretraining rows per optimizer step in PPO-ptx", ge=1)
    ptx_seq_len: int = option(128, help="tokens per pretraining row", ge=2)
    rollout_batch: int = option(SMALL.rollout_batch, help="episodes (prompts) per PPO step", ge=1)
    minibatches: int = option(
        SMALL.minibatches, help="minibatches per PPO epoch (minibatch = rollout_batch / minibatches)", ge=1
    )
    micro_batch: int = option(
        SMALL.micro_batch,
        help="episodes per forward/backward pass (gradient accumulation over a minibatch); a memory setting",
        ge=1,
    )
    ppo_epochs: int = option(SMALL.ppo_epochs, help="passes over each rollout batch", ge=1)
    clip_range: float = option(0.2, help="PPO ratio clip epsilon", gt=0)
    value_clip: float = option(0.2, help="value clip epsilon (around the rollout's values)", gt=0)
    vf_coef: float = option(0.1, help="weight of the value loss", ge=0)
    gamma: float = option(1.0, help="discount (1: bandit episodes are short)", ge=0, le=1)
    lam: float = option(0.95, help="GAE lambda", ge=0, le=1)
    missing_eos_penalty: float = option(
        0.0, help="subtracted from the score of a response cut at --max-new-tokens", ge=0
    )
    algorithm: str = option(
        "ppo",
        help="ppo: a value function and GAE; rloo / grpo: critic-free, --group-size "
        "samples per prompt, each scored against the others (leave-one-out mean; "
        "group mean and std)",
        choices=ALGORITHMS,
    )
    group_size: int = option(
        4, help="rloo / grpo: K, samples per prompt; a step takes rollout_batch / K prompts", ge=2
    )

    @property
    def critic_free(self) -> bool:
        return self.algorithm != "ppo"

    @property
    def kl_in_loss(self) -> bool:
        """GRPO puts its KL in the loss; PPO and RLOO put it in the reward."""
        return self.algorithm == "grpo"

    @property
    def prompts_per_step(self) -> int:
        return self.rollout_batch // self.group_size if self.critic_free else self.rollout_batch

    @property
    def minibatch(self) -> int:
        return self.rollout_batch // self.minibatches

    @property
    def grad_accum(self) -> int:
        return self.minibatch // self.micro_batch

    def check(self) -> None:
        super().check()
        if self.rollout_batch % self.minibatches or self.minibatch % self.micro_batch:
            raise UserError(
                f"rollout_batch = minibatches x micro_batch x grad_accum must hold: --rollout-batch "
                f"{self.rollout_batch} / --minibatches {self.minibatches} = "
                f"{self.rollout_batch / self.minibatches:g} episodes per minibatch, which --micro-batch "
                f"{self.micro_batch} must divide; e.g. --rollout-batch 64 --minibatches 4 --micro-batch 8"
            )
        if self.algorithm not in ALGORITHMS:
            raise UserError(f"--algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.critic_free and self.rollout_batch % self.group_size:
            raise UserError(
                f"--algorithm {self.algorithm} samples --group-size {self.group_size} responses per "
                f"prompt, which must divide --rollout-batch {self.rollout_batch} (episodes per step); "
                f"e.g. --rollout-batch {max(1, self.rollout_batch // self.group_size) * self.group_size}"
            )


@dataclass(kw_only=True)
class PPOConfig(
    PPOSettings,
    Length,
    tuned(Cadence, eval_every=10, save_every=10),
    WorldRef,
    ModelOptions,
    Scaling,
    Adapters,
    Resumable,
):
    policy: str = option(
        help="the policy to optimise: the SFT model, or a later round's best policy", required=True
    )
    reference: str | None = option(
        None, help="the frozen KL reference (default: --policy; the loop passes SFT)"
    )
    reward: str = option(
        help="reward model run directory (posttrain rm), which for --algorithm ppo also "
        "initialises the value function; or `verifier`: the built-in world's program check of "
        "the answer, 1 or 0 (arithmetic, list_ops, format prompts; rloo / grpo only; a "
        "directory named verifier is ./verifier)",
        required=True,
    )
    prompts: Path = option(help="PPO prompts: conversation JSONL ending with a user turn", required=True)
    out: Path = option(help="run directory to create", required=True)
    ptx: Path | None = option(None, help="pretraining corpus (JSONL or .txt) for PPO-ptx; off when not given")
    heldout_corpus: Path | None = option(
        None,
        help="held-out pretraining text: its LM loss is logged as alignment/heldout_loss (the alignment tax)",
    )
    sample_every: int = option(10, help="steps between printed tables of sample responses", ge=1)
    seed: int = option(0, help="seed for prompt order, sampling and minibatch shuffles", ge=0)
    generation_backend: str = option(
        "sampler",
        help="what generates the rollouts: sampler (posttrain's own, CPU "
        "and GPU) or vllm (GPU, the posttrain[vllm] extra; the policy's "
        "weights are loaded into it after every step)",
        choices=GENERATION_BACKENDS,
    )

    def check(self) -> None:
        super().check()
        if self.reward == VERIFIER and not self.critic_free:
            raise UserError(
                "--reward verifier with --algorithm ppo: PPO's value function starts from a reward "
                "model, and the verifier is a program; use --algorithm rloo or --algorithm grpo "
                "(critic-free) with it, or pass a reward model run directory to --reward"
            )
