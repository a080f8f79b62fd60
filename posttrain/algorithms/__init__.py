"""Pure tensor math of RLHF: tensors in, tensors out; no config, no I/O, no torch.distributed."""

from posttrain.algorithms.baselines import grpo_advantages, rloo_advantages, sequence_kl_rewards
from posttrain.algorithms.dpo import DPO_LOSSES, dpo_loss
from posttrain.algorithms.kl_control import AdaptiveKLController, FixedKLController
from posttrain.algorithms.masked import masked_mean, masked_var, masked_whiten, token_mean
from posttrain.algorithms.ppo import (
    explained_variance,
    gae,
    kl_penalty,
    kl_shaped_rewards,
    policy_loss,
    value_loss,
)
from posttrain.algorithms.ranking import ranking_loss

__all__ = [
    "DPO_LOSSES",
    "AdaptiveKLController",
    "FixedKLController",
    "dpo_loss",
    "explained_variance",
    "gae",
    "kl_penalty",
    "kl_shaped_rewards",
    "masked_mean",
    "masked_var",
    "masked_whiten",
    "policy_loss",
    "ranking_loss",
    "token_mean",
    "value_loss",
    "grpo_advantages",
    "rloo_advantages",
    "sequence_kl_rewards",
]
