"""Issue 27's latency check: the unconstrained streams' time to first token and latency on the server as it
was before issue 27, against the server now with a request constrained to a JSON schema among them.

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve_constrained.py    # 50 streams, max_tokens 32, 3 rounds

The commit before issue 27's decoder work (--baseline, 88cb833^: logit_bias and log-probabilities came
first, then structured output) is exported with `git archive` into a temporary directory. Each round
starts `posttrain serve` from that snapshot and from this checkout, in the order A B, B A, A B (as
bench/harness.py alternates, so a change in the machine's load falls on both), each on the same model
files, and sends both the same requests from the same client, this checkout's bench/serve_load.py: only
the server differs. The old server gets them all unconstrained; the new one gets --constrained of them
(default 1) with `response_format` json_schema (serve_load.SCHEMA, strict), reported apart. Before the
rounds, each side's Python is asked which `posttrain` it imports, to show the snapshot's is the old one.
The servers run with OMP_NUM_THREADS=1 unless it is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import serve_load

ROOT = serve_load.ROOT
KEY = "bench-key"
FIGURES = {
    "ttft_p50": "time to first token p50",
    "ttft_p95": "time to first token p95",
    "latency_p50": "latency p50",
    "latency_p95": "latency p95",
}


@dataclass
class Side:
    name: str
    source: Path  # the directory whose posttrain/ the server runs
    constrained: int
    runs: list[dict[str, float]] = field(default_factory=list)  # serve_load.summary of unconstrained
    verdicts: list[str] = field(default_factory=list)  # serve_load.verdict of each constrained reply


def export(rev: str, into: Path) -> None:
    """`git archive` of `rev`, unpacked in `into`."""
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", rev], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait():
        raise SystemExit(f"git archive {rev} failed (exit code {archive.returncode})")


def posttrain_of(source: Path) -> str:
    """The `posttrain/__init__.py` a server started from `source` imports (serve_load.start_server's
    directory and PYTHONPATH); a SystemExit if it is not `source`'s."""
    found = subprocess.run(
        [sys.executable, "-c", "import posttrain; print(posttrain.__file__)"],
        cwd=source,
        env=serve_load.source_env(source),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"a server started from {source} would import {found}, not its own posttrain")
    return found


def run(side: Side, args) -> None:
    """One server start, one load, one stop; serve_load's report printed, the figures kept."""
    proc, url = serve_load.start_server(args.model, KEY, args.max_batch, source=side.source)
    try:
        load = serve_load.load(
            url, KEY, Path(args.model).name, args.concurrency, args.max_tokens, side.constrained
        )
        results, wall = asyncio.run(load)
    finally:
        serve_load.stop_server(proc)
    serve_load.report(results, wall, args.max_tokens)
    side.runs.append(serve_load.summary([r for r in results if not r["constrained"]]))
    side.verdicts += [serve_load.verdict(r["text"]) for r in results if r["constrained"]]


def compare(before: Side, now: Side) -> None:
    """Each figure's median over the rounds, per side, and now/before."""
    rounds = len(now.runs)
    print(f"\nunconstrained streams, median of {rounds} round{'s' * (rounds != 1)}")
    print(f"{'':<26}{before.name:>18}{now.name:>18}{'now/before':>12}")
    for key, title in FIGURES.items():
        old = statistics.median(r[key] for r in before.runs)
        new = statistics.median(r[key] for r in now.runs)
        print(f"{title:<26}{old:>16.3f} s{new:>16.3f} s{new / old:>12.2f}")
    if now.verdicts:
        valid = now.verdicts.count("valid")
        print(f"constrained replies valid JSON for the schema: {valid} of {len(now.verdicts)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="88cb833^", help="the commit before (default 88cb833^)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, alternated (default 3)")
    parser.add_argument("--model", default=str(ROOT / "assets" / "base-small-seed0"), help="model to serve")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight at once (default 50)")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per response at most (default 32)")
    parser.add_argument("--max-batch", type=int, default=32, help="both servers' --max-batch (default 32)")
    parser.add_argument(
        "--constrained", type=int, default=1, help="constrained requests sent to the new server (default 1)"
    )
    args = parser.parse_args()
    if not 0 <= args.constrained < args.concurrency:
        parser.error(
            f"--constrained {args.constrained}: give 0 to {args.concurrency - 1} (one less than "
            "--concurrency), so that some streams are unconstrained"
        )
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline], capture_output=True, text=True
    ).stdout.strip()
    if not rev:
        parser.error(f"--baseline {args.baseline}: not a commit of {ROOT}")
    with tempfile.TemporaryDirectory(prefix="posttrain-before-") as snapshot:
        export(rev, Path(snapshot))
        before = Side(f"before {rev}", Path(snapshot), constrained=0)
        now = Side("now", ROOT, constrained=args.constrained)
        for side in (before, now):
            print(f"{side.name}: posttrain from {posttrain_of(side.source)}")
        print(
            f"{args.concurrency} streams, max_tokens {args.max_tokens}, max_batch {args.max_batch}, "
            f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; {args.constrained} constrained on 'now'"
        )
        for r in range(args.rounds):
            for side in (before, now) if r % 2 == 0 else (now, before):
                print(f"\n== round {r + 1}, {side.name}")
                run(side, args)
    compare(before, now)
    return 0


if __name__ == "__main__":
    sys.exit(main())
