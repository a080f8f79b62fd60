"""Pure tensor math of RLHF: tensors in, tensors out; no config, no I/O, no torch.distributed."""

from posttrain.algorithms.kl_control import AdaptiveKLController, FixedKLController
from posttrain.algorithms.masked import masked_mean, masked_var, masked_whiten
from posttrain.algorithms.ppo import gae, kl_penalty, kl_shaped_rewards, policy_loss, value_loss
from posttrain.algorithms.ranking import ranking_loss

__all__ = ["AdaptiveKLController", "FixedKLController", "gae", "kl_penalty", "kl_shaped_rewards", "masked_mean",
           "masked_var", "masked_whiten", "policy_loss", "ranking_loss", "value_loss"]
