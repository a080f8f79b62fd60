"""`posttrain data import`: Hugging Face datasets with a messages column, and Alpaca data."""

import json

import datasets

from posttrain.cli import main
from posttrain.data.records import read_conversations


def test_alpaca_json(tmp_path, capsys):
    src = tmp_path / "alpaca.json"
    src.write_text(json.dumps([
        {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "Hi!"},
    ]))
    assert main(["data", "import", "--format", "alpaca", "--input", str(src), "--out", str(tmp_path / "d.jsonl")]) == 0
    records = read_conversations(tmp_path / "d.jsonl")
    assert records[0]["messages"] == [{"role": "user", "content": "Add the numbers.\n\n2 and 3"},
                                      {"role": "assistant", "content": "5"}]
    assert records[1]["messages"][0]["content"] == "Say hi." and records[1]["source"] == "alpaca"


def test_hf_dataset_saved_to_disk_with_messages(tmp_path):
    rows = {"messages": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                         [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                          {"role": "assistant", "content": "4"}]]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"))
    assert main(["data", "import", "--format", "messages", "--input", str(tmp_path / "ds"),
                 "--out", str(tmp_path / "d.jsonl")]) == 0
    records = read_conversations(tmp_path / "d.jsonl", ends_with="assistant")
    assert [len(r["messages"]) for r in records] == [2, 3]


def test_bad_rows_name_the_row_and_write_nothing(tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"messages": [{"role": "user", "content": "ok"}]}\n{"messages": [{"role": "bot", "content": "x"}]}\n')
    assert main(["data", "import", "--format", "messages", "--input", str(src), "--out", str(tmp_path / "d.jsonl")]) == 2
    assert "row 1: field 'messages[0].role' is 'bot'" in capsys.readouterr().err
    assert not (tmp_path / "d.jsonl").exists()
    assert main(["data", "import", "--format", "alpaca", "--input", str(src), "--out", str(tmp_path / "d.jsonl")]) == 2
    assert "row 0: field 'instruction'" in capsys.readouterr().err
