"""`posttrain data import`: Hugging Face datasets with a messages column, and Alpaca data."""

import json

import datasets

from posttrain.cli import main
from posttrain.data.records import read_conversations


def test_alpaca_json(tmp_path, capsys):
    src = tmp_path / "alpaca.json"
    src.write_text(
        json.dumps(
            [
                {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
                {"instruction": "Say hi.", "input": "", "output": "Hi!"},
            ]
        )
    )
    assert (
        main(
            ["data", "import", "--format", "alpaca", "--input", str(src), "--out", str(tmp_path / "d.jsonl")]
        )
        == 0
    )
    records = read_conversations(tmp_path / "d.jsonl")
    assert records[0]["messages"] == [
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert records[1]["messages"][0]["content"] == "Say hi." and records[1]["source"] == "alpaca"


def test_hf_dataset_saved_to_disk_with_messages(tmp_path):
    rows = {
        "messages": [
            [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4"},
            ],
        ]
    }
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "messages",
                "--input",
                str(tmp_path / "ds"),
                "--out",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 0
    )
    records = read_conversations(tmp_path / "d.jsonl", ends_with="assistant")
    assert [len(r["messages"]) for r in records] == [2, 3]


def test_bad_rows_name_the_row_and_write_nothing(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text(
        '{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "bot", "content": "x"}]}\n'
    )
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "messages",
                "--input",
                str(src),
                "--out",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 2
    )
    assert "row 1: field 'messages[0].role' is 'bot'" in capsys.readouterr().err
    assert not (tmp_path / "d.jsonl").exists()
    assert (
        main(
            ["data", "import", "--format", "alpaca", "--input", str(src), "--out", str(tmp_path / "d.jsonl")]
        )
        == 2
    )
    assert "row 0: field 'instruction'" in capsys.readouterr().err


def test_trl_and_hh_pairs_import_as_rankings_and_export_back(tmp_path):
    from posttrain.data.rankings import read_rankings

    trl = tmp_path / "trl.jsonl"
    trl.write_text(json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5"}) + "\n")
    conversational = tmp_path / "conv.jsonl"
    conversational.write_text(
        json.dumps(
            {
                "prompt": [{"role": "user", "content": "Hi"}],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "Go away."}],
            }
        )
        + "\n"
    )
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "trl",
                "--input",
                str(conversational),
                "--out",
                str(tmp_path / "c.jsonl"),
            ]
        )
        == 0
    )
    [ranking] = [r for _, r in read_rankings(tmp_path / "c.jsonl")]
    assert ranking["prompt"] == [{"role": "user", "content": "Hi"}] and ranking["ranking"] == [[0], [1]]
    assert [c["text"] for c in ranking["completions"]] == ["Hello!", "Go away."]
    assert (
        main(["data", "import", "--format", "trl", "--input", str(trl), "--out", str(tmp_path / "r.jsonl")])
        == 0
    )
    assert (
        main(
            [
                "data",
                "export",
                "--data",
                str(tmp_path / "r.jsonl"),
                "--out",
                str(tmp_path / "p.jsonl"),
                "--style",
                "plain",
            ]
        )
        == 0
    )
    assert [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()][0] == {
        "prompt": "2+2?",
        "chosen": "4",
        "rejected": "5",
    }

    hh = tmp_path / "hh.jsonl"
    history = "\n\nHuman: Name a color.\n\nAssistant: Blue.\n\nHuman: Another?"
    hh.write_text(
        json.dumps({"chosen": history + "\n\nAssistant: Red.", "rejected": history + "\n\nAssistant: No."})
        + "\n"
    )
    assert (
        main(["data", "import", "--format", "hh", "--input", str(hh), "--out", str(tmp_path / "h.jsonl")])
        == 0
    )
    [ranking] = [r for _, r in read_rankings(tmp_path / "h.jsonl")]
    assert [m["role"] for m in ranking["prompt"]] == ["user", "assistant", "user"]
    assert (
        main(
            [
                "data",
                "export",
                "--data",
                str(tmp_path / "h.jsonl"),
                "--out",
                str(tmp_path / "h2.jsonl"),
                "--style",
                "hh",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "h2.jsonl").read_text()) == json.loads(hh.read_text())


def test_a_k_way_ranking_exports_every_ordered_pair_and_reads_back_unchanged(tmp_path):
    from posttrain.data.imports import DataExportConfig, export_pairs
    from posttrain.data.rankings import read_rankings
    from posttrain.data.records import write_jsonl

    record = {
        "id": "r1",
        "prompt": [{"role": "user", "content": "Q"}],
        "labeler": "ann",
        "meta": {"item": "r1"},
        "completions": [{"text": t, "source": "model:m"} for t in "abcd"],
        "ranking": [[2], [0, 3], [1]],
        "likert": [5, 2, 7, 5],
        "flags": [[], ["fails_task"], [], []],
    }
    write_jsonl(tmp_path / "r.jsonl", [record])
    assert [r for _, r in read_rankings(tmp_path / "r.jsonl")] == [record]  # written and read back unchanged
    assert (
        export_pairs(DataExportConfig(data=tmp_path / "r.jsonl", out=tmp_path / "p.jsonl")) == 5
    )  # 6 pairs, 1 tie


def test_bad_preference_rows_are_clear(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"prompt": "x", "chosen": "a"}) + "\n")
    assert (
        main(["data", "import", "--format", "trl", "--input", str(src), "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert "row 0: field 'rejected' is missing" in capsys.readouterr().err
    src.write_text(json.dumps({"chosen": "Human: hi", "rejected": "x"}) + "\n")
    assert (
        main(["data", "import", "--format", "hh", "--input", str(src), "--out", str(tmp_path / "o.jsonl")])
        == 2
    )
    assert "must start with" in capsys.readouterr().err


def test_rows_without_ids_get_unique_ids_and_repeated_ids_are_refused(tmp_path, capsys):
    src = tmp_path / "chats.jsonl"
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    src.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [{"messages": chat}, {"id": "mine", "messages": chat}, {"messages": chat}]
        )
    )
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "messages",
                "--input",
                str(src),
                "--out",
                str(tmp_path / "d.jsonl"),
            ]
        )
        == 0
    )
    assert [r["id"] for r in read_conversations(tmp_path / "d.jsonl")] == [
        "chats-000000",
        "mine",
        "chats-000002",
    ]
    trl = tmp_path / "pairs.jsonl"
    trl.write_text(
        "".join(
            json.dumps({"id": i, "prompt": "2+2?", "chosen": "4", "rejected": "5"}) + "\n"
            for i in [None, None]
        )
    )
    assert (
        main(["data", "import", "--format", "trl", "--input", str(trl), "--out", str(tmp_path / "r.jsonl")])
        == 0
    )
    assert [json.loads(x)["id"] for x in (tmp_path / "r.jsonl").read_text().splitlines()] == [
        "pairs-000000",
        "pairs-000001",
    ]
    src.write_text("".join(json.dumps({"id": "a", "messages": chat}) + "\n" for _ in range(2)))
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "messages",
                "--input",
                str(src),
                "--out",
                str(tmp_path / "e.jsonl"),
            ]
        )
        == 2
    )
    assert "row 1: field 'id' 'a' is already used on row 0" in capsys.readouterr().err
    assert not (tmp_path / "e.jsonl").exists()


def test_messages_that_are_not_objects_name_the_row_and_field(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    for row, error in [
        (
            {"messages": ["Hi", "Hello"]},
            "row 0: field 'messages[0]' must be an object with 'role' and 'content', got a string",
        ),
        ({"messages": "Hi"}, "row 0: field 'messages' must be a list of {role, content} objects"),
    ]:
        src.write_text(json.dumps(row) + "\n")
        assert (
            main(
                [
                    "data",
                    "import",
                    "--format",
                    "messages",
                    "--input",
                    str(src),
                    "--out",
                    str(tmp_path / "d.jsonl"),
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert error in err and "Traceback" not in err


def test_export_streams_record_by_record(tmp_path):
    """Peak memory does not grow with the file: 10x the rankings, about the same peak."""
    import tracemalloc

    from posttrain.data.imports import DataExportConfig, export_pairs
    from posttrain.data.records import write_jsonl

    record = {
        "id": "r",
        "prompt": [{"role": "user", "content": "Q" * 200}],
        "labeler": "ann",
        "completions": [{"text": t * 200, "source": "model:m"} for t in "abcd"],
        "ranking": [[2], [0, 3], [1]],
    }
    peaks = []
    for n in (1_000, 10_000):
        write_jsonl(tmp_path / f"r{n}.jsonl", ({**record, "id": f"r{i}"} for i in range(n)))
        tracemalloc.start()
        assert (
            export_pairs(DataExportConfig(data=tmp_path / f"r{n}.jsonl", out=tmp_path / f"p{n}.jsonl"))
            == 5 * n
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 2 * peaks[0], peaks
