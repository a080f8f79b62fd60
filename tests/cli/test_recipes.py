"""One home for the measured settings: `posttrain ppo` without tuning flags, the demo and the loop run the
recipe."""

import dataclasses
import re

import pytest

from posttrain.cli import build_parser
from posttrain.commands.demo_config import DemoConfig
from posttrain.commands.demo_presets import PRESETS
from posttrain.commands.demo_steps import stage_configs
from posttrain.config import SCALE_NAMES
from posttrain.pipelines.loop_config import LoopConfig
from posttrain.recipes import RECIPES, SMALL
from posttrain.stages.rm import RMConfig, RMSettings
from posttrain.training.ppo_config import PPOConfig, PPOSettings
from posttrain.world.core import SCALES
from tests.tiny import ROOT


def settings(cfg, piece: type) -> dict:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(piece)}


# each stage's required options, and which recipe numbers its defaults are
STAGES = {
    "sft": (["--model", "m", "--data", "d", "--out", "o"], {"lr": "sft_lr", "epochs": "sft_epochs"}),
    "rm": (["--model", "m", "--data", "d", "--out", "o"], {"lr": "rm_lr", "epochs": "rm_epochs"}),
    "ppo": (
        ["--policy", "p", "--reward", "r", "--prompts", "x", "--out", "o"],
        {
            "lr": "ppo_lr",
            "kl_coef": "kl_coef",
            "ptx_coef": "ptx_coef",
            "rollout_batch": "rollout_batch",
            "minibatches": "minibatches",
            "micro_batch": "micro_batch",
            "ppo_epochs": "ppo_epochs",
            "max_new_tokens": "max_new_tokens",
        },
    ),
    "dpo": (
        ["--model", "m", "--data", "d", "--out", "o"],
        {"lr": "dpo_lr", "beta": "dpo_beta", "epochs": "dpo_epochs"},
    ),
    "loop": (
        ["--sft", "s", "--rm-prompts", "a", "--ppo-prompts", "b", "--eval-prompts", "c", "--out", "o"],
        {"k": "k", "rm_lr": "rm_lr", "rm_epochs": "rm_epochs", "ppo_lr": "ppo_lr", "ppo_kl_coef": "kl_coef"},
    ),
}


def parsed(stage: str):
    """`posttrain STAGE` with only its required options, as the command line parses it."""
    return build_parser().parse_args([stage, *STAGES[stage][0]])


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_run_without_tuning_flags_runs_the_recipe(stage):
    ns = parsed(stage)
    assert {f: getattr(ns, f) for f in STAGES[stage][1]} == {
        f: getattr(SMALL, r) for f, r in STAGES[stage][1].items()
    }


def synopsis_numbers(stage: str) -> dict[str, str]:
    """`--flag NUMBER` pairs in the brackets of the README's synopsis of `posttrain STAGE` (its defaults)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"posttrain {stage} --"))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith(" "))
    brackets = " ".join(re.findall(r"\[([^\]]*)\]", " ".join(lines[start:end])))
    return dict(re.findall(r"--([a-z-]+) (-?[0-9][0-9.e-]*)(?![\w/])", brackets))


@pytest.mark.parametrize("stage", ["sft", "rm", "ppo", "loop"])
def test_the_readme_synopsis_shows_the_defaults_the_command_runs(stage):
    """Only the recipe's numbers: others in a synopsis are examples (`--kl-target 6`, `--likert-margin
    0.1`)."""
    recipe = {f.replace("_", "-"): r for f, r in STAGES[stage][1].items()}
    shown = {flag: v for flag, v in synopsis_numbers(stage).items() if flag in recipe}
    assert shown, f"no recipe number in the README's synopsis of posttrain {stage}"
    assert {flag: float(v) for flag, v in shown.items()} == {
        flag: getattr(SMALL, recipe[flag]) for flag in shown
    }


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
