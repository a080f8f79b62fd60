"""What `posttrain demo` runs on: the shipped base model and its world, the presets' sizes, and the two
test sets it evaluates (`posttrain/commands/demo.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.recipes import SMALL

BASE = Path(__file__).resolve().parent.parent.parent / "assets" / "base-small-seed0"
BASE_WORLD = 0  # the world whose corpus the shipped base model was pretrained on


@dataclass(frozen=True)
class Preset:
    """Sizes of one demo run; `small` is the measured one in the README (its settings: recipes.SMALL)."""

    sft_epochs: float
    sft_demos: int | None  # first N demonstrations (None: all)
    rm_prompts: int | None
    rm_epochs: float
    ppo_steps: int
    rollout_batch: int
    micro_batch: int
    test_prompts: int | None  # first N prompts of each test set


PRESETS = {
    "small": Preset(
        sft_epochs=SMALL.sft_epochs,
        sft_demos=None,
        rm_prompts=None,
        rm_epochs=SMALL.rm_epochs,
        ppo_steps=SMALL.ppo_steps,
        rollout_batch=SMALL.rollout_batch,
        micro_batch=SMALL.micro_batch,
        test_prompts=None,
    ),
    "tiny": Preset(
        sft_epochs=1,
        sft_demos=160,
        rm_prompts=48,
        rm_epochs=1,
        ppo_steps=2,
        rollout_batch=16,
        micro_batch=4,
        test_prompts=45,
    ),
}


@dataclass(frozen=True)
class TestSet:
    file: str  # in the world's export
    report: str  # in OUT
    temperatures: tuple[float, ...]  # 0 is greedy
    about: str


# test_novel is greedy only: its one more generation pass per system at T = 1 would double its time
TEST_SETS = (
    TestSet("test.jsonl", "report", (0.0, 1.0), "held-out entities and numbers, training-style phrasings"),
    TestSet(
        "test_novel.jsonl",
        "report-novel",
        (0.0,),
        "the same entities and numbers in phrasings no training file uses; greedy only",
    ),
)
