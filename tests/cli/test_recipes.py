"""One home for the measured settings: `posttrain ppo` without tuning flags, the demo and the loop run the
recipe."""

import dataclasses

from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_presets import PRESETS
from posttrain.commands.demo_steps import stage_configs
from posttrain.config import SCALE_NAMES
from posttrain.pipelines.loop_config import LoopConfig
from posttrain.recipes import RECIPES, SMALL
from posttrain.stages.rm import RMConfig, RMSettings
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.world.core import SCALES


def settings(cfg, piece: type) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(piece)}


def test_ppo_defaults_are_the_recipe():
    cfg = PPOConfig(policy="p", reward="r", prompts="x", out="o")
    assert (
        cfg.lr,
        cfg.kl_coef,
        cfg.ptx_coef,
        cfg.rollout_batch,
        cfg.minibatches,
        cfg.micro_batch,
        cfg.ppo_epochs,
        cfg.max_new_tokens,
    ) == (
        SMALL.ppo_lr,
        SMALL.kl_coef,
        SMALL.ptx_coef,
        SMALL.rollout_batch,
        SMALL.minibatches,
        SMALL.micro_batch,
        SMALL.ppo_epochs,
        SMALL.max_new_tokens,
    )


def test_the_demo_runs_the_stage_defaults_with_only_its_sizes_changed():
    c = stage_configs(DemoConfig(), PRESETS["small"])
    defaults = PPOConfig(policy="p", reward="r", prompts="x", out="o")
    assert settings(c["ppo"], PPOSettings) == settings(defaults, PPOSettings)
    assert c["ppo"].max_steps == SMALL.ppo_steps
    assert settings(c["rm"], RMSettings) == settings(RMConfig(model="m", data="d", out="o"), RMSettings)
    assert c["sft"].lr == SMALL.sft_lr and c["sft"].epochs == SMALL.sft_epochs
    assert c["sample"].k == SMALL.k and c["label"].labelers_per_item == SMALL.labelers_per_item


def test_the_loop_runs_the_same_rm_and_ppo_settings():
    loop = LoopConfig(sft="s", rm_prompts="a", ppo_prompts="b", eval_prompts="c", out="o")
    assert loop.ppo == PPOSettings() and loop.rm == RMSettings()
    assert loop.k == SMALL.k


def test_every_world_scale_has_a_recipe_and_the_scale_choices_match_the_world():
    assert set(RECIPES) == set(SCALES) == set(SCALE_NAMES)
