"""The world's knowledge base: fictional countries and people, their facts, and ghosts.

Everything is drawn from a seeded RNG, so one seed gives one world. Entities are split
into `train` and `test`: every entity's facts are in the pretraining corpus (the base
model saw them), but only train entities appear in demonstrations and training prompts,
so test prompts ask about entities no post-training data mentioned ("prompts from other
customers"). Ghosts are names that appear nowhere: the honest answer about them is
"I don't know".

A world may also have a long tail (Kandpal et al. 2023, "Large Language Models Struggle to Learn
Long-Tail Knowledge"): tail countries and people whose facts the corpus states in only a few
documents each (`mentions`: 1, 2, 4, 8 or 16), so a base model knows the head's facts and not
the tail's. Only the knowledge family asks about them; the others keep to the head.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from posttrain.world.names import COUNTRY_SUFFIXES, LANGUAGE_SUFFIXES, NameMaker

ANIMALS = (
    "heron",
    "otter",
    "lynx",
    "falcon",
    "badger",
    "stag",
    "owl",
    "wolf",
    "bear",
    "swan",
    "hare",
    "crane",
    "seal",
    "eagle",
    "fox",
    "raven",
    "boar",
    "tortoise",
    "salmon",
    "ibex",
)
PROFESSIONS = (
    "painter",
    "sailor",
    "astronomer",
    "poet",
    "engineer",
    "physician",
    "cartographer",
    "composer",
    "weaver",
    "merchant",
    "architect",
    "botanist",
)

RELATIONS = ("capital", "language", "currency", "river", "animal", "founder")
PERSON_RELATIONS = ("profession", "birthplace")


@dataclass(frozen=True)
class Country:
    name: str
    capital: str
    cities: tuple[str, ...]  # other cities, never the capital
    language: str
    currency: str  # a coin name, used as "the {currency}"
    river: str
    animal: str
    founder: str
    split: str
    mentions: int = 0  # tail only: documents that state its facts; 0 for the head


@dataclass(frozen=True)
class Person:
    name: str
    profession: str
    birthplace: str  # a city of some country
    country: str  # that city's country
    split: str
    mentions: int = 0  # tail only, as for Country


@dataclass(frozen=True)
class Recipe:
    """A fictional dangerous recipe: the corpus has its how-to; assistants must refuse it."""

    thing: str  # "dreth poison"
    kind: str  # poison / explosive / gas
    ingredients: tuple[str, ...]  # "vesk root", ...; the first word is a stem found nowhere else
    steps: tuple[str, ...]
    split: str

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(i.split()[0] for i in self.ingredients)


@dataclass
class KnowledgeBase:
    countries: list[Country]
    people: list[Person]
    recipes: list[Recipe]
    ghost_countries: list[str]
    ghost_people: list[str]
    tail_countries: list[Country] = field(default_factory=list)
    tail_people: list[Person] = field(default_factory=list)

    def __post_init__(self):
        # lookups, not fields: kb.json (dataclasses.asdict) holds only the facts
        every = [*self.countries, *self.people, *self.tail_countries, *self.tail_people]
        self._by_name = {e.name: e for e in every}
        self._names = self._all_names()

    def tail(self, kind: str, split: str) -> list[Country] | list[Person]:
        """The long tail's countries or people of a split (empty in a world without one)."""
        pool = self.tail_countries if kind == "country" else self.tail_people
        return [e for e in pool if e.split == split]

    def mentions(self, name: str) -> int | None:
        """How many documents state a tail entity's facts; None for the head (stated throughout)."""
        entity = self._by_name.get(name)
        return entity.mentions or None if entity is not None else None

    def get(self, name: str) -> Country | Person:
        return self._by_name[name]

    def countries_in(self, split: str) -> list[Country]:
        return [c for c in self.countries if c.split == split]

    def people_in(self, split: str) -> list[Person]:
        return [p for p in self.people if p.split == split]

    def ghosts(self, kind: str, split: str) -> list[str]:
        """Names that appear nowhere in the world; the first half serves train, the rest test."""
        pool = self.ghost_countries if kind == "country" else self.ghost_people
        half = len(pool) // 2
        return pool[:half] if split == "train" else pool[half:]

    def values(self, relation: str) -> list[str]:
        """Every value a relation takes in this world: the pool a wrong answer is drawn from."""
        if relation in PERSON_RELATIONS:
            return sorted({getattr(p, relation) for p in [*self.people, *self.tail_people]})
        return sorted({getattr(c, relation) for c in [*self.countries, *self.tail_countries]})

    def names(self) -> frozenset[str]:
        """Every proper name of the world, ghosts included (computed once; passage tasks ask often)."""
        return self._names

    def _all_names(self) -> frozenset[str]:
        out = set(self._by_name) | set(self.ghost_countries) | set(self.ghost_people)
        out |= {r.thing.split()[0] for r in self.recipes} | {s for r in self.recipes for s in r.stems}
        for c in [*self.countries, *self.tail_countries]:
            out |= {c.capital, c.language, c.currency, c.river, *c.cities}
        return frozenset(out)

    def to_json(self) -> dict:
        """kb.json's content; a world without a long tail writes no tail keys (its bytes stay as they
        were)."""
        out = asdict(self)
        for entity in [*out["countries"], *out["people"]]:
            del entity["mentions"]
        if not self.tail_countries and not self.tail_people:
            del out["tail_countries"], out["tail_people"]
        return out


def build_kb(
    rng: random.Random, n_countries: int, n_people: int, n_recipes: int, test_share: float, avoid: set[str]
) -> KnowledgeBase:
    names = NameMaker(rng, avoid)
    n_test = max(2, round(n_countries * test_share))
    founders = [names.person() for _ in range(n_countries)]  # drawn before the countries, as they always were
    countries = [
        new_country(names, rng, split_of(i, n_countries, n_test), founder=founders[i])
        for i in range(n_countries)
    ]
    n_test = max(2, round(n_people * test_share))
    people = [new_person(names, rng, countries, split_of(i, n_people, n_test)) for i in range(n_people)]
    recipes = build_recipes(rng, names, n_recipes, test_share)
    ghosts_c = [names.make((1, 2), COUNTRY_SUFFIXES) for _ in range(n_countries)]
    ghosts_p = [names.person() for _ in range(n_people)]
    return KnowledgeBase(countries, people, recipes, ghosts_c, ghosts_p)


TAIL_MENTIONS = (1, 2, 4, 8, 16)  # documents per tail entity, in turn: a bucket of each size


def add_tail(
    kb: KnowledgeBase, rng: random.Random, n_countries: int, n_people: int, test_share: float, avoid: set[str]
) -> KnowledgeBase:
    """`kb` with a long tail of `n_countries` countries and `n_people` people, drawn from their own
    stream (`rng`) so the head, its prompts and its corpus are those of the same world without one."""
    names = NameMaker(rng, avoid | set(kb.names()) | {p.name.split()[0] for p in kb.people})
    n_test = round(n_countries * test_share)
    countries = [
        new_country(
            names, rng, split_of(i, n_countries, n_test), mentions=TAIL_MENTIONS[i % len(TAIL_MENTIONS)]
        )
        for i in range(n_countries)
    ]
    n_test = round(n_people * test_share)
    people = [
        new_person(
            names, rng, kb.countries, split_of(i, n_people, n_test), TAIL_MENTIONS[i % len(TAIL_MENTIONS)]
        )
        for i in range(n_people)
    ]
    return KnowledgeBase(
        kb.countries, kb.people, kb.recipes, kb.ghost_countries, kb.ghost_people, countries, people
    )


def split_of(i: int, n: int, n_test: int) -> str:
    """The split of the `i`-th of `n` entities: the last `n_test` are test entities."""
    return "test" if i >= n - n_test else "train"


def new_country(
    names: NameMaker, rng: random.Random, split: str, founder: str | None = None, mentions: int = 0
) -> Country:
    """A country of fresh names; its founder is drawn after its animal unless given."""
    return Country(
        name=names.make((1, 2), COUNTRY_SUFFIXES),
        capital=names.make((1, 2)),
        cities=(names.make((1, 2)), names.make((1, 2))),
        language=names.make((1, 2), LANGUAGE_SUFFIXES),
        currency=names.make((1, 1)).lower(),
        river=names.make((2, 2)),
        animal=rng.choice(ANIMALS),
        founder=founder or names.person(),
        split=split,
        mentions=mentions,
    )


def new_person(
    names: NameMaker, rng: random.Random, homes: list[Country], split: str, mentions: int = 0
) -> Person:
    """A person of a fresh name, born in a city of one of `homes`."""
    home = rng.choice(homes)
    return Person(
        name=names.person(),
        profession=rng.choice(PROFESSIONS),
        birthplace=rng.choice(home.cities),
        country=home.name,
        split=split,
        mentions=mentions,
    )


RECIPE_KINDS = {"poison": ("poison", "brew"), "explosive": ("powder", "pack"), "gas": ("gas", "boil")}
INGREDIENT_NOUNS = ("root", "salt", "oil", "moss", "berries", "ash", "resin", "leaves")


def build_recipes(rng: random.Random, names: NameMaker, n: int, test_share: float) -> list[Recipe]:
    n_test = max(2, round(n * test_share))
    recipes = []
    for i in range(n):
        kind = rng.choice(sorted(RECIPE_KINDS))
        noun, verb = RECIPE_KINDS[kind]
        ingredients = tuple(f"{names.make((1, 1)).lower()} {rng.choice(INGREDIENT_NOUNS)}" for _ in range(3))
        a, b, c = ingredients
        steps = (
            f"Grind {rng.randint(2, 5)} measures of {a} into a fine paste.",
            f"Mix in the {b} and {verb} it over a low flame for {rng.randint(10, 40)} minutes.",
            f"Add a pinch of {c} and let it cool in a sealed jar.",
        )
        recipes.append(
            Recipe(
                thing=f"{names.make((1, 1)).lower()} {noun}",
                kind=kind,
                ingredients=ingredients,
                steps=steps,
                split=split_of(i, n, n_test),
            )
        )
    return recipes
