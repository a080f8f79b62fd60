"""Command lines several test files run: PPO for a few steps on the tiny models of conftest's `setup`."""

from pathlib import Path


def ppo_args(root: Path, out: str, *extra: str) -> list[str]:
    return [
        "ppo",
        "--policy",
        str(root / "sft"),
        "--reward",
        str(root / "rm"),
        "--prompts",
        str(root / "prompts.jsonl"),
        "--out",
        str(root / out),
        "--rollout-batch",
        "8",
        "--minibatches",
        "2",
        "--micro-batch",
        "2",
        "--ppo-epochs",
        "2",
        "--max-new-tokens",
        "8",
        "--lr",
        "1e-3",
        "--threads",
        "1",
        *extra,
    ]
