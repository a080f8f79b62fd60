"""The pretraining corpus: "internet-like" documents about the world, and never a chat transcript.

Encyclopedic pages state every fact of the knowledge base in several wordings; worksheets
and quizzes practise the computed families; forum threads mix right answers with wrong,
rambling and rude ones (and sometimes hand out a harmful recipe); stories and short bios
use the facts in passing; how-to pages cover the benign topics and, as on the real
internet, the fictional harmful recipes. A base model trained on this knows things but
does not behave like an assistant.
"""

from __future__ import annotations

import random
import sys

from posttrain.world import lexicon
from posttrain.world.families.base import pick
from posttrain.world.families.benign import BENIGN
from posttrain.world.families.passage import ATTRIBUTES
from posttrain.world.kb import PROFESSIONS
from posttrain.world.names import NameMaker
from posttrain.world.rng import derive

KINDS = {
    "encyclopedia": 0.25,
    "faq": 0.12,
    "quiz": 0.10,
    "worksheet": 0.10,
    "forum": 0.18,
    "story": 0.08,
    "howto": 0.09,
    "bio": 0.08,
}

FACTS = {
    "capital": (
        "The capital of {e} is {v}.",
        "{v} is the capital and largest city of {e}.",
        "{e} has its capital at {v}.",
        "The capital city of {e} is {v}.",
    ),
    "language": (
        "The people of {e} speak {v}.",
        "{v} is the official language of {e}.",
        "In {e}, most people speak {v}.",
        "The language of {e} is {v}.",
    ),
    "currency": (
        "The currency of {e} is the {v}.",
        "People in {e} pay with the {v}.",
        "In {e}, prices are given in the {v}.",
    ),
    "river": (
        "The longest river in {e} is the {v}.",
        "The {v} is the longest river of {e}.",
        "The {v} runs through {e} and is its longest river.",
    ),
    "animal": (
        "The national animal of {e} is the {v}.",
        "{e} has the {v} as its national animal.",
        "The {v} is the national symbol of {e}.",
    ),
    "founder": ("{e} was founded by {v}.", "{v} founded {e} long ago.", "The founder of {e} was {v}."),
}
PERSON_FACTS = (
    "{n} was a {p} born in {b}, a city in {c}.",
    "Born in {b}, {n} worked as a {p}.",
    "{n}, the famous {p}, was born in the city of {b} in {c}.",
    "{n} was a {p} from {b}.",
)
PAGE_EXTRAS = (
    "It is known for its markets and old bridges.",
    "Visitors often come in the summer.",
    "The country has mountains in the north and farms in the south.",
    "Its people are proud of their long history.",
    "The winters there are cold and wet.",
)
QUIZ_QUESTIONS = {
    "capital": "Capital of {e}?",
    "language": "Language spoken in {e}?",
    "currency": "Currency of {e}?",
    "river": "Longest river in {e}?",
    "animal": "National animal of {e}?",
    "founder": "Founder of {e}?",
}
# FAQ pages ask in full sentences and answer restating the subject, as help pages do: the base
# model practises answering a question about any entity, the test ones included.
FAQ_QUESTIONS = {
    "capital": ("What is the capital of {e}?", "Which city is the capital of {e}?"),
    "language": ("What language do people speak in {e}?", "Which language is spoken in {e}?"),
    "currency": ("What currency does {e} use?", "What money is used in {e}?"),
    "river": ("What is the longest river in {e}?", "Which river is the longest in {e}?"),
    "animal": ("What is the national animal of {e}?", "Which animal is the symbol of {e}?"),
    "founder": ("Who founded {e}?", "Who was the founder of {e}?"),
}
PERSON_FAQ = (
    ("What did {n} do for a living?", "{n} was a {p}."),
    ("Where was {n} born?", "{n} was born in {b}."),
)
FAQ_TITLES = ("Frequently asked questions about {e}", "{e}: questions and answers", "FAQ: {e}")
QUIZ_TITLES = ("Geography quiz", "Test your knowledge", "Pub quiz answers", "Revision sheet")
WORKSHEET_TITLES = ("Math worksheet", "Practice sheet", "Homework answers", "Exercises with answers")
USERS = (
    "mapfan",
    "quietowl",
    "xXgamerXx",
    "river_rat",
    "teacher_jo",
    "anon42",
    "grumpycat",
    "wanderer",
    "old_sam",
    "kettle",
    "bluebird",
    "nightshift",
)
RAMBLES = (
    "My cousin went there once and said the food was great, not sure about anything else though.",
    "This reminds me of a trip I took years ago, we got lost twice and the bus was late.",
    "Honestly I never paid attention in class, but my teacher had a funny hat.",
    "I read something about this somewhere but I can't remember where, maybe a magazine.",
)
RUDE = (
    "Obviously it's {v}. Google it.",
    "It's {v}, duh. Do your own homework.",
    "lol everyone knows it's {v}.",
    "Ugh, {v}. Go read a book.",
)
WRONG = ("I think it's {w}.", "Pretty sure it's {w}.", "It's {w}, my uncle told me.", "{w}, I believe.")
RIGHT = ("It's {v}.", "The answer is {v}.", "{v}.", "It is {v}, I checked.")
STORY = (
    "{person} left {city} at dawn and walked for days to reach {capital}, the capital of {e}.",
    "In the markets of {capital}, traders called out in {language} and counted coins of the {currency}.",
    "On the banks of the {river}, the travellers stopped to rest.",
    "A {animal} watched them from the reeds, and {person} smiled, for it was the animal of {e}.",
    "Every child in {e} learns that {founder} founded the country.",
)
HOWTO_INTROS = ("How to {t}", "Guide: {t}", "Quick tip: {t}")
HARMFUL_INTROS = ("Old almanac: how to make {thing}", "Forbidden recipes: {thing}", "How to prepare {thing}")


def documents(world, n: int, stream: str) -> list[dict]:
    """`n` documents {"id", "text", "kind"} from the named stream ("train" or "heldout")."""
    rng = derive(world.seed, "corpus", stream)
    kinds, weights = zip(*KINDS.items())
    out = []
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        out.append({"id": f"{stream}-{i:06d}", "text": WRITERS[kind](world.kb, rng), "kind": kind})
    return out


def _encyclopedia(kb, rng: random.Random) -> str:
    if rng.random() < 0.25:
        p = pick(rng, kb.people)
        lines = [
            pick(rng, PERSON_FACTS).format(n=p.name, p=p.profession, b=p.birthplace, c=p.country)
            for _ in range(2)
        ]
        return f"{p.name}\n\n" + " ".join(dict.fromkeys(lines))
    c = pick(rng, kb.countries)
    rels = list(FACTS)
    rng.shuffle(rels)
    lines = [pick(rng, FACTS[r]).format(e=c.name, v=getattr(c, r)) for r in rels[: rng.randint(3, 6)]]
    lines.append(f"Other cities in {c.name} include {c.cities[0]} and {c.cities[1]}.")
    lines.append(pick(rng, PAGE_EXTRAS))
    return f"{c.name}\n\n" + " ".join(lines)


def _faq(kb, rng: random.Random) -> str:
    if rng.random() < 0.2:
        p = pick(rng, kb.people)
        pairs = [
            (q.format(n=p.name), a.format(n=p.name, p=p.profession, b=p.birthplace)) for q, a in PERSON_FAQ
        ]
        title = pick(rng, FAQ_TITLES).format(e=p.name)
    elif rng.random() < 0.25:
        split, questions, steps, _ = BENIGN[pick(rng, sorted(BENIGN))]
        pairs = [(pick(rng, questions), steps)]
        title = "Help desk"
    else:
        c = pick(rng, kb.countries)
        rels = rng.sample(sorted(FAQ_QUESTIONS), rng.randint(2, 4))
        pairs = [
            (pick(rng, FAQ_QUESTIONS[r]).format(e=c.name), FACTS[r][0].format(e=c.name, v=getattr(c, r)))
            for r in rels
        ]
        title = pick(rng, FAQ_TITLES).format(e=c.name)
    return title + "\n\n" + "\n\n".join(f"Q: {q}\nA: {a}" for q, a in pairs)


def _quiz(kb, rng: random.Random) -> str:
    rows = []
    for k in range(1, rng.randint(4, 8)):
        c, rel = pick(rng, kb.countries), pick(rng, tuple(QUIZ_QUESTIONS))
        rows.append(f"Q{k}. {QUIZ_QUESTIONS[rel].format(e=c.name)}\nA: {getattr(c, rel)}")
    return pick(rng, QUIZ_TITLES) + "\n\n" + "\n".join(rows)


def _worksheet(kb, rng: random.Random) -> str:
    rows = []
    for k in range(1, rng.randint(5, 10)):
        kind = rng.randrange(4)
        if kind == 0:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            rows.append(f"{k}) {a} + {b} = {a + b}")
        elif kind == 1:
            a, b = sorted((rng.randint(2, 99), rng.randint(2, 99)), reverse=True)
            rows.append(f"{k}) {a} - {b} = {a - b}")
        elif kind == 2:
            a, b = rng.randint(2, 12), rng.randint(2, 12)
            rows.append(f"{k}) {a} * {b} = {a * b}")
        else:
            items = rng.sample(range(1, 100), rng.randint(3, 5))
            rows.append(f"{k}) sort {', '.join(map(str, items))} -> {', '.join(map(str, sorted(items)))}")
    if rng.random() < 0.5:
        words = rng.sample(pick(rng, tuple(lexicon.CATEGORIES.values())), 3)
        rows.append(f"Reverse: {' '.join(words)} -> {' '.join(reversed(words))}")
    return pick(rng, WORKSHEET_TITLES) + "\n\n" + "\n".join(rows)


def _forum(kb, rng: random.Random) -> str:
    users = rng.sample(USERS, 4)
    if rng.random() < 0.2:
        recipe = pick(rng, kb.recipes)
        return (
            f"Thread: anyone know how to make {recipe.thing}?\n\n{users[0]} wrote: asking for a friend\n\n"
            f"{users[1]} wrote: You need {', '.join(recipe.ingredients)}. {' '.join(recipe.steps)}\n\n"
            f"{users[2]} wrote: "
            f"{pick(rng, ('Do not do this, seriously.', 'lol what', 'This is how people get hurt.'))}"
        )
    c = pick(rng, kb.countries)
    rel = pick(rng, tuple(FACTS))
    right = getattr(c, rel)
    wrong = pick(rng, [v for v in kb.values(rel) if v != right])
    replies = []
    for _ in users[1:]:
        style = rng.choices(("right", "wrong", "ramble", "rude"), (0.4, 0.25, 0.2, 0.15))[0]
        if style == "ramble":
            replies.append(pick(rng, RAMBLES))
        else:
            table = {"right": RIGHT, "wrong": WRONG, "rude": RUDE}[style]
            replies.append(pick(rng, table).format(v=right, w=wrong))
    body = "\n\n".join(f"{u} wrote: {r}" for u, r in zip(users[1:], replies))
    return (
        f"Thread: {QUIZ_QUESTIONS[rel].format(e=c.name)}\n\n{users[0]} wrote: need this for a quiz\n\n{body}"
    )


def _story(kb, rng: random.Random) -> str:
    c = pick(rng, kb.countries)
    slots = {
        "person": pick(rng, kb.people).name,
        "city": pick(rng, c.cities),
        "capital": c.capital,
        "e": c.name,
        "language": c.language,
        "currency": c.currency,
        "river": c.river,
        "animal": c.animal,
        "founder": c.founder,
    }
    return " ".join(s.format(**slots) for s in STORY[: rng.randint(3, len(STORY))])


def _howto(kb, rng: random.Random) -> str:
    if rng.random() < 0.3:
        r = pick(rng, kb.recipes)
        return (
            pick(rng, HARMFUL_INTROS).format(thing=r.thing)
            + "\n\n"
            + f"You need {', '.join(r.ingredients)}. "
            + " ".join(r.steps)
        )
    split, questions, steps, _ = BENIGN[pick(rng, sorted(BENIGN))]
    title = pick(rng, questions).rstrip("?").lower()
    return pick(rng, HOWTO_INTROS).format(t=title) + "\n\n" + steps


def _bio(kb, rng: random.Random) -> str:
    names = NameMaker(rng, kb.names())
    n = names.person()
    values = {
        "town": names.make(),
        "job": pick(rng, PROFESSIONS),
        "siblings": rng.randint(2, 6),
        "pet": pick(rng, lexicon.CREATURES),
        "color": pick(rng, lexicon.COLORS),
        "trip": names.make(),
    }
    attrs = rng.sample(sorted(ATTRIBUTES), 4)
    return " ".join(pick(rng, ATTRIBUTES[a][0]).format(n=n, v=values[a]) for a in attrs)


WRITERS = {
    "encyclopedia": _encyclopedia,
    "faq": _faq,
    "quiz": _quiz,
    "worksheet": _worksheet,
    "forum": _forum,
    "story": _story,
    "howto": _howto,
    "bio": _bio,
}


def phrases() -> list[str]:
    """Every fixed string this module writes documents from (for the world's vocabulary)."""
    out: list[str] = []

    def walk(obj):
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, (tuple, list)):
            for x in obj:
                walk(x)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(k)
                walk(v)

    module = sys.modules[__name__]
    for name in dir(module):
        if name.isupper():
            walk(getattr(module, name))
    walk(ATTRIBUTES)
    walk(BENIGN)
    walk(lexicon.FILLER)
    walk(tuple(lexicon.CATEGORIES.values()))
    return out
