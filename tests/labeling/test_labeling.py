"""The labeling app's data layer: items from samples and chat feedback, gold items, the store,
the queue, the admin's quality numbers, the export `posttrain rm` reads, and the CLI commands.
(Real HTTP in test_labeling_server.py, the page in a real browser in test_labeling_browser.py.)"""

import random
import sqlite3

import pytest

from posttrain.cli import main
from posttrain.data.rankings import read_rankings
from posttrain.data.records import write_jsonl
from posttrain.errors import UserError
from posttrain.labeling import queue
from posttrain.labeling.export import ranking_records
from posttrain.labeling.intake import gold_items, items_from_feedback
from posttrain.labeling.quality import admin_stats, kendall_tau_b
from posttrain.labeling.store import Conflict, Store
from posttrain.labeling.submission import BadSubmission, check_label
from posttrain.world import World

USER = [{"role": "user", "content": "Name a colour."}]


def samples(n: int, k: int = 3, prefix: str = "s") -> list[dict]:
    return [
        {
            "id": f"{prefix}{i}",
            "prompt": [{"role": "user", "content": f"Question {i}?"}],
            "completions": [{"text": f"answer {i}.{j}", "source": "model:m"} for j in range(k)],
            "meta": {},
        }
        for i in range(n)
    ]


def feedback(id_, completion, model="m1", messages=USER, preferred=None, rating=None):
    return {
        "id": id_,
        "created": "2026-05-01T12:00:00Z",
        "model": model,
        "messages": messages,
        "completion": completion,
        "rating": rating,
        "flags": [],
        "preferred": preferred,
        "notes": None,
    }


def label(k: int, ranking, **extra) -> dict:
    return check_label(
        {"ranking": ranking, "likert": [4] * k, "flags": [[]] * k, "order_touched": True, **extra}, k
    )


def test_feedback_on_one_prompt_becomes_one_comparison_and_a_lone_preferred_answer_a_pair(tmp_path):
    other = [{"role": "user", "content": "Say hi."}]
    write_jsonl(
        tmp_path / "fb.jsonl",
        [
            feedback("f1", "Blue.", rating="up"),
            feedback("f2", "Colour is a word.", model="m2", rating="down", preferred="Red."),
            feedback("f3", "Blue."),  # the same answer again: one completion
            feedback("f4", "hi", messages=other, preferred="Hello! How can I help?"),
            feedback("f5", "lonely", messages=[{"role": "user", "content": "Nothing to compare"}]),
        ],
    )
    intake = items_from_feedback(tmp_path / "fb.jsonl")
    first, pair = intake.items
    assert [(c["text"], c["source"]) for c in first["completions"]] == [
        ("Blue.", "model:m1"),
        ("Colour is a word.", "model:m2"),
        ("Red.", "human:feedback"),
    ]
    assert first["prompt"] == USER and [f["rating"] for f in first["meta"]["feedback"]] == [
        "up",
        "down",
        None,
    ]
    assert first["meta"]["feedback"][1]["preferred"] == 2
    assert [c["source"] for c in pair["completions"]] == ["model:m1", "human:feedback"]
    assert intake.notes == {"lone answers without a preferred one": 1}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"rating": "meh"}, "fb.jsonl:2: field 'rating' is 'meh'"),
        ({"created": "yesterday"}, "fb.jsonl:2: field 'created' is 'yesterday', not an ISO-8601 time"),
        (
            {"messages": [{"role": "assistant", "content": "x"}]},
            "fb.jsonl:2: field 'messages' ends with a assistant turn",
        ),
        ({"completion": ""}, "fb.jsonl:2: field 'completion' must be a non-empty string"),
    ],
)
def test_bad_feedback_names_file_line_and_field(tmp_path, change, message):
    write_jsonl(tmp_path / "fb.jsonl", [feedback("f1", "a"), {**feedback("f2", "b"), **change}])
    with pytest.raises(UserError, match=message):
        items_from_feedback(tmp_path / "fb.jsonl")


def test_gold_order_comes_from_the_world_scorer_or_a_supplied_ranking(tmp_path):
    world = World(seed=0)
    record = world.prompts("gold", 1, "train")[0]
    good = world.demonstrate(record, random.Random(0))
    wrong = next(iter(world.wrong_answers(record, random.Random(0)).values()))
    write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {
                "id": "g1",
                "prompt": record["messages"],
                "meta": record["meta"],
                "completions": [{"text": wrong, "source": "model:m"}, {"text": good, "source": "model:m"}],
            },
            {**samples(1)[0], "id": "g2", "ranking": [[2], [0, 1]]},
        ],
    )
    first, second = gold_items(tmp_path / "gold.jsonl").items
    assert first["gold"] == [[1], [0]] and second["gold"] == [[2], [0, 1]]
    write_jsonl(tmp_path / "bad.jsonl", [samples(1)[0]])
    with pytest.raises(UserError, match="bad.jsonl:1: a gold item needs its correct order"):
        gold_items(tmp_path / "bad.jsonl")
    write_jsonl(tmp_path / "bad.jsonl", [{**samples(1)[0], "ranking": [[0], [5]]}])
    with pytest.raises(UserError, match="bad.jsonl:1: field 'ranking' holds 5"):
        gold_items(tmp_path / "bad.jsonl")


def test_store_is_wal_and_a_repeated_submission_is_stored_once(tmp_path):
    store = Store(tmp_path / "l.sqlite")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.add_items(samples(2), "s.jsonl") == {"added": 2, "already_there": 0}
    assert store.add_items(samples(2), "s.jsonl") == {"added": 0, "already_there": 2}
    changed = samples(1)
    changed[0]["completions"][0]["text"] = "a later round's answer"  # same prompt id, new samples
    assert store.add_items(changed, "round2.jsonl")["added"] == 1
    assert [x["id"][:3] for x in store.items()] == ["s0", "s1", "s0#"]
    store.add_labeler("ana")
    ana = store.labelers()[0]
    first = store.save_label(ana, "s0", "sub-1", "ranked", label(3, [[0], [1, 2]]))
    again = store.save_label(ana, "s0", "sub-1", "ranked", label(3, [[2], [1], [0]]))
    assert again == first and len(store.labels(ana)) == 1
    with pytest.raises(Conflict, match="already labeled item 's0'"):
        store.save_label(ana, "s0", "sub-2", "ranked", label(3, [[0], [1], [2]]))
    with pytest.raises(Conflict, match="already used for another label"):
        store.save_label(ana, "s1", "sub-1", "ranked", label(3, [[0], [1], [2]]))
    reopened = Store(tmp_path / "l.sqlite")
    assert [x["ranking"] for x in reopened.labels()] == [[[0], [1, 2]]]
    with pytest.raises(UserError, match="a labeler named 'ana' already exists"):
        reopened.add_labeler("ana")


@pytest.mark.parametrize(
    "body, message",
    [
        ({"ranking": [[0], [1]]}, "field 'ranking' leaves out completion 2"),
        ({"ranking": [[0, 0], [1, 2]]}, "ranks completion 0 twice"),
        ({"likert": [4, 8, 4]}, r"field 'likert\[1\]' is 8"),
        ({"likert": [4, 4]}, "one rating \\(1-7\\) per completion, 3 in all"),
        ({"flags": [[], ["rude"], []]}, r"field 'flags\[1\]' holds 'rude'"),
    ],
)
def test_a_bad_submission_names_its_field(body, message):
    with pytest.raises(BadSubmission, match=message):
        check_label({"ranking": [[0], [1], [2]], "likert": [4, 4, 4], **body}, 3)


def test_queue_overlaps_items_and_mixes_in_gold_at_the_rate(tmp_path):
    store = Store(tmp_path / "l.sqlite")
    store.add_items(samples(3), "s.jsonl")
    store.add_items([{**samples(1, prefix="g")[0], "gold": [[0], [1], [2]]}], "gold.jsonl")
    for name in ("ana", "bo", "cy"):
        store.add_labeler(name)
    ana, bo, cy = store.labelers()

    def rank_next(who):
        item = queue.next_item(store, who, labelers_per_item=2, gold_rate=0.5)
        assert queue.next_item(store, who, 2, 0.5)["id"] == item["id"]  # a reload shows the same item
        store.save_label(who, item["id"], f"{who.name}-{item['id']}", "ranked", label(3, [[0], [1], [2]]))
        return item["id"]

    assert [rank_next(ana) for _ in range(4)] == ["s0", "g0", "s1", "s2"]  # gold after the 1st submission
    assert [rank_next(bo) for _ in range(2)] == ["s0", "g0"]
    assert rank_next(cy) == "s1"  # s0 has its two labelers
    assert queue.progress(store, cy, 2) == {"ranked": 1, "skipped": 0, "remaining": 1}


def test_agreement_tau_and_gold_accuracy_by_hand():
    assert round(kendall_tau_b([0, 0, 1], [0, 1, 2]), 4) == 0.8165
    items = [{"id": "a", "gold": None}, {"id": "g", "gold": [[0], [1], [2]]}]
    labels = [
        {"labeler": "ana", "item_id": "a", "kind": "ranked", "ranking": [[0], [1], [2]], "seconds": 10.0},
        {"labeler": "bo", "item_id": "a", "kind": "ranked", "ranking": [[1], [0], [2]], "seconds": 30.0},
        {"labeler": "ana", "item_id": "g", "kind": "ranked", "ranking": [[0], [2], [1]], "seconds": 20.0},
        {"labeler": "bo", "item_id": "a2", "kind": "skipped", "reason": "x", "seconds": None},
    ]
    stats = admin_stats(items, labels, labelers_per_item=2)
    # item a: pairs (0,1) disagree, (0,2) and (1,2) agree -> 2/3; each labeler's tau against the other is 1/3
    assert stats["agreement"]["agreement"] == pytest.approx(2 / 3) and stats["agreement"]["strict_pairs"] == 3
    assert (
        stats["agreement"]["kendall_tau"] == pytest.approx(1 / 3)
        and stats["agreement"]["instructgpt"] == 0.726
    )
    assert stats["gold"]["agreement"] == pytest.approx(2 / 3)  # ana on g: (1,2) reversed
    assert stats["progress"] == {
        "items": 1,
        "gold_items": 1,
        "labelers_per_item": 2,
        "items_done": 1,
        "ranked": 3,
        "skipped": 1,
    }
    assert stats["time"]["median_seconds"] == 20.0
    ana = stats["labelers"][0]
    assert ana["name"] == "ana" and ana["ranked"] == 2 and ana["agreement"]["strict_pairs"] == 3


def test_export_is_the_ranking_format_with_a_better_answer_ranked_first(tmp_path):
    store = Store(tmp_path / "l.sqlite")
    write_jsonl(tmp_path / "fb.jsonl", [feedback("f1", "Blue.", preferred="Red, or blue.")])
    store.add_items(items_from_feedback(tmp_path / "fb.jsonl").items, "fb.jsonl")
    store.add_items(samples(2), "s.jsonl")
    store.add_labeler("ana")
    ana = store.labelers()[0]
    fb_id = store.items()[0]["id"]
    store.save_label(ana, fb_id, "x1", "ranked", label(2, [[1], [0]], notes="fine"))
    store.save_label(
        ana, "s0", "x2", "ranked", label(3, [[2], [0, 1]], better_answer="A much better answer.")
    )
    store.save_label(ana, "s1", "x3", "skipped", {"reason": "cannot judge"})
    write_jsonl(tmp_path / "r.jsonl", ranking_records(store))
    records = [r for _, r in read_rankings(tmp_path / "r.jsonl")]
    assert len(records) == 2  # the skip is not a ranking
    fb, s0 = records
    assert [c["source"] for c in fb["completions"]] == ["model:m1", "human:feedback"] and fb[
        "notes"
    ] == "fine"
    assert s0["completions"][3] == {"text": "A much better answer.", "source": "human:ana"}
    assert s0["ranking"] == [[3], [2], [0, 1]] and s0["likert"] == [4, 4, 4, 7] and s0["labeler"] == "ana"
    assert s0["meta"]["item"] == "s0" and s0["id"] == "s0/ana" and s0["meta"]["gold"] is False


def test_cli_adds_labelers_and_samples_and_exports(tmp_path, capsys):
    db, out = tmp_path / "l.sqlite", tmp_path / "r.jsonl"
    write_jsonl(tmp_path / "s.jsonl", samples(2))
    assert main(["label", "add-samples", "--db", str(db), "--samples", str(tmp_path / "s.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "admin token" in printed and "2 items added, 0 already in the database" in printed
    assert main(["label", "add-labeler", "--db", str(db), "--name", "ana"]) == 0
    token = capsys.readouterr().out.splitlines()[1]
    store = Store(db)
    ana = store.labeler_for(token)
    assert ana.name == "ana" and not ana.admin and [x.admin for x in store.labelers()] == [True, False]
    store.save_label(ana, "s0", "x", "ranked", label(3, [[1], [0], [2]]))
    assert main(["label", "export", "--db", str(db), "--out", str(out)]) == 0
    assert [r["ranking"] for _, r in read_rankings(out)] == [[[1], [0], [2]]]
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(
    "args, message",
    [
        (["add-samples", "--samples", "{bad}"], "bad.jsonl:2: field 'completions' must list at least 2"),
        (["add-samples", "--feedback", "{bad}"], "bad.jsonl:1: field 'model' must be a non-empty string"),
        (["add-samples"], "nothing to add"),
        (["add-labeler", "--name", "a/b"], "must be 1-64 characters without '/'"),
        (["export", "--out", "{bad}"], "already exists; choose another --out or pass --force"),
        (["serve", "--gold-rate", "2"], "--gold-rate must be between 0 and 1"),
    ],
)
def test_cli_errors_are_clear(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [samples(1)[0], {**samples(1)[0], "completions": [{"text": "x", "source": "m"}]}])
    args = [a.replace("{bad}", str(bad)) for a in args]
    assert main(["label", args[0], "--db", str(tmp_path / "l.sqlite"), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["serve", "add-labeler", "add-samples", "export"])
def test_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["label", command, "--help"])
    assert exit_.value.code == 0 and f"example: posttrain label {command}" in capsys.readouterr().out


def test_export_of_a_missing_database_is_clear(tmp_path, capsys):
    assert (
        main(["label", "export", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "r.jsonl")])
        == 2
    )
    assert "no such database" in capsys.readouterr().err and not (tmp_path / "none.sqlite").exists()
