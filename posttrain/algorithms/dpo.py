"""Direct preference optimisation: the policy is its own reward model (Rafailov et al. 2023, eq. 7),
and IPO, its squared-loss variant (Azar et al. 2023, eq. 17)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DPO_LOSSES = ("sigmoid", "ipo")


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
    loss: str = "sigmoid",
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The preference loss of N (chosen, rejected) pairs, and what it measures.

    policy_chosen, policy_rejected:  (N,) log pi_theta(y | x) of each pair's completions, summed over
                                     the response tokens (prompt tokens carry no log-prob)
    ref_chosen, ref_rejected:        (N,) the same under the frozen reference pi_ref (no gradient)
    beta:    the KL strength; the implicit reward of a completion is  r = beta (log pi - log pi_ref)
    loss:    "sigmoid" (DPO):  -log sigmoid(beta h)
             "ipo"     (IPO):  (h - 1 / (2 beta))^2,  with
             h = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l)),
             the log-ratio gap. DPO pushes h up without bound (its optimum on deterministic
             preferences is infinitely far); IPO regresses it to 1 / (2 beta). TRL averages IPO's
             log-probs over tokens; here both losses take the sums, as the papers write them.
    weights: (N,) each pair's share of the loss (default 1 / N, the mean). The stage passes
             1 / (pairs of the pair's ranking x rankings in the optimizer batch): the mean over
             prompts of each prompt's mean over its C(K, 2) pairs, the weighting of the reward
             model's `ranking_loss`, so a K = 9 prompt weighs as much as a K = 2 one, and the
             micro-batches' losses add up to the batch's.

    Returns (loss, stats). loss = sum_n weights_n * loss_n, a scalar with gradient. stats are
    detached weighted sums (weighted means when the weights sum to 1), so micro-batches' stats add
    up too: `chosen_reward` and `rejected_reward` (r of each side), `reward_margin` (r_w - r_l =
    beta h), `reward_accuracy` (share of pairs with r_w > r_l strictly: 0 while pi = pi_ref).
    """
    if loss not in DPO_LOSSES:
        raise ValueError(f"loss must be one of {DPO_LOSSES}, got {loss!r}")
    chosen_logratio = policy_chosen - ref_chosen  # (N,)
    rejected_logratio = policy_rejected - ref_rejected  # (N,)
    h = chosen_logratio - rejected_logratio  # (N,)
    if loss == "sigmoid":
        per_pair = -F.logsigmoid(beta * h)
    else:
        per_pair = (h - 1.0 / (2.0 * beta)) ** 2
    if weights is None:
        weights = torch.full_like(per_pair, 1.0 / per_pair.numel())
    with torch.no_grad():
        chosen_reward, rejected_reward = beta * chosen_logratio, beta * rejected_logratio
        margin = chosen_reward - rejected_reward
        stats = {
            "chosen_reward": (weights * chosen_reward).sum(),
            "rejected_reward": (weights * rejected_reward).sum(),
            "reward_margin": (weights * margin).sum(),
            "reward_accuracy": (weights * (margin > 0).to(weights.dtype)).sum(),
        }
    return (weights * per_pair).sum(), stats
