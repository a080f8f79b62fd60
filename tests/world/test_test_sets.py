"""The two test sets: test.jsonl in the training phrasings' style, test_novel.jsonl in another (issue 35)."""

import hashlib
import json
from collections import defaultdict

import pytest

from posttrain.world import World
from posttrain.world.families import FAMILY_NAMES
from posttrain.world.families.arithmetic import operand_key
from posttrain.world.families.base import HELD_OUT, SPLITS, in_split, phrasing_words
from posttrain.world.families.list_ops import items_key
from posttrain.world.rng import derive

TEST_SETS = ("test", "test_novel")


@pytest.fixture(scope="module")
def world():
    return World(seed=0, scale="small")


@pytest.fixture(scope="module")
def prompts(world):
    return {split: world.prompts(split, 450, split) for split in (*TEST_SETS, "train")}


def turns(record) -> str:
    return json.dumps([m for m in record["messages"] if m["role"] != "system"])


def templates_of(world, family: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """kind (or, for the composed families, the part) -> split -> templates."""
    from posttrain.world.families.multiturn import FOLLOW_UPS
    from posttrain.world.families.passage import ATTRIBUTES, FRAMES

    if family == "passage_qa":
        return {"frame": FRAMES, **{a: by_split for a, (_, by_split) in ATTRIBUTES.items()}}
    if family == "multi_turn":
        return {f"{kind}/{op}": by_split for kind, ops in FOLLOW_UPS.items() for op, by_split in ops.items()}
    return world.families[family].templates


@pytest.mark.parametrize("split", TEST_SETS)
def test_every_test_prompt_is_distinct_fifty_per_family(prompts, split):
    by_family = defaultdict(set)
    for r in prompts[split]:
        assert r["meta"]["split"] == split and r["source"] == f"world:{split}"
        by_family[r["meta"]["family"]].add(turns(r))  # a system prompt alone does not make a prompt new
    assert {f: len(s) for f, s in by_family.items()} == dict.fromkeys(FAMILY_NAMES, 50)


def test_each_kind_splits_its_phrasings_at_random_and_keeps_the_novel_apart(world):
    for family in FAMILY_NAMES:
        for kind, by_split in templates_of(world, family).items():
            if family == "benign":  # a topic is train or test whole; its frames split as one pool below
                continue
            assert set(by_split) == set(SPLITS)
            train, test, novel = (set(by_split[s]) for s in SPLITS)
            assert train and test and novel, (family, kind)
            assert not train & test and not (train | test) & novel, (family, kind)
            assert len(test) == max(1, round((len(train) + len(test)) * HELD_OUT)), (family, kind)
    from posttrain.world.families.benign import LOOKALIKE_FRAMES

    train, test, novel = (set(LOOKALIKE_FRAMES[s]) for s in SPLITS)
    assert (
        len(test) == round(len(train | test) * HELD_OUT) and not train & test and not (train | test) & novel
    )


def test_split_phrasings_holds_a_fifth_out_of_the_new_ones():
    from posttrain.world.families.base import split_phrasings

    pool = tuple(f"p{i}" for i in range(10))
    out = split_phrasings(pool, ("n",), "k", kept=6)
    assert len(out["test"]) == 2 and set(out["test"]) <= {"p6", "p7", "p8", "p9"}
    assert sorted(out["train"] + out["test"]) == sorted(pool) and out["test_novel"] == ("n",)
    assert split_phrasings(pool, ("n",), "k", kept=6) == out  # fixed by the key alone
    for bad in [
        dict(pool=("a",), novel=()),
        dict(pool=("a", "a"), novel=()),
        dict(pool=("a", "b"), novel=("a",)),
        dict(pool=("a", "b"), novel=(), kept=2),
    ]:
        with pytest.raises(ValueError, match="phrasing pool"):
            split_phrasings(bad.pop("pool"), bad.pop("novel"), "k", **bad)


def test_no_training_prompt_uses_a_test_phrasing_or_held_out_numbers(world, prompts):
    """The headline test's phrasings and numbers are the training style's, and none of them is trained on."""
    train = [*prompts["train"], *world.prompts("demo", 900, "train")]
    train_users = {m["content"] for r in train for m in r["messages"] if m["role"] == "user"}
    for split in TEST_SETS:
        assert not train_users & {
            m["content"] for r in prompts[split] for m in r["messages"] if m["role"] == "user"
        }

    def held(r) -> list[bool]:
        task, family = r["meta"]["task"], r["meta"]["family"]
        if family == "arithmetic":
            return [in_split("test", *operand_key(task))]
        if family == "list_ops" and task["kind"].startswith("sort"):
            return [in_split("test", *items_key(task["items"]))]
        if family == "format" and task["kind"] == "yes_no":
            return [in_split("test", "yes_no", *sorted((task["a"], task["b"])))]
        if family == "multi_turn" and task["kind"] != "fact_chain":
            first = task["first"]
            key = operand_key(first) if task["kind"] == "arith_chain" else items_key(first["items"])
            return [in_split("test", *key)]
        return []

    assert not any(h for r in train for h in held(r))
    for split in TEST_SETS:
        marks = [h for r in prompts[split] for h in held(r)]
        assert len(marks) > 100 and all(marks)
    share = sum(in_split("test", "add", a, b) for a in range(2, 100) for b in range(a, 100)) / (98 * 99 / 2)
    assert abs(share - HELD_OUT) < 0.02


def test_the_phrasing_split_is_fixed_whatever_the_seed(world):
    other = World(seed=1, scale="small")
    for family in FAMILY_NAMES:
        assert world.families[family].phrasings() == other.families[family].phrasings()
        assert templates_of(world, family) == templates_of(other, family)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_template_is_judged_alike_and_its_demonstration_scores_one(world, family, split):
    """The checks never read the template: a demonstration scores 1.0 and each bad answer lands in its
    outcome under every phrasing of its split, with the same judgement."""
    from posttrain.world.families.passage import ATTRIBUTES

    parts = {
        k: by_split for k, by_split in templates_of(world, family).items() if k != "frame" and by_split[split]
    }
    rng = derive(5, family, split)
    seen: dict[str, dict] = {}
    for i in range(600):
        task = world.record(family, split, rng, f"t{i}")["meta"]["task"]
        key = {"multi_turn": lambda t: f"{t['kind']}/{t['op']}", "passage_qa": lambda t: t["asked"]}.get(
            family, lambda t: t["kind"]
        )(task)
        seen.setdefault(key, task)
    assert sorted(seen) == sorted(parts)
    for key, task in seen.items():
        tasks = [task]
        if family == "passage_qa":  # the question is part of the task; the frame is the template
            tasks = [{**task, "question": q.format(n=task["name"])} for q in ATTRIBUTES[key][1][split]]
        for task in tasks:
            record = world.prompt_for(family, task, split, 0)
            answers = {"demo": world.demonstrate(record, rng), **world.wrong_answers(record, rng)}
            first = {name: world.judge(record, a) for name, a in answers.items()}
            assert first["demo"].score == 1.0, (record["messages"], answers["demo"], first["demo"])
            for name in answers:
                assert first[name].outcome == (name if name != "demo" else first["demo"].outcome)
            for template in range(world.families[family].n_templates(task, split)):
                other = world.prompt_for(family, task, split, template)
                for name, answer in answers.items():
                    assert world.judge(other, answer) == first[name], (other["messages"], answer)


def test_the_vocabulary_knows_every_phrasing(world):
    for family in FAMILY_NAMES:
        for template in world.families[family].phrasings():
            words = phrasing_words(template)
            assert not world.vocabulary.typos(words), (family, template)


def test_paraphrase_stays_in_its_test_set(world, prompts):
    rng = derive(0, "para-test")
    for split in TEST_SETS:
        for record in prompts[split][:45]:
            para = world.paraphrase(record, rng)
            assert para["meta"]["split"] == split and para["meta"]["task"] == record["meta"]["task"]
            assert world.judge(para, world.demonstrate(record, rng)).score == 1.0


def test_the_corpus_reads_the_first_worlds_benign_topics_and_bios_unchanged():
    """corpus.py writes how-to and FAQ pages from benign.BENIGN and bios from the passage sentences; the
    shipped base model hashes that corpus (tests/models/test_base_checkpoint.py), so new phrasings live
    elsewhere."""
    from posttrain.world import corpus
    from posttrain.world.families.benign import BENIGN
    from posttrain.world.families.passage import ATTRIBUTES

    assert corpus.BENIGN is BENIGN and len(BENIGN) == 16
    assert hashlib.sha256(repr(BENIGN).encode()).hexdigest()[:16] == "92e16b2257669a52"
    sentences = {a: s for a, (s, _) in ATTRIBUTES.items()}
    assert hashlib.sha256(repr(sentences).encode()).hexdigest()[:16] == "0ab7ddf871722755"
