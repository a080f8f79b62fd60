"""What `posttrain demo` runs on: the world scale and its shipped base model, the presets' sizes, and the
two test sets it evaluates (`posttrain/commands/demo.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.recipes import SMALL

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
BASE_WORLD = 0  # the world seed whose corpus each shipped base model was pretrained on

# small2's corpus is 1.28M documents (373 MB), and the demo reads it only as PPO-ptx's pretraining mix: each
# PPO step draws --ptx-batch 8 rows of 128 tokens for each of its 4 epochs x 4 minibatches (recipes.SMALL),
# 2,048 rows over the small preset's 16 steps. 40,000 documents are about 2.8M tokens (small2's average
# is 71 tokens a document), about 22,000 rows: ten times the rows drawn, so that few are drawn twice
# (the small world's whole corpus is 2,770 rows). The prefix of a shuffled corpus is a fair sample of it.
PTX_DOCUMENTS = 40_000


@dataclass(frozen=True)
class DemoWorld:
    """A world scale the demo can run on: its base model as posttrain ships it (pretrained on that scale's
    world BASE_WORLD) and how much of the world's corpus the demo exports."""

    scale: str
    base: Path
    made: str  # where the commands that make the base are written
    corpus_documents: int | None  # the first N documents of corpus.jsonl (world export --corpus-documents)


WORLDS = {
    w.scale: w
    for w in (
        DemoWorld(
            "small", ASSETS / "base-small-seed0", "assets/base-small-seed0/README.md", corpus_documents=None
        ),
        DemoWorld(
            "small2",
            ASSETS / "base-small2-seed0",
            'docs/world.md, "The second small world"',
            corpus_documents=PTX_DOCUMENTS,
        ),
    )
}
SCALE = "small2"  # the world scale the demo runs on (its base: assets/base-small2-seed0, docs/world.md)


def demo_world() -> DemoWorld:
    """The world the demo runs on (WORLDS[SCALE]): its scale, shipped base and corpus cut."""
    return WORLDS[SCALE]


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
