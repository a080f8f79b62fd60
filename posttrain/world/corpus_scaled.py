"""The scaled corpus: tens of millions of tokens for a base that can do the world's tasks.

The small world's corpus (`corpus.py`, 357k tokens) taught a 4.5M-parameter base its facts by
heart and little else: it saw each worksheet a few times, so its SFT model answers most sums
with one number. This corpus is written for a compute-optimal budget (Hoffmann et al. 2022:
about 20 tokens per parameter, ~90M for the base) and differs in three ways:

- **Many phrasings per fact**, and entities drawn with Zipf-like frequency (`ZIPF`), so the
  head's facts come in many wordings and contexts rather than one page seen a hundred times.
- **A long tail** (Kandpal et al. 2023): each tail entity's facts are stated in exactly
  `mentions` documents (1, 2, 4, 8 or 16; `kb.add_tail`), so the base knows head facts and not
  tail facts, and `world probe` can say how knowledge grows with exposure.
- **Worked examples** of every computed skill the families ask for, in textbook and answer-key
  forms rather than chat: sums and differences over the ranges the families draw, times tables,
  sorting and reversing lists, answers in a required form, reading-comprehension exercises that
  say "the text does not say" when it does not, and chained operations ("Then double it").

Still no chat transcript: the base knows and computes without behaving like an assistant. No
test template of a family appears here (`tests/test_world_scaled.py`), so the novel-phrasing
test set stays novel to the base as well.
"""

from __future__ import annotations

import itertools
import random

from posttrain.world import corpus, lexicon
from posttrain.world.families.base import pick
from posttrain.world.families.passage import ATTRIBUTES
from posttrain.world.kb import PROFESSIONS
from posttrain.world.names import NameMaker
from posttrain.world.rng import derive

CHARS_PER_TOKEN = 3.9  # measured: the small world's corpus is 1.40M characters in 357,230 tokens
ZIPF = 1.0  # head entity of rank r (from 1) is drawn with weight r^-ZIPF

KINDS = {
    "encyclopedia": 0.11,
    "faq": 0.08,
    "quiz": 0.04,
    "forum": 0.07,
    "story": 0.04,
    "bio": 0.03,
    "howto": 0.05,
    "arithmetic": 0.18,
    "lists": 0.14,
    "form": 0.07,
    "reading": 0.11,
    "chain": 0.08,
}

MORE_FACTS = {
    "capital": (
        "{v}, the capital of {e}, sits on a wide plain.",
        "Most government offices of {e} are in {v}, its capital.",
        "Anyone who visits {e} usually starts in {v}, the capital.",
    ),
    "language": (
        "Schools in {e} teach in {v}.",
        "Road signs in {e} are written in {v}.",
        "{v} is the language you hear on the streets of {e}.",
    ),
    "currency": (
        "Shops in {e} take the {v}.",
        "A meal in {e} costs a few coins of the {v}.",
        "The {v} has been the coin of {e} for many years.",
    ),
    "river": (
        "Boats carry goods along the {v}, the longest river in {e}.",
        "No river in {e} is longer than the {v}.",
        "The {v} flows the length of {e}.",
    ),
    "animal": (
        "The {v} appears on the coins and flags of {e}.",
        "In {e}, the {v} is the national animal.",
        "Children in {e} learn that their national animal is the {v}.",
    ),
    "founder": (
        "{e} owes its founding to {v}.",
        "It was {v} who founded {e}.",
        "Statues of {v}, the founder of {e}, stand in many towns.",
    ),
}
MORE_PERSON = (
    "{n} became a well-known {p}. {n} was born in {b}.",
    "The {p} {n} grew up in {b}, in {c}.",
    "{n} ({p}) came from the city of {b}.",
    "As a {p}, {n} was famous far beyond {b}, the city of their birth.",
)
ASKS = {  # the corpus's own questions (textbook style); none is a family's prompt template
    "capital": ("Capital of {e}:", "Q: Name the capital of {e}.", "Which is the capital of {e}?"),
    "language": ("Language of {e}:", "Q: What is spoken in {e}?", "Which language belongs to {e}?"),
    "currency": ("Currency of {e}:", "Q: What do they pay with in {e}?", "Which money belongs to {e}?"),
    "river": (
        "Longest river of {e}:",
        "Q: What is the longest river of {e}?",
        "Which river is longest in {e}?",
    ),
    "animal": (
        "National animal of {e}:",
        "Q: What animal stands for {e}?",
        "Which animal is the emblem of {e}?",
    ),
    "founder": ("Founder of {e}:", "Q: Who started {e}?", "Which person founded the country of {e}?"),
    "profession": ("Profession of {e}:", "Q: What was {e}'s trade?"),
    "birthplace": ("Birthplace of {e}:", "Q: Where did {e} come from?"),
}
ARITH_LINES = {
    "add": (
        "{a} + {b} = {c}",
        "{a} plus {b} equals {c}.",
        "The sum of {a} and {b} is {c}.",
        "If you add {b} to {a} you get {c}.",
        "Q: What is {a} + {b}?\nA: {c}",
        "{a} + {b} is {c}.",
    ),
    "sub": (
        "{a} - {b} = {c}",
        "{a} minus {b} equals {c}.",
        "Taking {b} away from {a} leaves {c}.",
        "The difference between {a} and {b} is {c}.",
        "Q: What is {a} - {b}?\nA: {c}",
        "{a} - {b} is {c}.",
    ),
    "mul": (
        "{a} * {b} = {c}",
        "{a} times {b} equals {c}.",
        "The product of {a} and {b} is {c}.",
        "{a} groups of {b} make {c}.",
        "Q: What is {a} * {b}?\nA: {c}",
        "{a} x {b} = {c}",
    ),
}
ARITH_TITLES = (
    "Answer key",
    "Mental arithmetic drill",
    "Math practice with answers",
    "Sums for class 3",
    "Times tables",
    "Quick maths",
    "Homework solutions",
)
LIST_LINES = {
    "sort_asc": (
        "{x} sorted from smallest to largest: {y}",
        "In increasing order, {x} becomes {y}.",
        "Sort ascending: {x} -> {y}",
    ),
    "sort_desc": (
        "{x} sorted from largest to smallest: {y}",
        "In decreasing order, {x} becomes {y}.",
        "Sort descending: {x} -> {y}",
    ),
    "reverse_words": (
        'Reversed, "{x}" reads "{y}".',
        "Backwards: {x} -> {y}",
        "The words {x} in reverse: {y}",
    ),
    "alphabetize": ("{x} in alphabetical order: {y}", "A to Z: {x} -> {y}", "Alphabetized, {x} becomes {y}."),
}
LIST_TITLES = ("Ordering exercises", "Puzzle answers", "Sorting practice", "Word games with answers")
FORM_LINES = {
    "yes_no": ("Is {a} greater than {b}? {yn}", "Yes or no: {a} > {b}? {yn}", "{a} is bigger than {b}: {yn}"),
    "one_word": ("{rel} of {e}, in one word: {v}", "One word only. {rel} of {e}? {v}"),
    "all_caps": ("{rel} of {e}, in capital letters: {V}", "In upper case, the {low} of {e} is {V}."),
    "n_items": (
        "Exactly {n} {cat}: {items}",
        "{N} {cat}, no more and no less: {items}",
        "A list of {n} {cat}:\n{lines}",
    ),
}
FORM_TITLES = ("Follow the instructions exactly", "Answer in the form asked", "Instructions drill")
READING_FRAMES = (
    "Reading exercise\n\n{p}\n\n{qa}",
    "Comprehension check. Read the text, then the answers.\n\n{p}\n\n{qa}",
    "Text: {p}\n\n{qa}",
)
READ_ASKS = {  # the corpus's own reading questions; the family's prompt templates are not used
    "town": "Which town is {n}'s home?",
    "job": "What work does {n} do?",
    "siblings": "How many brothers has {n} got?",
    "pet": "What pet does {n} have?",
    "color": "Which color is {n}'s favourite?",
    "trip": "Where does {n} go every year?",
}
NOT_SAID = (
    "The text does not say.",
    "The passage does not say.",
    "That is not in the text.",
    "The text gives no answer to that.",
)
CHAIN_STEPS = {
    "add": ("Add {c}: {r}.", "Then add {c} to get {r}.", "Plus {c} makes {r}."),
    "sub": ("Subtract {c}: {r}.", "Then take away {c} to get {r}.", "Minus {c} leaves {r}."),
    "double": ("Double it: {r}.", "Then double that to get {r}.", "Twice that is {r}."),
}


def documents(world, stream: str, *, tokens: int | None = None, n: int | None = None) -> list[dict]:
    """Documents {"id", "text", "kind"} of the named stream ("train" or "heldout"): about `tokens`
    tokens (estimated as characters / CHARS_PER_TOKEN), or `n` documents. The train stream also
    holds every tail entity's `mentions` pages, shuffled in."""
    rng = derive(world.seed, "corpus-scaled", stream)
    kinds, weights = zip(*KINDS.items())
    pick_entity = Zipf(world, rng)
    out: list[dict] = []
    if stream == "train":
        out += tail_pages(world.kb, derive(world.seed, "corpus-scaled", "tail"))
    budget = (tokens or 0) * CHARS_PER_TOKEN
    chars = sum(len(d["text"]) for d in out)
    while (n is not None and len(out) < n) or (n is None and chars < budget):
        kind = rng.choices(kinds, weights)[0]
        text = WRITERS[kind](world.kb, rng, pick_entity)
        out.append({"text": text, "kind": kind})
        chars += len(text)
    rng.shuffle(out)
    return [{"id": f"{stream}-{i:07d}", "text": d["text"], "kind": d["kind"]} for i, d in enumerate(out)]


class Zipf:
    """Head countries and people drawn with weight rank^-ZIPF, ranks in a seeded order that mixes
    train and test entities, so some test entities are famous and some are not."""

    def __init__(self, world, rng: random.Random):
        order = derive(world.seed, "corpus-scaled", "ranks")
        self.countries = order.sample(world.kb.countries, len(world.kb.countries))
        self.people = order.sample(world.kb.people, len(world.kb.people))
        self.rng = rng
        # cumulative weights once: `choices` would sum them again on each of the corpus's millions of draws
        self._country_cum = list(itertools.accumulate((r + 1) ** -ZIPF for r in range(len(self.countries))))
        self._person_cum = list(itertools.accumulate((r + 1) ** -ZIPF for r in range(len(self.people))))

    def country(self):
        return self.rng.choices(self.countries, cum_weights=self._country_cum)[0]

    def person(self):
        return self.rng.choices(self.people, cum_weights=self._person_cum)[0]


class _ZipfKB:
    """The knowledge base as corpus.py's writers see it, with countries and people drawn by Zipf."""

    def __init__(self, kb, entity: Zipf):
        self._kb, self._entity = kb, entity

    def __getattr__(self, name):
        return getattr(self._kb, name)

    @property
    def countries(self):
        return [self._entity.country()]

    @property
    def people(self):
        return [self._entity.person()]


def tail_pages(kb, rng: random.Random) -> list[dict]:
    """Each tail entity's facts, stated in exactly `mentions` documents (a page each)."""
    out = []
    for c in kb.tail_countries:
        for _ in range(c.mentions):
            out.append({"text": _country_page(c, rng, every=True), "kind": "tail"})
    for p in kb.tail_people:
        for _ in range(p.mentions):
            out.append({"text": _person_page(p, rng), "kind": "tail"})
    return out


def _country_page(c, rng: random.Random, every: bool = False) -> str:
    rels = list(corpus.FACTS)
    rng.shuffle(rels)
    rels = rels if every else rels[: rng.randint(2, 5)]
    lines = [pick(rng, corpus.FACTS[r] + MORE_FACTS[r]).format(e=c.name, v=getattr(c, r)) for r in rels]
    if every or rng.random() < 0.5:
        lines.append(f"Other cities in {c.name} include {c.cities[0]} and {c.cities[1]}.")
    return f"{c.name}\n\n" + " ".join(lines)


def _person_page(p, rng: random.Random) -> str:
    line = pick(rng, corpus.PERSON_FACTS + MORE_PERSON)
    return f"{p.name}\n\n" + line.format(n=p.name, p=p.profession, b=p.birthplace, c=p.country)


def _encyclopedia(kb, rng: random.Random, entity: Zipf) -> str:
    if rng.random() < 0.3:
        return _person_page(entity.person(), rng)
    page = _country_page(entity.country(), rng)
    return page + (" " + pick(rng, corpus.PAGE_EXTRAS) if rng.random() < 0.5 else "")


def _faq(kb, rng: random.Random, entity: Zipf) -> str:
    if rng.random() < 0.5:
        return corpus.WRITERS["faq"](_ZipfKB(kb, entity), rng)
    rows = []
    for _ in range(rng.randint(3, 6)):
        if rng.random() < 0.25:
            p = entity.person()
            rel = pick(rng, ("profession", "birthplace"))
            rows.append(pick(rng, ASKS[rel]).format(e=p.name) + " " + getattr(p, rel))
        else:
            c, rel = entity.country(), pick(rng, tuple(corpus.FACTS))
            rows.append(pick(rng, ASKS[rel]).format(e=c.name) + " " + getattr(c, rel))
    return pick(rng, corpus.QUIZ_TITLES) + "\n\n" + "\n".join(rows)


def _delegate(kind: str):
    """corpus.py's writer of `kind`, fed Zipf-drawn entities."""
    return lambda kb, rng, entity: corpus.WRITERS[kind](_ZipfKB(kb, entity), rng)


def _operands(rng: random.Random) -> tuple[str, int, int]:
    """An operation and operands over the ranges the families draw: sums of 2..20 most often
    (arithmetic), up to 99 (multi-turn chains, yes/no comparisons), and times tables to 12."""
    kind = rng.choices(("add", "sub", "mul"), (0.4, 0.35, 0.25))[0]
    if kind == "mul":
        return kind, rng.randint(2, 12), rng.randint(2, 12)
    top = 20 if rng.random() < 0.55 else 99
    a, b = rng.randint(2, top), rng.randint(2, top)
    if kind == "sub" and b > a:
        a, b = b, a
    return kind, a, b


def _arithmetic(kb, rng: random.Random, entity: Zipf) -> str:
    rows = []
    for k in range(1, rng.randint(6, 14)):
        kind, a, b = _operands(rng)
        c = {"add": a + b, "sub": a - b, "mul": a * b}[kind]
        line = pick(rng, ARITH_LINES[kind]).format(a=a, b=b, c=c)
        rows.append(f"{k}) {line}" if rng.random() < 0.4 else line)
    return pick(rng, ARITH_TITLES) + "\n\n" + "\n".join(rows)


def _items(rng: random.Random, kind: str) -> list:
    n = rng.randint(2, 6)
    if kind.startswith("sort"):
        return rng.sample(range(1, 100), n)
    return rng.sample(pick(rng, tuple(lexicon.CATEGORIES.values())), n)


def _lists(kb, rng: random.Random, entity: Zipf) -> str:
    rows = []
    for _ in range(rng.randint(3, 7)):
        kind = pick(rng, tuple(LIST_LINES))
        items = _items(rng, kind)
        done = {
            "sort_asc": sorted(items),
            "sort_desc": sorted(items, reverse=True),
            "reverse_words": items[::-1],
            "alphabetize": sorted(items),
        }[kind]
        sep = " " if kind == "reverse_words" else ", "
        rows.append(
            pick(rng, LIST_LINES[kind]).format(x=sep.join(map(str, items)), y=sep.join(map(str, done)))
        )
    return pick(rng, LIST_TITLES) + "\n\n" + "\n".join(rows)


REL_WORDS = {"capital": "Capital", "language": "Language", "river": "Longest river"}


def _form(kb, rng: random.Random, entity: Zipf) -> str:
    rows = []
    for _ in range(rng.randint(3, 6)):
        kind = pick(rng, tuple(FORM_LINES))
        line = pick(rng, FORM_LINES[kind])
        if kind == "yes_no":
            a, b = rng.sample(range(2, 100), 2)
            rows.append(line.format(a=a, b=b, yn="Yes" if a > b else "No"))
        elif kind == "n_items":
            cat = pick(rng, tuple(lexicon.CATEGORIES))
            n = rng.randint(2, 5)
            items = rng.sample(lexicon.CATEGORIES[cat], n)
            word = {2: "two", 3: "three", 4: "four", 5: "five"}[n]
            rows.append(
                line.format(
                    n=word,
                    N=word.capitalize(),
                    cat=cat,
                    items=", ".join(items),
                    lines="\n".join(f"- {i}" for i in items),
                )
            )
        else:
            c, rel = entity.country(), pick(rng, tuple(REL_WORDS))
            v = getattr(c, rel)
            rows.append(
                line.format(rel=REL_WORDS[rel], low=REL_WORDS[rel].lower(), e=c.name, v=v, V=v.upper())
            )
    return pick(rng, FORM_TITLES) + "\n\n" + "\n".join(rows)


def _reading(kb, rng: random.Random, entity: Zipf) -> str:
    names = NameMaker(rng, kb.names())
    n = names.person()
    values = {
        "town": names.make((1, 2)),
        "job": pick(rng, PROFESSIONS),
        "siblings": rng.randint(2, 6),
        "pet": pick(rng, lexicon.CREATURES),
        "color": pick(rng, lexicon.COLORS),
        "trip": names.make((1, 2)),
    }
    shown = rng.sample(sorted(ATTRIBUTES), 4)
    passage = " ".join(pick(rng, ATTRIBUTES[a][0]).format(n=n, v=values[a]) for a in shown)
    qa = []
    for a in rng.sample(sorted(ATTRIBUTES), rng.randint(2, 4)):
        answer = str(values[a]) + "." if a in shown else pick(rng, NOT_SAID)
        qa.append(f"Q: {READ_ASKS[a].format(n=n)}\nA: {answer}")
    return pick(rng, READING_FRAMES).format(p=passage, qa="\n".join(qa))


def _chain(kb, rng: random.Random, entity: Zipf) -> str:
    roll = rng.random()
    if roll < 0.5:  # running arithmetic, as multi-turn follow-ups ask
        r = rng.randint(5, 99)
        steps = [f"Start with {r}."]
        for _ in range(rng.randint(2, 4)):
            op = pick(rng, ("add", "sub", "double") if r > 4 else ("add", "double"))
            c = 2 if op == "double" else rng.randint(2, 20 if op == "add" else min(20, r - 2))
            r = {"add": r + c, "sub": r - c, "double": 2 * r}[op]
            steps.append(pick(rng, CHAIN_STEPS[op]).format(c=c, r=r))
        return "Number chain\n\n" + " ".join(steps)
    if roll < 0.75:  # a list, then what is done to it
        items = sorted(rng.sample(range(1, 100), rng.randint(3, 5)))
        rev, drop = ", ".join(map(str, items[::-1])), ", ".join(map(str, items[:-1]))
        return (
            f"List chain\n\nSorted: {', '.join(map(str, items))}. Reversed, that list is {rev}. "
            f"Without its largest number it is {drop}."
        )
    c = entity.country()  # a country, then more about "there"
    rel = pick(rng, ("language", "currency", "river"))
    said = {
        "language": f"The language spoken there is {c.language}.",
        "currency": f"The money used there is the {c.currency}.",
        "river": f"The longest river there is the {c.river}.",
    }[rel]
    return f"{c.capital} is the capital of {c.name}. {said}"


WRITERS = {
    "encyclopedia": _encyclopedia,
    "faq": _faq,
    "quiz": _delegate("quiz"),
    "forum": _delegate("forum"),
    "story": _delegate("story"),
    "bio": _delegate("bio"),
    "howto": _delegate("howto"),
    "arithmetic": _arithmetic,
    "lists": _lists,
    "form": _form,
    "reading": _reading,
    "chain": _chain,
}


def phrases() -> list[str]:
    """Every fixed string this module writes documents from (for the world's vocabulary)."""
    out: list[str] = []
    for table in (MORE_FACTS, ASKS, ARITH_LINES, LIST_LINES, FORM_LINES, READ_ASKS, CHAIN_STEPS):
        for value in table.values():
            out += [value] if isinstance(value, str) else list(value)
    out += [
        *MORE_PERSON,
        *ARITH_TITLES,
        *LIST_TITLES,
        *FORM_TITLES,
        *READING_FRAMES,
        *NOT_SAID,
        *REL_WORDS.values(),
    ]
    out += [
        "Number chain",
        "List chain",
        "Start with",
        "Sorted",
        "Reversed, that list is",
        "Without its largest number it is",
        "The language spoken there is",
        "The money used there is the",
        "The longest river there is the",
        "two",
        "three",
        "four",
        "five",
    ]
    return out
