"""Logit bias and log-probabilities on hand-computed logits."""

import math

import torch

from posttrain.generation.logits import Scored, adjusted, prompt_scored, scored


def test_a_bias_is_added_and_disallowed_tokens_get_minus_infinity_on_a_copy():
    logits = torch.zeros(4)
    out = adjusted(logits, {1: 2.0, 3: -100.0}, torch.tensor([True, True, False, True]))
    assert out.tolist() == [0.0, 2.0, -math.inf, -100.0] and logits.abs().sum() == 0
    assert torch.equal(adjusted(logits, {}, None), logits)


def test_scored_gives_the_tokens_log_probability_and_the_top_ones_best_first():
    logits = torch.tensor([[math.log(1), math.log(2), math.log(5)], [0.0, 0.0, 0.0]])  # p = .125 .25 .625
    first, second = scored(logits, torch.tensor([0, 2]), [2, 0])
    assert first.token == 0 and math.isclose(first.logprob, math.log(1 / 8), rel_tol=1e-6)
    assert [t for t, _ in first.top] == [2, 1] and math.isclose(
        first.top[0][1], math.log(5 / 8), rel_tol=1e-6
    )
    assert second.top == () and math.isclose(second.logprob, math.log(1 / 3), rel_tol=1e-6)


def test_a_prompts_first_token_has_no_log_probability_and_each_other_is_predicted_by_the_one_before():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]))  # (P, V) after tokens 0, 1, 1
    scores = prompt_scored(logits, [0, 1, 1], top=1)
    assert scores[0] == Scored(0, None)
    assert [round(s.logprob, 6) for s in scores[1:]] == [round(math.log(0.5), 6), round(math.log(0.1), 6)]
    assert scores[2].top[0][0] == 0 and prompt_scored(logits[:1], [7], top=3) == [Scored(7, None)]
