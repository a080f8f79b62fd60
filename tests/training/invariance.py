"""The pieces of an invariance test (one optimizer step's gradient whatever the micro-batch): tiny float64
models, flattened gradients and fake PPO rollouts (tests/training/test_microbatch_invariance.py and the
critic-free stages' tests)."""

import torch

from posttrain.models.policy import episode_inputs, response_logprobs, token_values
from posttrain.training.policy_models import PolicyModels
from posttrain.training.rollout import Rollouts
from tests.tiny import llama_config

B = 8  # one optimizer step's batch: 1 x 8 against 8 x 1


def tiny(cls, tokenizer, seed: int, **extra):
    torch.manual_seed(seed)
    config = llama_config(
        len(tokenizer), max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id, **extra
    )
    return cls(config).double().eval()


def gradient(*models) -> torch.Tensor:
    """All parameters' .grad, flattened into one vector, then cleared."""
    grads = [p.grad.flatten() for m in models for p in m.parameters() if p.grad is not None]
    for m in models:
        m.zero_grad(set_to_none=True)
    return torch.cat(grads)


def assert_same_gradient(split: torch.Tensor, whole: torch.Tensor):
    assert whole.norm() > 0
    assert (split - whole).norm() <= 1e-6 * whole.norm(), (split - whole).norm() / whole.norm()


def trained(policy, value=None) -> PolicyModels:
    """The models of a minibatch update in one process: the policy and value function train themselves."""
    return PolicyModels(
        policy=policy,
        ref=None,
        value=value,
        reward=None,
        score=None,
        tokenizer=None,
        train_policy=policy,
        train_value=value,
        backend=None,
    )


def fake_rollouts(policy, value, tokenizer) -> Rollouts:
    """B episodes with prompts of 2..6 tokens and responses of 1..7: old logprobs and values near the
    models' own, so some ratios and values clip and some do not."""
    g = torch.Generator().manual_seed(0)
    P, T, pad = 6, 7, tokenizer.pad_token_id
    prompt_len, response_len = [2, 6, 3, 5, 4, 6, 2, 3], [7, 1, 4, 2, 7, 3, 6, 5]
    query = torch.randint(10, len(tokenizer), (B, P), generator=g)
    query_mask = (torch.arange(P) >= P - torch.tensor(prompt_len).unsqueeze(1)).long()  # left-padded
    response = torch.randint(10, len(tokenizer), (B, T), generator=g)
    mask = (torch.arange(T) < torch.tensor(response_len).unsqueeze(1)).long()  # right-padded
    query, response = query.masked_fill(query_mask == 0, pad), response.masked_fill(mask == 0, pad)
    with torch.no_grad():
        inputs = episode_inputs(query, query_mask, response, mask)
        logprobs, entropy = response_logprobs(policy, inputs, P, 0.7)
        values = token_values(value, inputs, P)

    def noise(scale: float) -> torch.Tensor:
        return scale * torch.randn(B, T, generator=g, dtype=torch.float64)

    def z(x: torch.Tensor) -> torch.Tensor:
        return x * mask

    return Rollouts(
        query,
        query_mask,
        response,
        mask,
        ended=mask[:, -1] == 0,
        logprobs=z(logprobs + noise(0.3)),
        ref_logprobs=z(logprobs),
        entropy=z(entropy),
        values=z(values + noise(0.3)),
        scores=torch.zeros(B, dtype=torch.float64),
        texts=[""] * B,
        advantages=z(noise(1.0)),
        returns=z(values + noise(1.0)),
    )
