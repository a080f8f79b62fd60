"""Load benchmark for `posttrain serve`: N concurrent streaming chat requests, latency percentiles.

    .venv/bin/python bench/serve_load.py    # starts a server on the shipped base model
    .venv/bin/python bench/serve_load.py --model runs/demo/sft --concurrency 50 --max-tokens 32
    # an already running server:
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8000 --model-id sft

Without --url it starts `posttrain serve MODEL --port 0` as a subprocess (its own process, so the
client's event loop does not share a GIL with the server) and stops it with SIGINT at the end.
Every request streams; time to first token is measured to the first content chunk, latency to
the `[DONE]` event. All requests start together, so the numbers include queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


async def one_request(client, model: str, i: int, max_tokens: int) -> dict:
    start = time.perf_counter()
    first, pieces, reasons = None, 0, []
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Question {i}: what is the capital of Keia?"}],
        max_tokens=max_tokens,
        temperature=1.0,
        seed=i,
        stream=True,
        stream_options={"include_usage": True},
    )
    tokens = 0
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                first = first or time.perf_counter()
                pieces += 1
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return {
        "ttft": (first or end) - start,
        "latency": end - start,
        "tokens": tokens,
        "finished": bool(reasons),
    }


async def load(url: str, key: str, model: str, concurrency: int, max_tokens: int) -> tuple[list[dict], float]:
    import openai

    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=600) as client:
        await one_request(client, model, -1, 4)  # warm-up: first forward pass, imports
        start = time.perf_counter()
        results = await asyncio.gather(
            *(one_request(client, model, i, max_tokens) for i in range(concurrency))
        )
        return results, time.perf_counter() - start


def start_server(model: str, key: str, max_batch: int) -> tuple[subprocess.Popen, str]:
    feedback = Path(tempfile.mkdtemp()) / "feedback.jsonl"
    env = {**os.environ, "POSTTRAIN_API_KEY": key}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "posttrain.cli",
            "serve",
            model,
            "--port",
            "0",
            "--feedback",
            str(feedback),
            "--max-batch",
            str(max_batch),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if m := re.search(r"at (http://[\d.]+:\d+)/v1", line):
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit(f"the server did not start (exit code {proc.poll()})")


def report(results: list[dict], wall: float, args) -> None:
    ttft = [r["ttft"] for r in results]
    latency = [r["latency"] for r in results]
    tokens = sum(r["tokens"] for r in results)
    print(
        f"{len(results)} concurrent streaming requests, max_tokens {args.max_tokens}, "
        f"{sum(r['finished'] for r in results)} finished, {tokens} tokens in {wall:.2f} s "
        f"({tokens / wall:.0f} tokens/s)"
    )
    print(
        f"time to first token  p50 {percentile(ttft, 50):.3f} s   p95 {percentile(ttft, 95):.3f} s   "
        f"max {max(ttft):.3f} s"
    )
    print(
        f"latency              p50 {percentile(latency, 50):.3f} s   p95 {percentile(latency, 95):.3f} s   "
        f"max {max(latency):.3f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "base-small-seed0"), help="model to serve")
    parser.add_argument("--url", help="benchmark a running server instead of starting one")
    parser.add_argument("--model-id", help="the served model id (default: MODEL's directory name)")
    parser.add_argument("--api-key", default="bench-key", help="API key (the started server gets it too)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight at once (default 50)")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per response at most (default 32)")
    parser.add_argument(
        "--max-batch", type=int, default=32, help="the started server's --max-batch (default 32)"
    )
    args = parser.parse_args()
    model_id = args.model_id or Path(args.model).name
    proc, url = (None, args.url) if args.url else start_server(args.model, args.api_key, args.max_batch)
    try:
        results, wall = asyncio.run(load(url, args.api_key, model_id, args.concurrency, args.max_tokens))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    report(results, wall, args)
    return 0 if all(r["finished"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
