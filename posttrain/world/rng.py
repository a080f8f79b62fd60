"""Seeded random streams, one per purpose, so adding draws in one place never shifts another."""

from __future__ import annotations

import hashlib
import random


def derive(seed: int, *names: object) -> random.Random:
    """An independent `random.Random` for (seed, names...): derive(7, "corpus", 3)."""
    key = f"{seed}/" + "/".join(str(n) for n in names)
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def unit(seed: int, *names: object) -> float:
    """A deterministic number in [0, 1) for (seed, names...), without building a generator."""
    key = f"{seed}/" + "/".join(str(n) for n in names)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
