"""`posttrain pretrain | sft | sample | rm | dpo`: the training stages, and using a trained reward model."""

from __future__ import annotations

from posttrain.commands import command
from posttrain.commands.progress import StepBar
from posttrain.evaluation.reward import RobustnessConfig, ScoreConfig
from posttrain.stages.dpo import DPOConfig
from posttrain.stages.pretrain import PretrainConfig
from posttrain.stages.rm import RMConfig
from posttrain.stages.sample import SampleConfig
from posttrain.stages.sft import SFTConfig


@command("pretrain", PretrainConfig)
def pretrain(cfg: PretrainConfig) -> int:
    """train a tokenizer and a small base model on a corpus

    Pretrain a Llama-style base model with next-token loss (resumable).

    example: posttrain pretrain --data runs/world/corpus.jsonl --out runs/demo/base
    """
    from posttrain.stages.pretrain import pretrain as run

    shown = {"loss": "pretrain/loss", "heldout": "pretrain/heldout_loss", "tok/s": "pretrain/tokens_per_s"}
    with StepBar("pretrain", shown) as bar:
        summary = run(cfg, on_step=bar)
    print(
        f"pretrained {summary['params']:,} parameters for {summary['steps']} steps: "
        f"loss {summary['pretrain/loss']:.3f}, held-out loss {summary['pretrain/heldout_loss']:.3f}, "
        f"{summary['pretrain/tokens_per_s']:.0f} tokens/s"
    )
    print(f"wrote {cfg.out}/")
    return 0


@command("sft", SFTConfig)
def sft(cfg: SFTConfig) -> int:
    """supervised fine-tuning on demonstrations (loss on assistant turns)

    Fine-tune a causal LM on chat demonstrations; only assistant tokens (and their EOS) carry loss.
    Resumable.

    example: posttrain sft --model assets/base-small-seed0 --data runs/world/demos.jsonl --out runs/demo/sft
    """
    from posttrain.stages.sft import sft as run

    with StepBar("sft", {"loss": "sft/loss", "eval": "sft/eval_loss"}) as bar:
        summary = run(cfg, on_step=bar)
    evaluated = f", eval loss {summary['sft/eval_loss']:.3f}" if "sft/eval_loss" in summary else ""
    print(
        f"fine-tuned on {summary['train_examples']} conversations for {summary['steps']} steps: "
        f"loss {summary['sft/loss']:.3f}{evaluated}"
    )
    print(f"wrote {cfg.out}/")
    return 0


@command("sample", SampleConfig)
def sample(cfg: SampleConfig) -> int:
    """sample K completions per prompt from a policy, for ranking

    Sample K completions per prompt (batched generate with a KV cache). Resumable.

    example: posttrain sample --model runs/demo/sft --prompts runs/world/prompts_rm.jsonl --k 4
    --out runs/demo/samples.jsonl
    """
    from posttrain.stages.sample import sample as run

    with StepBar("sample", {}) as bar:
        counts = run(cfg, on_batch=lambda done, total: bar(done, total, {}))
    print(
        f"sampled {cfg.k} completions for {counts['prompts']} prompts ({counts['truncated']} cut at "
        f"--max-new-tokens, {counts['empty_dropped']} empty dropped, {counts['skipped']} prompts skipped)"
    )
    print(f"wrote {cfg.out}")
    return 0


@command("rm", RMConfig)
def rm(cfg: RMConfig) -> int:
    """train a reward model on K-way rankings (InstructGPT's loss)

    Train a reward model: all C(K,2) pairs of a ranking form one batch element, each completion scored
    once. Resumable.

    example: posttrain rm --model runs/demo/sft --data runs/demo/rankings.jsonl --out runs/demo/rm
    """
    from posttrain.stages.rm import rm as run

    with StepBar("rm", {"loss": "rm/loss", "acc": "rm/accuracy", "eval acc": "rm/eval_accuracy"}) as bar:
        summary = run(cfg, on_step=bar)
    print(
        f"trained on {summary['train_rankings']} rankings for {summary['steps']} steps: loss "
        f"{summary['rm/loss']:.3f}"
    )
    if "accuracy" in summary:
        print(
            f"held-out labeler pairs: {summary['accuracy']:.1%} accuracy"
            + (f"; gold order: {summary['gold_accuracy']:.1%}" if "gold_accuracy" in summary else "")
        )
        for key in sorted(k for k in summary if k.startswith("gold_accuracy/")):
            family = key.split("/", 1)[1]
            print(
                f"  {family:<15} gold {summary[key]:.1%}   labelers "
                f"{summary.get('accuracy/' + family, float('nan')):.1%}"
            )
    print(f"wrote {cfg.out}/")
    return 0


@command("rm score", ScoreConfig)
def rm_score(cfg: ScoreConfig) -> int:
    """score (prompt, response) records with a reward model

    Add normalised reward-model scores to samples, rankings or conversations.

    example: posttrain rm score --model runs/demo/rm --data samples.jsonl --out scored.jsonl
    """
    from posttrain.evaluation.reward import score_file

    print(f"scored {score_file(cfg)} records into {cfg.out}")
    return 0


@command("rm robustness", RobustnessConfig)
def rm_robustness(cfg: RobustnessConfig) -> int:
    """how much a reward model's scores move when prompts are reworded

    Score the same answers under a world prompt and its paraphrase.

    example: posttrain rm robustness --model runs/demo/rm --prompts 200
    """
    from posttrain.evaluation.reward import paraphrase_robustness

    r = paraphrase_robustness(cfg)
    print(
        f"reward change under paraphrase, {r['prompts']} prompts (normalised units; SFT samples have std 1): "
        f"mean |change| {r['mean_abs_change']:.3f}"
    )
    print(f"  {'family':<15} {'|change|':>9} {'good - bad':>11}")
    for family, f in r["by_family"].items():
        print(f"  {family:<15} {f['mean_abs_change']:>9.3f} {f['good_minus_bad']:>11.3f}")
    return 0


@command("dpo", DPOConfig)
def dpo(cfg: DPOConfig) -> int:
    """train a policy directly on K-way rankings with DPO (no reward model, no sampling)

    Direct preference optimisation (Rafailov et al. 2023; --loss ipo: Azar et al. 2023): every strictly
    ordered pair of each ranking, as posttrain rm uses them, with the frozen reference's log-probs computed
    once. Each ranking weighs the same; only the completion's tokens carry log-prob. Resumable. Metrics:
    docs/metrics.md.

    example: posttrain dpo --model runs/demo/sft --data runs/demo/rankings.jsonl --out runs/demo/dpo
    --beta 0.1
    """
    from posttrain.stages.dpo import dpo as run

    shown = {
        "loss": "dpo/loss",
        "margin": "dpo/reward_margin",
        "acc": "dpo/reward_accuracy",
        "eval acc": "dpo/eval_reward_accuracy",
    }
    with StepBar("dpo", shown) as bar:
        summary = run(cfg, on_step=bar)
    print(
        f"DPO ({cfg.loss}, beta {cfg.beta:g}) on {summary['train_rankings']} rankings "
        f"({summary['train_pairs']} pairs) for {summary['steps']} steps: loss {summary['dpo/loss']:.3f}, "
        f"reward margin {summary['dpo/reward_margin']:.3f}, accuracy {summary['dpo/reward_accuracy']:.1%}"
    )
    if "dpo/eval_reward_accuracy" in summary:
        gold = summary.get("dpo/eval_gold_accuracy")
        print(
            f"held-out pairs (implicit reward): {summary['dpo/eval_reward_accuracy']:.1%} accuracy against "
            f"their labelers" + (f"; gold order: {gold:.1%}" if gold is not None else "")
        )
    print(f"wrote {cfg.out}/")
    return 0
