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


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) positions that skip left padding, as `generate` computes them."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def token_logprobs(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T-1) log p(ids[:, t+1] | ids[:, :t+1]) for left-padded rows."""
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits  # (B, T, V)
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, ids[:, 1:, None]).squeeze(-1)


def response_mask(response: torch.Tensor, eos: int) -> torch.Tensor:
    """(B, T) 1 on response tokens up to and including the first EOS, 0 on the padding after it."""
    is_eos = (response == eos).long()
    after_eos = (is_eos.cumsum(dim=1) - is_eos) > 0
    return (~after_eos).long()


@torch.no_grad()
def sample_with_ids(model, tokenizer, conversations: list[list[dict]], *, max_new_tokens: int, seed: int):
    """Sampled responses at temperature 1: (ids (B, P+T), attention mask (B, P+T), response mask (B, T))."""
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    tokenizer.padding_side = "left"
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        ids = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    response = ids[:, enc["input_ids"].shape[1]:]                      # (B, T)
    resp_mask = response_mask(response, tokenizer.eos_token_id)
    return ids, torch.cat([enc["attention_mask"], resp_mask], dim=1), resp_mask


@torch.no_grad()
def kl_to_reference(model, reference, tokenizer, conversations: list[list[dict]], *, samples: int = 1,
                    max_new_tokens: int = 48, batch_size: int = 32, seed: int = 0) -> float:
    """Mean over prompts (and `samples` responses each) of sum_t log pi(y_t) - log pi_ref(y_t), y ~ pi."""
    check_same_vocabulary(model, reference)
    model.eval()
    reference.eval()
    totals: list[float] = []
    batches = [(s, i) for s in range(samples) for i in range(0, len(conversations), batch_size)]
    for s, i in tqdm(batches, desc="kl to baseline", unit="batch", disable=None, leave=False):
        ids, mask, resp_mask = sample_with_ids(model, tokenizer, conversations[i:i + batch_size],
                                               max_new_tokens=max_new_tokens, seed=seed + 1000 * s + i)
        width = resp_mask.shape[1]
        logp = token_logprobs(model, ids, mask)[:, -width:]             # (B, T) response tokens only
        ref_logp = token_logprobs(reference, ids, mask)[:, -width:]     # (B, T)
        totals += ((logp - ref_logp) * resp_mask).sum(dim=1).tolist()
    return sum(totals) / len(totals)


def check_same_vocabulary(model, reference) -> None:
    a, b = model.get_input_embeddings().weight.shape[0], reference.get_input_embeddings().weight.shape[0]
    if a != b:
        raise UserError(f"the model and the baseline have different vocabularies ({a} and {b} tokens); "
                        "KL to the baseline needs a model fine-tuned from it (pass --kl-samples 0 to skip)")


@torch.no_grad()
def heldout_lm_loss(model, tokenizer, documents: list[str], *, block: int = 256, batch_size: int = 16) -> float:
    """Mean next-token cross-entropy (nats) on documents packed into rows of `block` tokens."""
    from posttrain.data.corpus import pack
    from posttrain.stages.pretrain import heldout_loss

    limit = getattr(model.config, "max_position_embeddings", None)
    if limit:
        block = min(block, limit - 1)
    rows = pack(documents, tokenizer, block)                            # (N, block + 1)
    return heldout_loss(model, rows, batch=batch_size)
