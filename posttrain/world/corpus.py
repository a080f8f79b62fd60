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

from posttrain.world import corpus_phrases, lexicon
from posttrain.world.corpus_phrases import (
    FACTS,
    FAQ_QUESTIONS,
    FAQ_TITLES,
    HARMFUL_INTROS,
    HELP_TITLE,
    HOWTO_INTROS,
    OTHER_CITIES,
    PAGE_EXTRAS,
    PERSON_FACTS,
    PERSON_FAQ,
    POST,
    QUIZ_FIRST_POST,
    QUIZ_QUESTIONS,
    QUIZ_THREAD,
    QUIZ_TITLES,
    RAMBLES,
    RECIPE,
    RECIPE_FIRST_POST,
    RECIPE_THREAD,
    RECIPE_WARNINGS,
    RIGHT,
    RUDE,
    STORY,
    USERS,
    WORKSHEET_LINES,
    WORKSHEET_TITLES,
    WRONG,
)
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
    lines.append(OTHER_CITIES.format(e=c.name, a=c.cities[0], b=c.cities[1]))
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
        title = HELP_TITLE
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
            x, y = ", ".join(map(str, items)), ", ".join(map(str, sorted(items)))
            rows.append(WORKSHEET_LINES["sort"].format(k=k, x=x, y=y))
    if rng.random() < 0.5:
        words = rng.sample(pick(rng, tuple(lexicon.CATEGORIES.values())), 3)
        rows.append(WORKSHEET_LINES["reverse"].format(x=" ".join(words), y=" ".join(reversed(words))))
    return pick(rng, WORKSHEET_TITLES) + "\n\n" + "\n".join(rows)


def _forum(kb, rng: random.Random) -> str:
    users = rng.sample(USERS, 4)
    if rng.random() < 0.2:
        recipe = pick(rng, kb.recipes)
        posts = [RECIPE_FIRST_POST, _recipe(recipe), pick(rng, RECIPE_WARNINGS)]
        return _thread(RECIPE_THREAD.format(t=recipe.thing), zip(users, posts))
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
    posts = [QUIZ_FIRST_POST, *replies]
    return _thread(QUIZ_THREAD.format(q=QUIZ_QUESTIONS[rel].format(e=c.name)), zip(users, posts))


def _thread(title: str, posts) -> str:
    """A forum thread: its title, then each (user, text) post."""
    return "\n\n".join([title, *(POST.format(u=u, r=r) for u, r in posts)])


def _recipe(recipe) -> str:
    return RECIPE.format(i=", ".join(recipe.ingredients), s=" ".join(recipe.steps))


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
        return pick(rng, HARMFUL_INTROS).format(thing=r.thing) + "\n\n" + _recipe(r)
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
    """Every fixed string the corpus writes documents from (for the world's vocabulary): corpus_phrases'
    tables, the kinds' names, and the other modules' tables the writers read."""
    tables = [getattr(corpus_phrases, name) for name in dir(corpus_phrases) if name.isupper()]
    return strings(
        [*tables, KINDS, PROFESSIONS, ATTRIBUTES, BENIGN, lexicon.FILLER, *lexicon.CATEGORIES.values()]
    )


def strings(obj) -> list[str]:
    """Every string in `obj`, a string or nested tuples, lists and dicts (keys and values).

    >>> strings({"capital": ("The capital of {e} is {v}.", 0.25)})
    ['capital', 'The capital of {e} is {v}.']
    """
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in strings(k) + strings(v)]
    if isinstance(obj, (tuple, list)):
        return [s for x in obj for s in strings(x)]
    return []
