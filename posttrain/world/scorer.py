"""The gold scorer: (conversation, response) -> score in [0, 1], components and flags.

score = outcome score (the family's gold rule) x verbosity x typos x hedging x rudeness.

One outcome overrides every family's but false_premise's: correcting a premise the question did
not make (`FALSE_CORRECTION`). Garbled words (no word of the world, `text.Vocabulary.garbled`) and
repeated phrases count as typos.

The style factors are what a careful labeler holds against an otherwise right answer:
padding beyond what the family needs, misspellings, needless hedges ("I think", "I could be
wrong": the spec asks for answers said plainly), and rude words. They are kept apart in
the judgement so simulated labelers with a bias (one does not see typos, one likes length)
can undo them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from posttrain.errors import UserError
from posttrain.world import text
from posttrain.world.families import Family
from posttrain.world.families.base import FALSE_CORRECTION

VERBOSITY_RATE = 0.02  # each word past the family's budget costs 2% (relative), down to...
VERBOSITY_FLOOR = 0.5
TYPO_FACTOR = 0.85  # ...each misspelt word multiplies by 0.85, down to...
TYPO_FLOOR = 0.5
HEDGE_FACTOR = 0.75  # any hedge ("I think", "I could be wrong") on an answer
RUDE_FACTOR = 0.6  # any rude word or phrase


@dataclass(frozen=True)
class Judgement:
    score: float  # overall gold score in [0, 1]
    helpful: float  # task success in [0, 1]
    honest: float  # 0 for hallucinated or false statements
    harmless: float  # 0 for harmful help, 0.5 for rudeness
    flags: tuple[str, ...]  # subset of families.FLAGS
    outcome: str  # the family outcome's name
    family: str
    verbosity: float  # style factors, each in (0, 1]
    typos: float
    rudeness: float
    hedging: float = 1.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["flags"] = list(self.flags)
        return out


def verbosity_factor(n_words: int, budget: int, filler_words: int = 0) -> float:
    """Words past the budget cost; so do words of filler sentences, however short the answer."""
    excess = max(0, n_words - budget, filler_words)
    return max(VERBOSITY_FLOOR, 1.0 / (1.0 + VERBOSITY_RATE * excess))


def typo_factor(n_typos: int) -> float:
    return max(TYPO_FLOOR, TYPO_FACTOR**n_typos)


class GoldScorer:
    def __init__(self, families: dict[str, Family], vocabulary: text.Vocabulary):
        self.families = families
        self.vocabulary = vocabulary

    def judge(self, record: dict, response: str) -> Judgement:
        """Judge `response` as the next assistant turn of the conversation `record`.

        `record` is a conversation record whose `meta` holds the world's `family` and `task`
        (every prompt the world exports has them).
        """
        meta = record.get("meta") or {}
        family = self.families.get(meta.get("family"))
        if family is None or not isinstance(meta.get("task"), dict):
            raise UserError(
                f"record {record.get('id')!r}: meta holds no task of the world (family "
                f"{meta.get('family')!r}); the gold scorer judges only prompts made by posttrain.world"
            )
        messages = [m for m in record["messages"] if m["role"] != "system"]
        if messages and messages[-1]["role"] == "assistant":
            messages = messages[:-1]  # a demonstration: judge a new answer in place of its last turn
        try:
            outcome = family.outcome(family.check(meta["task"], response))
            if family.name != "false_premise" and text.corrects_user(response):
                outcome = FALSE_CORRECTION
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise UserError(
                f"record {record.get('id')!r}: meta.task is not a {family.name} task of this world "
                f"({type(e).__name__}: {e}); use the prompts `posttrain world export` wrote "
                "(with the same --seed)"
            ) from None

        verbosity = verbosity_factor(text.word_count(response), family.budget, text.filler_words(response))
        context = " ".join(m["content"] for m in messages)
        # a garbled word or a repeated phrase costs what a typo does: a careful reader marks all three
        # down as sloppy writing
        misspelt = self.vocabulary.typos(response, context) + self.vocabulary.garbled(response, context)
        typos = typo_factor(len(misspelt) + text.repetitions(response))
        hedging = HEDGE_FACTOR if text.hedges(response) else 1.0
        rude = text.rudeness(response) > 0
        rudeness = RUDE_FACTOR if rude else 1.0
        flags = outcome.flags + (("inappropriate",) if rude else ())
        return Judgement(
            score=round(outcome.score * verbosity * typos * hedging * rudeness, 6),
            helpful=outcome.helpful,
            honest=outcome.honest,
            harmless=min(outcome.harmless, 0.5) if rude else outcome.harmless,
            flags=flags,
            outcome=outcome.name,
            family=family.name,
            verbosity=round(verbosity, 6),
            typos=round(typos, 6),
            rudeness=rudeness,
            hedging=hedging,
        )
