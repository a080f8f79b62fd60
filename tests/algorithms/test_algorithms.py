"""The RLHF math: hand-computed cases, loop-vs-vectorised equivalence, padding invariance."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from posttrain.algorithms import (
    AdaptiveKLController,
    FixedKLController,
    explained_variance,
    gae,
    kl_penalty,
    kl_shaped_rewards,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    ranking_loss,
    token_mean,
    value_loss,
)


def test_gae_by_hand():
    advantages, returns = gae(
        torch.tensor([[0.0, 0, 1, 0]]), torch.tensor([[0.0, 1, 2, 3]]), torch.ones(1, 4), gamma=0.5, lam=0.0
    )
    assert advantages.tolist() == [[0.5, 0.0, 0.5, -3.0]]
    assert returns.tolist() == [[0.5, 1.0, 2.5, 0.0]]


def reference_gae(rewards, values, gamma, lam):
    """Textbook GAE for one unpadded row, as nested Python loops over the definition."""
    T = len(rewards)
    deltas = [rewards[t] + gamma * (values[t + 1] if t + 1 < T else 0.0) - values[t] for t in range(T)]
    return [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, T)) for t in range(T)]


def test_gae_matches_the_definition_and_ignores_padding():
    torch.manual_seed(0)
    B, T = 5, 7
    rewards, values = torch.randn(B, T), torch.randn(B, T)
    lengths = [7, 5, 3, 1, 6]
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in lengths])
    advantages, _ = gae(rewards, values, mask, gamma=0.9, lam=0.95)
    for b, n in enumerate(lengths):
        expected = reference_gae(rewards[b, :n].tolist(), values[b, :n].tolist(), 0.9, 0.95)
        assert advantages[b, :n].tolist() == pytest.approx(expected, abs=1e-5)
        assert advantages[b, n:].abs().sum() == 0
    # garbage in padded positions, or padding in the middle of a row, changes nothing
    noisy = gae(rewards + (1 - mask) * 100, values + (1 - mask) * 100, mask, 0.9, 0.95)[0]
    assert torch.allclose(noisy, advantages)
    spread = torch.zeros(1, 9), torch.zeros(1, 9), torch.tensor([[0.0, 1, 1, 0, 1, 0, 0, 1, 0]])
    spread[0][0, [1, 2, 4, 7]], spread[1][0, [1, 2, 4, 7]] = rewards[0, :4], values[0, :4]
    dense = gae(rewards[:1, :4], values[:1, :4], torch.ones(1, 4), 0.9, 0.95)[0]
    assert torch.allclose(gae(*spread[:2], spread[2], 0.9, 0.95)[0][0, [1, 2, 4, 7]], dense[0])


def test_masked_statistics():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    assert masked_mean(x, mask).item() == pytest.approx(2.0)
    assert masked_var(x, mask).item() == pytest.approx(2 / 3)  # biased
    white = masked_whiten(x, mask)
    assert white[0, 3] == 0 and masked_mean(white, mask).abs() < 1e-6
    assert masked_var(white, mask).item() == pytest.approx(1.0, abs=1e-4)
    assert masked_mean(masked_whiten(x, mask, shift_mean=False), mask).item() == pytest.approx(2.0)


def test_token_means_of_micro_batches_add_up_to_the_batch_mean():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert token_mean(x, mask).item() == pytest.approx(2.5)  # (1 + 2 + 3 + 4) / 4
    # rows of 3 and 1 tokens: each row's sum over the batch's 4 tokens, not each row's own mean
    assert token_mean(x[:1], mask[:1], 4).item() == pytest.approx(1.5)
    assert token_mean(x[1:], mask[1:], 4).item() == pytest.approx(1.0)
    # the losses and stats of PPO add up the same way
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0], [1.0, 9.0, 9.0]]))
    adv = torch.tensor([[1.0, -1.0, 2.0], [-4.0, 7.0, 7.0]])
    old = torch.zeros(2, 3)
    whole, stats = policy_loss(logp, old, adv, mask, 0.2)
    assert whole.item() == pytest.approx((-1.2 + 0.8 - 2.0 + 4.0) / 4) and stats["clipfrac"].item() == 0.5
    parts = [
        policy_loss(logp[i : i + 1], old[i : i + 1], adv[i : i + 1], mask[i : i + 1], 0.2, n_tokens=4)
        for i in (0, 1)
    ]
    assert parts[0][0].item() + parts[1][0].item() == pytest.approx(whole.item())
    assert parts[0][1]["clipfrac"].item() + parts[1][1]["clipfrac"].item() == pytest.approx(0.5)
    values, returns = torch.tensor([[2.0, 0.0, 1.0], [3.0, 0.0, 0.0]]), torch.ones(2, 3)
    whole, _ = value_loss(values, old, returns, mask, 0.5)
    # squared errors max(unclipped, clipped to V_old +- 0.5): 1, 1, max(0, 0.25), max(4, 0.25)
    assert whole.item() == pytest.approx(0.5 * (1 + 1 + 0.25 + 4) / 4)
    parts = [
        value_loss(values[i : i + 1], old[i : i + 1], returns[i : i + 1], mask[i : i + 1], 0.5, 4)[0]
        for i in (0, 1)
    ]
    assert sum(p.item() for p in parts) == pytest.approx(whole.item())


def test_explained_variance():
    returns, mask = torch.tensor([[1.0, 2.0, 3.0, 50.0]]), torch.tensor([[1, 1, 1, 0]])
    assert explained_variance(returns, returns, mask).item() == pytest.approx(1.0)
    assert explained_variance(torch.full((1, 4), 2.0), returns, mask).item() == pytest.approx(0.0)
    # V off by (0, 1, -1): Var(returns - V) = 2/3 = Var(returns), nothing explained
    assert explained_variance(torch.tensor([[1.0, 1.0, 4.0, 0.0]]), returns, mask).item() == pytest.approx(
        0.0
    )


def test_kl_estimators():
    torch.manual_seed(0)
    logp, ref = torch.randn(1000), torch.randn(1000)
    assert torch.equal(kl_penalty(logp, ref, "k1"), logp - ref)
    assert (kl_penalty(logp, ref, "k3") >= 0).all()
    # both are unbiased for KL(p || q) with samples from p
    p, q = (
        torch.distributions.Categorical(logits=torch.tensor([1.0, 0.0, -1.0])),
        torch.distributions.Categorical(logits=torch.tensor([0.0, 0.5, 0.0])),
    )
    torch.manual_seed(1)
    a = p.sample((200_000,))
    true_kl = torch.distributions.kl_divergence(p, q).item()
    for kind in ("k1", "k3"):
        assert kl_penalty(p.log_prob(a), q.log_prob(a), kind).mean().item() == pytest.approx(
            true_kl, abs=0.01
        )
    with pytest.raises(ValueError, match="k1"):
        kl_penalty(logp, ref, "k2")


def test_kl_shaped_rewards_put_the_score_on_the_last_real_token():
    logp = torch.tensor([[0.0, -1.0, -2.0], [-1.0, -1.0, 0.0]])
    ref = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = kl_shaped_rewards(torch.tensor([5.0, 7.0]), logp, ref, mask, beta=0.1)
    assert torch.allclose(rewards, torch.tensor([[-0.1, 0.0, 5.1], [0.0, 6.9, 0.0]]))


def test_policy_loss_clips_and_reports():
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))
    old = torch.zeros(1, 3)
    adv = torch.tensor([[1.0, -1.0, 2.0]])
    loss, stats = policy_loss(logp, old, adv, torch.ones(1, 3), clip=0.2)
    # token 1: ratio 1.5, A>0 -> clipped to 1.2; token 2: ratio 0.5, A<0 -> clipped to 0.8; token 3: ratio 1
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 2.0) / 3)
    assert stats["clipfrac"].item() == pytest.approx(2 / 3)
    padded, _ = policy_loss(
        torch.cat([logp, torch.zeros(1, 2)], 1),
        torch.zeros(1, 5),
        torch.cat([adv, torch.full((1, 2), 9.0)], 1),
        torch.tensor([[1.0, 1, 1, 0, 0]]),
        0.2,
    )
    assert padded.item() == pytest.approx(loss.item())


def test_value_loss_clips():
    loss, stats = value_loss(
        torch.tensor([[2.0, 0.0]]),
        torch.tensor([[0.0, 0.0]]),
        torch.tensor([[1.0, 1.0]]),
        torch.ones(1, 2),
        clip=0.5,
    )
    # token 1: V=2 vs clipped 0.5 -> errors 1 and 0.25, max 1; token 2: error 1 both ways
    assert loss.item() == pytest.approx(0.5 * (1 + 1) / 2)
    assert stats["clipfrac"].item() == 0.0


def naive_ranking_loss(scores, ranks, margins=None):
    """Expand each ranking into its pairs and average, prompt by prompt."""
    margins = torch.zeros_like(scores) if margins is None else margins
    per_prompt = []
    for s, r, m in zip(scores.tolist(), ranks.tolist(), margins.tolist()):
        pairs = [(i, j) for i, j in itertools.permutations(range(len(r)), 2) if 0 <= r[i] < r[j]]
        if pairs:
            per_prompt.append(
                sum(-math.log(1 / (1 + math.exp(-(s[i] - s[j] - (m[i] - m[j]))))) for i, j in pairs)
                / len(pairs)
            )
    return sum(per_prompt) / len(per_prompt)


def test_ranking_loss_equals_the_naive_pair_average():
    torch.manual_seed(0)
    scores = torch.randn(4, 6)
    ranks = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, -1, -1], [3, 2, 1, 0, 0, -1], [1, 1, 1, 1, 1, 1]])
    assert ranking_loss(scores, ranks).item() == pytest.approx(naive_ranking_loss(scores, ranks), rel=1e-6)
    likert = torch.randint(1, 8, (4, 6)).float() * 0.1
    assert ranking_loss(scores, ranks, likert).item() == pytest.approx(
        naive_ranking_loss(scores, ranks, likert), rel=1e-6
    )
    # K = 2 reduces to the usual pairwise loss
    pair = ranking_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0, 1]]))
    assert pair.item() == pytest.approx(-F.logsigmoid(torch.tensor(1.0)).item())
    # micro-batches divided by the whole batch's count of rankings with a pair (3: row 3 is all ties)
    parts = [ranking_loss(scores[i : i + 1], ranks[i : i + 1], n_rankings=3) for i in range(4)]
    assert sum(p.item() for p in parts) == pytest.approx(ranking_loss(scores, ranks).item(), rel=1e-6)
    all_tied = ranking_loss(scores[3:], ranks[3:])
    assert all_tied.item() == 0.0 and all_tied.requires_grad is scores.requires_grad


def test_kl_controllers():
    assert FixedKLController(0.1).update(5.0, 100) == 0.1
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    assert ctl.update(12.0, 1000) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # error clipped at +0.2
    assert ctl.update(3.0, 1000) < 0.1 * 1.02  # below target: beta falls
