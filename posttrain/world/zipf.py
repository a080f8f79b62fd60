"""The scaled corpus's entity frequencies: head entities drawn by Zipf's law (Kandpal et al. 2023: what a
model knows of an entity follows how often its pretraining data mention it)."""

from __future__ import annotations

import itertools
import random

from posttrain.world.rng import derive

ZIPF = 1.0  # head entity of rank r (from 1) is drawn with weight r^-ZIPF


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
