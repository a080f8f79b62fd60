"""Generation: posttrain's sampler against `model.generate`, same model, same prompts, same settings.

    bench/.venv/bin/python bench/generation.py [--model assets/base-small-seed0] [--batches 1 16 64]

Prompts are the built-in world's PPO prompts in the model's chat template, left-padded; each
batch generates up to --max-new-tokens, greedy (both sides give the same tokens, checked) and
sampled at temperature 1 (the PPO rollout setting: a seeded generator for the sampler, the
same global seed for `generate`). Throughput counts response tokens up to and including each
row's EOS; FLOPs are 2 x parameters x (prompt + response tokens), the useful work only.
The last line is the goal: sampler / generate at batch 64 >= 1.5x.
"""

from __future__ import annotations

import torch
from harness import (
    Side,
    arguments,
    efficiency,
    interleave,
    machine,
    matmul_peak,
    parameters,
    profile,
    rates,
    start,
    table,
)

from posttrain.generation.sampler import sample
from posttrain.models.load import load_causal_lm
from posttrain.world import World

GOAL = 1.5


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/base-small-seed0", help="model directory or smollm2-135m")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--modes", nargs="+", default=["greedy", "sampled"], choices=["greedy", "sampled"])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    start(args.threads)
    peak = matmul_peak()
    print(f"machine: {machine()}\nfp32 matmul peak: {peak / 1e9:.1f} GFLOP/s", flush=True)

    model, tokenizer = load_causal_lm(args.model)
    tokenizer.padding_side = "left"
    n_params = parameters(model)
    prompts = [
        tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
        for r in World(seed=0, scale="small").prompts("ppo", max(args.batches), "train")
    ]
    print(
        f"model: {args.model} ({n_params / 1e6:.2f}M parameters in matmuls), "
        f"max_new_tokens {args.max_new_tokens}, {args.repeats} interleaved repeats\n"
    )

    rows, headline = [], {}
    for batch in args.batches:
        enc = tokenizer(prompts[:batch], return_tensors="pt", padding=True, add_special_tokens=False)
        for mode in args.modes:
            ours, theirs = contenders(model, tokenizer, enc, mode, args.max_new_tokens, n_params)
            if args.profile:
                profile([ours, theirs])
                continue
            interleave([ours, theirs], args.repeats)
            row = [batch, mode, *rates(ours, theirs), efficiency(ours, peak), efficiency(theirs, peak)]
            rows.append(row)
            print(table([row], HEADER), flush=True)
            if batch == max(args.batches):
                headline[mode] = row[4:6]
    print("\n" + table(rows, HEADER))
    verdict = "; ".join(f"{mode} {wall} (wall), {cpu} (CPU time)" for mode, (wall, cpu) in headline.items())
    print(f"\ngeneration ratio sampler / generate at batch {max(args.batches)}: {verdict}; goal >= {GOAL}x")


HEADER = [
    "batch",
    "mode",
    "sampler tok/s",
    "generate tok/s",
    "ratio (wall)",
    "ratio (CPU)",
    "sampler FLOP/s (of peak)",
    "generate FLOP/s (of peak)",
]


def contenders(model, tokenizer, enc, mode: str, max_new_tokens: int, n_params: int) -> tuple[Side, Side]:
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    prompt_tokens = int(enc.attention_mask.sum())
    temperature = 0.0 if mode == "greedy" else 1.0
    outputs = {}

    def count(name: str, tokens: torch.Tensor) -> tuple[float, float]:
        outputs[name] = tokens
        # response tokens up to and including each row's first EOS (what comes after is padding)
        is_eos = tokens == eos
        n = int(torch.where(is_eos.any(1), is_eos.long().argmax(1) + 1, tokens.size(1)).sum())
        return n, 2 * n_params * (prompt_tokens + n)

    def ours():
        g = torch.Generator().manual_seed(0)
        return count(
            "ours",
            sample(
                model,
                enc.input_ids,
                enc.attention_mask,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                eos_token_id=eos,
                pad_token_id=pad,
                generator=g,
            ),
        )

    def theirs():
        torch.manual_seed(0)
        settings = (
            {"do_sample": False} if mode == "greedy" else {"do_sample": True, "temperature": 1.0, "top_k": 0}
        )
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad, **settings
            )
        return count("theirs", out[:, enc.input_ids.size(1) :])

    def checked(run):
        def wrapped():
            result = run()
            if mode == "greedy" and len(outputs) == 2 and not torch.equal(outputs["ours"], outputs["theirs"]):
                raise SystemExit("greedy outputs differ between the sampler and generate")
            return result

        return wrapped

    return Side("sampler", checked(ours)), Side("generate", checked(theirs))


if __name__ == "__main__":
    main()
