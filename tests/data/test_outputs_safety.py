"""Issue 28: `--force` replaces only what posttrain wrote and never an input; a failed checkpoint or manifest
write is one clear error that keeps the last checkpoint."""

import errno
import json
import shutil
from pathlib import Path

import pytest

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.world import World
from tests.tiny import BASE


def sft_args(model, data, out, *extra) -> list[str]:
    return [
        "sft",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(out),
        "--micro-batch",
        "4",
        "--grad-accum",
        "1",
        "--max-steps",
        "2",
        "--save-every",
        "1",
        "--eval-fraction",
        "0",
        *extra,
    ]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def runs(tmp_path) -> Path:
    """runs/ with a model, demonstrations and a file of the user's: what `--out runs --force` must not
    delete."""
    runs = tmp_path / "runs"
    shutil.copytree(BASE, runs / "base")
    write_jsonl(runs / "demos.jsonl", World(seed=0).demonstrations(8))
    (runs / "notes.txt").write_text("mine\n")
    return runs


def test_force_never_deletes_a_folder_holding_the_inputs(runs, capsys, monkeypatch):
    import posttrain.stages.sft as stage

    monkeypatch.setattr(
        stage, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded before the check")
    )
    before = snapshot(runs)
    assert main(sft_args(runs / "base", runs / "demos.jsonl", runs, "--force")) == 2
    err = capsys.readouterr().err
    assert f"--out {runs} holds" in err and "an input of this command" in err
    assert snapshot(runs) == before


@pytest.mark.parametrize("stage", ["sft", "rm"])
def test_force_never_replaces_the_input_model(stage, runs, tmp_path, capsys, monkeypatch):
    import posttrain.stages.rm as rm_stage
    import posttrain.stages.sft as sft_stage

    monkeypatch.setattr(sft_stage, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded"))
    monkeypatch.setattr(
        rm_stage, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded"), raising=False
    )
    model = runs / "base"
    before = snapshot(model)
    data = runs / "demos.jsonl" if stage == "sft" else rankings(tmp_path / "r.jsonl")
    args = (
        sft_args(model, data, model, "--force")
        if stage == "sft"
        else [
            "rm",
            "--model",
            str(model),
            "--data",
            str(data),
            "--out",
            str(model),
            "--max-steps",
            "1",
            "--force",
        ]
    )
    assert main(args) == 2
    assert f"--out {model} is also an input of this command" in capsys.readouterr().err
    assert snapshot(model) == before


@pytest.mark.parametrize("stage", ["ppo reward", "ppo reference", "ppo ptx folder", "dpo"])
def test_force_never_replaces_what_ppo_or_dpo_reads(stage, runs, tmp_path, capsys, monkeypatch):
    import posttrain.stages.dpo as dpo
    import posttrain.training.rl_stage as rl_stage

    monkeypatch.setattr(
        rl_stage, "load_models", lambda *a, **k: pytest.fail("the models loaded before the check")
    )
    monkeypatch.setattr(
        dpo, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded before the check")
    )
    shutil.copytree(BASE, runs / "rm")
    shutil.copytree(BASE, runs / "sft")
    (runs / "corpus").mkdir()
    write_jsonl(runs / "corpus" / "c.jsonl", [{"text": "The capital of Veloria is Tarn."}])
    write_jsonl(tmp_path / "p.jsonl", World(seed=0).prompts("ppo", 64, "train"))
    before = snapshot(runs)
    base = [
        "ppo",
        "--policy",
        str(BASE),
        "--reward",
        str(runs / "rm"),
        "--prompts",
        str(tmp_path / "p.jsonl"),
        "--force",
        "--out",
    ]
    args = {
        "ppo reward": [*base, str(runs / "rm")],
        "ppo reference": [*base, str(runs / "sft"), "--reference", str(runs / "sft")],
        "ppo ptx folder": [*base, str(runs / "corpus"), "--ptx", str(runs / "corpus" / "c.jsonl")],
        "dpo": [
            "dpo",
            "--model",
            str(runs / "sft"),
            "--data",
            str(rankings(tmp_path / "r.jsonl")),
            "--out",
            str(runs / "sft"),
            "--force",
        ],
    }[stage]
    assert main(args) == 2
    assert "an input of this command" in capsys.readouterr().err
    assert snapshot(runs) == before


def rankings(path: Path) -> Path:
    rows = [
        {
            "id": p["id"],
            "prompt": p["messages"],
            "meta": p["meta"],
            "labeler": "sim:a",
            "completions": [{"text": "yes", "source": "model:x"}, {"text": "no", "source": "model:x"}],
            "ranking": [[0], [1]],
        }
        for p in World(seed=0).prompts("rm", 4, "train")
    ]
    write_jsonl(path, rows)
    return path


def test_force_never_replaces_a_folder_posttrain_did_not_write(runs, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work\n")
    assert main(sft_args(BASE, runs / "demos.jsonl", other, "--force")) == 2
    assert "is not a posttrain run (no posttrain.json)" in capsys.readouterr().err
    assert (other / "thesis.tex").read_text() == "years of work\n"


def test_force_replaces_a_finished_run_but_not_one_holding_other_files(runs, tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(sft_args(BASE, runs / "demos.jsonl", out)) == 0
    listed = json.loads((out / "posttrain.json").read_text())["files"]
    assert "model.safetensors" in listed and "posttrain.json" in listed and "run.json" in listed
    assert (
        main(sft_args(BASE, runs / "demos.jsonl", out, "--force", "--lr", "0.001")) == 0
    )  # its own run: replaced
    assert json.loads((out / "posttrain.json").read_text())["config"]["lr"] == 0.001
    (out / "eval").mkdir()
    (out / "eval" / "answers.jsonl").write_text("mine\n")
    assert main(sft_args(BASE, runs / "demos.jsonl", out, "--force")) == 2
    assert "holds files posttrain did not write there (eval/answers.jsonl)" in capsys.readouterr().err
    assert (out / "eval" / "answers.jsonl").read_text() == "mine\n"


def test_force_discards_only_an_unfinished_run_posttrain_started(runs, tmp_path, capsys):
    partial = tmp_path / "sft.partial"
    partial.mkdir()
    (partial / "data.csv").write_text("mine\n")
    assert main(sft_args(BASE, runs / "demos.jsonl", tmp_path / "sft", "--force")) == 2
    assert "is not an unfinished posttrain run (no run.json)" in capsys.readouterr().err
    assert (partial / "data.csv").read_text() == "mine\n"


def test_writers_refuse_an_out_folder_holding_their_input(tmp_path, capsys):
    data = rankings(tmp_path / "r.jsonl")
    before = data.read_bytes()
    assert main(["data", "export", "--data", str(data), "--out", str(tmp_path), "--force"]) == 2
    assert "an input of this command" in capsys.readouterr().err and data.read_bytes() == before


def test_a_checkpoint_write_that_fails_is_one_error_and_keeps_the_last_checkpoint(
    runs, tmp_path, capsys, monkeypatch
):
    import posttrain.models.checkpoint as checkpoint

    out = tmp_path / "sft"
    real, calls = checkpoint.torch.save, []

    def disk_full(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:  # step 1's checkpoint is written; step 2's fails half-way
            Path(path).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, path, *a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    args = sft_args(BASE, runs / "demos.jsonl", out, "--max-steps", "3")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "could not write checkpoint" in err and "step-000002" in err and "the disk is full" in err
    assert "step-000001, is kept" in err and "free disk space" in err and "--resume" in err
    assert "Traceback" not in err
    partial = Path(f"{out}.partial")
    assert [p.name for p in (partial / "checkpoints").iterdir()] == ["step-000001"]  # no half-written one
    monkeypatch.setattr(checkpoint.torch, "save", real)
    assert main([*args, "--resume"]) == 0 and (out / "posttrain.json").is_file()


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64"),
        OSError(errno.EIO, "Input/output error"),
    ],
    ids=["torch", "io"],
)
def test_a_final_model_write_that_fails_is_one_error_and_the_run_resumes(
    error, runs, tmp_path, capsys, monkeypatch
):
    from transformers import PreTrainedModel

    out = tmp_path / "sft"

    def fails(*a, **k):
        raise error

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", fails)
    args = sft_args(BASE, runs / "demos.jsonl", out, "--max-steps", "3")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"could not write the final model in {out}.partial" in err and "--resume" in err
    assert ("the disk is full" in err) == isinstance(error, RuntimeError)
    assert not out.exists() and (Path(f"{out}.partial") / "checkpoints" / "step-000002").is_dir()
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0 and (out / "posttrain.json").is_file()


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


def test_the_demo_refuses_to_continue_a_run_of_another_preset(tmp_path, capsys, no_steps):
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


def test_world_export_force_replaces_only_a_world_export(tmp_path, capsys):
    out = tmp_path / "runs"
    shutil.copytree(BASE, out / "base")
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    assert main(["world", "export", "--out", str(out), "--force"]) == 2
    assert "is not a world export (no manifest.json); --force replaces only a world export" in (
        capsys.readouterr().err
    )
    assert snapshot(out) == before
    assert main(["world", "export", "--out", str(out / "w")]) == 0
    (out / "w" / "notes.txt").write_text("mine\n")
    assert main(["world", "export", "--out", str(out / "w"), "--force"]) == 2
    assert "holds files a world export did not write (notes.txt)" in capsys.readouterr().err


def test_rejection_sampling_never_writes_into_its_model_or_a_folder_of_other_files(
    runs, tmp_path, capsys, monkeypatch
):
    import posttrain.pipelines.rejection as rejection

    monkeypatch.setattr(rejection, "sample", lambda *a, **k: pytest.fail("it sampled before the check"))
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, World(seed=0).prompts("ppo", 4, "train"))
    before = snapshot(runs)
    args = [
        "rejection-sampling",
        "--model",
        str(runs / "base"),
        "--reward",
        str(runs / "base"),
        "--prompts",
        str(prompts),
        "--out",
    ]
    assert main([*args, str(runs / "base")]) == 2
    assert "is also an input of this command" in capsys.readouterr().err
    assert main([*args, str(runs)]) == 2
    assert "an input of this command" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine\n")
    assert main([*args, str(tmp_path / "other")]) == 2
    assert "holds files rejection sampling does not write (notes.txt)" in capsys.readouterr().err
    assert snapshot(runs) == before
