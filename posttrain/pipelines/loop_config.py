"""`posttrain loop`'s options, apart from the loop so that loop.json's checks (loop_state.py) can name
the type without importing the loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, WorldRef, option
from posttrain.errors import UserError
from posttrain.recipes import SMALL
from posttrain.stages.rm import RMSettings
from posttrain.training.ppo_config import PPOSettings


@dataclass(kw_only=True)
class LoopConfig(Options, WorldRef):
    sft: str = option(
        help="the SFT policy: round 1's starting point, every round's KL reference and RM init", required=True
    )
    rm_prompts: Path = option(help="prompts to sample comparisons for (sliced per round)", required=True)
    ppo_prompts: Path = option(help="PPO prompts (sliced per round)", required=True)
    eval_prompts: Path = option(
        help="prompts to choose the best policy on (world prompts: the simulated labelers "
        "judge, gold logged for monitoring only; others: the round's reward model)",
        required=True,
    )
    out: Path = option(help="loop run directory (created, or continued when it exists)", required=True)
    rounds: int = option(2, help="rounds of sample -> label -> RM -> PPO -> eval", ge=1)
    rm_prompts_per_round: int = option(300, help="prompts sampled for comparisons each round", ge=1)
    ppo_prompts_per_round: int = option(448, help="PPO episodes each round (one pass over its slice)", ge=1)
    k: int = option(SMALL.k, help="completions per prompt to rank (4..9)", ge=2, le=9)
    labelers_per_item: int = option(1, help="simulated labelers per item", ge=1)
    ptx: Path | None = option(None, help="pretraining corpus for PPO-ptx (off when not given)")
    seed: int = option(0, help="seed of sampling, training and PPO", ge=0)
    rm: RMSettings = option(RMSettings(), help="each round's reward model (--rm-lr, --rm-epochs, ...)")
    ppo: PPOSettings = option(PPOSettings(), help="each round's PPO (--ppo-lr, --ppo-kl-coef, ...)")

    def check(self) -> None:
        super().check()
        self.rm.check()
        self.ppo.check()
        if self.ppo.rollout_batch > self.ppo_prompts_per_round:
            raise UserError(
                f"--ppo-rollout-batch ({self.ppo.rollout_batch}) must be at most "
                f"--ppo-prompts-per-round ({self.ppo_prompts_per_round})"
            )
