"""`posttrain dpo`: the loss by hand, pairs from rankings, a real run that learns, resume, micro-batch
invariance."""

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from posttrain.algorithms import dpo_loss
from posttrain.cli import main
from posttrain.data.chat import IGNORE
from posttrain.data.rankings import read_rankings
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.stages.dpo import DPOConfig, accumulate_gradients, dpo, reference_logprobs, sequence_logprobs
from posttrain.training.dpo_data import encode_completion, encode_items
from posttrain.training.metrics import read_metrics
from posttrain.world import World
from posttrain.world.labelers import LabelerPool, model_like_answers
from posttrain.world.rng import derive
from tests.tiny import BASE, llama_config


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


# --- the math, by hand ---------------------------------------------------------------------
def test_sigmoid_loss_and_stats_by_hand():
    # pair 1: h = (-10 - -11) - (-12 - -11) = 1 - (-1) = 2;  beta h = 0.5 * 2 = 1
    #         loss = -log sigmoid(1) = log(1 + e^-1) = log(1.3678794) = 0.3132617
    # pair 2: h = (-5 - -5) - (-4 - -5) = 0 - 1 = -1;       beta h = -0.5
    #         loss = log(1 + e^0.5) = log(2.6487213) = 0.9740770
    # mean = (0.3132617 + 0.9740770) / 2 = 0.6436693
    loss, stats = dpo_loss(t(-10, -5), t(-12, -4), t(-11, -5), t(-11, -5), beta=0.5)
    assert loss.item() == pytest.approx(0.6436693358, abs=1e-9)
    # rewards beta (log pi - log pi_ref): chosen 0.5 * 1 = 0.5 and 0;
    # rejected 0.5 * -1 = -0.5 and 0.5 * 1 = 0.5
    assert stats["chosen_reward"].item() == pytest.approx((0.5 + 0.0) / 2)
    assert stats["rejected_reward"].item() == pytest.approx((-0.5 + 0.5) / 2)
    assert stats["reward_margin"].item() == pytest.approx((1.0 - 0.5) / 2)  # beta h = 1 and -0.5
    assert stats["reward_accuracy"].item() == pytest.approx(0.5)  # pair 1 right, pair 2 wrong
    # weights 3/4 and 1/4: 0.75 * 0.3132617 + 0.25 * 0.9740770 = 0.2349463 + 0.2435192 = 0.4784655
    weighted, _ = dpo_loss(t(-10, -5), t(-12, -4), t(-11, -5), t(-11, -5), beta=0.5, weights=t(0.75, 0.25))
    assert weighted.item() == pytest.approx(0.4784655117, abs=1e-9)


def test_ipo_loss_by_hand():
    # beta = 0.25: the target gap is 1 / (2 beta) = 2
    # pair 1: h = 2 (as above):  (2 - 2)^2 = 0;   pair 2: h = -1:  (-1 - 2)^2 = 9;   mean = 4.5
    loss, stats = dpo_loss(t(-10, -5), t(-12, -4), t(-11, -5), t(-11, -5), beta=0.25, loss="ipo")
    assert loss.item() == pytest.approx(4.5)
    assert stats["reward_margin"].item() == pytest.approx((0.25 * 2 + 0.25 * -1) / 2)


def test_policy_equal_to_reference_costs_log_2_and_is_never_counted_right():
    logp = t(-3.0, -17.5, -0.25)
    for beta in (0.01, 0.1, 2.0):
        loss, stats = dpo_loss(logp, logp - 1, logp, logp - 1, beta=beta)
        assert loss.item() == pytest.approx(math.log(2))  # -log sigmoid(0)
        assert stats["reward_margin"].item() == 0 and stats["reward_accuracy"].item() == 0
        ipo, _ = dpo_loss(logp, logp - 1, logp, logp - 1, beta=beta, loss="ipo")
        assert ipo.item() == pytest.approx((1 / (2 * beta)) ** 2)  # (0 - 1/(2 beta))^2


@pytest.mark.parametrize(
    "loss,d_chosen",
    [
        # sigmoid: d/d pi_w of -log sigmoid(beta h) = -beta sigmoid(-beta h);
        #          beta = 0.5, h = 2: -0.5 * sigmoid(-1) = -0.5 * 0.2689414 = -0.1344707
        ("sigmoid", -0.5 * 0.2689414214),
        # ipo: d/d pi_w of (h - 1/(2 beta))^2 = 2 (h - 1) = 2 (2 - 1) = 2 with beta = 0.5
        #      (h above its target of 1)
        ("ipo", 2.0),
    ],
)
def test_the_gradient_by_hand(loss, d_chosen):
    chosen, rejected = t(-10.0).requires_grad_(), t(-12.0).requires_grad_()
    dpo_loss(chosen, rejected, t(-11.0), t(-11.0), beta=0.5, loss=loss)[0].backward()
    assert chosen.grad.item() == pytest.approx(d_chosen, abs=1e-9)
    assert rejected.grad.item() == pytest.approx(-d_chosen, abs=1e-9)  # h falls as pi_l rises


@pytest.mark.parametrize("loss", ["sigmoid", "ipo"])
def test_raising_the_chosen_log_prob_lowers_the_loss_and_raising_the_rejected_raises_it(loss):
    g = torch.Generator().manual_seed(0)

    def rand() -> torch.Tensor:
        return torch.rand(16, generator=g, dtype=torch.float64)

    ref_w, ref_l = -20 * rand(), -20 * rand()
    # the policy a little away from the reference: h stays below IPO's target 1/(2 beta) = 5
    chosen, rejected = (ref_w + rand()).requires_grad_(), (ref_l + rand()).requires_grad_()
    value, _ = dpo_loss(chosen, rejected, ref_w, ref_l, beta=0.1, loss=loss)
    value.backward()
    assert (chosen.grad < 0).all() and (rejected.grad > 0).all()
    with torch.no_grad():
        assert dpo_loss(chosen + 0.1, rejected, ref_w, ref_l, beta=0.1, loss=loss)[0] < value
        assert dpo_loss(chosen, rejected + 0.1, ref_w, ref_l, beta=0.1, loss=loss)[0] > value


def test_an_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="sigmoid"):
        dpo_loss(t(0), t(0), t(0), t(0), beta=0.1, loss="hinge")


# --- pairs and encoding --------------------------------------------------------------------
def record(ranking, sources=("model:m",) * 4, prompt=None) -> dict:
    return {
        "id": "x",
        "prompt": prompt or [{"role": "user", "content": "What is 2 + 2?"}],
        "labeler": "ann",
        "ranking": ranking,
        "completions": [{"text": f"answer {i}", "source": s} for i, s in enumerate(sources)],
    }


def test_every_strict_pair_ties_skipped_human_completions_kept_only_when_asked(tokenizer, tmp_path):
    cfg = DPOConfig(model="m", data=tmp_path / "r.jsonl", out=tmp_path / "o")
    r = record([[2], [0, 1], [3]], sources=("model:m", "model:m", "human:ann", "model:m"))
    [item] = encode_items([("r.jsonl:1", r)], tokenizer, cfg)
    # the human completion 2 is left out: kept are 0, 1, 3 (indices 0, 1, 2); 0 and 1 tie
    assert item.pairs == [(0, 2), (1, 2)] and len(item.examples) == 3
    cfg.human_completions = "keep"
    [item] = encode_items([("r.jsonl:1", r)], tokenizer, cfg)
    assert sorted(item.pairs) == [(0, 3), (1, 3), (2, 0), (2, 1), (2, 3)]
    # a ranking of ties only gives no pair: skipped, and a file of such rankings is a clear error
    assert len(encode_items([("r.jsonl:1", r), ("r.jsonl:2", record([[0, 1, 2, 3]]))], tokenizer, cfg)) == 1
    with pytest.raises(UserError, match="no ranking has two completions ranked apart"):
        encode_items([("r.jsonl:1", record([[0, 1, 2, 3]]))], tokenizer, cfg)


def test_only_the_completion_and_its_eos_carry_log_prob(tokenizer):
    prompt = [
        {"role": "user", "content": "What is 12 + 5?"},
        {"role": "assistant", "content": "17."},
        {"role": "user", "content": "Now add 5 to that."},
    ]
    ex = encode_completion(tokenizer, prompt, "22.", max_len=512)
    assert tokenizer.decode([x for x in ex.labels if x != IGNORE]) == "22.<|end|>"
    cut = encode_completion(tokenizer, [{"role": "user", "content": "word " * 300}], "22.", max_len=32)
    assert (
        len(cut.input_ids) == 32 and tokenizer.decode([x for x in cut.labels if x != IGNORE]) == "22.<|end|>"
    )


# --- the stage -----------------------------------------------------------------------------
def tiny_llama(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(len(tokenizer), pad_token_id=tokenizer.pad_token_id))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    directory = tmp_path_factory.mktemp("tiny")
    tiny_llama(tokenizer).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def rankings(tmp_path_factory):
    """World prompts' model-like answers, K = 2..5, ranked by two simulated labelers each."""
    world, rng = World(seed=0), derive(0, "dpo-test")
    pool, records = LabelerPool(world), []
    for i, p in enumerate(world.prompts("dpo-test", 8, "train")):
        texts = list(dict.fromkeys(model_like_answers(world, p, 2 + i % 4, rng)))
        completions = [{"text": text, "source": "model:test"} for text in texts]
        for lab in pool.pick_labelers(p["id"], 2):
            records.append(
                {
                    "id": f"{p['id']}/{lab.id}",
                    "prompt": p["messages"],
                    "completions": completions,
                    "ranking": pool.rank(lab, p, texts)["ranking"],
                    "labeler": lab.id,
                    "meta": {**p["meta"], "item": p["id"]},
                }
            )
    path = tmp_path_factory.mktemp("rankings") / "rankings.jsonl"
    write_jsonl(path, records)
    return path


def test_the_command_trains_the_base_model_and_writes_a_run(rankings, tmp_path, capsys):
    out = tmp_path / "dpo"
    assert (
        main(
            [
                "dpo",
                "--model",
                str(BASE),
                "--data",
                str(rankings),
                "--out",
                str(out),
                "--max-steps",
                "3",
                "--micro-batch",
                "2",
                "--eval-fraction",
                "0.25",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "DPO (sigmoid, beta 0.1) on" in printed and "held-out pairs (implicit reward):" in printed
    manifest = json.loads((out / "posttrain.json").read_text())
    assert (
        manifest["stage"] == "dpo" and manifest["parent"] == str(BASE) and manifest["config"]["beta"] == 0.1
    )
    rows = read_metrics(out / "metrics.jsonl")
    assert [m["step"] for m in rows] == [1, 2, 3]
    assert rows[0]["dpo/loss"] == pytest.approx(math.log(2), abs=1e-4)  # pi = pi_ref before the first update
    assert all(math.isfinite(m["dpo/loss"]) for m in rows) and "dpo/eval_gold_accuracy" in rows[-1]
    assert all(m["perf/flops_per_s"] > 0 and m["perf/share_of_peak"] > 0 for m in rows)
    assert (out / "model.safetensors").is_file() and not (tmp_path / "dpo.partial").exists()


def test_rankings_without_a_strict_pair_are_one_clear_error(tmp_path, capsys):
    write_jsonl(tmp_path / "ties.jsonl", [record([[0, 1, 2, 3]])])
    args = ["dpo", "--model", str(BASE), "--data", str(tmp_path / "ties.jsonl"), "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert "ties.jsonl: no ranking has two completions ranked apart" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


def test_a_torchrun_launch_is_one_clear_error(rankings, tmp_path, capsys, monkeypatch):
    # DPO's update has no distributed path: every rank would train on all the rankings into the same --out
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["dpo", "--model", str(BASE), "--data", str(rankings), "--out", str(tmp_path / "o")]) == 2
    assert "posttrain dpo runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.partial").exists()


@pytest.mark.parametrize("loss", ["sigmoid", "ipo"])
def test_training_raises_the_implicit_reward_of_the_preferred_completions(loss, tiny, rankings, tmp_path):
    one_labeler = tmp_path / "one.jsonl"  # one ranking per prompt: no two labelers' pairs contradict
    write_jsonl(one_labeler, [r for _, r in read_rankings(rankings)][::2])
    seen = []
    summary = dpo(
        DPOConfig(
            model=str(tiny),
            data=one_labeler,
            out=tmp_path / loss,
            loss=loss,
            max_steps=20,
            lr=3e-3,
            warmup_steps=0,
            micro_batch=8,
            eval_fraction=0,
            threads=1,
        ),
        on_step=lambda step, total, m: seen.append(m),
    )
    first, last = seen[0], seen[-1]  # each step is the whole data set, measured before its update
    assert abs(first["dpo/reward_margin"]) < 1e-4
    assert last["dpo/reward_accuracy"] == pytest.approx(1.0)
    if loss == "sigmoid":  # pushed apart without bound
        assert last["dpo/reward_margin"] > 0.5 and last["dpo/loss"] < math.log(2) - 0.3
    else:  # regressed to beta x 1/(2 beta) = 0.5 from below: (0 - 5)^2 = 25 falls towards 0
        assert 0.3 < last["dpo/reward_margin"] < 0.55 and last["dpo/loss"] < 25 - 15
    assert summary["train_rankings"] == 8 and summary["eval_rankings"] == 0


def test_another_reference_changes_the_starting_loss(tiny, rankings, tokenizer, tmp_path):
    other = tmp_path / "other"
    tiny_llama(tokenizer, seed=1).save_pretrained(other)
    tokenizer.save_pretrained(other)
    summary = dpo(
        DPOConfig(
            model=str(tiny),
            reference=str(other),
            data=rankings,
            out=tmp_path / "run",
            max_steps=1,
            micro_batch=16,
            eval_fraction=0,
            threads=1,
        )
    )
    assert abs(summary["dpo/loss"] - math.log(2)) > 1e-3
    assert json.loads((tmp_path / "run" / "posttrain.json").read_text())["reference"] == str(other)


def test_an_interrupted_run_resumes_to_the_same_curve(tiny, rankings, tmp_path):
    cfg = dict(
        model=str(tiny),
        data=rankings,
        micro_batch=2,
        grad_accum=2,
        max_steps=6,
        save_every=2,
        eval_every=3,
        lr=3e-3,
        eval_fraction=0.25,
        threads=1,
    )
    reference = dpo(DPOConfig(out=tmp_path / "ref", **cfg))

    def crash(step, total, metrics):
        if step == 3:
            raise KeyboardInterrupt  # killed after the step-2 checkpoint, with step 3 logged

    with pytest.raises(KeyboardInterrupt):
        dpo(DPOConfig(out=tmp_path / "run", **cfg), on_step=crash)
    resumed = dpo(DPOConfig(out=tmp_path / "run", resume=True, **cfg))

    def curve(d: Path) -> list[tuple]:
        return [(m["step"], m["dpo/loss"], m["dpo/reward_margin"]) for m in read_metrics(d / "metrics.jsonl")]

    assert curve(tmp_path / "run") == curve(tmp_path / "ref") and len(curve(tmp_path / "ref")) == 6
    assert resumed["dpo/eval_loss"] == reference["dpo/eval_loss"]


def test_micro_batches_give_the_batch_gradient_and_every_ranking_weighs_the_same(
    tokenizer, rankings, tmp_path
):
    """1 x 4 against 4 x 1 in float64, on rankings of 2 to 5 completions of different lengths; and the loss
    equals the mean over rankings of each one's mean pair loss, computed pair by pair."""
    cfg = DPOConfig(model="m", data=rankings, out=tmp_path / "o", beta=0.5, micro_batch=4)
    by_k = {len(i.examples): i for i in encode_items(read_rankings(rankings), tokenizer, cfg)}
    items = [by_k[k] for k in (3, 5, 2, 4)]  # a ranking of each K
    model = tiny_llama(tokenizer).double()
    reference_logprobs(cfg, tiny_llama(tokenizer, seed=1).double(), tokenizer, items)  # pi != pi_ref
    results = []
    for micro in (4, 1):
        cfg.micro_batch = micro
        model.zero_grad(set_to_none=True)
        measured = accumulate_gradients(model, items, cfg, tokenizer.pad_token_id)
        results.append(
            (measured, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        )
    (whole, g_whole), (split, g_split) = results
    assert g_whole.norm() > 0 and (g_split - g_whole).norm() <= 1e-6 * g_whole.norm()
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-12)
    per_ranking = []
    with torch.no_grad():
        for item in items:
            logp = [sequence_logprobs(model, [e], tokenizer.pad_token_id).item() for e in item.examples]
            h = [(logp[a] - item.ref_logprobs[a]) - (logp[b] - item.ref_logprobs[b]) for a, b in item.pairs]
            per_ranking.append(sum(math.log1p(math.exp(-0.5 * x)) for x in h) / len(h))
    assert whole["loss"] == pytest.approx(sum(per_ranking) / len(per_ranking), rel=1e-7)
