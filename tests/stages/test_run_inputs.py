"""Resume refuses a run started differently; outputs never replace a path without --force, nor an input;
input files are checked (UTF-8, JSON, fields, world tasks) before a model loads."""

import json
from pathlib import Path

import pytest

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.stages.sft import SFTConfig, sft
from posttrain.world import World
from tests import tiny

BASE = str(tiny.BASE)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("demos") / "demos.jsonl"
    write_jsonl(path, World(seed=0).demonstrations(16))
    return path


def interrupted_sft(demos, out: Path) -> dict:
    """An SFT run killed after its step-1 checkpoint (its OUT.partial stays); returns its options."""
    cfg = dict(
        model=BASE, data=demos, micro_batch=4, grad_accum=1, max_steps=3, save_every=1, eval_fraction=0.0
    )

    def crash(step, total, metrics):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sft(SFTConfig(out=out, **cfg), on_step=crash)
    return cfg


def sft_args(cfg: dict, out: Path, *extra) -> list[str]:
    return [
        "sft",
        "--model",
        cfg["model"],
        "--data",
        str(cfg["data"]),
        "--out",
        str(out),
        "--micro-batch",
        "4",
        "--grad-accum",
        "1",
        "--max-steps",
        "3",
        "--save-every",
        "1",
        "--eval-fraction",
        "0",
        *extra,
    ]


def test_resume_refuses_other_options_or_data_and_names_them(demos, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = interrupted_sft(demos, out)
    partial = Path(str(out) + ".partial")
    before = sorted(p.name for p in partial.rglob("*"))
    assert main(sft_args(cfg, out, "--resume", "--lr", "0.001")) == 2
    err = capsys.readouterr().err
    assert "--lr was 0.0003, now 0.001" in err and "--force to start over" in err
    assert main([*sft_args(cfg, out, "--resume"), "--max-steps", "5"]) == 2
    assert "--max-steps was 3, now 5" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    write_jsonl(other, World(seed=0).demonstrations(17))
    assert main([*sft_args(cfg, out, "--resume"), "--data", str(other)]) == 2
    assert f"--data was '{demos}', now '{other}'" in capsys.readouterr().err
    assert sorted(p.name for p in partial.rglob("*")) == before  # nothing touched
    # the same path, changed bytes
    mine = tmp_path / "mine.jsonl"
    mine.write_bytes(demos.read_bytes())
    out2 = tmp_path / "run2"
    interrupted_sft(mine, out2)
    write_jsonl(mine, World(seed=0).demonstrations(17))
    assert main(sft_args({**cfg, "data": mine}, out2, "--resume")) == 2
    assert f"--data {mine}: its contents changed since the run started" in capsys.readouterr().err


def test_resume_with_the_same_options_finishes_and_records_the_input_digests(demos, tmp_path):
    out = tmp_path / "run"
    cfg = interrupted_sft(demos, out)
    assert main(sft_args(cfg, out, "--resume")) == 0
    manifest = json.loads((out / "posttrain.json").read_text())
    assert set(manifest["inputs"]) == {"model", "data"} and all(
        len(d) == 64 for d in manifest["inputs"].values()
    )


def rankings(path: Path, n: int = 3) -> Path:
    world, rows = World(seed=0), []
    for p in world.prompts("rm", n, "train"):
        rows.append(
            {
                "id": p["id"],
                "prompt": p["messages"],
                "meta": p["meta"],
                "labeler": "sim:a",
                "completions": [{"text": "yes", "source": "model:x"}, {"text": "no", "source": "model:x"}],
                "ranking": [[0], [1]],
            }
        )
    write_jsonl(path, rows)
    return path


@pytest.fixture(scope="module")
def reward_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("rm")
    assert (
        main(
            [
                "rm",
                "--model",
                BASE,
                "--data",
                str(rankings(d / "r.jsonl", n=4)),
                "--out",
                str(d / "rm"),
                "--max-steps",
                "1",
                "--eval-fraction",
                "0",
            ]
        )
        == 0
    )
    return str(d / "rm")


@pytest.mark.parametrize(
    "command",
    [
        lambda d, out, rm: ["data", "export", "--data", str(rankings(d / "r.jsonl")), "--out", str(out)],
        lambda d, out, rm: [
            "rm",
            "score",
            "--model",
            rm,
            "--data",
            str(rankings(d / "r.jsonl")),
            "--out",
            str(out),
        ],
        lambda d, out, rm: [
            "data",
            "import",
            "--format",
            "alpaca",
            "--input",
            str(alpaca(d / "a.json")),
            "--out",
            str(out),
        ],
    ],
    ids=["data export", "rm score", "data import"],
)
def test_writers_refuse_an_existing_out_without_force_and_never_their_input(
    command, tmp_path, capsys, reward_model
):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    assert main(command(tmp_path, out, reward_model)) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "precious\n"
    assert main([*command(tmp_path, out, reward_model), "--force"]) == 0 and out.read_text() != "precious\n"
    args = command(tmp_path, out, reward_model)
    source = args[args.index("--data" if "--data" in args else "--input") + 1]
    args[args.index("--out") + 1] = source
    before = Path(source).read_bytes()
    assert main([*args, "--force"]) == 2
    assert "is also an input" in capsys.readouterr().err and Path(source).read_bytes() == before


def alpaca(path: Path) -> Path:
    path.write_text(json.dumps([{"instruction": "Say hi", "input": "", "output": "hi"}]))
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        (b'\xff\xfe{"id": "a"}\n', "demos.jsonl:1: not UTF-8 text (byte 0xff at column 1)"),
        (
            (
                b'{"id": "a", "messages": [{"role": "user", "content": "\\ud800"}, {"role": "assistant", '
                b'"content": "x"}]}\n'
            ),
            "demos.jsonl:1: a string holds a lone UTF-16 surrogate",
        ),
        (
            (
                b'{"id": "a", "messages": [{"role": "assistant", "content": "hi"}, {"role": "user", '
                b'"content": "x"}]}\n'
            ),
            "demos.jsonl:1: field 'messages[0]' is an assistant turn before any user turn",
        ),
    ],
    ids=["not utf-8", "lone surrogate", "assistant first"],
)
def test_bad_files_are_refused_with_file_line_before_a_model_loads(
    content, message, tmp_path, capsys, monkeypatch
):
    import posttrain.stages.sft as stage

    monkeypatch.setattr(
        stage, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded before the check")
    )
    data = tmp_path / "demos.jsonl"
    data.write_bytes(content)
    assert main(["sft", "--model", BASE, "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("o*"))


def test_an_out_that_cannot_be_written_is_refused_before_a_model_loads(demos, tmp_path, capsys, monkeypatch):
    import posttrain.stages.sample as stage

    monkeypatch.setattr(
        stage, "load_causal_lm", lambda *a, **k: pytest.fail("the model loaded before the check")
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, World(seed=0).prompts("t", 2, "train"))
    assert (
        main(["sample", "--model", BASE, "--prompts", str(prompts), "--out", str(blocker / "s.jsonl")]) == 2
    )
    assert f"cannot write in {blocker} (not a writable folder)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["ranking"].__setitem__(0, [True]), "field 'ranking' holds index True"),
        (
            lambda r: r.__setitem__("likert", [1]),
            "field 'likert' must list one rating per completion, 2 in all",
        ),
        (lambda r: r.__setitem__("likert", [1, "7"]), "field 'likert[1]' is '7'"),
        (lambda r: r.__setitem__("likert", [True, 2]), "field 'likert[0]' is True"),
    ],
    ids=["boolean index", "short likert", "string likert", "boolean likert"],
)
def test_malformed_rankings_name_file_line_and_field(change, message, tmp_path, capsys):
    path = rankings(tmp_path / "r.jsonl", n=1)
    row = json.loads(path.read_text())
    change(row)
    write_jsonl(path, [row])
    assert main(["rm", "--model", BASE, "--data", str(path), "--out", str(tmp_path / "rm")]) == 2
    assert f"r.jsonl:1: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "meta, message",
    [
        (
            {"family": "knowledge", "task": {"kind": "nope"}},
            "meta.task is not a knowledge task of this world",
        ),
        ({"family": "nofamily", "task": {}}, "meta holds no task of the world (family 'nofamily')"),
    ],
    ids=["malformed task", "unknown family"],
)
def test_records_with_an_unknown_world_task_are_refused_before_generation(
    meta, message, tmp_path, capsys, monkeypatch
):
    import posttrain.models.load

    # compare_models imports load_causal_lm inside its body, so the module it comes from is patched
    monkeypatch.setattr(
        posttrain.models.load,
        "load_causal_lm",
        lambda *a, **k: pytest.fail("a model loaded before the check"),
    )
    prompts = tmp_path / "p.jsonl"
    write_jsonl(prompts, [{"id": "p1", "messages": [{"role": "user", "content": "hi"}], "meta": meta}])
    assert (
        main(
            [
                "eval",
                "--model",
                BASE,
                "--baseline",
                BASE,
                "--prompts",
                str(prompts),
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 2
    )
    assert f"record 'p1': {message}" in capsys.readouterr().err
