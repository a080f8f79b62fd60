"""The next-token LM loss, its held-out measurement, and the batches of a step (pretraining and PPO-ptx)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from posttrain.data.chat import IGNORE
from posttrain.models.reward import causal_only
from posttrain.training.stage import derive_seed

# Config fields of architectures whose logits are more than the output layer of the last hidden state
# (a soft cap, a scale): `LabelledLoss` leaves their forward to the model.
LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def lm_loss(model, rows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of rows (B, T + 1): inputs rows[:, :-1], targets rows[:, 1:]."""
    logits = model(input_ids=rows[:, :-1]).logits  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))


class LabelledLoss(torch.nn.Module):
    """Summed next-token cross-entropy over the labelled positions of right-padded rows, and their count, as
    one module call (what DDP and FSDP2 wrap; it holds the model and copies nothing).

    The output layer and the softmax run only at positions whose next token is labelled: the backbone's
    hidden states there are gathered first, so the prompt turns and the padding of SFT rows cost no
    (tokens x vocabulary) matmul, and no (B, T, V) logits are sliced or copied. Models whose logits are
    transformed after the output layer (LOGIT_TRANSFORMS) take their own full forward instead."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        from posttrain.models.adapters import backbone, is_lora

        targets = labels[:, 1:]  # (B, T-1)
        keep = targets != IGNORE
        lm = self.model.get_base_model() if is_lora(self.model) else self.model
        attention_mask = causal_only(attention_mask)
        if any(getattr(lm.config, name, None) for name in LOGIT_TRANSFORMS):
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][
                keep
            ]  # (N, V)
        else:
            hidden = backbone(self.model)(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            logits = lm.get_output_embeddings()(hidden[:, :-1][keep])  # (N, V)
        return F.cross_entropy(logits, targets[keep], reduction="sum"), int(keep.sum())


def labelled_loss(model) -> torch.nn.Module:
    """`model` when it already is a `LabelledLoss` (or DDP's wrapper of one), else a `LabelledLoss` of it."""
    return (
        model
        if isinstance(model, LabelledLoss) or isinstance(getattr(model, "module", None), LabelledLoss)
        else LabelledLoss(model)
    )


@torch.no_grad()
def heldout_loss(model, held: torch.Tensor, batch: int = 32) -> float:
    model.eval()
    losses = [lm_loss(model, chunk).item() * len(chunk) for chunk in held.split(batch)]
    return sum(losses) / len(held)


def batch_indices(n: int, batch: int, step: int, seed: int) -> torch.Tensor:
    """Rows of step `step` (0-based): consecutive slices of a fresh permutation per epoch."""
    positions = torch.arange(step * batch, (step + 1) * batch)
    out = torch.empty(batch, dtype=torch.long)
    for epoch in positions.div(n, rounding_mode="floor").unique().tolist():
        perm = torch.randperm(
            n, generator=torch.Generator().manual_seed(derive_seed(seed, "data_order", epoch))
        )
        mask = positions.div(n, rounding_mode="floor") == epoch
        out[mask] = perm[positions[mask] % n]
    return out
