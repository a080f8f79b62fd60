"""Issue 28: `--force` replaces only what posttrain wrote and never an input; a failed checkpoint or manifest
write is one clear error that keeps the last checkpoint. (The demo's and the loop's run folders:
tests/cli/test_run_folders.py.)"""

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
