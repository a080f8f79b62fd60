"""Multi-turn: a follow-up that only makes sense with the conversation so far."""

from __future__ import annotations

import random

from posttrain.world.families.base import NO_ANSWER, REFUSED, Family, Outcome, pick
from posttrain.world.families.compute import Arithmetic, ListOps, arithmetic_answer, check_number, check_sequence, list_answer
from posttrain.world.families.knowledge import SAY, Knowledge, check_fact, fact
from posttrain.world.rng import derive

# kind -> the follow-up's operation -> split -> templates
FOLLOW_UPS = {
    "arith_chain": {
        "add": {"train": ("Now add {c} to that.", "Add {c} to the result.", "And if you add {c} to it?"),
                "test": ("Take that number and add {c}.",)},
        "sub": {"train": ("Now subtract {c} from that.", "Take away {c} from the result."),
                "test": ("What is that minus {c}?",)},
        "double": {"train": ("Now double it.", "Multiply that by 2."), "test": ("What is twice that?",)},
    },
    "list_chain": {
        "reverse": {"train": ("Now reverse that list.", "Now reverse the order."),
                    "test": ("Write that list backwards.",)},
        "drop_max": {"train": ("Now drop the largest number.", "Remove the largest number from that list."),
                     "test": ("Remove the biggest one from that list.",)},
    },
    "fact_chain": {
        "language": {"train": ("What language do people speak there?", "Which language is spoken there?"),
                     "test": ("Which language is spoken in that country?",)},
        "currency": {"train": ("And which currency do they use there?", "What money do they use there?"),
                     "test": ("What money is used in that country?",)},
        "river": {"train": ("What is the longest river there?", "Which river is the longest there?"),
                  "test": ("And the longest river of that country?",)},
    },
}


class MultiTurn(Family):
    name = "multi_turn"
    title = "Multi-turn"
    rule = ("The last message refers back to the conversation (\"that\", \"there\"). Answer it "
            "using the earlier turns.")
    budget = 16
    outcomes = (
        Outcome("correct", 1.0, 1.0, meaning="the right answer to the follow-up, using the history"),
        Outcome("hedged", 0.4, 0.5, flags=("fails_task",), meaning="the right answer among others"),
        Outcome("wrong", 0.1, 0.0, flags=("fails_task",), meaning="a wrong answer, often the first question's"),
        Outcome("wrong_fact", 0.05, 0.0, honest=0.0, flags=("fails_task", "hallucination"),
                meaning="a wrong fact about the country under discussion"),
        Outcome("abstain", 0.3, 0.0, meaning="says it does not know"),
        NO_ANSWER,
        REFUSED,
    )

    def __init__(self, kb, knobs=None):
        super().__init__(kb, knobs)
        self.first = {"arith_chain": Arithmetic(kb, knobs), "list_chain": ListOps(kb, knobs),
                      "fact_chain": Knowledge(kb, knobs)}

    def sample(self, rng: random.Random, split: str) -> dict:
        kind = pick(rng, tuple(FOLLOW_UPS))
        if kind == "arith_chain":
            b = rng.randint(2, 30)
            first = {"kind": pick(rng, ("add", "sub")), "a": b + rng.randint(5, 40), "b": b}
        elif kind == "list_chain":
            first = {"kind": "sort_asc", "items": rng.sample(range(1, 100), rng.randint(3, 5))}
        else:
            first = {"kind": "capital", "e": pick(rng, self.kb.countries_in(split)).name, "ghost": False}
        family = self.first[kind]
        op = pick(rng, tuple(FOLLOW_UPS[kind]))
        # c never exceeds the first answer, so "subtract c" stays non-negative
        prev = arithmetic_answer(first) if kind == "arith_chain" else 20
        return {"kind": kind, "op": op, "first": first,
                "first_template": rng.randrange(family.n_templates(first, split)), "c": rng.randint(2, min(20, prev))}

    def n_templates(self, task: dict, split: str) -> int:
        return len(FOLLOW_UPS[task["kind"]][task["op"]][split])

    def render(self, task: dict, split: str, template: int) -> list[dict]:
        family = self.first[task["kind"]]
        first = task["first"]
        # The earlier answer is a demonstrator's, drawn from a stream fixed by the task itself.
        reply = family.demonstrate(first, derive(0, "multi_turn", repr(sorted(first.items()))))
        follow = FOLLOW_UPS[task["kind"]][task["op"]][split][template].format(c=task["c"])
        return [*family.render(first, split, task["first_template"]),
                {"role": "assistant", "content": reply}, {"role": "user", "content": follow}]

    def expected(self, task: dict):
        """(answer, numbers the answer may restate without blame) for the follow-up."""
        op, first, c = task["op"], task["first"], task["c"]
        if task["kind"] == "arith_chain":
            prev = arithmetic_answer(first)
            # numbers that may be restated from the conversation: the first sum, its result, c
            return {"add": prev + c, "sub": prev - c, "double": 2 * prev}[op], [first["a"], first["b"], prev, c, 2]
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
