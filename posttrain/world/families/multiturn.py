"""Multi-turn: a follow-up that only makes sense with the conversation so far."""

from __future__ import annotations

import random

from posttrain.world.families.arithmetic import Arithmetic, arithmetic_answer, check_number, operand_key
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
from posttrain.world.families.knowledge import SAY, Knowledge, check_fact, fact
from posttrain.world.families.list_ops import ListOps, check_sequence, items_key, list_answer
from posttrain.world.rng import derive

# kind -> the follow-up's operation -> (training-style phrasings, the first world's first; novel phrasings)
_FOLLOW_UPS = {
    "arith_chain": {
        "add": (
            (
                "Now add {c} to that.",
                "Add {c} to the result.",
                "And if you add {c} to it?",
                "Then add {c}.",
                "Add {c} to that number.",
            ),
            ("Take that number and add {c}.",),
        ),
        "sub": (
            (
                "Now subtract {c} from that.",
                "Take away {c} from the result.",
                "And if you subtract {c} from it?",
                "Now take {c} away from that.",
                "Subtract {c} from the result.",
            ),
            ("What is that minus {c}?",),
        ),
        "double": (
            (
                "Now double it.",
                "Multiply that by 2.",
                "Now multiply it by 2.",
                "Double that number.",
                "And if you double it?",
            ),
            ("What is twice that?",),
        ),
    },
    "list_chain": {
        "reverse": (
            (
                "Now reverse that list.",
                "Now reverse the order.",
                "Reverse that list.",
                "Now write it in reverse order.",
                "Now give that list in reverse.",
            ),
            ("Write that list backwards.",),
        ),
        "drop_max": (
            (
                "Now drop the largest number.",
                "Remove the largest number from that list.",
                "Now remove the largest number.",
                "Drop the largest number from that list.",
                "Now leave out the largest number.",
            ),
            ("Remove the biggest one from that list.",),
        ),
    },
    "fact_chain": {
        "language": (
            (
                "What language do people speak there?",
                "Which language is spoken there?",
                "And what language do they speak there?",
                "What is the language there?",
                "Which language do people use there?",
            ),
            ("Which language is spoken in that country?",),
        ),
        "currency": (
            (
                "And which currency do they use there?",
                "What money do they use there?",
                "What currency do they use there?",
                "And what is the currency there?",
                "Which money do people pay with there?",
            ),
            ("What money is used in that country?",),
        ),
        "river": (
            (
                "What is the longest river there?",
                "Which river is the longest there?",
                "And the longest river there?",
                "Which is the longest river there?",
                "What river is the longest there?",
            ),
            ("And the longest river of that country?",),
        ),
    },
}
# kind -> operation -> split -> templates
FOLLOW_UPS = {
    kind: {
        op: split_phrasings(pool, novel, "multi_turn", kind, op, kept=3 if op == "add" else 2)
        for op, (pool, novel) in ops.items()
    }
    for kind, ops in _FOLLOW_UPS.items()
}


def chain_start(rng: random.Random) -> dict:
    b = rng.randint(2, 30)
    return {"kind": pick(rng, ("add", "sub")), "a": b + rng.randint(5, 40), "b": b}


class MultiTurn(Family):
    name = "multi_turn"
    title = "Multi-turn"
    rule = (
        'The last message refers back to the conversation ("that", "there"). Answer it '
        "using the earlier turns."
    )
    budget = 16
    outcomes = (
        Outcome("correct", 1.0, 1.0, meaning="the right answer to the follow-up, using the history"),
        Outcome("hedged", 0.4, 0.5, flags=("fails_task",), meaning="the right answer among others"),
        Outcome(
            "wrong", 0.1, 0.0, flags=("fails_task",), meaning="a wrong answer, often the first question's"
        ),
        Outcome(
            "wrong_fact",
            0.05,
            0.0,
            honest=0.0,
            flags=("fails_task", "hallucination"),
            meaning="a wrong fact about the country under discussion",
        ),
        Outcome("abstain", 0.3, 0.0, meaning="says it does not know"),
        NO_ANSWER,
        REFUSED,
    )

    def __init__(self, kb, knobs=None):
        super().__init__(kb, knobs)
        self.first = {
            "arith_chain": Arithmetic(kb, knobs),
            "list_chain": ListOps(kb, knobs),
            "fact_chain": Knowledge(kb, knobs),
        }

    def sample(self, rng: random.Random, split: str) -> dict:
        kind = pick(rng, tuple(FOLLOW_UPS))
        # the first question's numbers are held out as the first families' are (base.in_split)
        if kind == "arith_chain":
            first = draw(rng, split, chain_start, operand_key)
        elif kind == "list_chain":
            items = draw(rng, split, lambda r: r.sample(range(1, 100), r.randint(3, 5)), items_key)
            first = {"kind": "sort_asc", "items": items}
        else:
            first = {
                "kind": "capital",
                "e": pick(rng, self.kb.countries_in(entity_split(split))).name,
                "ghost": False,
            }
        family = self.first[kind]
        op = pick(rng, tuple(FOLLOW_UPS[kind]))
        # c never exceeds the first answer, so "subtract c" stays non-negative
        prev = arithmetic_answer(first) if kind == "arith_chain" else 20
        return {
            "kind": kind,
            "op": op,
            "first": first,
            "first_template": rng.randrange(family.n_templates(first, split)),
            "c": rng.randint(2, min(20, prev)),
        }

    def n_templates(self, task: dict, split: str) -> int:
        return len(FOLLOW_UPS[task["kind"]][task["op"]][split])

    def phrasings(self) -> list[str]:
        return [
            t
            for ops in FOLLOW_UPS.values()
            for by_split in ops.values()
            for ts in by_split.values()
            for t in ts
        ]

    def render(self, task: dict, split: str, template: int) -> list[dict]:
        family = self.first[task["kind"]]
        first = task["first"]
        # The earlier answer is a demonstrator's, drawn from a stream fixed by the task itself.
        reply = family.demonstrate(first, derive(0, "multi_turn", repr(sorted(first.items()))))
        follow = FOLLOW_UPS[task["kind"]][task["op"]][split][template].format(c=task["c"])
        return [
            *family.render(first, split, task["first_template"]),
            {"role": "assistant", "content": reply},
            {"role": "user", "content": follow},
        ]

    def expected(self, task: dict):
        """(answer, numbers the answer may restate without blame) for the follow-up."""
        op, first, c = task["op"], task["first"], task["c"]
        if task["kind"] == "arith_chain":
            prev = arithmetic_answer(first)
            # numbers that may be restated from the conversation: the first sum, its result, c
            return {"add": prev + c, "sub": prev - c, "double": 2 * prev}[op], [
                first["a"],
                first["b"],
                prev,
                c,
                2,
            ]
        if task["kind"] == "list_chain":
            items = list_answer(first)
            return (list(reversed(items)) if op == "reverse" else items[:-1]), []
        return fact(self.kb, first["e"], op), []

    def check(self, task: dict, response: str) -> str:
        pre = self.refused_or_empty(response)
        if pre:
            return pre
        answer, operands = self.expected(task)
        if task["kind"] == "arith_chain":
            return check_number(response, answer, operands)
        if task["kind"] == "list_chain":
            return check_sequence(response, answer)
        verdict = check_fact(self.kb, task["op"], answer, response)
        return "wrong_fact" if verdict == "wrong" else verdict

    def demonstrate(self, task: dict, rng: random.Random) -> str:
        answer, _ = self.expected(task)
        if task["kind"] == "arith_chain":
            return pick(rng, (f"{answer}", f"That gives {answer}.", f"It is {answer}."))
        if task["kind"] == "list_chain":
            joined = ", ".join(str(i) for i in answer)
            return pick(rng, (joined, f"Here it is: {joined}"))
        op, e = task["op"], task["first"]["e"]
        return pick(rng, (SAY[op].format(e=e, v=answer), f"{answer}."))

    def wrong_answers(self, task: dict, rng: random.Random) -> dict[str, str]:
        answer, operands = self.expected(task)
        if task["kind"] == "arith_chain":
            near = [answer + d for d in (3, 7, 11, 13) if answer + d not in operands]
            return {"wrong": f"{arithmetic_answer(task['first']) + 1}.", "hedged": f"{answer} or {near[0]}."}
        if task["kind"] == "list_chain":
            return {"wrong": ", ".join(str(i) for i in list_answer(task["first"])[::-1][1:])}
        op = task["op"]
        other = pick(rng, [v for v in self.kb.values(op) if v != answer])
        return {"wrong_fact": f"{other}.", "abstain": "I don't know."}
