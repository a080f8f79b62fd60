"""PPO: `posttrain ppo` against TRL 1.12's PPOTrainer (trl.experimental.ppo), identical settings.

    bench/.venv/bin/python bench/ppo.py --model tiny-gpt2            # a 2-layer GPT-2, random weights
    bench/.venv/bin/python bench/ppo.py --model smollm2-135m --steps 1 --repeats 1

Both sides start from the same policy, the same reward model (the policy's backbone with a
fresh scalar head, also the value function's start) and the world's PPO prompts in the
tokenizer's chat template, and run: batch 16 episodes, responses of at most 32 tokens ending at
EOS, temperature 1, 4 PPO epochs, one minibatch of 16 in micro-batches of 8 (2 accumulated),
kl_coef 0.05, clip 0.2, value clip 0.2, vf_coef 0.1, gamma 1, lambda 0.95, AdamW at the same lr,
fp32, no gradient checkpointing. posttrain runs its stage (`posttrain.stages.ppo.ppo`, with no
sample tables, evaluation or checkpoints inside the timed steps); TRL runs `PPOTrainer.train()`
without sample generations. Each side times its PPO steps after the first (set-up and step 1
untimed; --warm-steps 0 times the first step too, for SmolLM2 whose step takes minutes) by
callbacks at the start and end of the steps; episodes/s is 16 x timed steps / seconds.
FLOPs (the same count for both): 2N per token of generation and of three scoring forwards
(reference, value, reward), 2 x 6N per token per epoch for training policy and value.
The last line is the goal: posttrain / TRL >= 2x.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch
from harness import (
    Clock,
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

from posttrain.models.load import load_tokenizer, resolve
from posttrain.models.reward import reward_from_pretrained
from posttrain.world import World

GOAL = 2.0
BATCH, MICRO, RESPONSE, EPOCHS, LR = 16, 8, 32, 4, 3e-6
BASE = "assets/base-small-seed0"  # the tiny GPT-2 borrows this tokenizer (chat template, pad 0, EOS 1)


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-gpt2", help="tiny-gpt2, smollm2-135m or a model directory")
    parser.add_argument("--steps", type=int, default=2, help="timed PPO steps per repeat")
    parser.add_argument(
        "--warm-steps",
        type=int,
        default=1,
        choices=(0, 1),
        help="untimed PPO steps before them (0 for a model whose step takes minutes)",
    )
    args = parser.parse_args()
    start(args.threads)
    peak = matmul_peak()
    print(f"machine: {machine()}\nfp32 matmul peak: {peak / 1e9:.1f} GFLOP/s", flush=True)

    work = Path(tempfile.mkdtemp(prefix="bench-ppo-"))
    policy_dir, reward_dir = build_models(args.model, work)
    tokenizer = load_tokenizer(policy_dir)
    tokenizer.padding_side = "left"
    prompts = World(seed=0, scale="small").prompts("ppo", BATCH * (args.steps + args.warm_steps), "train")
    prompts_file = work / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    from transformers import AutoModelForCausalLM

    n_params = parameters(AutoModelForCausalLM.from_pretrained(policy_dir))
    prompt_len = sum(len(ids) for ids in encode_prompts(tokenizer, prompts)) / len(prompts)
    per_step = (
        2 * n_params * (RESPONSE + 3 * (prompt_len + RESPONSE))
        + EPOCHS * 2 * 6 * n_params * (prompt_len + RESPONSE)
    ) * BATCH
    print(
        f"model: {args.model} ({n_params / 1e6:.2f}M parameters in matmuls), prompts of {prompt_len:.0f} "
        f"tokens on average; {args.steps} timed steps a repeat, {args.repeats} interleaved repeats\n",
        flush=True,
    )

    ours = posttrain_side(policy_dir, reward_dir, prompts_file, work, args.steps, args.warm_steps, per_step)
    theirs = trl_side(policy_dir, reward_dir, tokenizer, prompts, work, args.steps, args.warm_steps, per_step)
    if args.profile:
        profile([ours, theirs])
        return
    interleave([ours, theirs], args.repeats, warmup=False)
    row = [args.model, *rates(ours, theirs, digits=3), efficiency(ours, peak), efficiency(theirs, peak)]
    print(
        table(
            [row],
            [
                "model",
                "posttrain episodes/s",
                "TRL episodes/s",
                "ratio (wall)",
                "ratio (CPU)",
                "posttrain FLOP/s (of peak)",
                "TRL FLOP/s (of peak)",
            ],
        )
    )
    print(
        f"\nppo ratio posttrain / TRL episodes/s on {args.model}: {row[3]} (wall), {row[4]} (CPU time); "
        f"goal >= {GOAL}x"
    )


def build_models(spec: str, work: Path) -> tuple[str, str]:
    """(policy directory, reward model directory with posttrain.json) for `spec`."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    if spec == "tiny-gpt2":
        tokenizer = AutoTokenizer.from_pretrained(BASE)
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=256,
            n_embd=128,
            n_layer=2,
            n_head=4,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        policy_dir = str(work / "policy")
        GPT2LMHeadModel(config).save_pretrained(policy_dir)
        tokenizer.save_pretrained(policy_dir)
    else:
        policy_dir = resolve(spec)
    tokenizer = load_tokenizer(policy_dir)
    reward_dir = work / "reward"
    reward = reward_from_pretrained(policy_dir, tokenizer)
    reward.save_pretrained(reward_dir)
    tokenizer.save_pretrained(reward_dir)
    (reward_dir / "posttrain.json").write_text(
        json.dumps({"stage": "rm", "reward_normalisation": {"gain": 1.0, "bias": 0.0}})
    )
    return policy_dir, str(reward_dir)


def encode_prompts(tokenizer, prompts: list[dict]) -> list[list[int]]:
    """Token ids of each prompt as posttrain's rollout renders it."""
    texts = [
        tokenizer.apply_chat_template(p["messages"], tokenize=False, add_generation_prompt=True)
        for p in prompts
    ]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def posttrain_side(
    policy_dir, reward_dir, prompts_file, work, steps: int, warm: int, per_step: float
) -> Side:
    from posttrain.stages import ppo as ppo_stage
    from posttrain.training.ppo_config import PPOConfig

    def run():
        cfg = PPOConfig(
            policy=policy_dir,
            reward=Path(reward_dir),
            prompts=prompts_file,
            out=work / "posttrain-run",
            rollout_batch=BATCH,
            minibatches=1,
            micro_batch=MICRO,
            ppo_epochs=EPOCHS,
            lr=LR,
            max_new_tokens=RESPONSE,
            temperature=1.0,
            kl_coef=0.05,
            clip_range=0.2,
            value_clip=0.2,
            vf_coef=0.1,
            gamma=1.0,
            lam=0.95,
            max_steps=steps + warm,
            sample_every=10_000,
            eval_every=10_000,
            save_every=10_000,
            force=True,
        )
        laps = StepLaps(warm)
        rollout = ppo_stage.rollout

        def timed_rollout(*args, **kwargs):  # a PPO step starts with its rollout
            laps.begin()
            return rollout(*args, **kwargs)

        ppo_stage.rollout = timed_rollout
        try:
            ppo_stage.ppo(cfg, on_step=lambda *a: laps.step_end())
        finally:
            ppo_stage.rollout = rollout
        return BATCH * steps, per_step * steps, laps.wall, laps.cpu

    return Side("posttrain", run)


def trl_side(
    policy_dir, reward_dir, tokenizer, prompts, work, steps: int, warm: int, per_step: float
) -> Side:
    """A fresh PPOTrainer per repeat, on the same models and prompts."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, TrainerCallback
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    dataset = Dataset.from_list([{"input_ids": ids} for ids in encode_prompts(tokenizer, prompts)])

    class Laps(TrainerCallback, StepLaps):
        def on_train_begin(self, args, state, control, **kwargs):
            self.begin()  # called right before the first step

        def on_step_end(self, args, state, control, **kwargs):
            self.step_end()

    def run():
        policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
        ref = copy.deepcopy(policy)
        value = AutoModelForSequenceClassification.from_pretrained(
            reward_dir, num_labels=1, dtype=torch.float32
        )
        reward = AutoModelForSequenceClassification.from_pretrained(
            reward_dir, num_labels=1, dtype=torch.float32
        )
        config = PPOConfig(
            output_dir=str(work / "trl-run"),
            per_device_train_batch_size=MICRO,
            gradient_accumulation_steps=BATCH // MICRO,
            num_mini_batches=1,
            num_ppo_epochs=EPOCHS,
            learning_rate=LR,
            response_length=RESPONSE,
            temperature=1.0,
            stop_token="eos",
            kl_coef=0.05,
            cliprange=0.2,
            cliprange_value=0.2,
            vf_coef=0.1,
            gamma=1.0,
            lam=0.95,
            total_episodes=BATCH * (steps + warm),
            local_rollout_forward_batch_size=BATCH,
            num_sample_generations=0,
            bf16=False,
            gradient_checkpointing=False,
            save_strategy="no",
            report_to=[],
            logging_steps=10_000,
            disable_tqdm=True,
            use_cpu=True,
            seed=0,
        )
        laps = Laps(warm)
        trainer = PPOTrainer(
            args=config,
            processing_class=tokenizer,
            model=policy,
            ref_model=ref,
            reward_model=reward,
            value_model=value,
            train_dataset=dataset,
            callbacks=[laps],
        )
        trainer.train()
        return BATCH * steps, per_step * steps, laps.wall, laps.cpu

    return Side("TRL", run)


class StepLaps:
    """Wall and CPU seconds of the steps after the first `warm` ones: `begin()` marks the start of
    the first step, `step_end()` the end of each."""

    def __init__(self, warm: int):
        self.warm, self.ends, self.clock, self.wall, self.cpu = warm, 0, None, 0.0, 0.0

    def begin(self):
        if self.clock is None and self.warm == 0:
            self.clock = Clock()

    def step_end(self):
        self.ends += 1
        if self.ends == self.warm:
            self.clock = Clock()
        elif self.ends > self.warm:
            wall, cpu = self.clock.lap()
            self.wall, self.cpu = self.wall + wall, self.cpu + cpu


if __name__ == "__main__":
    main()
