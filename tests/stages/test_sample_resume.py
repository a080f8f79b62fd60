"""`posttrain sample --resume` after a real SIGKILL: the file equals an uninterrupted run's, skipped
prompts and a torn last line included; a resume with other options or prompts is refused."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posttrain.cli import main
from posttrain.data.records import write_jsonl
from posttrain.world import World
from tests import tiny

BASE = str(tiny.BASE)

# The real stage, with two changes for the test: each batch takes `sys.argv[1]` seconds longer (so a
# kill lands between batches), and every third prompt's completions come back empty (so it is skipped).
WRAPPER = """
import sys, time
import posttrain.stages.sample as stage
real = stage.sample_k
def sample_k(*args, **kwargs):
    results = real(*args, **kwargs)
    time.sleep(float(sys.argv[1]))
    return [[("", reason) for _, reason in r] if i % 3 == 0 else r for i, r in enumerate(results)]
stage.sample_k = sample_k
from posttrain.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.jsonl"
    write_jsonl(path, World(seed=0).prompts("t", 12, "train"))
    return path


def sample_args(prompts, out, *extra):
    return [
        "sample",
        "--model",
        BASE,
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--k",
        "2",
        "--max-new-tokens",
        "6",
        "--batch-size",
        "4",
        *extra,
    ]


def run_sample(args, delay=0.0, **popen):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(delay), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def killed_once_started(args, out: Path, lines: int = 1) -> Path:
    """Start a slow run, SIGKILL it once OUT.partial holds `lines` lines; returns OUT.partial."""
    partial = Path(str(out) + ".partial")
    killed = run_sample(args, delay=30.0 if lines == 1 else 3.0)
    deadline = time.monotonic() + 120
    while not (partial.exists() and len(partial.read_text().splitlines()) >= lines):
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    return partial


def test_sigkill_then_resume_equals_an_uninterrupted_run(prompts, tmp_path):
    whole = tmp_path / "whole.jsonl"
    done = run_sample(sample_args(prompts, whole))
    assert done.wait(timeout=120) == 0, done.stderr.read()
    assert "6 prompts skipped" in done.stderr.read()

    cut = tmp_path / "cut.jsonl"
    partial = killed_once_started(sample_args(prompts, cut), cut, lines=2)  # header + batch 0
    assert not cut.exists()
    with partial.open("a") as f:
        f.write('{"batch": 2, "records": [{"id": "t-0')  # a write cut short, as a kill mid-line leaves it
    resumed = run_sample(sample_args(prompts, cut, "--resume"))
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    assert "dropped an unfinished last line" in resumed.stderr.read()
    assert cut.read_bytes() == whole.read_bytes()
    assert len(cut.read_text().splitlines()) == 6 and not partial.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (("--k", "3"), "--k was 2, now 3"),
        (("--seed", "1"), "--seed was 0, now 1"),
    ],
)
def test_resume_with_other_options_is_refused(prompts, tmp_path, capsys, change, message):
    out = tmp_path / "s.jsonl"
    partial = killed_once_started(sample_args(prompts, out, "--max-prompts", "4"), out)
    before = partial.read_bytes()
    assert main(sample_args(prompts, out, "--max-prompts", "4", "--resume", *change)) == 2
    err = capsys.readouterr().err
    assert message in err and "--force to start over" in err
    assert partial.read_bytes() == before and not out.exists()


def test_resume_with_changed_prompts_is_refused(prompts, tmp_path, capsys):
    mine = tmp_path / "prompts.jsonl"
    mine.write_bytes(prompts.read_bytes())
    out = tmp_path / "s.jsonl"
    killed_once_started(sample_args(mine, out), out)
    write_jsonl(mine, World(seed=0).prompts("t", 13, "train"))
    assert main(sample_args(mine, out, "--resume")) == 2
    assert f"--prompts {mine}: its contents changed since the run started" in capsys.readouterr().err
