"""The built-in world: a seeded, offline universe whose rules are written down.

>>> from posttrain.world import World
>>> world = World(seed=0, scale="small")
>>> record = world.prompts("example", 1, "train")[0]
>>> 0.0 <= world.judge(record, "I don't know.").score <= 1.0
True
"""

from posttrain.world.core import SCALES, Scale, World
from posttrain.world.verifier import CHECKABLE, verifiable, verify

__all__ = ["CHECKABLE", "SCALES", "Scale", "World", "verifiable", "verify"]
