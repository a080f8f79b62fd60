"""Generation backends: a PPO run rolls out through whatever backend is registered and hands it the policy
after every step; the sampler backend is `sample` itself, row by row whatever the batch; the vLLM backend
keeps the same contract and follows `load_weights` (on a GPU machine with the posttrain[vllm] extra)."""

from __future__ import annotations

import gc
import importlib.util
import json

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from posttrain.cli import main
from posttrain.errors import UserError
from posttrain.generation import backend as backends
from posttrain.generation.backend import SamplerBackend, check_backend
from posttrain.generation.sampler import Sampled, encode_prompts, row_draws, sample
from posttrain.stages import ppo as ppo_stage
from posttrain.training.metrics import read_metrics
from posttrain.training.ppo_config import PPOConfig
from tests.stages.commands import ppo_args
from tests.tiny import llama_config

BASE = "assets/base-small-seed0"
PAD, EOS = 0, 1


def vllm_missing() -> str | None:
    """Why the vLLM backend cannot be tested here, or None where it can."""
    if importlib.util.find_spec("vllm") is None:
        return (
            "vllm is not installed (GPU-only extra posttrain[vllm]); "
            "the vLLM backend is tested on a GPU machine"
        )
    if not torch.cuda.is_available():
        return "vllm is installed but no CUDA device is visible; the vLLM backend is tested on a GPU machine"
    return None


# --- the interface, through a real PPO run ---------------------------------------------------------------


class FakeBackend:
    """Answers row i with 1 + i % 3 copies of one word's tokens and EOS; records what PPO hands it."""

    name = "fake"

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.word = tokenizer.encode(" Tarn", add_special_tokens=False)
        self.generated: list[tuple[int, ...]] = []  # draws' shape, per call
        self.loaded: list[tuple[torch.nn.Module, float]] = []  # (module, a weight checksum), per call
        self.start = checksum(model)
        FAKES.append(self)

    def rows(self, n: int) -> list[list[int]]:
        return [self.word * (1 + i % 3) + [self.tokenizer.eos_token_id] for i in range(n)]

    def generate(
        self, query, query_mask, *, max_new_tokens, temperature, top_p, eos_token_id, pad_token_id, draws
    ):
        self.generated.append(tuple(draws.shape))
        rows = self.rows(len(query))
        tokens = torch.full((len(rows), max(map(len, rows))), pad_token_id)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = torch.tensor(row)
        return Sampled(tokens.to(query.device), None, None)  # no logprobs: PPO's rollout computes them

    def load_weights(self, model):
        self.loaded.append((model, checksum(model)))


FAKES: list[FakeBackend] = []  # every one built, newest last


def checksum(model: torch.nn.Module) -> float:
    return sum(float(p.detach().double().sum()) for p in model.parameters())


def test_ppo_rolls_out_through_the_registered_backend_and_loads_weights_after_each_step(
    setup,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setitem(backends.BACKENDS, "fake", FakeBackend)
    FAKES.clear()
    cfg = PPOConfig(
        policy=str(setup / "sft"),
        reward=str(setup / "rm"),
        prompts=setup / "prompts.jsonl",
        out=tmp_path / "ppo",
        rollout_batch=8,
        minibatches=2,
        micro_batch=2,
        ppo_epochs=1,
        max_new_tokens=8,
        lr=1e-3,
        threads=1,
        max_steps=2,
        sample_every=1,
    )
    cfg.generation_backend = "fake"  # not one of the CLI's choices; the config takes any registered name
    summary = ppo_stage.ppo(cfg)
    assert summary["steps"] == 2

    [fake] = FAKES
    assert fake.generated == [(8, 8), (8, 8)]  # one rollout batch per step
    assert len(fake.loaded) == 2 and all(model is fake.model for model, _ in fake.loaded)  # the policy itself
    assert fake.loaded[0][1] != fake.start and fake.loaded[1][1] != fake.loaded[0][1]  # after each update

    tokenizer = fake.tokenizer
    rows = fake.rows(8)
    samples = [json.loads(line) for line in (tmp_path / "ppo" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1] * 4 + [2] * 4
    for i, s in enumerate(samples):
        assert s["response"] == tokenizer.decode(rows[i % 4][:-1], skip_special_tokens=True).strip()
    for metrics in read_metrics(tmp_path / "ppo" / "metrics.jsonl"):
        assert metrics["ppo/response_length"] == pytest.approx(sum(map(len, rows)) / 8)  # EOS counted
        assert metrics["ppo/eos_rate"] == 1.0


# --- the sampler backend --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    """A random 2-layer Llama over 8 tokens: EOS comes often enough that rows end at different steps."""
    torch.manual_seed(0)
    config = llama_config(
        8,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=None,
    )
    return LlamaForCausalLM(config).eval()


def left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) prompts left-padded to the longest, and their mask."""
    P = max(map(len, rows))
    ids = torch.full((len(rows), P), PAD)
    mask = torch.zeros((len(rows), P), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, P - len(row) :] = torch.tensor(row)
        mask[i, P - len(row) :] = 1
    return ids, mask


def prompts(n: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [
        torch.randint(2, 8, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
        for _ in range(n)
    ]


def widened(tokens: torch.Tensor, T: int) -> torch.Tensor:
    return torch.cat([tokens, tokens.new_full((tokens.size(0), T - tokens.size(1)), PAD)], dim=1)


def generate(backend, rows: list[list[int]], draws: torch.Tensor, T: int) -> torch.Tensor:
    ids, mask = left_padded(rows)
    return backend.generate(
        ids,
        mask,
        max_new_tokens=T,
        temperature=1.0,
        top_p=0.9,
        eos_token_id=EOS,
        pad_token_id=PAD,
        draws=draws,
    ).tokens


def test_the_sampler_backend_gives_sample_s_tokens_for_the_same_draws(tiny):
    rows, T = prompts(16), 12
    draws = row_draws(16, T, seed=7)
    ids, mask = left_padded(rows)
    theirs = sample(
        tiny,
        ids,
        mask,
        max_new_tokens=T,
        temperature=1.0,
        top_p=0.9,
        eos_token_id=EOS,
        pad_token_id=PAD,
        draws=draws,
    )
    ours = generate(SamplerBackend(tiny), rows, draws, T)
    assert torch.equal(ours, theirs)
    ended = (ours == EOS).any(1)
    assert 0 < int(ended.sum()) < 16  # some rows stop early (and are padded after EOS), some run to T


def test_a_row_gets_the_same_tokens_whether_its_batch_is_sampled_whole_or_in_halves(tiny):
    rows, T, seed = prompts(16), 12, 11
    backend = SamplerBackend(tiny)
    whole = generate(backend, rows, row_draws(16, T, seed), T)
    halves = [
        generate(backend, rows[i : i + 8], row_draws(16, T, seed, torch.arange(i, i + 8)), T) for i in (0, 8)
    ]
    joined = torch.cat([widened(h, whole.size(1)) for h in halves])  # each half is as wide as its longest row
    assert torch.equal(joined, whole)


# --- the vLLM backend (GPU machines with the posttrain[vllm] extra) ---------------------------------------


def test_the_vllm_backend_s_glue_strips_left_padding_seeds_rows_by_their_own_draws_and_pads_after_eos():
    ids, mask = left_padded([[5, 6, 7], [2], [3, 4]])
    assert backends.prompt_rows(ids, mask) == [
        {"prompt_token_ids": [5, 6, 7]},
        {"prompt_token_ids": [2]},
        {"prompt_token_ids": [3, 4]},
    ]
    seeds = backends.row_seeds(row_draws(6, 4, seed=3))
    assert len(set(seeds)) == 6 and all(0 <= s < 2**31 for s in seeds)
    assert backends.row_seeds(row_draws(6, 4, seed=3, rows=torch.tensor([4, 1]))) == [seeds[4], seeds[1]]
    # an engine's rows: ended at EOS, cut at max_new_tokens, and one that (wrongly) runs on after EOS
    rows = backends.padded([[4, EOS], [4, 5, 6], [EOS, 7, 7]], EOS, PAD)
    assert rows.tolist() == [[4, EOS, PAD], [4, 5, 6], [EOS, PAD, PAD]]
    assert backends.padded([[4, EOS], [EOS]], EOS, PAD).tolist() == [[4, EOS], [EOS, PAD]]


def test_the_vllm_backend_keeps_the_contract_matches_greedy_sampling_and_follows_load_weights():
    if (reason := vllm_missing()) is not None:
        pytest.skip(reason)
    from posttrain.generation.backend import VLLMBackend

    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    policy = LlamaForCausalLM(
        llama_config(
            len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            initializer_range=0.1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
    ).eval()
    query, query_mask = encode_prompts(
        tokenizer,
        [
            [{"role": "user", "content": text}]
            for text in (
                "Hi",
                "What is the capital of Veloria?",
                "Sort 3, 1, 2.",
                "Tell me a long story about a lighthouse keeper.",
            )
        ],
    )
    T = 16
    draws = row_draws(len(query), T, seed=0)
    sampler = SamplerBackend(policy)

    def greedy(backend, eos):
        return backend.generate(
            query,
            query_mask,
            max_new_tokens=T,
            temperature=0.0,
            top_p=1.0,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            draws=draws,
        ).tokens

    # a random model seldom says its EOS: stop instead at a token its greedy answers do say, so that
    # some rows end early (EOS, then padding) and others run to T
    free_run = greedy(sampler, tokenizer.eos_token_id)
    counts = torch.bincount(free_run[:, 1:].flatten(), minlength=len(tokenizer))
    eos = next(
        t
        for t in counts.argsort(descending=True).tolist()
        if t != tokenizer.pad_token_id and 0 < int((free_run == t).any(1).sum()) < len(query)
    )

    engine = VLLMBackend(policy, tokenizer)
    try:
        ours, theirs = greedy(engine, eos), greedy(sampler, eos)
        assert ours.dtype == torch.long and ours.shape == theirs.shape
        assert torch.equal(ours, theirs), (ours, theirs)
        ended = (ours == eos).any(1)
        assert 0 < int(ended.sum()) < len(query)
        first = (ours == eos).long().argmax(1)
        for row, end, stop in zip(ours, first.tolist(), ended.tolist()):
            if stop:
                assert (row[end + 1 :] == tokenizer.pad_token_id).all()

        with torch.no_grad():  # a PPO step, roughly: every weight moves
            for p in policy.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        moved = greedy(sampler, eos)
        assert not torch.equal(moved, theirs)  # else following the weights would prove nothing
        engine.load_weights(policy)
        assert torch.equal(greedy(engine, eos), moved)

        sampled = engine.generate(
            query,
            query_mask,
            max_new_tokens=T,
            temperature=1.0,
            top_p=1.0,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            draws=draws,
        ).tokens
        again = engine.generate(
            query[1:],
            query_mask[1:],
            max_new_tokens=T,
            temperature=1.0,
            top_p=1.0,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
            draws=draws[1:],
        ).tokens
        assert torch.equal(widened(again, sampled.size(1)), sampled[1:])  # seeded per row, not per batch
    finally:
        del engine
        gc.collect()
        torch.cuda.empty_cache()


def test_asking_for_vllm_where_it_cannot_run_is_a_clear_error_before_any_rollout(setup, capsys, monkeypatch):
    if vllm_missing() is None:
        pytest.skip("vllm and a CUDA GPU are both here: there is no missing-vllm error to show")
    with pytest.raises(UserError, match=r"posttrain\[vllm\]"):
        check_backend("vllm")  # what a config can call before any model loads
    check_backend("sampler")
    monkeypatch.setattr(
        ppo_stage, "rollout", lambda *a, **k: pytest.fail("a rollout ran before the vllm check")
    )
    assert main(ppo_args(setup, "ppo-vllm", "--generation-backend", "vllm")) == 2
    err = capsys.readouterr().err
    assert "posttrain[vllm]" in err and "--generation-backend sampler" in err and "Traceback" not in err
    assert not (setup / "ppo-vllm").exists() and not (setup / "ppo-vllm.partial").exists()
