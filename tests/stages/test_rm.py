"""`posttrain rm`: the K-way loss scores each completion once and equals the naive pair average."""

import itertools
import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from posttrain.cli import main
from posttrain.data.rankings import read_rankings
from posttrain.data.records import write_jsonl
from posttrain.models.load import load_tokenizer
from posttrain.models.reward import CHUNK_ROWS, batch_rewards, reward_from_pretrained
from posttrain.stages.rm import RMConfig, score_items, train_step
from posttrain.training.metrics import read_metrics
from posttrain.training.rm_data import encode_items
from posttrain.world import World
from posttrain.world.labelers import LabelerPool, model_like_answers
from posttrain.world.rng import derive
from tests.tiny import BASE, llama_config


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(len(tokenizer))).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory, tokenizer


@pytest.fixture(scope="module")
def rankings(tmp_path_factory):
    """Rankings of model-like answers by the world's simulated labelers, K = 4..6, two labelers each."""
    world, rng = World(seed=0), derive(0, "rm-test")
    pool = LabelerPool(world)
    records = []
    for i, p in enumerate(world.prompts("rm-test", 60, "train")):
        texts = list(dict.fromkeys(model_like_answers(world, p, 4 + i % 3, rng)))
        if len(texts) < 2:
            continue
        completions = [{"text": t, "source": "model:test"} for t in texts]
        for lab in pool.pick_labelers(p["id"], 2):
            ranked = pool.rank(lab, p, texts)
            records.append(
                {
                    "id": f"{p['id']}/{lab.id}",
                    "prompt": p["messages"],
                    "completions": completions,
                    "ranking": ranked["ranking"],
                    "labeler": lab.id,
                    "meta": {**p["meta"], "item": p["id"]},
                }
            )
    path = tmp_path_factory.mktemp("rankings") / "rankings.jsonl"
    write_jsonl(path, records)
    return path


def test_k_way_loss_scores_each_completion_once_and_equals_the_pair_average(tiny, rankings):
    directory, tokenizer = tiny
    model = reward_from_pretrained(str(directory), tokenizer)
    items = encode_items(
        read_rankings(rankings)[:8], tokenizer, RMConfig(model=str(directory), data=rankings, out=Path("x"))
    )
    calls = []
    hook = model.base_model.register_forward_pre_hook(
        lambda m, args, kwargs: calls.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, _ = train_step(model, optimizer, items, micro_batch=8, pad=tokenizer.pad_token_id, lr=0.0)
    hook.remove()
    n = sum(len(i.examples) for i in items)
    assert sum(calls) == n and len(calls) == math.ceil(n / CHUNK_ROWS)  # each completion once, chunk by chunk
    # the same loss, pair by pair
    scores, ranks, _ = score_items(model, items, tokenizer.pad_token_id)
    per_prompt = []
    for s, r in zip(scores.tolist(), ranks.tolist()):
        pairs = [(i, j) for i, j in itertools.permutations(range(len(r)), 2) if 0 <= r[i] < r[j]]
        per_prompt.append(sum(math.log1p(math.exp(-(s[i] - s[j]))) for i, j in pairs) / len(pairs))
    assert loss == pytest.approx(sum(per_prompt) / len(per_prompt), rel=1e-5)


def test_rm_trains_reports_accuracy_and_normalises(tiny, rankings, tmp_path, capsys):
    directory, tokenizer = tiny
    out = tmp_path / "rm"
    assert (
        main(
            [
                "rm",
                "--model",
                str(directory),
                "--data",
                str(rankings),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--lr",
                "1e-3",
                "--eval-fraction",
                "0.2",
                "--micro-batch",
                "4",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "held-out labeler pairs:" in printed and "gold order:" in printed
    manifest = json.loads((out / "posttrain.json").read_text())
    assert manifest["stage"] == "rm" and manifest["metrics"]["eval_rankings"] > 0
    rows = read_metrics(out / "metrics.jsonl")
    assert all(m["perf/flops_per_s"] > 0 and m["perf/share_of_peak"] > 0 for m in rows)
    norm = manifest["reward_normalisation"]
    model = reward_from_pretrained(str(out), load_tokenizer(out))  # the saved run reloads as a reward model
    items = encode_items(
        read_rankings(rankings), tokenizer, RMConfig(model=str(out), data=rankings, out=Path("x"))
    )
    with torch.no_grad():
        raw = batch_rewards(model.eval(), [e for i in items for e in i.examples], tokenizer.pad_token_id)
    normalised = norm["gain"] * raw + norm["bias"]
    assert abs(normalised.mean().item()) < 0.3 and 0.7 < normalised.std().item() < 1.3

    # rm score adds the same normalised scores to the records; rm robustness reports per family
    assert (
        main(
            ["rm", "score", "--model", str(out), "--data", str(rankings), "--out", str(tmp_path / "s.jsonl")]
        )
        == 0
    )
    scored = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    first = scored[0]["scores"]
    assert len(first) == len(scored[0]["completions"])
    assert first == pytest.approx(normalised[: len(first)].tolist(), abs=1e-4)
    capsys.readouterr()
    assert main(["rm", "robustness", "--model", str(out), "--prompts", "18"]) == 0
    assert "mean |change|" in capsys.readouterr().out
    assert (
        main(
            ["rm", "score", "--model", str(directory), "--data", str(rankings), "--out", str(tmp_path / "x")]
        )
        == 2
    )


def test_human_completions_are_left_out_unless_asked(tiny, tmp_path):
    directory, tokenizer = tiny
    record = {
        "id": "x",
        "prompt": [{"role": "user", "content": "hi"}],
        "labeler": "ann",
        "ranking": [[2], [0], [1]],
        "completions": [
            {"text": "a", "source": "model:m"},
            {"text": "b", "source": "model:m"},
            {"text": "c (rewritten)", "source": "human:ann"},
        ],
    }
    cfg = RMConfig(model=str(directory), data=tmp_path / "r.jsonl", out=tmp_path / "o")
    [item] = encode_items([("r.jsonl:1", record)], tokenizer, cfg)
    assert item.ranks == [1, 2, -1]
    cfg.human_completions = "keep"
    [item] = encode_items([("r.jsonl:1", record)], tokenizer, cfg)
    assert item.ranks == [1, 2, 0] and item.margins == [0.0, 0.0, 0.0]
    cfg.likert_margin = 0.5
    [item] = encode_items([("r.jsonl:1", {**record, "likert": [4, 2, 7]})], tokenizer, cfg)
    assert item.margins == [2.0, 1.0, 3.5]


def test_the_same_seed_trains_the_same_reward_model(tiny, rankings, tmp_path):
    from posttrain.stages.rm import rm

    directory, _ = tiny
    runs = [
        rm(RMConfig(model=str(directory), data=rankings, out=tmp_path / f"rm{i}", max_steps=3, micro_batch=4))
        for i in range(2)
    ]
    torch.manual_seed(123)  # whatever the global RNG holds, the seed decides
    runs.append(
        rm(RMConfig(model=str(directory), data=rankings, out=tmp_path / "rm2", max_steps=3, micro_batch=4))
    )
    assert runs[0]["rm/loss"] == runs[1]["rm/loss"] == runs[2]["rm/loss"]


def test_a_reward_does_not_depend_on_the_rows_padded_beside_it(tiny):
    """Right-padded rows go through attention without a mask (`causal_only`: the padding comes after every
    real token): a completion's reward alone equals its reward in a batch of longer and shorter ones, and
    equals a forward with the explicit mask."""
    from posttrain.models.reward import Scores, causal_only, encode_response

    directory, tokenizer = tiny
    model = reward_from_pretrained(str(directory), tokenizer).double().eval()
    prompt = [{"role": "user", "content": "Name a colour."}]
    texts = [
        "Blue.",
        "A deep, calm blue like the sea.",
        "",
        "Red, the colour of a ripe apple in autumn light.",
        "Green.",
        "Teal",
        "A pale and quiet grey.",
        "Orange!",
        "Violet, maybe, or a soft lilac shade of it.",
        "Black",
        "White as snow on a winter morning.",
    ]  # more than a chunk (CHUNK_ROWS), lengths unsorted
    examples = [encode_response(tokenizer, prompt, text, 512) for text in texts]
    with torch.no_grad():
        together = batch_rewards(model, examples, tokenizer.pad_token_id)
        alone = torch.cat([batch_rewards(model, [e], tokenizer.pad_token_id) for e in examples])
        ids = torch.full((len(texts), max(len(e.input_ids) for e in examples)), tokenizer.pad_token_id)
        mask = torch.zeros_like(ids)
        for row, e in enumerate(examples):
            ids[row, : len(e.input_ids)], mask[row, : len(e.input_ids)] = torch.tensor(e.input_ids), 1
        masked = Scores(model)(input_ids=ids, attention_mask=mask)[torch.arange(len(texts)), mask.sum(1) - 1]
    assert len({len(e.input_ids) for e in examples}) >= 8 and causal_only(mask) is None
    assert torch.allclose(together, alone, rtol=1e-10) and torch.allclose(together, masked, rtol=1e-10)
    left = torch.flip(mask, dims=[1])  # left padding is not causal-only: the mask stays
    assert causal_only(left) is left


def test_a_repeated_answer_is_scored_once_and_gets_one_score(stage_inputs):
    """K samples often repeat an answer; scored in different rows, rounding would break the tie between the
    copies at random (rejection sampling's pick, PPO's group baselines)."""
    from posttrain.models.reward import RewardScorer

    scorer = RewardScorer(str(stage_inputs / "rm"))
    hi, other = [{"role": "user", "content": "hi"}], [{"role": "user", "content": "bye"}]
    pairs = [
        (hi, "hello"),
        (hi, "a much longer answer than the others, to sit in another chunk"),
        (other, "hello"),
        (hi, "hello"),
        (hi, "no"),
    ] + [(hi, f"filler {i} " * i) for i in range(10)]
    scores = scorer.score(pairs, batch_size=4)
    assert scores[0] == scores[3] and scores[0] != scores[2]  # the same prompt and answer; another prompt
    alone = [scorer.score([pair])[0] for pair in pairs[:5]]
    assert scores[:5] == pytest.approx(alone, abs=1e-5)
