"""`posttrain world ...`: export the built-in world, read its spec, measure its labelers, probe a model in
it."""

from __future__ import annotations

import json
import sys

from posttrain.commands import command, group
from posttrain.evaluation.headroom import HeadroomConfig
from posttrain.evaluation.probes import ProbeConfig
from posttrain.world.export import WorldExportConfig
from posttrain.world.labelers import AgreementConfig
from posttrain.world.spec import SpecConfig

group(
    "world",
    help="the built-in world: export it, read its spec, check its labelers",
    description="The built-in world: a seeded offline universe with a gold scorer.",
)


@command("world export", WorldExportConfig)
def world_export(cfg: WorldExportConfig) -> int:
    """write corpus, demonstrations, prompt splits, KB and spec

    Write the world's files (docs/design.md formats) and print counts per family.

    example: posttrain world export --out runs/world --scale small --seed 0
    """
    from tqdm import tqdm

    from posttrain.world import World
    from posttrain.world.export import check_out, counts_table, export

    check_out(cfg.out, cfg.force)
    world = World(seed=cfg.seed, scale=cfg.scale, knobs=cfg.knobs())
    with tqdm(
        total=10, desc=f"world {cfg.scale} seed {cfg.seed}", unit="file", file=sys.stderr, disable=None
    ) as bar:

        def step(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        manifest = export(
            world, cfg.out, force=cfg.force, on_step=step, corpus_documents=cfg.corpus_documents
        )
        bar.update(bar.total - bar.n)
    print(counts_table(manifest))
    print(f"\nwrote {cfg.out}/ (spec: {cfg.out}/spec.md)")
    return 0


@command("world spec", SpecConfig)
def world_spec(cfg: SpecConfig) -> int:
    """print the model spec (Markdown) generated from the gold rules

    Print the world's model spec, generated from the gold scorer's rules.
    """
    from posttrain.world import World
    from posttrain.world.spec import render_spec

    print(render_spec(World(seed=cfg.seed, scale=cfg.scale)), end="")
    return 0


@command("world agreement", AgreementConfig)
def world_agreement(cfg: AgreementConfig) -> int:
    """measure simulated labelers' pairwise agreement at several noise settings

    Measure how often two simulated labelers order a pair of answers alike: on model-like answers by
    default, on a policy's own samples with --samples or --model (where InstructGPT measured 72.6%).

    example: posttrain world agreement --samples runs/demo/samples.jsonl --scale small2 --noise 0.04 0.06 0.1
    example: posttrain world agreement --model runs/demo/sft --scale small2 --prompts 450
    """
    from posttrain.world import World
    from posttrain.world.labelers import DEFAULT_NOISE, LabelerPool, agreement_on, model_like_answers
    from posttrain.world.rng import derive

    world = World(seed=cfg.seed, scale=cfg.scale)
    if cfg.samples or cfg.model:
        items, what = _own_samples(cfg, world), f"the samples of {cfg.samples or cfg.model}"
    else:
        rng = derive(cfg.seed, "agreement")
        items = [
            (rec, model_like_answers(world, rec, cfg.k, rng))
            for rec in world.prompts("agreement", cfg.prompts, "train")
        ]
        what = "model-like answers"
    print(
        f"pairwise agreement of two simulated labelers on {what} ({len(items)} prompts, "
        f"K={len(items[0][1]) if items else cfg.k}); InstructGPT's labelers: 72.6%"
    )
    print(f"{'noise':>8} {'agreement':>10} {'strict pairs':>13} {'tie rate':>9}")
    for noise in cfg.noise:
        r = agreement_on(LabelerPool(world, noise=noise), items)
        mark = "  (default)" if noise == DEFAULT_NOISE else ""
        print(f"{noise:>8.3f} {r['agreement']:>9.1%} {r['strict_pairs']:>13} {r['tie_rate']:>8.1%}{mark}")
    return 0


def _own_samples(cfg: AgreementConfig, world) -> list[tuple[dict, list[str]]]:
    """(prompt record, answers) from a samples file, or sampled K per training prompt from --model."""
    if cfg.samples:
        from posttrain.data.rankings import read_samples
        from posttrain.labeling.simulated import world_prompt

        return [
            (world_prompt(where, item), [c["text"] for c in item["completions"]])
            for where, item in read_samples(cfg.samples)
        ]
    from posttrain.generation.completions import sample_k
    from posttrain.models.load import load_causal_lm

    records = world.prompts("agreement", cfg.prompts, "train")
    model, tokenizer = load_causal_lm(cfg.model)
    answers = sample_k(
        model,
        tokenizer,
        [r["messages"] for r in records],
        k=cfg.k,
        temperature=1.0,
        top_p=1.0,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
    )
    return [(rec, [text for text, _ in row]) for rec, row in zip(records, answers)]


@command("world probe", ProbeConfig)
def world_probe(cfg: ProbeConfig) -> int:
    """a model's knowledge of the world's facts and its gold score per family

    Probe a model: fact completion accuracy, and gold-judged greedy answers to chat prompts, per family.

    example: posttrain world probe --model runs/demo/base
    """
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.probes import gold_by_family, knowledge_completion
    from posttrain.models.load import load_causal_lm
    from posttrain.world import World

    world = World(seed=cfg.seed, scale=cfg.scale)
    records = (
        read_conversations(cfg.prompts, ends_with="user")
        if cfg.prompts
        else world.prompts("test", world.scale.test_prompts, "test")
    )
    model, tokenizer = load_causal_lm(cfg.model)
    knowledge = knowledge_completion(model, tokenizer, world.kb)
    gold = gold_by_family(model, tokenizer, world, records, max_new_tokens=cfg.max_new_tokens)
    print(
        f"knowledge completion: {knowledge['accuracy']:.1%} of {knowledge['n']} facts (chance "
        f"{knowledge['chance']:.1%})"
    )
    for relation, r in knowledge["by_relation"].items():
        print(f"  {relation:<12} {r['accuracy']:>6.1%}  (chance {r['chance']:.1%}, n={r['n']})")
    if len(knowledge["by_bucket"]) > 1:  # a world with a long tail: what the model knows by exposure
        print("by exposure (documents stating each fact):")
        for bucket, r in knowledge["by_bucket"].items():
            print(f"  {bucket:<12} {r['accuracy']:>6.1%}  (n={r['n']})")
    print(f"\ngold score on {len(records)} chat prompts: {gold['gold_score']:.3f}")
    print(f"  {'family':<15} {'gold':>6} {'fails':>6} {'halluc':>7} {'harmful':>8} {'overref':>8}")
    for family, r in gold["by_family"].items():
        print(
            f"  {family:<15} {r['gold_score']:>6.3f} {r['fails_task_rate']:>6.0%} "
            f"{r['hallucination_rate']:>7.0%} {r['harmful_rate']:>8.0%} {r['over_refusal_rate']:>8.0%}"
        )
    if cfg.out:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(
            json.dumps({"model": str(cfg.model), "knowledge": knowledge, "gold": gold}, indent=1) + "\n"
        )
        print(f"\nwrote {cfg.out}")
    return 0


@command("world headroom", HeadroomConfig)
def world_headroom(cfg: HeadroomConfig) -> int:
    """before PPO: do the policy's own samples beat its greedy answer?

    Gold-judged greedy answer vs K samples per prompt: best-of-n win rates.

    example: posttrain world headroom --model runs/demo/sft --prompts runs/demo/world/test.jsonl --k 16
    --out runs/demo/headroom
    """
    from posttrain.evaluation.headroom import headroom, table, write_headroom

    result, rows = headroom(cfg)
    write_headroom(result, rows, cfg.out)
    print(table(result))
    print(f"\nwrote {cfg.out}/headroom.json and {cfg.out}/samples.jsonl")
    return 0
