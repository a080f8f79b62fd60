"""`posttrain world export`: deterministic, split cleanly, and an honest pretraining corpus."""

import hashlib
import json

import pytest

from posttrain.data.records import read_conversations, read_jsonl
from posttrain.world import World
from posttrain.world.export import export
from posttrain.world.families import FAMILY_NAMES


def digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "w"
    export(World(seed=0, scale="small"), out)
    return out


def test_same_seed_gives_identical_files_and_another_seed_differs(exported, tmp_path):
    export(World(seed=0, scale="small"), tmp_path / "again")
    export(World(seed=1, scale="small"), tmp_path / "other")
    first, again, other = digests(exported), digests(tmp_path / "again"), digests(tmp_path / "other")
    assert first == again
    assert set(first) == set(other)
    assert all(first[name] != other[name] for name in first)


def test_every_file_validates_and_counts_match_the_manifest(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    demos = read_conversations(exported / "demos.jsonl", ends_with="assistant")
    assert len(demos) == manifest["scale"]["demos"]
    for name in ("prompts_rm.jsonl", "prompts_ppo.jsonl", "test.jsonl"):
        prompts = read_conversations(exported / name, ends_with="user")
        assert sum(manifest["counts"][name].values()) == len(prompts)
        assert set(manifest["counts"][name]) == set(FAMILY_NAMES)
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == digest


def test_a_share_of_demonstrations_is_flawed_with_provenance(exported):
    demos = read_conversations(exported / "demos.jsonl")
    flawed = [d for d in demos if d["meta"]["flaws"]]
    assert 0.1 < len(flawed) / len(demos) < 0.35
    assert {f for d in flawed for f in d["meta"]["flaws"]} == {"typo", "verbose", "mistake"}
    assert all(d["source"].startswith("demonstrator:") for d in demos)
    world = World(seed=0, scale="small")
    clean = [world.judge(d, d["messages"][-1]["content"]).score for d in demos if not d["meta"]["flaws"]]
    dirty = [world.judge(d, d["messages"][-1]["content"]).score for d in flawed]
    assert min(clean) == 1.0 and sum(dirty) / len(dirty) < 0.9


def test_test_split_uses_held_out_entities_and_templates(exported):
    world = World(seed=0, scale="small")
    test = read_conversations(exported / "test.jsonl")
    train = [r for name in ("demos.jsonl", "prompts_rm.jsonl", "prompts_ppo.jsonl")
             for r in read_conversations(exported / name)]
    test_entities = {c.name for c in world.kb.countries_in("test")} | {p.name for p in world.kb.people_in("test")}
    test_entities |= set(world.kb.ghosts("country", "test")) | set(world.kb.ghosts("person", "test"))
    test_entities |= {r.thing for r in world.kb.recipes if r.split == "test"}
    train_text = "\n".join(m["content"] for r in train for m in r["messages"])
    for name in test_entities:
        assert name not in train_text, f"test entity {name} appears in training data"
    train_users = {m["content"] for r in train for m in r["messages"] if m["role"] == "user"}
    assert not train_users & {m["content"] for r in test for m in r["messages"] if m["role"] == "user"}
    assert all(r["meta"]["split"] == "test" for r in test)


def test_corpus_states_every_fact_and_holds_no_chat(exported):
    world = World(seed=0, scale="small")
    docs = [r for _, r in read_jsonl(exported / "corpus.jsonl")]
    text = "\n".join(d["text"] for d in docs)
    for c in world.kb.countries:  # test entities too: the base model must have seen them
        assert f"The capital of {c.name} is {c.capital}." in text or f"{c.capital} is the capital" in text
        assert c.language in text and c.founder in text
    for r in world.kb.recipes:
        assert r.steps[0] in text  # the internet has the harmful recipes too
    assert not any(marker in text for marker in ("assistant:", "Assistant:", "<|", "User:"))
    assert {d["kind"] for d in docs} == {"encyclopedia", "faq", "quiz", "worksheet", "forum", "story", "howto", "bio"}
    forum = "\n".join(d["text"] for d in docs if d["kind"] == "forum")
    assert "Google it" in forum and "I think it's" in forum  # rude and wrong answers


def test_export_refuses_to_overwrite_and_force_replaces(exported, tmp_path):
    from posttrain.errors import UserError

    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--force"):
        export(World(seed=0, scale="small"), out)
    assert (out / "keep.txt").read_text() == "mine"
    export(World(seed=0, scale="small"), out, force=True)
    assert not (out / "keep.txt").exists() and digests(out) == digests(exported)
    assert [p.name for p in tmp_path.iterdir()] == ["w"]  # no temp dirs left behind
