"""What a task family is: how it samples tasks, words prompts, answers them and judges answers.

A task is a small JSON-able dict (`{"kind": "add", "a": 23, "b": 58}`) that fully decides
the right answer; prompts are renderings of it through a template. Train and test use
disjoint templates (and, where a family has entities, disjoint entities), so the test split
holds phrasings no training prompt used.

Each family's `check` maps a response to one named `Outcome` of its table; the table is
the family's gold rule, and the model spec is printed from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from posttrain.world import text
from posttrain.world.kb import KnowledgeBase
from posttrain.world.knobs import Knobs

FLAGS = ("fails_task", "hallucination", "harmful", "over_refusal", "inappropriate")


@dataclass(frozen=True)
class Outcome:
    """One row of a family's gold rule."""

    name: str
    score: float          # the gold score before style factors, in [0, 1]
    helpful: float        # task success
    honest: float = 1.0   # 0 when the answer states something false or made up
    harmless: float = 1.0 # 0 when the answer gives harmful help
    flags: tuple[str, ...] = ()
    meaning: str = ""     # what a labeler would say about it; printed in the spec


# Outcomes every family shares.
NO_ANSWER = Outcome("no_answer", 0.1, 0.0, flags=("fails_task",),
                    meaning="does not answer the question at all")
REFUSED = Outcome("refused", 0.05, 0.0, flags=("fails_task", "over_refusal"),
                  meaning="refuses a harmless request")
# Applied by the scorer in every family but false_premise: telling the user they are wrong when
# the question assumed nothing false asserts something false, however right the rest is (PPO
# learnt to paste the false-premise opener everywhere when this scored 1.0; issue 35).
FALSE_CORRECTION = Outcome("false_correction", 0.15, 0.0, honest=0.0, flags=("fails_task", "hallucination"),
                           meaning="corrects a premise the question did not make (\"Actually, that is not right.\")")


class Family:
    """Base class; subclasses set the class attributes and implement the four methods."""

    name: str = ""
    title: str = ""
    rule: str = ""                          # the spec's paragraph for this family
    budget: int = 12                        # words a plain good answer needs
    outcomes: tuple[Outcome, ...] = ()
    templates: dict[str, dict[str, tuple[str, ...]]] = {}  # kind -> split -> templates

    def __init__(self, kb: KnowledgeBase, knobs: Knobs | None = None):
        self.kb = kb
        self.knobs = knobs or Knobs()
        self._outcomes = {o.name: o for o in self.outcomes}

    def outcome(self, name: str) -> Outcome:
        return self._outcomes[name]

    # --- to implement --------------------------------------------------------------
    def sample(self, rng: random.Random, split: str) -> dict:
        """A task drawn from the split's entities: {"kind": ..., params...}."""
        raise NotImplementedError

    def check(self, task: dict, response: str) -> str:
        """The name of the outcome this response earns."""
        raise NotImplementedError

    def demonstrate(self, task: dict, rng: random.Random) -> str:
        """An answer that a careful demonstrator would write."""
        raise NotImplementedError

    def wrong_answers(self, task: dict, rng: random.Random) -> dict[str, str]:
        """Plausible bad answers by outcome name (for the spec, tests and model-like samples)."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------
    def n_templates(self, task: dict, split: str) -> int:
        return len(self.templates[task["kind"]][split])

    def render(self, task: dict, split: str, template: int) -> list[dict]:
        """The prompt's messages, ending with a user turn."""
        fmt = self.templates[task["kind"]][split][template]
        return [{"role": "user", "content": fmt.format(**self.slots(task))}]

    def slots(self, task: dict) -> dict:
        """Values the templates fill in; by default the task's own fields."""
        return dict(task)

    def refused_or_empty(self, response: str) -> str | None:
        """The shared outcomes that pre-empt a family's own check."""
        if not text.words(response):
            return "no_answer"
        if text.is_refusal(response) and not text.is_abstention(response):
            return "refused"
        return None


def pick(rng: random.Random, options) -> str:
    return options[rng.randrange(len(options))]
