"""Issue 28 for the commands that chain stages: `posttrain demo` and `posttrain loop` continue only a run
started the same way (the preset, the options, the prompts), each preset has its own folder, and neither
writes into a folder holding other files."""

import json
from pathlib import Path

import pytest

import posttrain.commands.demo_presets as presets
from posttrain.cli import main
from posttrain.data.records import write_jsonl


def legacy_tiny_demo(out: Path) -> None:
    """What `posttrain demo --preset tiny` left before demo.json: a world cut to 160 demonstrations, every
    step."""
    (out / "world").mkdir(parents=True)
    (out / "world" / "manifest.json").write_text(json.dumps({"seed": 0, "scale": "small"}))
    (out / "world" / "demos.jsonl").write_text("{}\n" * 160)
    for name in ("sft", "rm", "ppo-ptx", "report"):
        (out / name).mkdir()
    (out / "samples.jsonl").write_text("{}\n")
    (out / "rankings.jsonl").write_text("{}\n")


def test_the_demo_refuses_to_continue_a_run_of_another_preset(tmp_path, monkeypatch, capsys, no_steps):
    monkeypatch.setattr(presets, "SCALE", "small")  # the legacy demo ran on the small world, the only one
    out = tmp_path / "demo"
    legacy_tiny_demo(out)
    assert main(["demo", "--out", str(out)]) == 2  # `make demo` after `posttrain demo --preset tiny`
    err = capsys.readouterr().err
    assert "--preset was 'tiny', now 'small'" in err and "--force to start over" in err and not no_steps
    assert main(["demo", "--out", str(out), "--preset", "tiny"]) == 2  # the same preset continues
    assert "the steps would run now" in capsys.readouterr().err
    assert json.loads((out / "demo.json").read_text())["preset"] == "tiny"
    assert main(["demo", "--out", str(out), "--preset", "tiny", "--seed", "1"]) == 2
    assert "--seed was 0, now 1" in capsys.readouterr().err and len(no_steps) == 1
    assert main(["demo", "--out", str(out), "--force"]) == 2  # --force starts over
    assert "the steps would run now" in capsys.readouterr().err and sorted(p.name for p in out.iterdir()) == [
        "demo.json"
    ]


def test_each_demo_preset_has_its_own_default_out(tmp_path, monkeypatch, no_steps):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--preset", "tiny"]) == 2
    assert main(["demo"]) == 2
    assert [c.out for c in no_steps] == [Path("runs/demo-tiny"), Path("runs/demo")]


def test_demo_force_never_deletes_a_folder_holding_other_files(tmp_path, capsys, no_steps):
    (tmp_path / "notes.txt").write_text("mine\n")
    legacy_tiny_demo(tmp_path / "demo")
    assert main(["demo", "--out", str(tmp_path), "--force"]) == 2
    assert "holds files a demo does not write (demo, notes.txt)" in capsys.readouterr().err and not no_steps
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


@pytest.fixture
def loop_args(tmp_path, monkeypatch):
    """A loop's arguments on prompts off the world; sampling replaced by a stop (the checks come before
    it)."""
    import posttrain.pipelines.loop as loop
    from posttrain.errors import UserError

    def stop(*a, **k):
        raise UserError("round 1 would sample now")

    monkeypatch.setattr(loop, "sample_and_label", stop)
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "config.json").write_text("{}")
    for name in ("rm", "ppo", "eval", "test"):
        write_jsonl(
            tmp_path / f"{name}.jsonl",
            [{"id": f"{name}{i}", "messages": [{"role": "user", "content": f"{i}?"}]} for i in range(8)],
        )
    return [
        "loop",
        "--sft",
        str(tmp_path / "sft"),
        "--rm-prompts",
        str(tmp_path / "rm.jsonl"),
        "--ppo-prompts",
        str(tmp_path / "ppo.jsonl"),
        "--eval-prompts",
        str(tmp_path / "eval.jsonl"),
        "--out",
        str(tmp_path / "loop"),
        "--rm-prompts-per-round",
        "4",
        "--ppo-prompts-per-round",
        "8",
        "--ppo-rollout-batch",
        "8",
        "--ppo-micro-batch",
        "2",
        "--k",
        "3",
    ]


def continued(args: list[str], flag: str, value: str) -> list[str]:
    args = list(args)
    args[args.index(flag) + 1] = value
    return args


def test_a_loop_continued_with_other_options_or_prompts_is_refused_naming_them(loop_args, tmp_path, capsys):
    assert main(loop_args) == 2
    assert "round 1 would sample now" in capsys.readouterr().err
    assert json.loads((tmp_path / "loop" / "loop.json").read_text())["config"]["k"] == 3
    assert main(continued(loop_args, "--k", "4")) == 2
    assert "--k was 3, now 4" in capsys.readouterr().err
    assert main([*loop_args, "--seed", "1"]) == 2
    assert "--seed was 0, now 1" in capsys.readouterr().err
    assert main([*loop_args, "--ppo-lr", "0.5"]) == 2
    assert "--ppo-lr was" in capsys.readouterr().err
    assert (
        main(continued(loop_args, "--rm-prompts", str(tmp_path / "test.jsonl"))) == 2
    )  # the held-out prompts
    assert (
        f"--rm-prompts was '{tmp_path / 'rm.jsonl'}', now '{tmp_path / 'test.jsonl'}'"
        in capsys.readouterr().err
    )
    write_jsonl(tmp_path / "rm.jsonl", [{"id": "x", "messages": [{"role": "user", "content": "other?"}]}])
    assert main(loop_args) == 2
    assert f"--rm-prompts {tmp_path / 'rm.jsonl'}: its contents changed since the loop started" in (
        capsys.readouterr().err
    )
    (tmp_path / "rm.jsonl").write_bytes((tmp_path / "test.jsonl").read_bytes().replace(b"test", b"rm"))
    assert main([*loop_args, "--rounds", "3"]) == 2  # the same loop, more rounds: it continues
    assert "round 1 would sample now" in capsys.readouterr().err


def test_a_loop_never_writes_its_rounds_into_a_folder_holding_other_files(loop_args, tmp_path, capsys):
    assert main(continued(loop_args, "--out", str(tmp_path))) == 2
    assert (
        "holds files that are not a loop's" in capsys.readouterr().err
        and not (tmp_path / "loop.json").exists()
    )
