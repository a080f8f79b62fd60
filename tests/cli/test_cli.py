"""The command line as a user meets it: help everywhere, counts printed, clear errors, no tracebacks."""

import subprocess
import sys

import pytest


def posttrain(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "posttrain.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def every_command() -> list[list[str]]:
    """[] (posttrain itself), each group, and each registered command, as argv words."""
    from posttrain.cli import build_parser
    from posttrain.commands import COMMANDS, GROUPS

    build_parser()
    return [[], *([g] for g in GROUPS), *(c.name.split(" ") for c in COMMANDS)]


def test_the_registry_holds_every_command_with_its_help():
    from posttrain.commands import COMMANDS

    names = {" ".join(a) for a in every_command()}
    assert {
        "world export",
        "sft",
        "rm",
        "rm score",
        "ppo",
        "loop",
        "eval control-study",
        "serve",
        "demo",
        "label add-labeler",
    } <= names and len(COMMANDS) >= 27
    for c in COMMANDS:
        assert c.help and c.description and not c.help.endswith("."), c.name


@pytest.mark.parametrize("args", every_command(), ids=" ".join)
def test_help_on_every_command(args, capsys):
    from posttrain.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([*args, "--help"])
    assert exit_.value.code == 0 and "usage: posttrain" in capsys.readouterr().out


def test_the_console_entry_point_answers():
    r = posttrain("--help")
    assert r.returncode == 0 and "pretrain" in r.stdout and "sft" in r.stdout


def test_export_prints_counts_per_family(tmp_path):
    r = posttrain("world", "export", "--out", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    for family in ("arithmetic", "knowledge", "harmful", "multi_turn", "total"):
        assert family in r.stdout
    assert (tmp_path / "w" / "spec.md").is_file()


def test_export_into_a_non_empty_directory_is_a_clear_error(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = posttrain("world", "export", "--out", str(tmp_path))
    assert r.returncode == 2
    assert "already exists and is not empty" in r.stderr and "--force" in r.stderr
    assert "Traceback" not in r.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_bad_choices_and_values_are_rejected():
    r = posttrain("world", "export", "--out", "x", "--scale", "huge")
    assert r.returncode == 2 and "invalid choice: 'huge'" in r.stderr
    r = posttrain("world", "agreement", "--noise", "-1", "--prompts", "5")
    assert r.returncode == 2 and "--noise must be >= 0, got -1.0" in r.stderr and "Traceback" not in r.stderr


def test_agreement_reports_a_table():
    from posttrain.world.labelers import DEFAULT_NOISE

    r = posttrain("world", "agreement", "--prompts", "50", "--noise", str(DEFAULT_NOISE), "0.32")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()[2:]]
    assert [float(row[0]) for row in rows] == [DEFAULT_NOISE, 0.32] and rows[0][-1] == "(default)", r.stdout
    assert "72.6%" in r.stdout.splitlines()[0]


def test_spec_lists_every_family():
    r = posttrain("world", "spec")
    assert r.returncode == 0
    for title in (
        "Arithmetic",
        "Passage QA",
        "False premise",
        "Harmful request",
        "Benign look-alike",
        "Multi-turn",
    ):
        assert f"## {title}" in r.stdout


def test_repeated_ids_are_refused_where_ids_tie_records_together(tmp_path, capsys):
    import json

    from posttrain.cli import main

    prompt = {"messages": [{"role": "user", "content": "Hi"}]}
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, **prompt}) + "\n" for i in ["a", "b", "a"]))
    assert (
        main(
            [
                "sample",
                "--model",
                str(tmp_path / "no-model"),
                "--prompts",
                str(prompts),
                "--out",
                str(tmp_path / "s.jsonl"),
            ]
        )
        == 2
    )  # refused before any model loads
    assert f"{prompts}:3: field 'id' 'a' is already used on {prompts}:1" in capsys.readouterr().err
    samples = tmp_path / "samples.jsonl"
    item = {
        "prompt": prompt["messages"],
        "completions": [{"text": t, "source": "model:m"} for t in "xy"],
        "meta": {"family": "arithmetic", "task": {"kind": "add", "a": 1, "b": 2}},
    }
    samples.write_text("".join(json.dumps({"id": i, **item}) + "\n" for i in ["s1", "s1"]))
    assert main(["label", "sim", "--samples", str(samples), "--out", str(tmp_path / "r.jsonl")]) == 2
    assert f"{samples}:2: field 'id' 's1' is already used on {samples}:1" in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "s.jsonl").exists()


@pytest.mark.parametrize(
    "argv, error",
    [
        (
            ["sample", "--model", "m", "--prompts", "p", "--out", "o", "--k", "4", "--k", "8"],
            "--k given twice (4 and 8); the last counts: give it once",
        ),
        (
            ["sft", "--model", "m", "--data", "d", "--out", "o", "--lr", "1e-4", "--lr", "3e-4"],
            "--lr given twice (0.0001 and 0.0003)",
        ),
        (
            ["sample", "--model", "m", "--prompts", "p", "--out", "o", "--force", "--no-force"],
            "--force given twice (--force and --no-force)",
        ),
        (
            ["world", "export", "--out", "w", "--knob", "a=1", "--knob", "b=2"],
            "--knob given twice (a=1 and b=2)",
        ),
        (
            ["sample", "--model", "m", "--model", "n", "--prompts", "p", "--out", "o"],
            "--model given twice (m and n)",
        ),
    ],
)
def test_an_option_given_twice_is_said_naming_both_values(argv, error, capsys):
    from posttrain.cli import build_parser

    args = build_parser().parse_args(argv)
    assert f"warning: {error}" in capsys.readouterr().err
    assert getattr(args, error.split()[0][2:]) in (8, 3e-4, False, ["b=2"], "n")  # the last one counts


def test_an_option_given_twice_is_said_through_the_entry_point(tmp_path):
    r = posttrain("world", "spec", "--seed", "0", "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0 and "posttrain world spec: warning: --seed given twice (0 and 1)" in r.stderr
    assert posttrain("world", "spec", "--seed", "1", cwd=tmp_path).stdout == r.stdout


def test_an_option_meant_to_repeat_still_repeats(capsys):
    from posttrain.cli import build_parser

    args = build_parser().parse_args(["serve", "m", "--allowed-host", "a", "--allowed-host", "b"])
    assert args.allowed_host == ["a", "b"] and "warning" not in capsys.readouterr().err
