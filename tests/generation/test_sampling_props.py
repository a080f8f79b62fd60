"""Sampling math under hostile values: any temperature and top_p the options accept, any logits
(-inf entries, huge and tiny ones) give a token that is allowed and has a finite log-prob."""

import math
from types import SimpleNamespace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from posttrain.generation.logits import FLOAT32, probabilities
from posttrain.generation.sampler import pick
from posttrain.generation.streaming import Decoder, Sampling

EXTREMES = [5e-324, 1e-300, 1e-46, 1e-45, 1e-38, 2e-38, 1e-30]
# Accepted anywhere: chat and serve take a temperature in [0, 2], PPO and sampling any finite one > 0;
# top_p is in (0, 1] everywhere.
temperatures = st.one_of(
    st.floats(0, 2), st.floats(0, allow_infinity=False), st.sampled_from(EXTREMES + [1e38, 1e300])
)
top_ps = st.one_of(st.floats(0, 1, exclude_min=True), st.sampled_from(EXTREMES + [1.0]))
entries = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False), st.floats(-30, 30), st.just(-math.inf)
)
logit_rows = st.lists(entries, min_size=1, max_size=40).filter(lambda row: any(map(math.isfinite, row)))
PROPERTY = settings(max_examples=200, deadline=None, database=None)


def allowed(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """(V,) the tokens a draw may give, worked out in float64 with some slack: a finite logit, and
    less than top_p of probability on the tokens more likely than it (the argmax, near temperature 0)."""
    finite = torch.isfinite(logits)
    if temperature < FLOAT32.tiny:
        return logits == logits.max()
    shifted = logits.double() - logits.double().max()
    probs = (shifted / temperature).softmax(-1)
    above = torch.stack([probs[probs > p + 1e-6].sum() for p in probs])  # float32 ties what float64 orders
    return finite & (above < top_p + 1e-3)


@PROPERTY
@given(logit_rows, temperatures, top_ps)
def test_probabilities_are_a_distribution_on_allowed_tokens(row, temperature, top_p):
    logits = torch.tensor(row)
    probs = probabilities(logits, temperature, top_p)
    assert torch.isfinite(probs).all() and (probs >= 0).all()
    assert math.isclose(probs.sum().item(), 1.0, abs_tol=1e-5)
    assert not (probs > 0)[~allowed(logits, temperature, top_p)].any()


@PROPERTY
@given(logit_rows, temperatures, top_ps, st.integers(0, 2**32))
def test_the_batched_sampler_draws_allowed_tokens_with_finite_logprobs(row, temperature, top_p, seed):
    logits = torch.tensor(row).expand(8, -1)  # (b, V)
    tokens = pick(logits, temperature, top_p, torch.Generator().manual_seed(seed))
    assert allowed(logits[0], temperature, top_p)[tokens].all()
    logprobs = probabilities(logits, temperature, top_p).log().gather(1, tokens[:, None])
    assert torch.isfinite(logprobs).all()


class FixedLogits:
    """A fake causal LM whose next-token logits are always `logits` (V,); no cache."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def __call__(self, input_ids: torch.Tensor, **kwargs):
        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1), past_key_values=None)


@PROPERTY
@given(logit_rows, temperatures, top_ps, st.integers(0, 2**32))
def test_the_serving_decoder_draws_allowed_tokens(row, temperature, top_p, seed):
    logits = torch.tensor(row)
    sampling = Sampling(temperature, top_p, max_tokens=1, seed=seed)
    decoder = Decoder(FixedLogits(logits), [[0]], [sampling], eos_ids=set())
    [(token,)] = list(decoder)
    assert allowed(logits, temperature, top_p)[token]
    assert probabilities(logits, temperature, top_p)[token] > 0


def test_temperatures_towards_zero_are_greedy():
    logits = torch.tensor([[1.0, 3.0, -math.inf, 2.9999998], [0.0, -1e-30, 1e-30, 5.0]])
    for temperature in [0.0, 1e-300, 1e-45, 1e-38]:
        tokens = pick(logits, temperature, 1.0, torch.Generator().manual_seed(0))
        assert tokens.tolist() == [1, 3]
