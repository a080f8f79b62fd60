"""SFT: posttrain's training step against TRL's SFTTrainer on the same batches.

    bench/.venv/bin/python bench/sft.py [--model assets/base-small-seed0] [--batch 8] [--steps 4]

The world's demonstrations are encoded once by posttrain (chat template, labels on assistant
tokens only) and cut into length-grouped batches by posttrain's own plan (`LengthGroupedPlan`,
what `posttrain sft` trains on). posttrain runs `posttrain.stages.sft.train_step` on them; TRL's
SFTTrainer gets the same token ids and labels as a pre-tokenized dataset, in the same order, the
same batch size, fp32, AdamW, lr, gradient clipping 1.0, no gradient checkpointing or packing.
Throughput is tokens (every non-pad token of a batch) per second over the steps after an untimed
first one; FLOPs are 6 x parameters x those tokens. The last line is posttrain / TRL.
"""

from __future__ import annotations

import copy
import tempfile

from harness import (
    TRL_AS_POSTTRAIN,
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
    step_clock,
    table,
    timed_steps,
)

from posttrain.data.chat import encode_chat
from posttrain.models.load import load_causal_lm
from posttrain.stages import sft as sft_stage
from posttrain.training.step import adamw
from posttrain.world import World

LR = 1e-4


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/base-small-seed0")
    parser.add_argument("--batch", type=int, default=8, help="conversations per optimizer step")
    parser.add_argument(
        "--steps", type=int, default=4, help="timed optimizer steps per repeat (after an untimed one)"
    )
    args = parser.parse_args()
    start(args.threads)
    peak = matmul_peak()
    print(f"machine: {machine()}\nfp32 matmul peak: {peak / 1e9:.1f} GFLOP/s", flush=True)

    model, tokenizer = load_causal_lm(args.model)
    n_params = parameters(model)
    examples = [
        encode_chat(tokenizer, r["messages"]) for r in World(seed=0, scale="small").demonstrations(400)
    ]
    plan = sft_stage.LengthGroupedPlan([len(e.input_ids) for e in examples], args.batch, seed=0)
    batches = [[examples[i] for i in plan.batch(step)] for step in range(args.steps + 1)]
    print(
        f"model: {args.model} ({n_params / 1e6:.2f}M parameters in matmuls), {args.batch} conversations a "
        f"step, {args.steps} steps a repeat, {args.repeats} interleaved repeats\n",
        flush=True,
    )

    ours = posttrain_side(model, tokenizer, batches, n_params)
    theirs = trl_side(model, tokenizer, batches, n_params)
    if args.profile:
        profile([ours, theirs])
        return
    interleave([ours, theirs], args.repeats, warmup=False)
    row = [args.batch, *rates(ours, theirs), efficiency(ours, peak), efficiency(theirs, peak)]
    print(
        table(
            [row],
            [
                "batch",
                "posttrain tokens/s",
                "TRL tokens/s",
                "ratio (wall)",
                "ratio (CPU)",
                "posttrain FLOP/s (of peak)",
                "TRL FLOP/s (of peak)",
            ],
        )
    )
    print(f"\nsft ratio posttrain / TRL tokens/s: {row[3]} (wall), {row[4]} (CPU time)")


def posttrain_side(model, tokenizer, batches, n_params: int) -> Side:
    model = copy.deepcopy(model)
    optimizer = adamw(model.parameters(), lr=LR, weight_decay=0.0)
    pad = tokenizer.pad_token_id
    tokens = sum(len(e.input_ids) for b in batches[1:] for e in b)

    def run():
        wall, cpu = timed_steps(
            lambda i: sft_stage.train_step(model, optimizer, batches[i], len(batches[i]), pad, LR),
            len(batches) - 1,
        )
        return tokens, 6 * n_params * tokens, wall, cpu

    return Side("posttrain", run)


def trl_side(model, tokenizer, batches, n_params: int) -> Side:
    """TRL's SFTTrainer on the same pre-tokenized batches in order; a fresh trainer per repeat."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_list([{"input_ids": e.input_ids, "labels": e.labels} for b in batches for e in b])
    trl_model = copy.deepcopy(model)
    out = tempfile.mkdtemp(prefix="bench-sft-")
    tokens = sum(len(e.input_ids) for b in batches[1:] for e in b)

    def run():
        config = SFTConfig(
            output_dir=out,
            per_device_train_batch_size=len(batches[0]),
            max_steps=len(batches),
            learning_rate=LR,
            weight_decay=0.0,
            max_length=None,
            packing=False,
            **TRL_AS_POSTTRAIN,
        )
        clock = step_clock()
        trainer = SFTTrainer(
            model=trl_model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[clock]
        )
        trainer.train()
        return tokens, 6 * n_params * tokens, clock.wall, clock.cpu

    return Side("TRL", run)


if __name__ == "__main__":
    main()
