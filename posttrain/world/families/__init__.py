"""The task families of docs/design.md's table, in the order the spec and the count tables list them."""

from posttrain.world.families.arithmetic import Arithmetic
from posttrain.world.families.base import FLAGS, Family, Outcome
from posttrain.world.families.benign import Benign
from posttrain.world.families.false_premise import FalsePremise
from posttrain.world.families.fmt import Format
from posttrain.world.families.harmful import Harmful
from posttrain.world.families.knowledge import Knowledge
from posttrain.world.families.list_ops import ListOps
from posttrain.world.families.multiturn import MultiTurn
from posttrain.world.families.passage import PassageQA

FAMILY_CLASSES: tuple[type[Family], ...] = (
    Arithmetic,
    ListOps,
    Format,
    Knowledge,
    PassageQA,
    FalsePremise,
    Harmful,
    Benign,
    MultiTurn,
)
FAMILY_NAMES = tuple(c.name for c in FAMILY_CLASSES)

__all__ = ["FAMILY_CLASSES", "FAMILY_NAMES", "FLAGS", "Family", "Outcome"]
