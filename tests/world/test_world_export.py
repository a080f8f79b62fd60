"""`posttrain world export`: deterministic, split cleanly, and an honest pretraining corpus."""

import hashlib
import json
import re
from collections import Counter

import pytest

from posttrain.data.records import read_conversations, read_jsonl
from posttrain.world import World
from posttrain.world.export import counts_table, export
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
    for name in ("prompts_rm.jsonl", "prompts_ppo.jsonl", "test.jsonl", "test_novel.jsonl"):
        prompts = read_conversations(exported / name, ends_with="user")
        assert sum(manifest["counts"][name].values()) == len(prompts)
        assert set(manifest["counts"][name]) == set(FAMILY_NAMES)
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == digest
    header, _, *rows = counts_table(manifest).splitlines()
    assert header.split() == ["family", "demos", "rm", "ppo", "dev", "test", "test_novel"]
    assert rows[len(FAMILY_NAMES)].split() == ["total", "1800", "900", "900", "225", "450", "450"]


def test_demonstrators_write_in_their_styles_with_provenance(exported):
    from posttrain.world.knobs import DEFAULT_STYLE_SHARES

    demos = read_conversations(exported / "demos.jsonl")
    styles = Counter(d["meta"]["demonstrator"] for d in demos)
    for style, share in DEFAULT_STYLE_SHARES.items():  # the documented proportions
        assert abs(styles[style] / len(demos) - share) < 0.04, (style, styles)
    assert all(d["source"] == f"demonstrator:{d['meta']['demonstrator']}" for d in demos)
    world = World(seed=0, scale="small")
    by_style = {s: [] for s in DEFAULT_STYLE_SHARES}
    for d in demos:
        if not {"mistake", "over_refusal"} & set(d["meta"]["flaws"]):
            by_style[d["meta"]["demonstrator"]].append(world.judge(d, d["messages"][-1]["content"]))
    assert min(j.score for j in by_style["careful"]) == 1.0  # the careful demonstrator is the spec
    assert all(j.verbosity < 1 for j in by_style["verbose"])
    assert all(j.hedging < 1 for j in by_style["hedging"])
    sloppy = [j.typos < 1 for j in by_style["sloppy"]]
    assert sum(sloppy) / len(sloppy) > 0.6  # answers like "81" have no word to misspell
    # the refusal boundary: a quarter of benign look-alike demonstrations refuse
    benign = [d for d in demos if d["meta"]["family"] == "benign"]
    refused = [d for d in benign if "over_refusal" in d["meta"]["flaws"]]
    assert 0.15 < len(refused) / len(benign) < 0.35
    assert all(world.judge(d, d["messages"][-1]["content"]).outcome == "over_refused" for d in refused)


def test_knobs_change_the_demonstrations_not_the_corpus_or_the_judge(exported, tmp_path):
    from posttrain.world.knobs import Knobs, parse_knob

    knobs = parse_knob("styles=careful:1", Knobs())
    knobs = parse_knob("benign_refusals=0", knobs)
    export(World(seed=0, scale="small", knobs=knobs), tmp_path / "careful")
    first, careful = digests(exported), digests(tmp_path / "careful")
    assert first["corpus.jsonl"] == careful["corpus.jsonl"]  # the shipped base model stays valid
    assert first["demos.jsonl"] != careful["demos.jsonl"]
    demos = read_conversations(tmp_path / "careful" / "demos.jsonl")
    world = World(seed=0, scale="small")
    scores = [world.judge(d, d["messages"][-1]["content"]).score for d in demos if not d["meta"]["flaws"]]
    assert min(scores) == 1.0 and len(scores) > 0.95 * len(demos)
    with pytest.raises(ValueError, match="sum to 1"):
        parse_knob("styles=careful:0.5", Knobs())
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_knob("bogus=1", Knobs())


@pytest.mark.parametrize("split", ["test", "test_novel"])
def test_test_split_uses_held_out_entities_and_templates(exported, split):
    world = World(seed=0, scale="small")
    test = read_conversations(exported / f"{split}.jsonl")
    train = [
        r
        for name in ("demos.jsonl", "prompts_rm.jsonl", "prompts_ppo.jsonl")
        for r in read_conversations(exported / name)
    ]
    test_entities = {c.name for c in world.kb.countries_in("test")} | {
        p.name for p in world.kb.people_in("test")
    }
    test_entities |= set(world.kb.ghosts("country", "test")) | set(world.kb.ghosts("person", "test"))
    test_entities |= {r.thing for r in world.kb.recipes if r.split == "test"}
    train_text = "\n".join(m["content"] for r in train for m in r["messages"])
    for name in test_entities:  # as a whole name: the test entity "Stouara" is not in "Stouarav"
        assert not re.search(rf"(?<!\w){re.escape(name)}(?!\w)", train_text), (
            f"test entity {name} in training data"
        )
    train_users = {m["content"] for r in train for m in r["messages"] if m["role"] == "user"}
    assert not train_users & {m["content"] for r in test for m in r["messages"] if m["role"] == "user"}
    assert all(r["meta"]["split"] == split and r["source"] == f"world:{split}" for r in test)
    assert (
        len({json.dumps(r["messages"]) for r in test}) == len(test) == 450
    )  # distinct (tests/world/test_test_sets.py)


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
    assert {d["kind"] for d in docs} == {
        "encyclopedia",
        "faq",
        "quiz",
        "worksheet",
        "forum",
        "story",
        "howto",
        "bio",
    }
    forum = "\n".join(d["text"] for d in docs if d["kind"] == "forum")
    assert "Google it" in forum and "I think it's" in forum  # rude and wrong answers


def test_export_refuses_to_overwrite_and_force_replaces(exported, tmp_path):
    from posttrain.errors import UserError

    out = tmp_path / "w"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="--force"):
        export(World(seed=0, scale="small"), out)
    with pytest.raises(UserError, match="not a world export"):  # --force replaces only a world export
        export(World(seed=0, scale="small"), out, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    export(World(seed=1, scale="small"), out)
    export(World(seed=0, scale="small"), out, force=True)
    assert digests(out) == digests(exported)
    assert [p.name for p in tmp_path.iterdir()] == ["w"]  # no temp dirs left behind
