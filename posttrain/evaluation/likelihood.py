"""Likelihood measurements of a policy: KL to a reference policy, and held-out pretraining loss.

`kl_to_reference` estimates KL(pi || pi_ref) on prompts by Monte Carlo: sample responses from pi
at temperature 1, then for each the sequence sum over response tokens of log pi - log pi_ref,
both from a forward pass over prompt + response (the estimator PPO logs as `objective/kl`;
Ouyang et al. 2022, eq. 2). The mean over prompts and samples is unbiased for the KL of the
response distributions; single samples can be negative.

`heldout_lm_loss` is the alignment tax's first measure (Ouyang et al. 2022, section 4.2): mean
next-token cross-entropy on held-out pretraining documents, packed as in pretraining.
"""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from posttrain.errors import UserError

log = logging.getLogger(__name__)


@torch.no_grad()
def kl_to_reference(
    model,
    reference,
    tokenizer,
    conversations: list[list[dict]],
    *,
    samples: int = 1,
    max_new_tokens: int = 48,
    batch_size: int = 32,
    seed: int = 0,
) -> float:
    """Mean over prompts (and `samples` responses each) of sum_t log pi(y_t) - log pi_ref(y_t), y ~ pi.

    Sampling and log-probs are PPO's own (posttrain.generation.sampler, posttrain.models.policy),
    so this is the quantity `objective/kl` logs during training."""
    from posttrain.generation.sampler import sample_chats
    from posttrain.models.policy import episode_inputs, response_logprobs, response_mask

    check_same_vocabulary(model, reference)
    model.eval()
    reference.eval()
    totals: list[float] = []
    batches = [(s, i) for s in range(samples) for i in range(0, len(conversations), batch_size)]
    for s, i in tqdm(batches, desc="kl to baseline", unit="batch", disable=None, leave=False):
        generator = torch.Generator().manual_seed(seed + 1000 * s + i)
        query, query_mask, response = sample_chats(
            model, tokenizer, conversations[i : i + batch_size], 1.0, max_new_tokens, generator
        )  # (B, P), (B, P), (B, T)
        mask = response_mask(response, tokenizer.eos_token_id)
        inputs = episode_inputs(query, query_mask, response, mask)
        logp, _ = response_logprobs(model, inputs, query.size(1), 1.0)  # (B, T)
        ref_logp, _ = response_logprobs(reference, inputs, query.size(1), 1.0)
        totals += ((logp - ref_logp) * mask).sum(dim=1).tolist()
    return sum(totals) / len(totals)


def check_same_vocabulary(model, reference) -> None:
    a, b = model.get_input_embeddings().weight.shape[0], reference.get_input_embeddings().weight.shape[0]
    if a != b:
        raise UserError(
            f"the model and the baseline have different vocabularies ({a} and {b} tokens); "
            "KL to the baseline needs a model fine-tuned from it (pass --kl-samples 0 to skip)"
        )


@torch.no_grad()
def heldout_lm_loss(
    model, tokenizer, documents: list[str], *, block: int = 256, batch_size: int = 16
) -> float:
    """Mean next-token cross-entropy (nats) on documents packed into rows of `block` tokens."""
    from posttrain.data.corpus import pack
    from posttrain.training.lm import heldout_loss

    limit = getattr(model.config, "max_position_embeddings", None)
    if limit:
        block = min(block, limit - 1)
    rows = pack(documents, tokenizer, block)  # (N, block + 1)
    return heldout_loss(model, rows, batch=batch_size)
