"""The task families of docs/design.md's table, in the order the spec and the count tables list them."""

from posttrain.world.families.base import FLAGS, Family, Outcome
from posttrain.world.families.compute import Arithmetic, ListOps
from posttrain.world.families.fmt import Format
from posttrain.world.families.knowledge import FalsePremise, Knowledge
from posttrain.world.families.multiturn import MultiTurn
from posttrain.world.families.passage import PassageQA
from posttrain.world.families.safety import Benign, Harmful

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
