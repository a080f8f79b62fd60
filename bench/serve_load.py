"""Load benchmark for `posttrain serve`: N concurrent streaming chat requests, latency percentiles.

    .venv/bin/python bench/serve_load.py    # starts a server on the shipped base model
    .venv/bin/python bench/serve_load.py --model runs/demo/sft --concurrency 50 --max-tokens 32
    # an already running server:
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8000 --model-id sft
    # one of the 50 constrained to a JSON schema (issue 27), reported apart from the other 49:
    .venv/bin/python bench/serve_load.py --constrained 1

Without --url it starts `posttrain serve MODEL --port 0` as a subprocess (its own process, so the
client's event loop does not share a GIL with the server) and stops it with SIGINT at the end.
Every request streams; time to first token is measured to the first content chunk, latency to
the `[DONE]` event. All requests start together, so the numbers include queueing. With --constrained N,
N of the requests (spread evenly, the first among them) ask for `response_format` json_schema (SCHEMA,
strict); their times are reported apart from the unconstrained streams', with whether each reply is JSON
that follows the schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A small nested schema, every string and array bounded: its longest answer, {"id": "abcd", "at": {"of":
# [1, 2]}}, is 31 tokens of the shipped base's vocabulary (which spells JSON's punctuation a character a
# token) and end-of-sequence the 32nd, so a constrained reply can finish within --max-tokens 32.
SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 4},
        "at": {
            "type": "object",
            "properties": {
                "of": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0, "maximum": 9},
                    "minItems": 1,
                    "maxItems": 2,
                }
            },
            "required": ["of"],
            "additionalProperties": False,
        },
    },
    "required": ["id", "at"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def schema_errors(value, schema: dict, where: str = "$") -> list[str]:
    """Where `value` breaks `schema`, for the keywords SCHEMA uses (no jsonschema dependency for one
    check): type, properties, required, additionalProperties false, items, min/maxLength, min/maxItems,
    minimum/maximum."""
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}
    if kind and (not isinstance(value, types[kind]) or (kind == "integer" and isinstance(value, bool))):
        return [f"{where}: not {kind}"]
    errors = []
    if kind == "object":
        errors += [f"{where}: no {k!r}" for k in schema.get("required", []) if k not in value]
        for k, v in value.items():
            if k in schema.get("properties", {}):
                errors += schema_errors(v, schema["properties"][k], f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unexpected {k!r}")
    if kind == "array":
        errors += [
            e for j, v in enumerate(value) for e in schema_errors(v, schema.get("items", {}), f"{where}[{j}]")
        ]
    measure = len(value) if kind in ("string", "array") else value
    for low, high in (("minLength", "maxLength"), ("minItems", "maxItems"), ("minimum", "maximum")):
        if (low in schema and measure < schema[low]) or (high in schema and measure > schema[high]):
            errors.append(f"{where}: {measure} outside {low} {schema.get(low)}, {high} {schema.get(high)}")
    return errors


def verdict(text: str) -> str:
    """'valid', or why a constrained reply is not JSON following SCHEMA."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return f"not JSON ({e})"
    errors = schema_errors(value, SCHEMA)
    return "; ".join(errors) if errors else "valid"


async def one_request(client, model: str, i: int, max_tokens: int, constrained: bool = False) -> dict:
    start = time.perf_counter()
    first, pieces, reasons = None, [], []
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Question {i}: what is the capital of Keia?"}],
        max_tokens=max_tokens,
        temperature=1.0,
        seed=i,
        stream=True,
        stream_options={"include_usage": True},
        **({"response_format": RESPONSE_FORMAT} if constrained else {}),
    )
    tokens = 0
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                first = first or time.perf_counter()
                pieces.append(choice.delta.content)
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
        "constrained": constrained,
        "finish_reason": reasons[-1] if reasons else None,
        "text": "".join(pieces),
    }


def constrained_indices(concurrency: int, constrained: int) -> set[int]:
    """Which requests carry the schema: `constrained` of them spread evenly, request 0 first (sent first,
    so it joins the first batch, among the most streams)."""
    return {j * concurrency // constrained for j in range(constrained)} if constrained else set()


async def load(
    url: str, key: str, model: str, concurrency: int, max_tokens: int, constrained: int = 0
) -> tuple[list[dict], float]:
    import openai

    chosen = constrained_indices(concurrency, constrained)
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=600) as client:
        # warm-up: the first forward pass, imports and, for a constrained run, the server's one-time reading
        # of the vocabulary into the grammar library (each request's schema is compiled anew, so the
        # measured requests still pay for that)
        await one_request(client, model, -1, 4)
        if chosen:
            await one_request(client, model, -2, 4, constrained=True)
        start = time.perf_counter()
        results = await asyncio.gather(
            *(one_request(client, model, i, max_tokens, i in chosen) for i in range(concurrency))
        )
        return results, time.perf_counter() - start


def start_server(model: str, key: str, max_batch: int, source: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`posttrain serve` from `source`'s posttrain package (another commit's `git archive`, say): run in
    that directory, which `python -m` puts first on sys.path, and first on PYTHONPATH too."""
    feedback = Path(tempfile.mkdtemp()) / "feedback.jsonl"
    env = {**source_env(source), "POSTTRAIN_API_KEY": key}
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
        cwd=source,
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


def source_env(source: Path) -> dict[str, str]:
    """This process's environment with `source` first on PYTHONPATH (before the venv's editable install of
    this checkout, which Python's path finder comes ahead of)."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), *rest])}


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)


def summary(results: list[dict]) -> dict[str, float]:
    """p50, p95 and max of time to first token and of latency, as `ttft_p50`, ..., `latency_max`."""
    out = {}
    for name in ("ttft", "latency"):
        values = [r[name] for r in results]
        out |= {f"{name}_p50": percentile(values, 50), f"{name}_p95": percentile(values, 95)}
        out[f"{name}_max"] = max(values)
    return out


def report(results: list[dict], wall: float, max_tokens: int) -> None:
    tokens = sum(r["tokens"] for r in results)
    constrained = [r for r in results if r["constrained"]]
    print(
        f"{len(results)} concurrent streaming requests"
        + (f" ({len(constrained)} constrained)" if constrained else "")
        + f", max_tokens {max_tokens}, {sum(r['finished'] for r in results)} finished, {tokens} tokens in "
        f"{wall:.2f} s ({tokens / wall:.0f} tokens/s)"
    )
    plain = [r for r in results if not r["constrained"]]
    for label, group in (("unconstrained", plain), ("constrained, json_schema strict", constrained)):
        if not group:
            continue
        if constrained:
            print(f"{label} ({len(group)})")
        s = summary(group)
        for name, title in (("ttft", "time to first token"), ("latency", "latency")):
            print(
                f"{title:<20} p50 {s[f'{name}_p50']:.3f} s   p95 {s[f'{name}_p95']:.3f} s   "
                f"max {s[f'{name}_max']:.3f} s"
            )
    verdicts = [verdict(r["text"]) for r in constrained]
    for r, v in zip(constrained, verdicts):
        if v != "valid":
            print(f"constrained reply ({r['finish_reason']}, {r['tokens']} tokens) {v}: {r['text']!r}")
    if constrained:
        print(
            f"constrained replies valid JSON for the schema: {verdicts.count('valid')} of {len(constrained)}"
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
    parser.add_argument(
        "--constrained",
        type=int,
        default=0,
        help="how many of the requests ask for response_format json_schema (default 0)",
    )
    args = parser.parse_args()
    if not 0 <= args.constrained <= args.concurrency:
        parser.error(f"--constrained {args.constrained}: give 0 to --concurrency, {args.concurrency}")
    model_id = args.model_id or Path(args.model).name
    proc, url = (None, args.url) if args.url else start_server(args.model, args.api_key, args.max_batch)
    try:
        results, wall = asyncio.run(
            load(url, args.api_key, model_id, args.concurrency, args.max_tokens, args.constrained)
        )
    finally:
        if proc is not None:
            stop_server(proc)
    report(results, wall, args.max_tokens)
    return 0 if all(r["finished"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
