"""The arithmetic family: sums, differences and products with one right number."""

from __future__ import annotations

import random
from collections import Counter

from posttrain.world import text
from posttrain.world.families.base import NO_ANSWER, REFUSED, Family, Outcome, draw, pick, split_phrasings

OPS = {"add": ("+", lambda a, b: a + b), "sub": ("-", lambda a, b: a - b), "mul": ("*", lambda a, b: a * b)}


def arithmetic_answer(task: dict) -> int:
    return OPS[task["kind"]][1](task["a"], task["b"])


def operand_key(task: dict) -> tuple:
    """What holds a sum out of training (base.in_split): 3 + 5 and 5 + 3 together, 9 - 4 alone."""
    a, b = (task["a"], task["b"]) if task["kind"] == "sub" else sorted((task["a"], task["b"]))
    return task["kind"], a, b


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
