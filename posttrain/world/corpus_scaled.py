"""The scaled corpus: tens of millions of tokens for a base that can do the world's tasks.

The small world's corpus (`corpus.py`, 357k tokens) taught a 4.5M-parameter base its facts by
heart and little else: it saw each worksheet a few times, so its SFT model answers most sums
with one number. This corpus is written for a compute-optimal budget (Hoffmann et al. 2022:
about 20 tokens per parameter, ~90M for the base) and differs in three ways:

- **Many phrasings per fact**, and entities drawn with Zipf-like frequency (`zipf.ZIPF`), so the
  head's facts come in many wordings and contexts rather than one page seen a hundred times.
- **A long tail** (Kandpal et al. 2023): each tail entity's facts are stated in exactly
  `mentions` documents (1, 2, 4, 8 or 16; `kb.add_tail`), so the base knows head facts and not
  tail facts, and `world probe` can say how knowledge grows with exposure.
- **Worked examples** of every computed skill the families ask for, in textbook and answer-key
  forms rather than chat: sums and differences over the ranges the families draw, times tables,
  sorting and reversing lists, answers in a required form, reading-comprehension exercises that
  say "the text does not say" when it does not, and chained operations ("Then double it").

Still no chat transcript: the base knows and computes without behaving like an assistant. No
test template of a family appears here (`tests/world/test_world_scaled.py`), so the novel-phrasing
test set stays novel to the base as well.

This module draws (`documents`, `Zipf`); corpus_scaled_writers.py writes each kind of document,
from the sentences of corpus_scaled_phrases.py.
"""

from __future__ import annotations

from posttrain.world import corpus, corpus_scaled_phrases
from posttrain.world.corpus_scaled_writers import WRITERS, tail_pages
from posttrain.world.rng import derive
from posttrain.world.zipf import Zipf

CHARS_PER_TOKEN = 3.9  # measured: the small world's corpus is 1.40M characters in 357,230 tokens

KINDS = {
    "encyclopedia": 0.11,
    "faq": 0.08,
    "quiz": 0.04,
    "forum": 0.07,
    "story": 0.04,
    "bio": 0.03,
    "howto": 0.05,
    "arithmetic": 0.18,
    "lists": 0.14,
    "form": 0.07,
    "reading": 0.11,
    "chain": 0.08,
}


def documents(world, stream: str, *, tokens: int | None = None, n: int | None = None) -> list[dict]:
    """Documents {"id", "text", "kind"} of the named stream ("train" or "heldout"): about `tokens`
    tokens (estimated as characters / CHARS_PER_TOKEN), or `n` documents. The train stream also
    holds every tail entity's `mentions` pages, shuffled in."""
    rng = derive(world.seed, "corpus-scaled", stream)
    kinds, weights = zip(*KINDS.items())
    pick_entity = Zipf(world, rng)
    out: list[dict] = []
    if stream == "train":
        out += tail_pages(world.kb, derive(world.seed, "corpus-scaled", "tail"))
    budget = (tokens or 0) * CHARS_PER_TOKEN
    chars = sum(len(d["text"]) for d in out)
    while (n is not None and len(out) < n) or (n is None and chars < budget):
        kind = rng.choices(kinds, weights)[0]
        text = WRITERS[kind](world.kb, rng, pick_entity)
        out.append({"text": text, "kind": kind})
        chars += len(text)
    rng.shuffle(out)
    return [{"id": f"{stream}-{i:07d}", "text": d["text"], "kind": d["kind"]} for i, d in enumerate(out)]


def phrases() -> list[str]:
    """Every fixed string the scaled corpus writes documents from (for the world's vocabulary): the values
    of corpus_scaled_phrases' tables (their keys look lines up; no document writes them)."""
    tables = [getattr(corpus_scaled_phrases, name) for name in dir(corpus_scaled_phrases) if name.isupper()]
    return corpus.strings([list(t.values()) if isinstance(t, dict) else t for t in tables])
