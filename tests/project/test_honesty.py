"""Training never reads the gold scorer (issue 14): only the simulated labelers see it, and their
rankings are data made before training. sft -> rm -> ppo is run twice on tiny models, chained
through real checkpoints: once as it is, once with `GoldScorer.judge` turned upside down. Every
weight and every training metric must come out bit-identical, while the metrics that
docs/metrics.md documents as gold-based must move, so the patch is seen to have reached the stages.

`posttrain loop` runs the simulated labelers itself (they see gold, legitimately), so its case
tests the step that chooses the next round's policy: with the labelers' judgements fixed, the
upside-down gold scorer must move the gold monitoring and nothing else.
"""

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from posttrain.evaluation.judges import Judge, make_judge
from posttrain.pipelines.loop import judge_round
from posttrain.stages.ppo import ppo
from posttrain.stages.rm import RMConfig, rm
from posttrain.stages.sft import SFTConfig, sft
from posttrain.training.metrics import read_metrics
from posttrain.training.ppo_config import PPOConfig
from posttrain.world import World
from posttrain.world.families import FLAGS
from posttrain.world.labelers import model_like_answers
from posttrain.world.rng import derive
from posttrain.world.scorer import GoldScorer, Judgement

GOLD_METRICS = {"sft": set(), "rm": {"rm/eval_gold_accuracy"}, "ppo": {"world/gold_score"}}
WALL_CLOCK = {
    "sft/tokens_per_s",
    "rm/seconds_per_step",
    "time/seconds_per_step",
    "perf/flops_per_s",
    "perf/share_of_peak",
}


def upside_down(j: Judgement) -> Judgement:
    """A deterministic judgement that disagrees with the gold one about everything."""
    return dataclasses.replace(
        j,
        score=1.0 - j.score,
        helpful=1.0 - j.helpful,
        honest=1.0 - j.honest,
        harmless=1.0 - j.harmless,
        flags=tuple(f for f in FLAGS if f not in j.flags),
        outcome="upside_down",
    )


def pipeline(root: Path, demos: Path, out: Path) -> None:
    torch.manual_seed(0)  # both runs start from the same global RNG state: the gold scorer is the only change
    sft(
        SFTConfig(
            model=str(root / "sft"),
            data=demos,
            out=out / "sft",
            max_steps=3,
            micro_batch=4,
            lr=1e-3,
            eval_every=3,
            threads=1,
        )
    )
    rm(
        RMConfig(
            model=str(out / "sft"),
            data=root / "rankings.jsonl",
            out=out / "rm",
            max_steps=3,
            micro_batch=4,
            lr=1e-3,
            eval_fraction=0.25,
            eval_every=1,
            threads=1,
        )
    )
    ppo(
        PPOConfig(
            policy=str(out / "sft"),
            reward=out / "rm",
            prompts=root / "prompts.jsonl",
            out=out / "ppo",
            rollout_batch=8,
            minibatches=2,
            micro_batch=2,
            ppo_epochs=2,
            max_new_tokens=8,
            lr=1e-3,
            max_steps=2,
            threads=1,
        )
    )


def weights(run: Path) -> dict[str, bytes]:
    return {
        f"{f.name}:{k}": t.numpy().tobytes()
        for f in sorted(run.glob("*.safetensors"))
        for k, t in load_file(f).items()
    }


def without(rows: list[dict], names: set[str]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in names} for r in rows]


def split(run: Path, gold: set[str]) -> tuple[list[dict], list[dict]]:
    """(training metrics, gold-based metrics) per step of a run's metrics.jsonl, wall-clock times left out."""
    rows = read_metrics(run / "metrics.jsonl")
    return without(rows, gold | WALL_CLOCK), [{k: v for k, v in r.items() if k in gold} for r in rows]


def samples(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "ppo" / "samples.jsonl").read_text().splitlines()]


def manifest(run: Path, stage: str) -> dict:
    return json.loads((run / stage / "posttrain.json").read_text())


def test_turning_the_gold_scorer_upside_down_changes_only_the_gold_metrics(
    setup, demos, tmp_path, monkeypatch
):
    honest, patched = tmp_path / "honest", tmp_path / "upside-down"
    pipeline(setup, demos, honest)
    gold, calls = GoldScorer.judge, []

    def judge(self, record, response):
        calls.append(record.get("id"))
        return upside_down(gold(self, record, response))

    monkeypatch.setattr(GoldScorer, "judge", judge)
    pipeline(setup, demos, patched)
    assert calls, "the patched gold scorer was never called: the test would pass vacuously"

    for stage, gold_names in GOLD_METRICS.items():
        a, b = weights(honest / stage), weights(patched / stage)
        assert a and a.keys() == b.keys(), stage
        changed = sorted(k for k in a if a[k] != b[k])
        assert not changed, f"{stage}: the gold scorer changed the trained weights {changed[:5]}"
        (train_a, gold_a), (train_b, gold_b) = (
            split(honest / stage, gold_names),
            split(patched / stage, gold_names),
        )
        assert train_a == train_b, f"{stage}: the gold scorer changed training metrics"
        if gold_names:  # the monitoring did see the upside-down scorer
            assert gold_names <= gold_a[-1].keys(), (stage, gold_a)
            assert gold_a != gold_b, f"{stage}: gold-based metrics {sorted(gold_names)} did not change"
    assert manifest(honest, "rm")["reward_normalisation"] == manifest(patched, "rm")["reward_normalisation"]
    assert without(samples(honest), {"gold"}) == without(
        samples(patched), {"gold"}
    )  # same responses, same RM scores
    assert [r["gold"] for r in samples(honest)] != [r["gold"] for r in samples(patched)]


class Replay(Judge):
    """The simulated labelers' outcomes, recorded once: the same labels in both runs."""

    name = "sim"

    def __init__(self, triples, outcomes):
        self.triples, self.recorded = triples, outcomes

    def outcomes(self, triples):
        assert triples == self.triples
        return self.recorded


def test_the_loop_keeps_the_same_policy_when_the_gold_scorer_is_upside_down(monkeypatch):
    world, rng = World(seed=0), derive(0, "honesty-loop")
    prompts = world.prompts("honesty-loop", 24, "train")
    new, best = zip(
        *(model_like_answers(world, p, 2, rng)[:2] for p in prompts)
    )  # a round's answers, the best's
    triples = list(zip(prompts, new, best))
    labels = Replay(triples, make_judge("sim", world).outcomes(triples))
    honest = judge_round(labels, world, prompts, list(new), list(best))
    assert honest["monitor/gold_score"] != honest["monitor/best_gold_score"]  # a gold-based choice would flip

    gold = GoldScorer.judge
    monkeypatch.setattr(
        GoldScorer, "judge", lambda self, record, response: upside_down(gold(self, record, response))
    )
    patched = judge_round(labels, world, prompts, list(new), list(best))
    assert patched["monitor/gold_score"] != honest["monitor/gold_score"], (
        "the patch never reached the gold monitoring"
    )
    monitoring = {"monitor/gold_score", "monitor/best_gold_score"}
    assert without([patched], monitoring) == without([honest], monitoring), (
        "the gold scorer changed the loop's choice"
    )
