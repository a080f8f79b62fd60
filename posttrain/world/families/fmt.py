"""Format constraints: a simple task plus an instruction about the answer's form."""

from __future__ import annotations

import random
import re

from posttrain.world import lexicon, text
from posttrain.world.families.base import (
    NO_ANSWER,
    REFUSED,
    Family,
    Outcome,
    draw,
    entity_split,
    pick,
    split_phrasings,
)
from posttrain.world.families.knowledge import check_fact, fact

NUMBER_NAMES = {2: "two", 3: "three", 4: "four", 5: "five"}


def list_items(response: str) -> list[str]:
    """Items of a list written one per line, with bullets or numbers, or separated by commas."""
    parts = re.split(r"\n|,|;|\band\b", response)
    items = [re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", p).strip(" .!") for p in parts]
    return [i for i in items if i]


def in_category(word: str, category: set[str]) -> bool:
    """Plural-tolerant membership: "cherries", "mangoes" and "cats" are in their categories."""
    forms = {word, word[:-1], word[:-2], word[:-3] + "y"}
    return bool(forms & category)


def yes_no(response: str) -> str | None:
    for w in text.words(response):
        if w in ("yes", "no"):
            return w
    return None


class Format(Family):
    name = "format"
    title = "Format constraints"
    rule = (
        "Do the task and obey the instruction about the answer's form (one word, exactly N "
        "items, capital letters, yes or no). A right answer in the wrong form fails the task."
    )
    budget = 12
    outcomes = (
        Outcome("correct", 1.0, 1.0, meaning="right content in the asked form"),
        Outcome(
            "ignored_constraint",
            0.3,
            0.4,
            flags=("fails_task",),
            meaning="right content, but the form instruction is ignored",
        ),
        Outcome("wrong", 0.05, 0.0, flags=("fails_task",), meaning="wrong content"),
        NO_ANSWER,
        REFUSED,
    )
    templates = {
        "one_word": split_phrasings(
            (
                "What is the {rel_word} of {e}? Answer in one word.",
                "In one word, what is the {rel_word} of {e}?",
                "Answer with a single word. What is the {rel_word} of {e}?",
                "What is the {rel_word} of {e}? One word, please.",
                "Give the {rel_word} of {e} in a single word.",
                "Using one word only, what is the {rel_word} of {e}?",
            ),
            ("Reply with just one word: the {rel_word} of {e}?",),
            "format",
            "one_word",
            kept=3,
        ),
        "n_items": split_phrasings(
            (
                "List exactly {n_word} {category}.",
                "Name {n_word} {category}, no more and no less.",
                "Give me a list of exactly {n_word} {category}.",
                "Name exactly {n_word} {category}.",
                "Write down exactly {n_word} {category}.",
                "List {n_word} {category}, no more and no less.",
            ),
            ("I need precisely {n_word} {category}. List them.",),
            "format",
            "n_items",
            kept=3,
        ),
        "all_caps": split_phrasings(
            (
                "What is the {rel_word} of {e}? Answer in capital letters only.",
                "Using only uppercase letters, tell me the {rel_word} of {e}.",
                "What is the {rel_word} of {e}? Answer in uppercase letters only.",
                "Using only capital letters, give the {rel_word} of {e}.",
                "In capital letters only, what is the {rel_word} of {e}?",
            ),
            ("Write the {rel_word} of {e} in ALL CAPS.",),
            "format",
            "all_caps",
            kept=2,
        ),
        "yes_no": split_phrasings(
            (
                "Is {a} greater than {b}? Answer with yes or no only.",
                "Answer only yes or no: is {a} bigger than {b}?",
                "Is {a} more than {b}? Answer yes or no only.",
                "Answer with yes or no only: is {a} greater than {b}?",
                "Is {a} bigger than {b}? Reply with only yes or no.",
            ),
            ("Yes or no, nothing else: is {a} larger than {b}?",),
            "format",
            "yes_no",
            kept=2,
        ),
    }
    REL_WORDS = {"capital": "capital", "language": "language", "river": "longest river"}

    def slots(self, task: dict) -> dict:
        out = dict(task)
        if "relation" in task:
            out["rel_word"] = self.REL_WORDS[task["relation"]]
        if "n" in task:
            out["n_word"] = NUMBER_NAMES[task["n"]]
        return out

    def sample(self, rng: random.Random, split: str) -> dict:
        kind = pick(rng, tuple(self.templates))
        if kind == "n_items":
            return {"kind": kind, "n": rng.randint(2, 5), "category": pick(rng, tuple(lexicon.CATEGORIES))}
        if kind == "yes_no":  # a held-out share of number pairs, either way round
            a, b = draw(rng, split, lambda r: r.sample(range(2, 100), 2), lambda ab: ("yes_no", *sorted(ab)))
            return {"kind": kind, "a": a, "b": b}
        relation = pick(rng, tuple(self.REL_WORDS))
        return {
            "kind": kind,
            "e": pick(rng, self.kb.countries_in(entity_split(split))).name,
            "relation": relation,
        }

    def check(self, task: dict, response: str) -> str:
        pre = self.refused_or_empty(response)
        if pre:
            return pre
        kind = task["kind"]
        if kind == "n_items":
            items = list_items(response)
            valid = set(lexicon.CATEGORIES[task["category"]])
            if not items or not all(in_category(text.words(i)[-1], valid) for i in items if text.words(i)):
                return "wrong"
            return "correct" if len(items) == task["n"] else "ignored_constraint"
        if kind == "yes_no":
            said = yes_no(response)
            if said != ("yes" if task["a"] > task["b"] else "no"):
                return "wrong"
            return "correct" if len(text.words(response)) == 1 else "ignored_constraint"
        if check_fact(self.kb, task["relation"], self.answer(task), response) != "correct":
            return "wrong"
        if kind == "one_word":
            return "correct" if len(text.words(response)) == 1 else "ignored_constraint"
        letters = re.sub(r"[^A-Za-z]", "", response)
        return "correct" if letters.isupper() else "ignored_constraint"

    def answer(self, task: dict) -> str:
        return fact(self.kb, task["e"], task["relation"])

    def demonstrate(self, task: dict, rng: random.Random) -> str:
        kind = task["kind"]
        if kind == "n_items":
            items = rng.sample(lexicon.CATEGORIES[task["category"]], task["n"])
            return pick(
                rng,
                (
                    ", ".join(items),
                    "\n".join(f"- {i}" for i in items),
                    "\n".join(f"{k}. {i}" for k, i in enumerate(items, 1)),
                ),
            )
        if kind == "yes_no":
            return pick(rng, ("Yes", "Yes.")) if task["a"] > task["b"] else pick(rng, ("No", "No."))
        ans = self.answer(task)
        return (
            ans + pick(rng, ("", ".")) if kind == "one_word" else pick(rng, (ans.upper(), ans.upper() + "."))
        )

    def wrong_answers(self, task: dict, rng: random.Random) -> dict[str, str]:
        kind = task["kind"]
        if kind == "n_items":
            items = list(lexicon.CATEGORIES[task["category"]][: task["n"] + 1])
            return {"ignored_constraint": ", ".join(items), "wrong": "hammer, apple, blue, cat"}
        if kind == "yes_no":
            right = "Yes" if task["a"] > task["b"] else "No"
            wrong = "No" if right == "Yes" else "Yes"
            return {
                "ignored_constraint": f"{right}, because {task['a']} is compared with {task['b']}.",
                "wrong": wrong + ".",
            }
        ans = self.answer(task)
        other = pick(rng, [v for v in self.kb.values(task["relation"]) if v != ans])
        form = f"The answer is {ans}." if kind == "one_word" else f"The answer is {ans}."
        return {"ignored_constraint": form, "wrong": other.upper() if kind == "all_caps" else other}
