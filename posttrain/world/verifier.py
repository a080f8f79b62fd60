"""A program check of the answer, for the families whose answer a program can check: RL from verifiable
rewards.

    >>> from posttrain.world import World, verify
    >>> world = World(seed=0)
    >>> record = world.prompt_for("arithmetic", {"kind": "add", "a": 23, "b": 58})
    >>> [verify(world, record, answer) for answer in ("81", "It is 81. I hope this helps, my friend!", "80")]
    [1.0, 1.0, 0.0]

1.0 when the family's own check (`Family.check`) names the outcome `correct`, else 0.0: arithmetic
(the right number, and no other candidate), list_ops (the exact sequence) and format (the right
content in the asked form: one word, exactly N items, capitals, yes or no). None for every other
family, whose right answer needs judgement (knowledge, passage_qa, false_premise, harmful, benign,
multi_turn).

This is NOT the gold scorer's judgement. The gold score multiplies the outcome's score by style
factors (padding, typos, hedges, rudeness: posttrain/world/scorer.py) and grades partial outcomes;
the verifier sees none of that: a padded or rude right answer earns 1.0. It never calls the gold
scorer, so training on it keeps the honesty rule (tests/project/test_honesty.py): what trains is a binary
program check that a practitioner could write for these tasks, not the world's full judgement.
"""

from __future__ import annotations

CHECKABLE = ("arithmetic", "list_ops", "format")


def verifiable(record: dict) -> bool:
    """Whether `record` is a world prompt of a family with a program check."""
    meta = record.get("meta") or {}
    return meta.get("family") in CHECKABLE and isinstance(meta.get("task"), dict)


def verify(world, record: dict, response: str) -> float | None:
    """1.0 if `response` is the correct answer to the world prompt `record` by its family's check, 0.0 if not;
    None when the record is not of a checkable family. `world` is the posttrain.world.World the prompt is
    from."""
    if not verifiable(record):
        return None
    meta = record["meta"]
    return 1.0 if world.families[meta["family"]].check(meta["task"], response) == "correct" else 0.0
