"""Families with a computed answer: arithmetic, and list and string operations."""

from __future__ import annotations

import random
from collections import Counter

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

OPS = {"add": ("+", lambda a, b: a + b), "sub": ("-", lambda a, b: a - b), "mul": ("*", lambda a, b: a * b)}


def arithmetic_answer(task: dict) -> int:
    return OPS[task["kind"]][1](task["a"], task["b"])


def operand_key(task: dict) -> tuple:
    """What holds a sum out of training (base.in_split): 3 + 5 and 5 + 3 together, 9 - 4 alone."""
    a, b = (task["a"], task["b"]) if task["kind"] == "sub" else sorted((task["a"], task["b"]))
    return task["kind"], a, b


def items_key(items: list[int]) -> tuple:
    """What holds a list of numbers out of training: the set, in whatever order it is asked."""
    return ("items", *sorted(items))


def check_number(response: str, answer: int, operands: list[int]) -> str:
    """correct / hedged / wrong / no_answer for a numeric answer.

    The operands may be restated ("23 + 58 = 81"); any other number beside the answer is a
    second candidate ("80 or 81"), which makes the answer hedged.
    """
    said = text.numbers(response, spelled=False)
    if not said:
        return "no_answer"
    if answer not in said:
        return "wrong"
    others = Counter(said)
    others.subtract(Counter(operands))
    return "correct" if {n for n, c in others.items() if c > 0} <= {answer} else "hedged"


NUMBER_OUTCOMES = (
    Outcome("correct", 1.0, 1.0, meaning="the right number, said plainly"),
    Outcome(
        "hedged", 0.4, 0.5, flags=("fails_task",), meaning="the right number among other candidate answers"
    ),
    Outcome("wrong", 0.1, 0.0, flags=("fails_task",), meaning="a wrong number"),
    NO_ANSWER,
    REFUSED,
)


class Arithmetic(Family):
    name = "arithmetic"
    title = "Arithmetic"
    rule = (
        "Give the correct result of the calculation, plainly. Showing the sum is fine; "
        "offering several candidate answers is not."
    )
    budget = 10
    outcomes = NUMBER_OUTCOMES
    templates = {
        "add": split_phrasings(
            (
                "What is {a} + {b}?",
                "What is {a} plus {b}?",
                "Add {a} and {b}.",
                "Compute {a} + {b}.",
                "What do you get if you add {a} to {b}?",
                "Please calculate {a} + {b}.",
                "{a} + {b} = ?",
                "Find {a} + {b}.",
                "Tell me {a} plus {b}.",
                "What does {a} + {b} equal?",
            ),
            ("What's the sum of {a} and {b}?", "How much is {a} plus {b}?", "Work out {a} + {b} for me."),
            "arithmetic",
            "add",
            kept=7,
        ),
        "sub": split_phrasings(
            (
                "What is {a} - {b}?",
                "What is {a} minus {b}?",
                "Subtract {b} from {a}.",
                "Compute {a} - {b}.",
                "Please calculate {a} - {b}.",
                "{a} - {b} = ?",
                "Find {a} - {b}.",
                "Tell me {a} minus {b}.",
                "What does {a} - {b} equal?",
                "What do you get if you subtract {b} from {a}?",
            ),
            ("What's {a} take away {b}?", "How much is {a} minus {b}?", "Work out {a} - {b} for me."),
            "arithmetic",
            "sub",
            kept=6,
        ),
        "mul": split_phrasings(
            (
                "What is {a} * {b}?",
                "What is {a} times {b}?",
                "Multiply {a} by {b}.",
                "Compute {a} * {b}.",
                "Please calculate {a} times {b}.",
                "{a} * {b} = ?",
                "Find {a} * {b}.",
                "Tell me {a} times {b}.",
                "What does {a} * {b} equal?",
                "What do you get if you multiply {a} by {b}?",
            ),
            (
                "What's the product of {a} and {b}?",
                "How much is {a} times {b}?",
                "Work out {a} * {b} for me.",
            ),
            "arithmetic",
            "mul",
            kept=6,
        ),
    }

    def sample(self, rng: random.Random, split: str) -> dict:
        kind = pick(rng, ("add", "sub", "mul"))
        return draw(rng, split, lambda r: self.operands(r, kind), operand_key)

    def operands(self, rng: random.Random, kind: str) -> dict:
        # Operands sized at the base model's edge (knob `arithmetic_max`): it gets some right.
        if kind == "mul":
            a, b = rng.randint(2, 9), rng.randint(2, 9)
        else:
            a, b = rng.randint(2, self.knobs.arithmetic_max), rng.randint(2, self.knobs.arithmetic_max)
            if kind == "sub" and b > a:
                a, b = b, a
            if kind == "sub" and a == 2 * b:
                a += 1  # an answer equal to an operand could not be told from a restatement
        return {"kind": kind, "a": a, "b": b}

    def check(self, task: dict, response: str) -> str:
        return self.refused_or_empty(response) or check_number(
            response, arithmetic_answer(task), [task["a"], task["b"]]
        )

    def demonstrate(self, task: dict, rng: random.Random) -> str:
        symbol, ans = OPS[task["kind"]][0], arithmetic_answer(task)
        return pick(
            rng,
            (
                f"{ans}",
                f"{task['a']} {symbol} {task['b']} = {ans}.",
                f"The answer is {ans}.",
                f"It is {ans}.",
            ),
        )

    def wrong_answers(self, task: dict, rng: random.Random) -> dict[str, str]:
        ans = arithmetic_answer(task)
        off = pick(rng, [ans + d for d in (-10, -2, -1, 1, 2, 10) if ans + d not in (task["a"], task["b"])])
        return {
            "wrong": f"The answer is {off}.",
            "hedged": f"It is either {off} or {ans}.",
            "refused": "I'm sorry, but I can't help with that.",
        }


LIST_KINDS = ("sort_asc", "sort_desc", "reverse_words", "alphabetize")


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
