"""`posttrain <command>`: the only place that wires library code to the command line and prints."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from posttrain import __version__
from posttrain.config import add_arguments, from_namespace
from posttrain.errors import UserError


def cmd_world_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from posttrain.world import World
    from posttrain.world.export import ExportConfig, check_out, counts_table, export

    cfg = from_namespace(ExportConfig, args)
    check_out(cfg.out, cfg.force)
    world = World(seed=cfg.seed, scale=cfg.scale, knobs=cfg.knobs())
    with tqdm(total=10, desc=f"world {cfg.scale} seed {cfg.seed}", unit="file", file=sys.stderr, disable=None) as bar:
        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)
        manifest = export(world, cfg.out, force=cfg.force, on_step=step)
        bar.update(bar.total - bar.n)
    print(counts_table(manifest))
    print(f"\nwrote {cfg.out}/ (spec: {cfg.out}/spec.md)")
    return 0


def cmd_world_spec(args: argparse.Namespace) -> int:
    from posttrain.world import World
    from posttrain.world.spec import render_spec

    print(render_spec(World(seed=args.seed, scale=args.scale)), end="")
    return 0


def cmd_world_agreement(args: argparse.Namespace) -> int:
    from posttrain.world import World
    from posttrain.world.labelers import DEFAULT_NOISE, AgreementConfig, LabelerPool, pairwise_agreement

    cfg = from_namespace(AgreementConfig, args)
    if cfg.k < 2 or cfg.prompts < 1:
        raise UserError(f"--k must be >= 2 and --prompts >= 1 (got --k {cfg.k}, --prompts {cfg.prompts})")
    world = World(seed=cfg.seed, scale=cfg.scale)
    records = world.prompts("agreement", cfg.prompts, "train")
    print(f"pairwise agreement of two simulated labelers on model-like answers "
          f"({cfg.prompts} prompts, K={cfg.k}); InstructGPT's labelers: 72.6%")
    print(f"{'noise':>8} {'agreement':>10} {'strict pairs':>13} {'tie rate':>9}")
    for noise in cfg.noise:
        if noise < 0:
            raise UserError(f"--noise values must be >= 0, got {noise}")
        r = pairwise_agreement(LabelerPool(world, noise=noise), records, k=cfg.k, seed=cfg.seed)
        mark = "  (default)" if noise == DEFAULT_NOISE else ""
        print(f"{noise:>8.3f} {r['agreement']:>9.1%} {r['strict_pairs']:>13} {r['tie_rate']:>8.1%}{mark}")
    return 0


class StepBar:
    """A progress bar (steps, ETA) showing a few of a stage's metrics; silent when not on a terminal."""

    def __init__(self, desc: str, shown: dict[str, str]):
        from tqdm import tqdm

        self.bar = tqdm(desc=desc, unit="step", file=sys.stderr, disable=None, dynamic_ncols=True)
        self.shown = shown  # label -> metric name
        self.seen: dict[str, float] = {}

    def __call__(self, step: int, total: int, metrics: dict) -> None:
        self.seen.update(metrics)
        self.bar.total, self.bar.n = total, step
        self.bar.set_postfix({label: f"{self.seen[name]:.3g}" for label, name in self.shown.items()
                              if name in self.seen}, refresh=False)
        self.bar.refresh()

    def write(self, text: str) -> None:
        """Print above the bar (to stdout: it is the command's output)."""
        self.bar.write(text, file=sys.stdout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()


def cmd_pretrain(args: argparse.Namespace) -> int:
    from posttrain.stages.pretrain import PretrainConfig, pretrain

    cfg = from_namespace(PretrainConfig, args)
    shown = {"loss": "pretrain/loss", "heldout": "pretrain/heldout_loss", "tok/s": "pretrain/tokens_per_s"}
    with StepBar("pretrain", shown) as bar:
        summary = pretrain(cfg, on_step=bar)
    print(f"pretrained {summary['params']:,} parameters for {summary['steps']} steps: "
          f"loss {summary['pretrain/loss']:.3f}, held-out loss {summary['pretrain/heldout_loss']:.3f}, "
          f"{summary['pretrain/tokens_per_s']:.0f} tokens/s")
    print(f"wrote {cfg.out}/")
    return 0


def cmd_world_probe(args: argparse.Namespace) -> int:
    import json

    from posttrain.data.records import read_conversations
    from posttrain.evaluation.probes import ProbeConfig, gold_by_family, knowledge_completion
    from posttrain.models.load import load_causal_lm
    from posttrain.world import World

    cfg = from_namespace(ProbeConfig, args)
    world = World(seed=cfg.seed, scale=cfg.scale)
    records = (read_conversations(cfg.prompts, ends_with="user") if cfg.prompts
               else world.prompts("test", world.scale.test_prompts, "test"))
    model, tokenizer = load_causal_lm(cfg.model)
    knowledge = knowledge_completion(model, tokenizer, world.kb)
    gold = gold_by_family(model, tokenizer, world, records, max_new_tokens=cfg.max_new_tokens)
    print(f"knowledge completion: {knowledge['accuracy']:.1%} of {knowledge['n']} facts (chance {knowledge['chance']:.1%})")
    for relation, r in knowledge["by_relation"].items():
        print(f"  {relation:<12} {r['accuracy']:>6.1%}  (chance {r['chance']:.1%}, n={r['n']})")
    print(f"\ngold score on {len(records)} chat prompts: {gold['gold_score']:.3f}")
    print(f"  {'family':<15} {'gold':>6} {'fails':>6} {'halluc':>7} {'harmful':>8} {'overref':>8}")
    for family, r in gold["by_family"].items():
        print(f"  {family:<15} {r['gold_score']:>6.3f} {r['fails_task_rate']:>6.0%} {r['hallucination_rate']:>7.0%} "
              f"{r['harmful_rate']:>8.0%} {r['over_refusal_rate']:>8.0%}")
    if cfg.out:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps({"model": str(cfg.model), "knowledge": knowledge, "gold": gold}, indent=1) + "\n")
        print(f"\nwrote {cfg.out}")
    return 0


def cmd_world_headroom(args: argparse.Namespace) -> int:
    from posttrain.evaluation.headroom import HeadroomConfig, headroom, table, write_headroom

    cfg = from_namespace(HeadroomConfig, args)
    result, rows = headroom(cfg)
    write_headroom(result, rows, cfg.out)
    print(table(result))
    print(f"\nwrote {cfg.out}/headroom.json and {cfg.out}/samples.jsonl")
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    from posttrain.stages.sft import SFTConfig, sft

    cfg = from_namespace(SFTConfig, args)
    with StepBar("sft", {"loss": "sft/loss", "eval": "sft/eval_loss"}) as bar:
        summary = sft(cfg, on_step=bar)
    evaluated = f", eval loss {summary['sft/eval_loss']:.3f}" if "sft/eval_loss" in summary else ""
    print(f"fine-tuned on {summary['train_examples']} conversations for {summary['steps']} steps: "
          f"loss {summary['sft/loss']:.3f}{evaluated}")
    print(f"wrote {cfg.out}/")
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from posttrain.data.imports import ImportConfig, import_dataset

    cfg = from_namespace(ImportConfig, args)
    n = import_dataset(cfg)
    print(f"wrote {n} {'rankings' if cfg.format in ('trl', 'hh') else 'conversations'} to {cfg.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from posttrain.stages.sample import SampleConfig, sample

    cfg = from_namespace(SampleConfig, args)
    with StepBar("sample", {}) as bar:
        counts = sample(cfg, on_batch=lambda done, total: bar(done, total, {}))
    print(f"sampled {cfg.k} completions for {counts['prompts']} prompts ({counts['truncated']} cut at "
          f"--max-new-tokens, {counts['empty_dropped']} empty dropped, {counts['skipped']} prompts skipped)")
    print(f"wrote {cfg.out}")
    return 0


def cmd_label_sim(args: argparse.Namespace) -> int:
    from posttrain.labeling.simulated import LabelSimConfig, label_sim

    cfg = from_namespace(LabelSimConfig, args)
    n = label_sim(cfg)
    print(f"wrote {n} rankings to {cfg.out}")
    return 0


def cmd_label_agreement(args: argparse.Namespace) -> int:
    from posttrain.labeling.simulated import agreement_from_rankings

    r = agreement_from_rankings(args.data)
    print(f"{r['items']} items ranked by 2+ labelers: agreement {r['agreement']:.1%} on {r['strict_pairs']} pairs "
          f"both ranked strictly ({r['tie_rate']:.1%} of {r['pairs']} pairs tied by one of them); InstructGPT: 72.6%")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from posttrain.stages.rm import RMConfig, rm

    cfg = from_namespace(RMConfig, args)
    with StepBar("rm", {"loss": "rm/loss", "acc": "rm/accuracy", "eval acc": "rm/eval_accuracy"}) as bar:
        summary = rm(cfg, on_step=bar)
    print(f"trained on {summary['train_rankings']} rankings for {summary['steps']} steps: loss {summary['rm/loss']:.3f}")
    if "accuracy" in summary:
        print(f"held-out labeler pairs: {summary['accuracy']:.1%} accuracy"
              + (f"; gold order: {summary['gold_accuracy']:.1%}" if "gold_accuracy" in summary else ""))
        for key in sorted(k for k in summary if k.startswith("gold_accuracy/")):
            print(f"  {key.split('/', 1)[1]:<15} gold {summary[key]:.1%}   labelers {summary.get('accuracy/' + key.split('/', 1)[1], float('nan')):.1%}")
    print(f"wrote {cfg.out}/")
    return 0


def cmd_rm_score(args: argparse.Namespace) -> int:
    from posttrain.evaluation.reward import ScoreConfig, score_file

    cfg = from_namespace(ScoreConfig, args)
    print(f"scored {score_file(cfg)} records into {cfg.out}")
    return 0


def cmd_rm_robustness(args: argparse.Namespace) -> int:
    from posttrain.evaluation.reward import RobustnessConfig, paraphrase_robustness

    r = paraphrase_robustness(from_namespace(RobustnessConfig, args))
    print(f"reward change under paraphrase, {r['prompts']} prompts (normalised units; SFT samples have std 1): "
          f"mean |change| {r['mean_abs_change']:.3f}")
    print(f"  {'family':<15} {'|change|':>9} {'good - bad':>11}")
    for family, f in r["by_family"].items():
        print(f"  {family:<15} {f['mean_abs_change']:>9.3f} {f['good_minus_bad']:>11.3f}")
    return 0


def cmd_data_export(args: argparse.Namespace) -> int:
    from posttrain.data.imports import ExportConfig, export_pairs

    cfg = from_namespace(ExportConfig, args)
    print(f"wrote {export_pairs(cfg)} preference pairs to {cfg.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from posttrain.world.core import SCALES
    from posttrain.world.export import ExportConfig
    from posttrain.data.imports import ExportConfig as PairsExportConfig
    from posttrain.data.imports import ImportConfig
    from posttrain.labeling.simulated import LabelSimConfig
    from posttrain.evaluation.reward import RobustnessConfig, ScoreConfig
    from posttrain.stages.rm import RMConfig
    from posttrain.stages.sample import SampleConfig
    from posttrain.evaluation.probes import ProbeConfig
    from posttrain.evaluation.headroom import HeadroomConfig
    from posttrain.stages.pretrain import PretrainConfig
    from posttrain.stages.sft import SFTConfig
    from posttrain.world.labelers import AgreementConfig

    parser = argparse.ArgumentParser(
        prog="posttrain", description="Post-train a language model into an aligned assistant (SFT, RM, PPO).")
    parser.add_argument("--version", action="version", version=f"posttrain {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    world = commands.add_parser("world", help="the built-in world: export it, read its spec, check its labelers",
                                description="The built-in world: a seeded offline universe with a gold scorer.")
    world_cmds = world.add_subparsers(title="world commands", metavar="COMMAND")
    world.set_defaults(run=lambda a: (world.print_help(), 2)[1])

    p = world_cmds.add_parser("export", help="write corpus, demonstrations, prompt splits, KB and spec",
                              description="Write the world's files (DESIGN.md formats) and print counts per family.",
                              epilog="example: posttrain world export --out runs/world --scale small --seed 0")
    add_arguments(p, ExportConfig)
    p.set_defaults(run=cmd_world_export)

    p = world_cmds.add_parser("spec", help="print the model spec (Markdown) generated from the gold rules",
                              description="Print the world's model spec, generated from the gold scorer's rules.")
    p.add_argument("--scale", default="small", choices=tuple(SCALES), help="world size (default: small)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    p.set_defaults(run=cmd_world_spec)

    p = world_cmds.add_parser("agreement", help="measure simulated labelers' pairwise agreement at several noise settings",
                              description="Measure how often two simulated labelers order a pair of answers alike.",
                              epilog="example: posttrain world agreement --noise 0.2 0.32 0.5")
    add_arguments(p, AgreementConfig)
    p.set_defaults(run=cmd_world_agreement)

    p = world_cmds.add_parser("probe", help="a model's knowledge of the world's facts and its gold score per family",
                              description="Probe a model: fact completion accuracy, and gold-judged greedy answers "
                                          "to chat prompts, per family.",
                              epilog="example: posttrain world probe --model runs/demo/base")
    add_arguments(p, ProbeConfig)
    p.set_defaults(run=cmd_world_probe)
    p = world_cmds.add_parser("headroom", help="before PPO: do the policy's own samples beat its greedy answer?",
                              description="Gold-judged greedy answer vs K samples per prompt: best-of-n win rates.",
                              epilog="example: posttrain world headroom --model runs/demo/sft --prompts "
                                     "runs/demo/world/test.jsonl --k 16 --out runs/demo/headroom")
    add_arguments(p, HeadroomConfig)
    p.set_defaults(run=cmd_world_headroom)

    data = commands.add_parser("data", help="convert data sets into posttrain's formats",
                               description="Convert data sets into posttrain's formats.")
    data_cmds = data.add_subparsers(title="data commands", metavar="COMMAND")
    data.set_defaults(run=lambda a: (data.print_help(), 2)[1])
    p = data_cmds.add_parser("import", help="Hugging Face datasets (messages column) or Alpaca data to conversation JSONL",
                             description="Convert a dataset into conversation JSONL (DESIGN.md formats).",
                             epilog="example: posttrain data import --format alpaca --input alpaca.json --out demos.jsonl")
    add_arguments(p, ImportConfig)
    p.set_defaults(run=cmd_data_import)
    p = data_cmds.add_parser("export", help="rankings to TRL or HH-style preference pairs",
                             description="Write every strictly ordered pair of each ranking as a preference row.",
                             epilog="example: posttrain data export --data rankings.jsonl --out pairs.jsonl")
    add_arguments(p, PairsExportConfig)
    p.set_defaults(run=cmd_data_export)

    p = commands.add_parser("sample", help="sample K completions per prompt from a policy, for ranking",
                            description="Sample K completions per prompt (batched generate with a KV cache). Resumable.",
                            epilog="example: posttrain sample --model runs/demo/sft --prompts runs/world/prompts_rm.jsonl "
                                   "--k 4 --out runs/demo/samples.jsonl")
    add_arguments(p, SampleConfig)
    p.set_defaults(run=cmd_sample)

    label = commands.add_parser("label", help="rank samples: simulated labelers (and measure their agreement)",
                                description="Turn samples into rankings.")
    label_cmds = label.add_subparsers(title="label commands", metavar="COMMAND")
    label.set_defaults(run=lambda a: (label.print_help(), 2)[1])
    p = label_cmds.add_parser("sim", help="the world's simulated labelers rank the samples",
                              description="Rank samples with the world's simulated labelers (ties, Likert, flags).",
                              epilog="example: posttrain label sim --samples samples.jsonl --out rankings.jsonl "
                                     "--labelers-per-item 2")
    add_arguments(p, LabelSimConfig)
    p.set_defaults(run=cmd_label_sim)
    p = label_cmds.add_parser("agreement", help="pairwise agreement of labelers who ranked the same items",
                              description="Measure how often labelers who ranked the same item order pairs alike.")
    p.add_argument("--data", type=Path, required=True, help="rankings JSONL with items ranked by 2+ labelers")
    p.set_defaults(run=cmd_label_agreement)
    from posttrain.commands import labeling
    labeling.add_commands(label_cmds)

    p = commands.add_parser("rm", help="train a reward model on K-way rankings (InstructGPT's loss)",
                            description="Train a reward model: all C(K,2) pairs of a ranking form one batch element, "
                                        "each completion scored once. Resumable.",
                            epilog="example: posttrain rm --model runs/demo/sft --data runs/demo/rankings.jsonl "
                                   "--out runs/demo/rm")
    add_arguments(p, RMConfig)
    p.set_defaults(run=cmd_rm)
    # `posttrain rm score ...` and `posttrain rm robustness ...` (main() joins the two words)
    p = commands.add_parser("rm score", help="score (prompt, response) records with a reward model",
                            description="Add normalised reward-model scores to samples, rankings or conversations.",
                            epilog="example: posttrain rm score --model runs/demo/rm --data samples.jsonl --out scored.jsonl")
    add_arguments(p, ScoreConfig)
    p.set_defaults(run=cmd_rm_score)
    p = commands.add_parser("rm robustness", help="how much a reward model's scores move when prompts are reworded",
                            description="Score the same answers under a world prompt and its paraphrase.",
                            epilog="example: posttrain rm robustness --model runs/demo/rm --prompts 200")
    add_arguments(p, RobustnessConfig)
    p.set_defaults(run=cmd_rm_robustness)

    p = commands.add_parser("pretrain", help="train a tokenizer and a small base model on a corpus",
                            description="Pretrain a Llama-style base model with next-token loss (resumable).",
                            epilog="example: posttrain pretrain --data runs/world/corpus.jsonl --out runs/demo/base")
    add_arguments(p, PretrainConfig)
    p.set_defaults(run=cmd_pretrain)

    p = commands.add_parser("sft", help="supervised fine-tuning on demonstrations (loss on assistant turns)",
                            description="Fine-tune a causal LM on chat demonstrations; only assistant tokens "
                                        "(and their EOS) carry loss. Resumable.",
                            epilog="example: posttrain sft --model assets/base-small-seed0 "
                                   "--data runs/world/demos.jsonl --out runs/demo/sft --lr 3e-4")
    add_arguments(p, SFTConfig)
    p.set_defaults(run=cmd_sft)

    from posttrain.commands import demo, evaluation, rlhf, serving
    rlhf.add_commands(commands)
    serving.add_commands(commands)
    evaluation.add_commands(commands)
    demo.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rm"] and argv[1:2] in (["score"], ["robustness"]):
        argv = [f"rm {argv[1]}", *argv[2:]]
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except UserError as e:
        print(f"posttrain: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("posttrain: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
