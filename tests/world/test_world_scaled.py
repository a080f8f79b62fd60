"""The second small world (`small2`): a long tail of knowledge and the scaled corpus."""

import re

import pytest

from posttrain.world import World, corpus_scaled
from posttrain.world.families.multiturn import FOLLOW_UPS
from posttrain.world.families.passage import ATTRIBUTES, FRAMES
from posttrain.world.kb import TAIL_MENTIONS


@pytest.fixture(scope="module")
def world():
    return World(seed=0, scale="small2")


@pytest.fixture(scope="module")
def docs(world):
    return corpus_scaled.documents(world, "train", tokens=300_000)


def test_the_small_world_has_no_tail_and_keeps_its_head(world):
    small = World(seed=0, scale="small")
    assert small.kb.tail_countries == [] and small.kb.tail_people == []
    assert "tail_countries" not in small.kb.to_json()
    assert "mentions" not in small.kb.to_json()["countries"][0]
    # small2 is the same world's head with a tail added from its own stream
    assert world.kb.countries == small.kb.countries and world.kb.people == small.kb.people
    assert len(world.kb.tail_countries) == 40 and len(world.kb.tail_people) == 40
    tail_names = {e.name for e in world.kb.tail_countries + world.kb.tail_people}
    assert not tail_names & small.kb.names()
    assert {e.mentions for e in world.kb.tail_countries} == set(TAIL_MENTIONS)
    assert world.kb.mentions(world.kb.tail_countries[0].name) == TAIL_MENTIONS[0]
    assert world.kb.mentions(world.kb.countries[0].name) is None


def test_each_tail_entity_is_named_in_exactly_its_mentions_documents(world, docs):
    for entity in world.kb.tail_countries + world.kb.tail_people:
        found = sum(1 for d in docs if re.search(rf"\b{re.escape(entity.name)}\b", d["text"]))
        assert found == entity.mentions, entity.name
    heldout = corpus_scaled.documents(world, "heldout", n=300)
    assert not any(e.name in d["text"] for d in heldout for e in world.kb.tail_countries)


def test_a_tail_page_states_every_fact_of_its_country(world, docs):
    c = world.kb.tail_countries[0]
    page = next(d["text"] for d in docs if c.name in d["text"])
    for value in (c.capital, c.language, c.currency, c.river, c.animal, c.founder):
        assert value in page


def test_the_corpus_meets_its_token_budget_and_holds_every_kind(docs):
    chars = sum(len(d["text"]) for d in docs)
    assert 300_000 * corpus_scaled.CHARS_PER_TOKEN <= chars < 300_000 * corpus_scaled.CHARS_PER_TOKEN + 5_000
    assert {d["kind"] for d in docs} == set(corpus_scaled.KINDS) | {"tail"}
    assert len({d["id"] for d in docs}) == len(docs)


def test_worked_examples_are_right(docs):
    sums = [
        m for d in docs if d["kind"] == "arithmetic" for m in re.findall(r"(\d+) \+ (\d+) = (\d+)", d["text"])
    ]
    assert len(sums) > 100
    assert all(int(a) + int(b) == int(c) for a, b, c in sums)
    sorted_rows = [
        m
        for d in docs
        if d["kind"] == "lists"
        for m in re.findall(r"Sort ascending: ([\d, ]+) -> ([\d, ]+)", d["text"])
    ]
    assert sorted_rows and all(
        sorted(map(int, x.split(", "))) == list(map(int, y.split(", "))) for x, y in sorted_rows
    )


def _templates(world, split: str) -> list[str]:
    out = []
    for name in ("arithmetic", "list_ops", "format", "knowledge", "false_premise"):
        for by_split in world.families[name].templates.values():
            out += by_split[split]
    out += FRAMES[split]
    out += [q for _, by_split in ATTRIBUTES.values() for q in by_split[split]]
    out += [t for ops in FOLLOW_UPS.values() for by_split in ops.values() for t in by_split[split]]
    return out


def _test_fragments(world) -> set[str]:
    """The fixed words of both test sets' prompt templates (test.jsonl's held-out phrasings of the training
    style, test_novel.jsonl's of another) of the families the worked examples teach, that no train
    template also has ("the capital of" is both's)."""
    train = " | ".join(_templates(world, "train"))
    pieces = {
        p.strip(' .?\n"')
        for split in ("test", "test_novel")
        for t in _templates(world, split)
        for p in re.split(r"\{\w+\}", t)
    }
    return {p for p in pieces if len(p) >= 12 and p not in train}


def test_no_test_template_is_in_the_corpus(world, docs):
    fragments = _test_fragments(world)
    assert len(fragments) > 20
    text = "\n".join(d["text"] for d in docs)
    assert [f for f in fragments if f in text] == []


def test_only_knowledge_prompts_ask_about_the_tail(world):
    tail = {e.name for e in world.kb.tail_countries + world.kb.tail_people}
    test = world.prompts("test", 450, "test")
    knowledge = [r for r in test if r["meta"]["family"] == "knowledge"]
    assert any(r["meta"]["task"]["e"] in tail for r in knowledge)
    others = [r for r in test if r["meta"]["family"] != "knowledge"]
    assert not any(name in m["content"] for r in others for m in r["messages"] for name in tail)
    # a tail question is judged like any other: the fact is right, "I don't know" abstains
    record = next(r for r in knowledge if r["meta"]["task"]["e"] in tail and not r["meta"]["task"]["ghost"])
    entity = world.kb.get(record["meta"]["task"]["e"])
    assert world.judge(record, str(getattr(entity, record["meta"]["task"]["kind"]))).outcome == "correct"
    assert world.judge(record, "I don't know.").outcome == "abstain"


def test_the_scaled_corpus_words_are_known_to_the_scorer(world):
    # the words of the scaled corpus's phrasings are the world's words: an answer using them is no typo
    for word in ("comprehension", "alphabetized", "taking", "emblem"):
        assert word in world.vocabulary.known and not world.vocabulary.is_typo(word), word
    assert (
        "emblem" not in World(seed=0, scale="small").vocabulary.known
    )  # the small world's words stay as they were


def test_the_probe_reports_knowledge_by_exposure(world, monkeypatch):
    from posttrain.evaluation import probes

    head = {prefix: answer for _, prefix, answer in probes.knowledge_prompts(world.kb)}
    # a fake model that knows the head's facts and, of the tail, only what 16 documents stated
    known16 = {
        prefix: answer
        for _, prefix, answer in probes.knowledge_prompts(
            world.kb, [c for c in world.kb.tail_countries if c.mentions == 16], []
        )
    }
    monkeypatch.setattr(
        probes,
        "complete",
        lambda model, tok, prefixes: [" " + (head.get(p) or known16.get(p) or "Nowhere") for p in prefixes],
    )
    result = probes.knowledge_completion(None, None, world.kb)
    assert result["accuracy"] == 1.0 and result["n"] == 24 * 6 + 24
    assert list(result["by_bucket"]) == ["head", "tail-1", "tail-2", "tail-4", "tail-8", "tail-16"]
    assert result["by_bucket"]["head"] == {"accuracy": 1.0, "n": 168}
    assert (
        result["by_bucket"]["tail-1"]["accuracy"] == 0.0 and result["by_bucket"]["tail-1"]["n"] == 8 * 6 + 8
    )
    assert result["by_bucket"]["tail-16"]["accuracy"] == pytest.approx(48 / 56)
