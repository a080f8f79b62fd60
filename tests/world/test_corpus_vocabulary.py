"""Every word the pretraining corpus writes is a word of the world (World.vocabulary): a model that repeats
its corpus's English is never marked down for a garbled word or a typo (the gold scorer counts both).

The corpus writers' English lives in the phrase tables the vocabulary walks (corpus_phrases.py,
corpus_scaled_phrases.py); a sentence written inline in a writer fails here."""

import random

import pytest

from posttrain.world import World, corpus, corpus_scaled, corpus_scaled_writers, names
from posttrain.world.export import first_documents
from posttrain.world.zipf import Zipf

PER_WRITER = 2000  # small2 documents drawn by each of its writers (its whole corpus is 1.28M documents)


@pytest.fixture
def invented(monkeypatch) -> dict[str, str]:
    """{document: the names its writer made up for it}, filled as documents are written.

    Bios and reading exercises make up people and towns (names.NameMaker). A made-up name is a word of
    its document only, as a passage's names are words of its prompt, which the scorer reads as context:
    no vocabulary holds names not yet drawn. They are passed as the document's context, and nothing else is.
    """
    made: list[str] = []
    by_doc: dict[str, str] = {}

    class Recording(names.NameMaker):  # the same draws, recorded
        def make(self, *args, **kwargs) -> str:
            made.append(super().make(*args, **kwargs))
            return made[-1]

    def recorded(write):
        def call(*args):
            made.clear()
            doc = write(*args)
            by_doc[doc] = " ".join(made)
            return doc

        return call

    monkeypatch.setattr(corpus, "NameMaker", Recording)
    monkeypatch.setattr(corpus_scaled_writers, "NameMaker", Recording)
    for writers in (corpus.WRITERS, corpus_scaled_writers.WRITERS):
        for kind, write in writers.items():
            monkeypatch.setitem(writers, kind, recorded(write))
    return by_doc


def unknown_words(world, docs: list[str], invented: dict[str, str]) -> dict[str, str]:
    """{word: the first document holding it} for every garbled or misspelt word of `docs`."""
    found = {}
    for doc in docs:
        context = invented.get(doc, "")
        for word in world.vocabulary.garbled(doc, context) + world.vocabulary.typos(doc, context):
            found.setdefault(word, doc[:300])
    return found


def test_every_word_of_the_small_corpus_is_known(invented):
    world = World(seed=0, scale="small")
    train, whole = first_documents(world, None)  # corpus.jsonl, as `posttrain world export` writes it
    heldout = corpus.documents(world, world.scale.heldout_docs, "heldout")
    assert len(train) == whole == world.scale.corpus_docs
    docs = [d["text"] for d in train + heldout]
    assert unknown_words(world, docs, invented) == {}
    # the made-up names are the only words let off, and there are some to let off
    bios = [d["text"] for d in train if d["kind"] == "bio"][:20]
    assert all(world.vocabulary.garbled(doc) for doc in bios)


def test_every_word_of_the_small2_corpus_is_known(invented):
    """A sample of small2's scaled corpus: PER_WRITER documents of each kind, drawn as corpus_scaled.documents
    draws them (Zipf-drawn head entities), every tail page and the held-out documents."""
    world = World(seed=0, scale="small2")
    rng = random.Random(0)
    entity = Zipf(world, rng)
    docs = [
        write(world.kb, rng, entity)
        for write in corpus_scaled_writers.WRITERS.values()
        for _ in range(PER_WRITER)
    ]
    docs += [d["text"] for d in corpus_scaled_writers.tail_pages(world.kb, rng)]
    docs += [d["text"] for d in corpus_scaled.documents(world, "heldout", n=world.scale.heldout_docs)]
    assert unknown_words(world, docs, invented) == {}
