"""The list_ops family: sorting, reversing and alphabetizing lists, with one exact result."""

from __future__ import annotations

import random

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

LIST_KINDS = ("sort_asc", "sort_desc", "reverse_words", "alphabetize")


def items_key(items: list[int]) -> tuple:
    """What holds a list of numbers out of training: the set, in whatever order it is asked."""
    return ("items", *sorted(items))


def list_answer(task: dict) -> list:
    items = task["items"]
    return {
        "sort_asc": lambda: sorted(items),
        "sort_desc": lambda: sorted(items, reverse=True),
        "reverse_words": lambda: list(reversed(items)),
        "alphabetize": lambda: sorted(items),
    }[task["kind"]]()


def check_sequence(response: str, expected: list) -> str:
    """correct when the response ends with exactly the expected sequence of items."""
    if isinstance(expected[0], int):
        got: list = text.numbers(response, spelled=False)
    else:
        got = text.sequence_in(response, [str(e) for e in expected])
    if not got:
        return "no_answer"
    return "correct" if got[-len(expected) :] == expected else "wrong"


class ListOps(Family):
    name = "list_ops"
    title = "List and string operations"
    rule = "Give the exact resulting list or words, in the right order, with nothing missing or added."
    budget = 14
    outcomes = (
        Outcome("correct", 1.0, 1.0, meaning="the exact result"),
        Outcome("wrong", 0.1, 0.0, flags=("fails_task",), meaning="a wrong order or missing items"),
        NO_ANSWER,
        REFUSED,
    )
    templates = {
        "sort_asc": split_phrasings(
            (
                "Sort these numbers from smallest to largest: {joined}",
                "Sort {joined} in ascending order.",
                "Put these in increasing order: {joined}",
                "Order from lowest to highest: {joined}",
                "List these from smallest to largest: {joined}",
                "Sort from low to high: {joined}",
                "Put these numbers in ascending order: {joined}",
            ),
            ("Arrange {joined} from least to greatest.", "Can you sort {joined} ascending?"),
            "list_ops",
            "sort_asc",
            kept=4,
        ),
        "sort_desc": split_phrasings(
            (
                "Sort these numbers from largest to smallest: {joined}",
                "Sort {joined} in descending order.",
                "Put these in decreasing order: {joined}",
                "Order from highest to lowest: {joined}",
                "List these from largest to smallest: {joined}",
                "Sort from high to low: {joined}",
                "Put these numbers in descending order: {joined}",
            ),
            ("Arrange {joined} from greatest to least.", "Can you sort {joined} descending?"),
            "list_ops",
            "sort_desc",
            kept=4,
        ),
        "reverse_words": split_phrasings(
            (
                "Reverse the words: {joined}",
                "Reverse the order of these words: {joined}",
                "Write these words in reverse order: {joined}",
                "Flip the order: {joined}",
                "Put these words in reverse order: {joined}",
                "Reverse this list of words: {joined}",
                "Reverse the sequence: {joined}",
            ),
            (
                "Say these words backwards, last one first: {joined}",
                "Give me {joined} in the opposite order.",
            ),
            "list_ops",
            "reverse_words",
            kept=4,
        ),
        "alphabetize": split_phrasings(
            (
                "Put these words in alphabetical order: {joined}",
                "Alphabetize: {joined}",
                "Sort these words from A to Z: {joined}",
                "Order alphabetically: {joined}",
                "Sort alphabetically: {joined}",
                "Put these in alphabetical order: {joined}",
                "Sort these words alphabetically: {joined}",
            ),
            ("Arrange {joined} in dictionary order.", "Which order do {joined} go in, A to Z?"),
            "list_ops",
            "alphabetize",
            kept=4,
        ),
    }

    def slots(self, task: dict) -> dict:
        sep = " " if task["kind"] == "reverse_words" else ", "
        return {"joined": sep.join(str(i) for i in task["items"])}

    def sample(self, rng: random.Random, split: str) -> dict:
        kind = pick(rng, LIST_KINDS)
        n = rng.randint(*self.knobs.list_len)
        if kind.startswith("sort"):  # a held-out share of number sets, as the word lists hold out words
            items: list = draw(rng, split, lambda r: r.sample(range(1, 100), n), items_key)
        else:
            pool = lexicon.split_words(pick(rng, tuple(lexicon.CATEGORIES.values())), entity_split(split))
            items = rng.sample(pool, min(n, len(pool)))
        if items == list_answer({"kind": kind, "items": items}):
            items = items[1:] + items[:1]  # never ask for what is already done
        return {"kind": kind, "items": items}

    def check(self, task: dict, response: str) -> str:
        return self.refused_or_empty(response) or check_sequence(response, list_answer(task))

    def demonstrate(self, task: dict, rng: random.Random) -> str:
        ans = list_answer(task)
        sep = " " if task["kind"] == "reverse_words" else ", "
        joined = sep.join(str(i) for i in ans)
        return pick(rng, (joined, f"{joined}", f"Here it is: {joined}", f"The result is: {joined}"))

    def wrong_answers(self, task: dict, rng: random.Random) -> dict[str, str]:
        ans = list_answer(task)
        swapped = ans[:]
        swapped[0], swapped[1] = swapped[1], swapped[0]
        return {"wrong": ", ".join(str(i) for i in swapped), "refused": "Sorry, I can't do that."}
