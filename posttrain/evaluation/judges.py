"""Judges of a pairwise comparison: which of two answers to the same prompt is better?

Each judge returns, for a list of (record, model answer, baseline answer), the outcome per
prompt: 1 (model better), 0.5 (tie), 0 (baseline better).

- `gold`: the world's gold scorer; equal scores tie.
- `sim`:  one of the world's simulated labelers per prompt (chosen by the prompt id), with its
          bias and noise; answers it perceives within its tie margin tie (InstructGPT's labelers
          could tie too).
- `rm`:   a trained reward model (`posttrain rm`); equal scores tie.
"""

from __future__ import annotations

from posttrain.errors import UserError
from posttrain.evaluation.winrate import pairwise_outcome

JUDGES = ("gold", "sim", "rm")


class Judge:
    name = ""

    def outcomes(self, triples: list[tuple[dict, str, str]]) -> list[float]:
        raise NotImplementedError


class GoldJudge(Judge):
    name = "gold"

    def __init__(self, world):
        self.world = world

    def outcomes(self, triples):
        return [
            pairwise_outcome(self.world.judge(r, a).score, self.world.judge(r, b).score)
            for r, a, b in triples
        ]


class SimulatedLabelerJudge(Judge):
    name = "sim"

    def __init__(self, world):
        from posttrain.world.labelers import LabelerPool

        self.pool = LabelerPool(world)

    def outcomes(self, triples):
        out = []
        for record, a, b in triples:
            labeler = self.pool.pick_labelers(record["id"], 1)[0]
            first = self.pool.rank(labeler, record, [a, b])["ranking"][0]
            out.append(0.5 if len(first) == 2 else 1.0 if first == [0] else 0.0)
        return out


class RewardModelJudge(Judge):
    name = "rm"

    def __init__(self, path: str):
        from posttrain.models.reward import RewardScorer

        self.scorer = RewardScorer(path)

    def outcomes(self, triples):
        scores = self.scorer.score([(r["messages"], t) for r, a, b in triples for t in (a, b)])
        return [pairwise_outcome(scores[2 * i], scores[2 * i + 1]) for i in range(len(triples))]


def make_judge(name: str, world=None, reward: str | None = None) -> Judge:
    """The judge called `name`; `gold` and `sim` need the world, `rm` a reward model path."""
    if name not in JUDGES:
        raise UserError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")
    if name == "rm":
        if not reward:
            raise UserError("--judge rm needs --reward RM_DIR (a reward model trained with posttrain rm)")
        return RewardModelJudge(reward)
    if world is None:
        raise UserError(
            f"--judge {name} needs prompts made by the built-in world (with meta.family and meta.task)"
        )
    return GoldJudge(world) if name == "gold" else SimulatedLabelerJudge(world)
