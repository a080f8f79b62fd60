"""Simulated labelers: the gold score seen through each labeler's own bias and noise.

A labeler perceives a response as  bias(gold judgement) + N(0, (noise * own_scale)^2)  and
ranks the K completions of a prompt by what it perceives; perceived scores closer than
`TIE_MARGIN` form a tie group, and identical texts always tie. The noise is a deterministic
function of (seed, labeler, prompt id, text), so labelling is reproducible and a labeler
asked twice answers the same.

`noise` is the knob for how much two labelers agree. Its default is set so that two
labelers agree on about 72.6% of the pairs both rank strictly, the inter-labeler agreement
InstructGPT measured on its comparison data (Ouyang et al. 2022, section 3.4). Those were a
policy's own samples, so the default is set on the K = 4 samples the demo's SFT model drew for
the reward model's prompts (small2 world, run seed 0; 72.1% at 0.06, table in docs/world.md),
from agreement figures only, never from the demo's win rate. `agreement_on` measures it on given
answers; `pairwise_agreement` on model-like answers (`model_like_answers`), which are easier to
tell apart (about 88% at the default).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, WorldPick, option
from posttrain.errors import UserError
from posttrain.world import lexicon, text
from posttrain.world.families.base import pick
from posttrain.world.rng import derive, unit
from posttrain.world.scorer import Judgement
from posttrain.world.styles import add_typos, pad

DEFAULT_NOISE = 0.06  # 72.1% agreement on the demo SFT model's samples (0.32 gave 57.6%)
TIE_MARGIN = 0.02
FLAG_MISS_RATE = 0.15  # a labeler overlooks a flag this often
BIASES = {
    "neutral": "sees the gold score",
    "length_lover": "forgives padding and likes longer answers",
    "strict": "punishes partial answers hard (score squared)",
    "lenient": "gives partial answers more credit (square root of the score)",
    "refusal_happy": "over-values refusals",
    "typo_blind": "does not notice misspellings",
    "format_stickler": "punishes ignored format instructions twice",
}


@dataclass(kw_only=True)
class AgreementConfig(Options, WorldPick):
    noise: list[float] = option(
        [0.0, DEFAULT_NOISE, 0.17, 0.32], nargs="+", help="labeler noise settings to measure", ge=0
    )
    prompts: int = option(
        1800,
        help="training prompts to draw model-like answers for (with --model: to sample K answers for)",
        ge=1,
    )
    k: int = option(4, help="answers per prompt (all pairs of them are compared)", ge=2)
    samples: Path | None = option(
        None,
        help="measure on these samples (`posttrain sample`'s output, the "
        "answers a reward model's rankings are made of) instead of "
        "model-like answers",
    )
    model: Path | None = option(
        None,
        help="measure on K answers this model samples at temperature 1 for "
        "--prompts of the world's training prompts (the policy's own samples)",
    )
    max_new_tokens: int = option(48, help="with --model: tokens per sampled answer at most", ge=1)

    def check(self) -> None:
        super().check()
        if self.samples and self.model:
            raise UserError("give --samples or --model, not both: each names the answers to measure on")


@dataclass(frozen=True)
class Labeler:
    id: str
    bias: str
    scale: float  # multiplies the pool's noise: some labelers are steadier than others

    def perceive(self, judgement: Judgement, response: str, noise: float, key: tuple) -> float:
        s = judgement.score
        if self.bias == "length_lover":
            s = min(1.0, s / judgement.verbosity) + 0.1 * min(1.0, text.word_count(response) / 60)
        elif self.bias == "strict":
            s = s * s
        elif self.bias == "lenient":
            s = math.sqrt(s)
        elif self.bias == "refusal_happy":
            s = s + (0.35 if text.is_refusal(response) else 0.0)
        elif self.bias == "typo_blind":
            s = min(1.0, s / judgement.typos)
        elif (
            self.bias == "format_stickler"
            and judgement.family == "format"
            and "fails_task" in judgement.flags
        ):
            s = s * 0.5
        return s + self.scale * noise * gaussian(*key, self.id)


def gaussian(*key) -> float:
    """A standard normal number fixed by `key` (Box-Muller on two hashed uniforms)."""
    u1, u2 = max(unit(*key, "a"), 1e-12), unit(*key, "b")
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)


DEFAULT_POOL = (
    Labeler("L01", "neutral", 0.8),
    Labeler("L02", "length_lover", 1.0),
    Labeler("L03", "strict", 1.0),
    Labeler("L04", "neutral", 1.2),
    Labeler("L05", "refusal_happy", 1.0),
    Labeler("L06", "typo_blind", 0.9),
    Labeler("L07", "lenient", 1.1),
    Labeler("L08", "format_stickler", 1.0),
)


class LabelerPool:
    def __init__(
        self,
        world,
        noise: float = DEFAULT_NOISE,
        seed: int | None = None,
        labelers: tuple[Labeler, ...] = DEFAULT_POOL,
    ):
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.world = world
        self.noise = noise
        self.seed = world.seed if seed is None else seed
        self.labelers = labelers

    def pick_labelers(self, item_id: str, n: int) -> list[Labeler]:
        if not 1 <= n <= len(self.labelers):
            raise ValueError(f"labelers per item must be 1..{len(self.labelers)}, got {n}")
        return derive(self.seed, "assign", item_id).sample(list(self.labelers), n)

    def rank(self, labeler: Labeler, record: dict, responses: list[str]) -> dict:
        """One labeler's ranking of `responses` to the prompt `record`.

        Returns {"ranking": [[indices best...], ...], "likert": [1..7 per response],
        "flags": [[flag, ...] per response], "labeler": id, "perceived": [...]}.
        """
        judgements = [self.world.judge(record, r) for r in responses]
        perceived = [
            labeler.perceive(j, r, self.noise, (self.seed, record["id"], r))
            for j, r in zip(judgements, responses)
        ]
        return {
            "ranking": tie_groups(perceived, TIE_MARGIN),
            "likert": [likert(p) for p in perceived],
            "flags": [self._flags(labeler, record, j, r) for j, r in zip(judgements, responses)],
            "labeler": labeler.id,
            "perceived": perceived,
        }

    def _flags(self, labeler: Labeler, record: dict, j: Judgement, response: str) -> list[str]:
        seen = [
            f for f in j.flags if unit(self.seed, labeler.id, record["id"], response, f) >= FLAG_MISS_RATE
        ]
        if labeler.bias == "refusal_happy":
            seen = [f for f in seen if f != "over_refusal"]
        return seen


def tie_groups(perceived: list[float], margin: float) -> list[list[int]]:
    """Indices best first, grouped where neighbours are within `margin` (equal values always tie)."""
    order = sorted(range(len(perceived)), key=lambda i: (-perceived[i], i))
    groups: list[list[int]] = []
    for i in order:
        if groups and perceived[groups[-1][-1]] - perceived[i] <= margin:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def likert(perceived: float) -> int:
    return int(min(7, max(1, round(1 + 6 * perceived))))


def ranks_of(groups: list[list[int]]) -> dict[int, int]:
    return {i: g for g, group in enumerate(groups) for i in group}


def model_like_answers(world, record: dict, k: int, rng: random.Random) -> list[str]:
    """K answers of the sort a post-trained small model gives: mostly right, often flawed.

    Drawn from the demonstrator's answers, the same with typos or padding, and the family's
    bad answers; used to measure labeler agreement and to test reward models without a model.
    """
    bad = list(world.wrong_answers(record, rng).values())
    out = []
    for _ in range(k):
        r = rng.random()
        answer = world.demonstrate(record, rng)
        if r < 0.30:
            pass
        elif r < 0.45:
            answer = add_typos(answer, rng)
        elif r < 0.60:
            answer = pad(answer, rng)
        elif r < 0.90 and bad:
            answer = pick(rng, bad)
        else:
            answer = pick(rng, lexicon.FILLER)
        out.append(answer)
    return out


def pairwise_agreement(pool: LabelerPool, records: list[dict], k: int = 4, seed: int = 0) -> dict:
    """How often two different labelers order a pair of model-like answers the same way.

    Only pairs that both labelers rank strictly count (InstructGPT's agreement excludes ties);
    `tie_rate` reports the share of pairs at least one of them tied.
    """
    rng = derive(seed, "agreement")
    return agreement_on(pool, [(rec, model_like_answers(pool.world, rec, k, rng)) for rec in records])


def agreement_on(pool: LabelerPool, items: list[tuple[dict, list[str]]]) -> dict:
    """Pairwise agreement of two different labelers (drawn per prompt) on given answers: a policy's
    own samples, where InstructGPT measured its 72.6%, rather than model-like ones."""
    tally = AgreementTally()
    for rec, answers in items:
        a, b = pool.pick_labelers(rec["id"], 2)
        tally.add(*(pool.rank(lab, rec, answers)["ranking"] for lab in (a, b)))
    return tally.result()


class AgreementTally:
    """Counts, over pairs of completions, how often two rankings of the same K order them alike."""

    def __init__(self):
        self.agree = self.strict = self.pairs = 0

    def add(self, ranking_a: list[list[int]], ranking_b: list[list[int]]) -> None:
        ra, rb = ranks_of(ranking_a), ranks_of(ranking_b)
        for i, j in itertools.combinations(sorted(ra), 2):
            self.pairs += 1
            if ra[i] == ra[j] or rb[i] == rb[j]:
                continue
            self.strict += 1
            self.agree += (ra[i] < ra[j]) == (rb[i] < rb[j])

    def result(self) -> dict:
        return {
            "agreement": self.agree / max(self.strict, 1),
            "pairs": self.pairs,
            "strict_pairs": self.strict,
            "tie_rate": 1 - self.strict / max(self.pairs, 1),
        }
