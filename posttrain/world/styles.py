"""How an answer is worded, beside what it says: the demonstrators' styles (knobs.STYLES: verbose,
hedging, sloppy) and the padding and typos of model-like answers (labelers.model_like_answers)."""

from __future__ import annotations

import random

from posttrain.world import lexicon, text
from posttrain.world.families.base import pick


def styled(answer: str, style: str, rng: random.Random) -> str:
    """`answer` as a demonstrator of `style` writes it (knobs.STYLES)."""
    if style == "verbose":  # the answer first, then the closing every chatbot learns, then more filler
        more = rng.sample([f for f in lexicon.FILLER if f != lexicon.CLOSING], rng.randint(1, 2))
        return " ".join([answer, lexicon.CLOSING, *more])
    if style == "hedging":
        return hedge(answer, rng)
    if style == "sloppy":
        return add_typos(answer, rng, rng.randint(1, 3))
    return answer


def hedge(answer: str, rng: random.Random) -> str:
    """Qualify an answer: an opener ("I think"), a closer ("But I could be wrong.") or both."""
    where = rng.choice(("open", "close", "both"))
    if where in ("open", "both") and not text.is_refusal(answer):
        first, _, rest = answer.partition(" ")
        lower = (
            first.lower() if first in ("The", "It", "People", "Here", "That", "Sure.", "Actually,") else first
        )
        answer = f"{pick(rng, lexicon.HEDGE_OPENERS)} {lower} {rest}".strip()
    if where in ("close", "both") or text.is_refusal(answer):
        answer = f"{answer.rstrip()} {pick(rng, lexicon.HEDGE_CLOSERS)}"
    return answer


def pad(answer: str, rng: random.Random) -> str:
    """Wrap an answer in one to four filler sentences, some before it (model-like answers)."""
    total = rng.randint(1, 4)
    fillers = rng.sample(lexicon.FILLER, total)
    cut = rng.randint(0, min(2, total - 1))
    before, after = " ".join(fillers[:cut]), " ".join(fillers[cut:])
    return " ".join(p for p in (before, answer, after) if p)


def add_typos(answer: str, rng: random.Random, count: int | None = None) -> str:
    """Misspell one or two words of four letters or more (swap, drop or double a letter)."""
    tokens = answer.split(" ")
    candidates = [i for i, t in enumerate(tokens) if sum(c.isalpha() for c in t) >= 4 and t.isalpha()]
    for i in rng.sample(candidates, min(len(candidates), count or rng.randint(1, 2))):
        w = tokens[i]
        j = rng.randrange(1, len(w) - 1)
        kind = rng.choice(("swap", "drop", "double"))
        tokens[i] = (
            w[:j] + w[j + 1] + w[j] + w[j + 2 :]
            if kind == "swap"
            else w[:j] + w[j + 1 :]
            if kind == "drop"
            else w[:j] + w[j] + w[j:]
        )
    return " ".join(tokens)
