"""The demo's world scale (demo_presets.SCALE, small2 since its base shipped) picks its shipped base, the
world it exports (small2's corpus cut to what PPO-ptx needs) and the world every stage and evaluation judges
with; the small world still runs when SCALE names it; a missing shipped base is a clear error; a demo begun
on another scale is refused."""

import json

import pytest

import posttrain.commands.demo_presets as presets
import posttrain.commands.demo_steps as steps
import posttrain.commands.world as world_cmd
from posttrain.cli import main
from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_presets import PRESETS, PTX_DOCUMENTS, DemoWorld
from posttrain.data.records import write_jsonl
from posttrain.world import World


def on_small2(monkeypatch, base):
    """The demo on small2 with its shipped base replaced by `base` (missing, or a stand-in folder)."""
    monkeypatch.setitem(presets.WORLDS, "small2", DemoWorld("small2", base, "its page", PTX_DOCUMENTS))
    monkeypatch.setattr(presets, "SCALE", "small2")


@pytest.fixture
def exports(monkeypatch):
    """The world step's export configs, recorded instead of run."""
    seen = []
    monkeypatch.setattr(world_cmd, "world_export", seen.append)
    return seen


def test_the_demo_runs_on_small2_and_its_shipped_base(tmp_path, exports):
    assert presets.SCALE == "small2" and presets.demo_world().base == presets.ASSETS / "base-small2-seed0"
    assert (presets.demo_world().base / "config.json").is_file()  # shipped: the demo needs no pretraining
    cfg = DemoConfig(out=tmp_path)
    steps.plan(cfg, PRESETS["small"])[0][2]()
    (export,) = exports
    assert (export.scale, export.seed, export.corpus_documents) == ("small2", 0, PTX_DOCUMENTS)
    c = steps.stage_configs(cfg, PRESETS["small"])
    assert c["sft"].model == str(presets.ASSETS / "base-small2-seed0")
    assert c["label"].scale == c["rm"].scale == c["ppo"].scale == "small2"
    assert c["ppo"].ptx == tmp_path / "world" / "corpus.jsonl"


def test_set_to_the_small_world_the_demo_runs_on_it_and_its_shipped_base(tmp_path, monkeypatch, exports):
    monkeypatch.setattr(presets, "SCALE", "small")
    assert presets.demo_world().base == presets.ASSETS / "base-small-seed0"
    cfg = DemoConfig(out=tmp_path)
    steps.plan(cfg, PRESETS["small"])[0][2]()
    (export,) = exports
    assert (export.scale, export.seed, export.corpus_documents) == ("small", 0, None)  # its whole corpus
    c = steps.stage_configs(cfg, PRESETS["small"])
    assert c["sft"].model == str(presets.ASSETS / "base-small-seed0")
    assert c["label"].scale == c["rm"].scale == c["ppo"].scale == "small"


def test_on_small2_without_its_base_the_demo_says_which_asset_and_how_to_make_it(
    tmp_path, monkeypatch, capsys
):
    missing = tmp_path / "assets" / "base-small2-seed0"
    on_small2(monkeypatch, missing)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "small2" in err
    assert "world export --scale small2" in err and "posttrain pretrain" in err and "--base B" in err
    assert "Traceback" not in err and not out.exists()


def test_on_small2_the_demo_exports_its_world_with_the_corpus_ptx_needs(
    tmp_path, monkeypatch, exports, no_steps
):
    base = tmp_path / "base2"
    base.mkdir()
    (base / "config.json").write_text("{}")
    on_small2(monkeypatch, base)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 2  # the checks let it through
    cfg = no_steps[-1]
    assert json.loads((out / "demo.json").read_text())["scale"] == "small2"
    steps.plan(cfg, PRESETS["small"])[0][2]()
    (export,) = exports
    assert (export.scale, export.corpus_documents) == ("small2", PTX_DOCUMENTS)
    c = steps.stage_configs(cfg, PRESETS["small"])
    assert c["sft"].model == str(base)
    assert c["label"].scale == c["rm"].scale == c["ppo"].scale == "small2"
    assert c["ppo"].ptx == out / "world" / "corpus.jsonl"


def test_on_small2_each_test_set_is_judged_in_the_small2_world(tmp_path, monkeypatch):
    import posttrain.evaluation.compare as compare
    import posttrain.evaluation.report as report

    on_small2(monkeypatch, tmp_path / "base2")
    world = tmp_path / "world"
    write_jsonl(world / "test.jsonl", World(seed=0, scale="small2").prompts("test", 3, "test"))
    write_jsonl(world / "corpus_heldout.jsonl", [{"text": "A held-out page."}])
    judged = []
    monkeypatch.setattr(compare, "compare_models", lambda *a, **k: judged.append(a[3]) or {"config": {}})
    monkeypatch.setattr(report, "write_report", lambda summary, out: None)
    steps.evaluate_test_set(DemoConfig(out=tmp_path), presets.TEST_SETS[0])
    assert judged[0].scale.name == "small2"


def test_a_demo_begun_on_the_small_world_is_not_continued_on_small2(tmp_path, monkeypatch, capsys, no_steps):
    monkeypatch.setattr(presets, "SCALE", "small")
    out = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2
    assert "the steps would run now" in capsys.readouterr().err
    base = tmp_path / "base2"
    base.mkdir()
    (base / "config.json").write_text("{}")
    on_small2(monkeypatch, base)
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2
    assert "the world's scale was 'small', now 'small2'" in capsys.readouterr().err and len(no_steps) == 1
    # a demo.json from before the scale was recorded is of the small world, refused the same way
    (out / "demo.json").write_text(json.dumps({"preset": "tiny", "seed": 0, "world_seed": 0, "base": None}))
    assert main(["demo", "--preset", "tiny", "--out", str(out)]) == 2
    assert "the world's scale was 'small', now 'small2'" in capsys.readouterr().err and len(no_steps) == 1
