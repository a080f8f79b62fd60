"""A demo's steps, in order, each with the output that marks it done: the world export, then every stage run
through the same command function as on the command line, with the config `stage_configs` builds, then
the evaluation and report of each test set."""

from __future__ import annotations

from pathlib import Path

from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_folder import base_model, default_out
from posttrain.commands.demo_presets import TEST_SETS, Preset, TestSet, demo_world
from posttrain.recipes import SMALL


def plan(cfg: DemoConfig, p: Preset) -> list[tuple[str, Path, callable]]:
    """(name, output that marks it done, function) for every step, in order: each runs its stage's
    config (`stage_configs`) through the same command function as the command line."""
    from posttrain.commands import labeling, rlhf, training
    from posttrain.commands import world as world_cmd
    from posttrain.world.export import WorldExportConfig

    o, w, c = cfg.out, cfg.out / "world", stage_configs(cfg, p)

    def world() -> None:
        # the world of the shipped base's scale; of small2's 1.28M corpus documents only those PPO-ptx needs
        d = demo_world()
        world_cmd.world_export(
            WorldExportConfig(
                out=w, scale=d.scale, seed=cfg.world_seed, corpus_documents=d.corpus_documents, force=True
            )
        )
        trims = [
            ("demos.jsonl", p.sft_demos),
            ("prompts_rm.jsonl", p.rm_prompts),
            *((t.file, p.test_prompts) for t in TEST_SETS),
        ]
        for name, n in trims:
            if n is not None:  # the tiny preset trains and tests on the first lines only
                lines = (w / name).read_text().splitlines(keepends=True)[:n]
                (w / name).write_text("".join(lines))

    def step(command, config) -> callable:
        def run() -> None:
            if hasattr(config, "resume"):
                config.resume = resume(config.out)
            config.check()
            command(config)

        return run

    # a world exported by an older posttrain has no test_novel.jsonl: its demo continues without that eval
    tests = [t for t in TEST_SETS if not (w / "manifest.json").exists() or (w / t.file).exists()]
    return [
        ("world export", w / "manifest.json", world),
        ("SFT", o / "sft", step(training.sft, c["sft"])),
        (f"sample K={SMALL.k}", o / "samples.jsonl", step(training.sample, c["sample"])),
        ("label (simulated labelers)", o / "rankings.jsonl", step(labeling.label_sim, c["label"])),
        ("reward model", o / "rm", step(training.rm, c["rm"])),
        ("PPO-ptx", o / "ppo-ptx", step(rlhf.ppo, c["ppo"])),
        *(
            (
                f"eval and report: {t.file}",
                o / t.report / "summary.json",
                lambda t=t: evaluate_test_set(cfg, t),
            )
            for t in tests
        ),
    ]


def stage_configs(cfg: DemoConfig, p: Preset) -> dict:
    """Every stage's config: the stages' defaults (the recipe, posttrain/recipes.py), the preset's sizes, the
    run seed and the world seed."""
    from posttrain.labeling.simulated import LabelSimConfig
    from posttrain.stages.rm import RMConfig
    from posttrain.stages.sample import SampleConfig
    from posttrain.stages.sft import SFTConfig
    from posttrain.training.ppo_config import PPOConfig

    o = cfg.out or default_out(cfg)
    w, seed, world, scale = o / "world", cfg.seed, cfg.world_seed, demo_world().scale
    return {
        "sft": SFTConfig(
            model=base_model(cfg), data=w / "demos.jsonl", out=o / "sft", epochs=p.sft_epochs, seed=seed
        ),
        "sample": SampleConfig(
            model=str(o / "sft"),
            prompts=w / "prompts_rm.jsonl",
            k=SMALL.k,
            out=o / "samples.jsonl",
            seed=seed,
        ),
        "label": LabelSimConfig(
            samples=o / "samples.jsonl",
            out=o / "rankings.jsonl",
            labelers_per_item=SMALL.labelers_per_item,
            world_seed=world,
            scale=scale,
            seed=seed,
        ),
        "rm": RMConfig(
            model=str(o / "sft"),
            data=o / "rankings.jsonl",
            out=o / "rm",
            epochs=p.rm_epochs,
            world_seed=world,
            scale=scale,
            seed=seed,
        ),
        "ppo": PPOConfig(
            policy=str(o / "sft"),
            reward=o / "rm",
            prompts=w / "prompts_ppo.jsonl",
            out=o / "ppo-ptx",
            ptx=w / "corpus.jsonl",
            heldout_corpus=w / "corpus_heldout.jsonl",
            max_steps=p.ppo_steps,
            rollout_batch=p.rollout_batch,
            micro_batch=p.micro_batch,
            world_seed=world,
            scale=scale,
            seed=seed,
        ),
    }


def resume(out: Path) -> bool:
    """Resume when an interrupted run of the step left its partial output."""
    return out.with_name(out.name + ".partial").exists()


def evaluate_test_set(cfg: DemoConfig, test_set: TestSet) -> None:
    """PPO-ptx against SFT on one test set, gold judge. The headline set (test.jsonl) also measures the
    alignment tax and KL; they do not depend on the prompts' phrasing, so test_novel.jsonl skips them."""
    from posttrain.data.corpus import read_documents
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.compare import compare_models
    from posttrain.evaluation.report import write_report
    from posttrain.world import World

    o, w, headline = cfg.out, cfg.out / "world", test_set is TEST_SETS[0]
    records = read_conversations(w / test_set.file, ends_with="user")
    summary = compare_models(
        {"ppo-ptx": str(o / "ppo-ptx")},
        str(o / "sft"),
        records,
        World(seed=cfg.world_seed, scale=demo_world().scale),
        judge="gold",
        heldout_documents=read_documents(w / "corpus_heldout.jsonl") if headline else None,
        kl_samples=1 if headline else 0,
        seed=cfg.seed,
        temperatures=test_set.temperatures,
        knowledge=headline,
    )
    summary["config"]["test_set"] = test_set.file
    write_report(summary, o / test_set.report)
