"""Pronounceable fictional names ("Veloria", "Tarn", "Mira Dovan"): the syllables they are made of and
the NameMaker that never gives one name twice."""

from __future__ import annotations

import random

ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "sk",
    "st",
    "t",
    "th",
    "v",
    "z",
    "ar",
    "el",
    "or",
    "ul",
    "is",
    "en",
)
VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou", "y")
CODAS = ("", "n", "r", "l", "s", "th", "rn", "sk", "nd", "m", "x", "v")
COUNTRY_SUFFIXES = ("ia", "ora", "land", "mar", "esh", "avia", "oth", "und", "ica", "ara")
LANGUAGE_SUFFIXES = ("ic", "ish", "ese", "an", "i")


class NameMaker:
    """Pronounceable, unique, capitalised names: "Veloria", "Tarn", "Mira Dovan"."""

    def __init__(self, rng: random.Random, avoid: set[str] = frozenset()):
        self.rng = rng
        self.used: set[str] = {a.lower() for a in avoid}

    def _root(self, syllables: int) -> str:
        r = self.rng
        s = "".join(r.choice(ONSETS) + r.choice(VOWELS) for _ in range(syllables))
        return s + r.choice(CODAS)

    def make(self, syllables: tuple[int, int] = (1, 2), suffix: tuple[str, ...] = ("",)) -> str:
        while True:
            name = (self._root(self.rng.randint(*syllables)) + self.rng.choice(suffix)).capitalize()
            if 3 <= len(name) <= 11 and name.lower() not in self.used:
                self.used.add(name.lower())
                return name

    def person(self) -> str:
        return f"{self.make((1, 2), ('a', 'o', 'en', '', 'is'))} {self.make((2, 2))}"
