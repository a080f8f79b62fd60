"""Reward model: posttrain's K-way training step against TRL's RewardTrainer on the same rankings.

    bench/.venv/bin/python bench/rm.py [--model assets/base-small-seed0] [--ks 4 9] [--rankings 4]

Each step trains on --rankings prompts with K completions each, strictly ranked. posttrain scores
each completion once and takes InstructGPT's loss over the C(K, 2) pairs of a prompt
(`posttrain.stages.rm.train_step`); TRL's RewardTrainer gets the same rankings expanded to their
C(K, 2) (chosen, rejected) pairs, pre-tokenized with the same ids, in the same order, one
optimizer step over a step's pairs (per_device_train_batch_size = rankings x C(K, 2)). Same
model and weights, fp32, AdamW, lr, gradient clipping 1.0, no gradient checkpointing on either
side. Throughput is comparisons (pairs) per second over the steps after an untimed first one,
collation included. FLOPs: 6 x parameters x tokens of the sequences each side runs forward and
back (TRL runs each completion K - 1 times).
The last line is the goal: posttrain / TRL at K = 9 >= 4x.
"""

from __future__ import annotations

import copy
import itertools
import random
import tempfile

import torch
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

from posttrain.models.load import load_tokenizer, resolve
from posttrain.models.reward import encode_response, reward_from_pretrained
from posttrain.stages import rm as rm_stage
from posttrain.training.step import adamw
from posttrain.world import World

GOAL = 4.0
LR = 1e-5


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default="assets/base-small-seed0")
    parser.add_argument("--ks", type=int, nargs="+", default=[4, 9])
    parser.add_argument("--rankings", type=int, default=4, help="rankings (prompts) per optimizer step")
    parser.add_argument(
        "--steps", type=int, default=2, help="timed optimizer steps per repeat (after an untimed one)"
    )
    args = parser.parse_args()
    start(args.threads)
    peak = matmul_peak()
    print(f"machine: {machine()}\nfp32 matmul peak: {peak / 1e9:.1f} GFLOP/s", flush=True)

    tokenizer = load_tokenizer(args.model)
    torch.manual_seed(0)
    model = reward_from_pretrained(resolve(args.model), tokenizer)
    n_params = parameters(model)
    print(
        f"model: {args.model} ({n_params / 1e6:.2f}M parameters in matmuls), {args.rankings} rankings a "
        f"step, {args.steps} steps a repeat, {args.repeats} interleaved repeats\n",
        flush=True,
    )

    rows, headline = [], {}
    for k in args.ks:
        items = rankings(tokenizer, k, args.rankings * (args.steps + 1))
        batches = [items[i : i + args.rankings] for i in range(0, len(items), args.rankings)]
        ours = posttrain_side(model, tokenizer, batches, n_params)
        theirs = trl_side(model, tokenizer, batches, n_params)
        if args.profile:
            profile([ours, theirs])
            continue
        interleave([ours, theirs], args.repeats, warmup=False)
        row = [k, k * (k - 1) // 2, *rates(ours, theirs), efficiency(ours, peak), efficiency(theirs, peak)]
        rows.append(row)
        headline[k] = row[4:6]
        print(table([row], HEADER), flush=True)
    print("\n" + table(rows, HEADER))
    verdict = "; ".join(f"K={k} {wall} (wall), {cpu} (CPU time)" for k, (wall, cpu) in headline.items())
    print(f"\nrm ratio posttrain / TRL comparisons/s: {verdict}; goal at K=9 >= {GOAL}x")


HEADER = [
    "K",
    "pairs per prompt",
    "posttrain comparisons/s",
    "TRL comparisons/s",
    "ratio (wall)",
    "ratio (CPU)",
    "posttrain FLOP/s (of peak)",
    "TRL FLOP/s (of peak)",
]


def rankings(tokenizer, k: int, n: int) -> list[rm_stage.Item]:
    """`n` world prompts, each with K distinct answers (its demonstration, wrong answers, refusals)
    in a strict order, encoded as posttrain encodes them."""
    world = World(seed=0, scale="small")
    items = []
    for i, record in enumerate(world.prompts("rm", n, "train")):
        rng = random.Random(i)
        answers = [
            world.demonstrate(record, rng),
            *world.wrong_answers(record, rng).values(),
            "I don't know.",
            "I can't help with that.",
            "Sure! Here you go.",
            "Let me think about it.",
            "That is a good question, and the answer is not simple.",
            "No.",
            "Maybe later.",
        ]
        answers = list(dict.fromkeys(answers))[:k]
        assert len(answers) == k, f"only {len(answers)} distinct answers for K={k}"
        examples = [encode_response(tokenizer, record["messages"], a, 512) for a in answers]
        items.append(rm_stage.Item(examples, list(range(k)), [0.0] * k, [True] * k, None, None, record["id"]))
    return items


def posttrain_side(model, tokenizer, batches: list[list[rm_stage.Item]], n_params: int) -> Side:
    """`posttrain.stages.rm.train_step` on each batch in turn; the first step is not timed."""
    model = copy.deepcopy(model)
    optimizer = adamw(model.parameters(), lr=LR)
    pad = tokenizer.pad_token_id

    def run():
        wall, cpu = timed_steps(
            lambda i: rm_stage.train_step(model, optimizer, batches[i], len(batches[i]), pad, LR),
            len(batches) - 1,
        )
        timed = batches[1:]
        pairs = sum(len(i.ranks) * (len(i.ranks) - 1) // 2 for b in timed for i in b)
        tokens = sum(len(e.input_ids) for b in timed for i in b for e in i.examples)
        return pairs, 6 * n_params * tokens, wall, cpu

    return Side("posttrain", run)


def trl_side(model, tokenizer, batches: list[list[rm_stage.Item]], n_params: int) -> Side:
    """TRL's RewardTrainer on the same batches, each ranking expanded to its C(K, 2) pairs, in
    order; a fresh trainer per repeat (TRL trains in one `train()` call), its first step untimed."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    rows = [
        {"chosen_ids": item.examples[better].input_ids, "rejected_ids": item.examples[worse].input_ids}
        for batch in batches
        for item in batch
        for better, worse in itertools.combinations(range(len(item.examples)), 2)
    ]  # ranks are 0..K-1
    pairs_per_step = len(rows) // len(batches)
    dataset = Dataset.from_list(rows)
    trl_model = copy.deepcopy(model)
    out = tempfile.mkdtemp(prefix="bench-rm-")
    timed = batches[1:]
    # every completion of a K-way ranking takes part in K - 1 pairs
    tokens = sum((len(i.examples) - 1) * len(e.input_ids) for b in timed for i in b for e in i.examples)

    def run():
        config = RewardConfig(
            output_dir=out,
            per_device_train_batch_size=pairs_per_step,
            max_steps=len(batches),
            learning_rate=LR,
            weight_decay=0.01,
            max_length=None,
            **TRL_AS_POSTTRAIN,
        )
        clock = step_clock()
        trainer = RewardTrainer(
            model=trl_model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[clock]
        )
        trainer.train()
        return pairs_per_step * len(timed), 6 * n_params * tokens, clock.wall, clock.cpu

    return Side("TRL", run)


if __name__ == "__main__":
    main()
