"""torchrun with 2 gloo processes, DDP and FSDP2, against one process on the same global batch.

Each stage (pretrain, sft, rm, ppo) runs 5 steps through the real command line
(`python -m torch.distributed.run --standalone --nproc-per-node 2 -m posttrain ...`) in float64
(`--dtype fp64`, so that the only differences left are the order of sums), and must end with the single
process's per-step losses and final weights to 1e-5 relative, while having moved the weights much further than
that. The batches are chosen so a rank is short of examples in some micro-batch (the filler path) and the last
batch of an epoch is uneven. A run stopped at step 4 by 2 processes is resumed by 1 and ends on the
uninterrupted run's weights.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from posttrain.cli import main

RTOL = 1e-5


def torchrun(args: list[str], *, script: Path | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    """Two gloo processes on this CPU; `script` instead of `-m posttrain` for a custom entry point."""
    entry = [str(script)] if script else ["-m", "posttrain"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            *entry,
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == expect, proc.stderr[-4000:]
    return proc


STAGES = {
    # batch 5 = 3 + 2 rows per rank: one filler micro-batch on rank 1 each step (micro-batch 1, 3 passes)
    "sft": lambda d: [
        "sft",
        "--model",
        str(d / "model"),
        "--data",
        str(d / "demos.jsonl"),
        "--max-steps",
        "5",
        "--micro-batch",
        "1",
        "--grad-accum",
        "5",
        "--warmup-steps",
        "1",
        "--lr",
        "3e-3",
        "--eval-every",
        "2",
        "--eval-fraction",
        "0.1",
    ],
    # 5 rankings a step, scored 2 per pass: rank 0 passes 2 and 1, rank 1 one pass and a filler
    "rm": lambda d: [
        "rm",
        "--model",
        str(d / "model"),
        "--data",
        str(d / "rankings.jsonl"),
        "--max-steps",
        "5",
        "--micro-batch",
        "2",
        "--grad-accum",
        "3",
        "--warmup-steps",
        "1",
        "--lr",
        "3e-3",
        "--eval-every",
        "2",
        "--eval-fraction",
        "0.2",
    ],
    # PPO-ptx with a value function: 8 episodes a step, 2 minibatches of 4 (2 per rank), 2 epochs
    "ppo": lambda d: [
        "ppo",
        "--policy",
        str(d / "model"),
        "--reward",
        str(d / "rm"),
        "--prompts",
        str(d / "prompts.jsonl"),
        "--max-steps",
        "5",
        "--rollout-batch",
        "8",
        "--minibatches",
        "2",
        "--micro-batch",
        "1",
        "--ppo-epochs",
        "2",
        "--max-new-tokens",
        "8",
        "--lr",
        "3e-3",
        "--ptx",
        str(d / "corpus.jsonl"),
        "--ptx-batch",
        "4",
        "--ptx-seq-len",
        "16",
        "--eval-every",
        "2",
        "--heldout-corpus",
        str(d / "corpus.jsonl"),
    ],
}
# a new tied-embedding Llama and its tokenizer, trained from scratch
STAGES["pretrain"] = lambda d: [
    "pretrain",
    "--data",
    str(d / "corpus.jsonl"),
    "--size",
    "tiny",
    "--max-steps",
    "5",
    "--micro-batch",
    "2",
    "--grad-accum",
    "3",
    "--seq-len",
    "16",
    "--vocab-size",
    "300",
    "--warmup-steps",
    "1",
    "--eval-every",
    "2",
]
# LoRA (peft) adapters sharded by FSDP2; PPO's reference is the policy with its adapter off
STAGES["sft-lora"] = lambda d: [*STAGES["sft"](d), "--lora-r", "4", "--lr", "1e-2"]
STAGES["ppo-lora"] = lambda d: [*STAGES["ppo"](d), "--lora-r", "4", "--lr", "1e-2"]
SINGLE: dict[str, Path] = {}


def single(world: Path, stage: str) -> Path:
    """The one-process run of `stage` (made once per module)."""
    if stage not in SINGLE:
        out = world / f"{stage}-single"
        assert main([*STAGES[stage](world), "--dtype", "fp64", "--threads", "1", "--out", str(out)]) == 0
        SINGLE[stage] = out
    return SINGLE[stage]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def relative(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], common: bool = False) -> float:
    """The largest difference of a tensor, over that tensor's largest entry, over all tensors (over the names
    both have, when `common`: a reward model against the causal LM it started from)."""
    assert common or a.keys() == b.keys()
    return max(
        float((a[k] - b[k].to(a[k].dtype)).abs().max() / a[k].abs().max().clamp(min=1e-30))
        for k in a
        if k in b
    )


def losses(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if "loss" in k or k == "step"}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def assert_same_losses(l1: list[dict], l2: list[dict]) -> None:
    assert [r["step"] for r in l1] == [r["step"] for r in l2]
    for a, b in zip(l1, l2):
        assert a.keys() == b.keys() and len(a) > 1
        for k in a:
            assert abs(a[k] - b[k]) <= RTOL * max(abs(a[k]), 1e-12), (k, a, b)


def assert_same_run(one: Path, two: Path, start: Path | None) -> None:
    w1, w2 = weights(one), weights(two)
    if start is not None:
        assert relative(w1, weights(start), common=True) > 1e-3, (
            "the weights did not move: the test would prove nothing"
        )
    else:  # trained from a random start
        assert losses(one)[-1]["pretrain/loss"] < losses(one)[0]["pretrain/loss"] - 0.1
    assert relative(w1, w2) < RTOL
    assert [r["step"] for r in losses(one)] == [1, 2, 3, 4, 5]
    assert_same_losses(losses(one), losses(two))


@pytest.mark.parametrize(
    "stage, engine",
    [(s, e) for s in ("sft", "rm", "ppo") for e in ("ddp", "fsdp")]
    + [("sft-lora", "fsdp"), ("ppo-lora", "ddp"), ("pretrain", "fsdp")],
)
def test_two_processes_end_where_one_does(stage_inputs, stage, engine):
    world = stage_inputs
    one = single(world, stage)
    two = world / f"{stage}-{engine}"
    proc = torchrun(
        [
            *STAGES[stage](world),
            "--dtype",
            "fp64",
            "--out",
            str(two),
            *(["--fsdp"] if engine == "fsdp" else []),
        ]
    )
    assert_same_run(one, two, None if stage == "pretrain" else world / "model")
    assert proc.stdout.count("wrote ") == 1, "only rank 0 prints the command's output"
    manifest = json.loads((two / "posttrain.json").read_text())
    assert manifest["metrics"]["steps"] == 5


def test_a_run_of_two_processes_resumes_in_one(stage_inputs, tmp_path):
    """FSDP2 (sharded optimizer state) stopped after step 4's checkpoint, resumed without torchrun."""
    world = stage_inputs
    out = tmp_path / "sft"
    args = [*STAGES["sft"](world), "--dtype", "fp64", "--save-every", "2", "--max-steps", "7"]
    stop = tmp_path / "stop_at_5.py"
    stop.write_text(
        textwrap.dedent("""
        import sys
        import posttrain.stages.sft as sft
        from posttrain.cli import main

        calls, step = [0], sft.train_step
        def stopping(*a, **k):   # on every rank: the 5th step never starts, as if the job were killed
            calls[0] += 1
            if calls[0] == 5:
                raise SystemExit(9)
            return step(*a, **k)
        sft.train_step = stopping
        sys.exit(main(sys.argv[1:]))
    """)
    )
    torchrun([*args, "--fsdp", "--out", str(out)], script=stop, expect=1)
    checkpoints = sorted(p.name for p in (tmp_path / "sft.partial" / "checkpoints").iterdir())
    assert checkpoints == ["step-000002", "step-000004"] and not out.exists()
    assert main([*args, "--threads", "1", "--out", str(out), "--resume"]) == 0
    assert main([*args, "--threads", "1", "--out", str(tmp_path / "whole")]) == 0
    assert relative(weights(tmp_path / "whole"), weights(out)) < RTOL
    assert_same_losses(losses(tmp_path / "whole"), losses(out))  # steps 1-4 by 2 processes, 5-7 by 1


def test_sizes_the_world_size_does_not_divide_are_refused(stage_inputs, tmp_path):
    world = stage_inputs
    proc = torchrun(
        [
            *STAGES["ppo"](world),
            "--rollout-batch",
            "6",
            "--minibatches",
            "2",
            "--micro-batch",
            "3",
            "--out",
            str(tmp_path / "odd"),
        ],
        expect=1,
    )
    assert "posttrain: error (rank 0): 2 processes share each batch equally" in proc.stderr
    assert "posttrain/stages" not in proc.stderr  # torchrun reports the failed ranks; no posttrain traceback
