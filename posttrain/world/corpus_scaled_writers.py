"""The scaled corpus's document kinds: one writer a kind (WRITERS), each fed head entities drawn by
Zipf (zipf.Zipf), and the long tail's pages (tail_pages), a page for each of a tail entity's
`mentions`. Kinds the small world's corpus also writes reuse its writers (corpus.WRITERS)."""

from __future__ import annotations

import random

from posttrain.world import corpus, corpus_phrases, lexicon
from posttrain.world.corpus_scaled_phrases import (
    ARITH_LINES,
    ARITH_TITLES,
    ASKS,
    CHAIN_CAPITAL,
    CHAIN_LIST,
    CHAIN_START,
    CHAIN_STEPS,
    CHAIN_THERE,
    CHAIN_TITLES,
    FORM_LINES,
    FORM_TITLES,
    LIST_LINES,
    LIST_TITLES,
    MORE_FACTS,
    MORE_PERSON,
    N_WORDS,
    NOT_SAID,
    READ_ASKS,
    READING_FRAMES,
    REL_WORDS,
    YES_NO,
)
from posttrain.world.families.base import pick
from posttrain.world.families.passage import ATTRIBUTES
from posttrain.world.kb import PROFESSIONS
from posttrain.world.names import NameMaker
from posttrain.world.zipf import Zipf


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
    rels = list(corpus_phrases.FACTS)
    rng.shuffle(rels)
    rels = rels if every else rels[: rng.randint(2, 5)]
    lines = [
        pick(rng, corpus_phrases.FACTS[r] + MORE_FACTS[r]).format(e=c.name, v=getattr(c, r)) for r in rels
    ]
    if every or rng.random() < 0.5:
        lines.append(corpus_phrases.OTHER_CITIES.format(e=c.name, a=c.cities[0], b=c.cities[1]))
    return f"{c.name}\n\n" + " ".join(lines)


def _person_page(p, rng: random.Random) -> str:
    line = pick(rng, corpus_phrases.PERSON_FACTS + MORE_PERSON)
    return f"{p.name}\n\n" + line.format(n=p.name, p=p.profession, b=p.birthplace, c=p.country)


def _encyclopedia(kb, rng: random.Random, entity: Zipf) -> str:
    if rng.random() < 0.3:
        return _person_page(entity.person(), rng)
    page = _country_page(entity.country(), rng)
    return page + (" " + pick(rng, corpus_phrases.PAGE_EXTRAS) if rng.random() < 0.5 else "")


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
            c, rel = entity.country(), pick(rng, tuple(corpus_phrases.FACTS))
            rows.append(pick(rng, ASKS[rel]).format(e=c.name) + " " + getattr(c, rel))
    return pick(rng, corpus_phrases.QUIZ_TITLES) + "\n\n" + "\n".join(rows)


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


def _form(kb, rng: random.Random, entity: Zipf) -> str:
    rows = []
    for _ in range(rng.randint(3, 6)):
        kind = pick(rng, tuple(FORM_LINES))
        line = pick(rng, FORM_LINES[kind])
        if kind == "yes_no":
            a, b = rng.sample(range(2, 100), 2)
            rows.append(line.format(a=a, b=b, yn=YES_NO[a > b]))
        elif kind == "n_items":
            cat = pick(rng, tuple(lexicon.CATEGORIES))
            n = rng.randint(2, 5)
            items = rng.sample(lexicon.CATEGORIES[cat], n)
            word = N_WORDS[n]
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
        steps = [CHAIN_START.format(r=r)]
        for _ in range(rng.randint(2, 4)):
            op = pick(rng, ("add", "sub", "double") if r > 4 else ("add", "double"))
            c = 2 if op == "double" else rng.randint(2, 20 if op == "add" else min(20, r - 2))
            r = {"add": r + c, "sub": r - c, "double": 2 * r}[op]
            steps.append(pick(rng, CHAIN_STEPS[op]).format(c=c, r=r))
        return CHAIN_TITLES["number"] + "\n\n" + " ".join(steps)
    if roll < 0.75:  # a list, then what is done to it
        items = sorted(rng.sample(range(1, 100), rng.randint(3, 5)))
        x, y, z = (", ".join(map(str, xs)) for xs in (items, items[::-1], items[:-1]))
        return CHAIN_TITLES["list"] + "\n\n" + CHAIN_LIST.format(x=x, y=y, z=z)
    c = entity.country()  # a country, then more about "there"
    rel = pick(rng, tuple(CHAIN_THERE))  # language, currency or river
    return CHAIN_CAPITAL.format(c=c.capital, e=c.name, s=CHAIN_THERE[rel].format(v=getattr(c, rel)))


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
