"""Policy and value forward passes over (prompt, response) sequences, as PPO needs them.

Layout of one batch of episodes (B rows):

    query     (B, P)  prompt tokens, LEFT-padded (as generation wants them)
    response  (B, T)  sampled tokens, RIGHT-padded after each row's EOS

`episode_inputs` joins them into (B, P + T) with an attention mask and position ids that skip the
left padding, so a row means the same whatever else shares its batch. The logit that predicts
response token t sits at position P - 1 + t; so does the value of the state before it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from posttrain.models.reward import as_scores


def response_mask(response: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(B, T) 1 on every response token up to and including the first EOS, 0 after it.
    Correct even when the pad token is the EOS token."""
    is_eos = response == eos_token_id
    T = response.size(1)
    first_eos = torch.where(
        is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], T, dtype=torch.long)
    )
    return (torch.arange(T, device=response.device) <= first_eos.unsqueeze(1)).long()


def episode_inputs(
    query: torch.Tensor, query_mask: torch.Tensor, response: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and position_ids of the joined (B, P + T) sequences."""
    attention_mask = torch.cat([query_mask, mask], dim=1)
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    return {
        "input_ids": torch.cat([query, response], dim=1),
        "attention_mask": attention_mask,
        "position_ids": position_ids,
    }


def response_logprobs(
    model, inputs: dict[str, torch.Tensor], prompt_len: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) log pi(a_t | s_t) of the response tokens and (B, T) entropy of pi(. | s_t) (no gradient),
    both under the sampling temperature (the policy that produced the tokens is softmax(logits /
    temperature))."""
    T = inputs["input_ids"].size(1) - prompt_len
    # only the T + 1 last positions' logits: the LM head and softmax skip the prompt
    logits = upcast(model(**inputs, logits_to_keep=T + 1).logits[:, :-1]) / temperature  # (B, T, V)
    logp = F.log_softmax(logits, dim=-1)
    tokens = inputs["input_ids"][:, prompt_len:]  # (B, T)
    logprobs = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():  # a metric: no graph through the whole vocabulary
        entropy = -(logp.exp() * logp).sum(-1)
    return logprobs, entropy


def token_values(value_model, inputs: dict[str, torch.Tensor], prompt_len: int) -> torch.Tensor:
    """(B, T) V(s_t): the scalar head (a reward model's `score` layer) read at every position that
    predicts a response token. `value_model` is the model, or the `Scores` module DDP or FSDP2 wraps."""
    return upcast(as_scores(value_model)(**inputs)[:, prompt_len - 1 : -1])  # (B, T)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs to float32 for the losses; a float64 model stays float64 (the
    micro-batch invariance tests compare gradients in float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
