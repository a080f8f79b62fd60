"""The command line's commands, one module per group; `posttrain.cli` assembles them into the parser.

Each command is a function `run(cfg) -> exit code`, registered in one line with the config it takes;
its docstring is its help: the first line in the parent's command list, the rest its --help page,
and a paragraph starting `example:` the example under it.

    @command("sft", SFTConfig)
    def sft(cfg: SFTConfig) -> int:
        '''supervised fine-tuning on demonstrations (loss on assistant turns)

        Fine-tune a causal LM on chat demonstrations; only assistant tokens carry loss. Resumable.

        example: posttrain sft --model assets/base-small-seed0 --data demos.jsonl --out runs/sft
        '''

The CLI builds `cfg` from the options, runs `cfg.check()` (ranges, then the config's own rules) before
the command loads anything, and turns a UserError into one line on stderr and exit code 2. These
modules are the only library code that prints; they call into the stages, pipelines, `serving`,
`labeling` and `evaluation`, and never into `posttrain.cli`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str  # the words after `posttrain`: "sft", "world export", "rm score"
    config: type
    run: Callable[[object], int]

    def _paragraphs(self) -> list[str]:
        return [
            " ".join(p.split()) for p in inspect.cleandoc(self.run.__doc__ or "").split("\n\n") if p.strip()
        ]

    @property
    def help(self) -> str:
        return self._paragraphs()[0]

    @property
    def description(self) -> str:
        text = [p for p in self._paragraphs()[1:] if not p.startswith("example:")]
        return (
            inspect.cleandoc(self.run.__doc__).split("\n\n", 1)[1]
            if self.raw
            else "\n\n".join(text) or self.help
        )

    @property
    def example(self) -> str | None:
        return next((p for p in self._paragraphs() if p.startswith("example:")), None)

    @property
    def raw(self) -> bool:
        """A docstring laid out by hand (an indented block in it) is shown as written."""
        return "\n    " in inspect.cleandoc(self.run.__doc__ or "")


@dataclass(frozen=True)
class Group:
    name: str
    help: str
    description: str


COMMANDS: list[Command] = []
GROUPS: dict[str, Group] = {}


def command(name: str, config: type):
    """Register `run(cfg) -> int` as `posttrain NAME` (its docstring is its help: see above)."""

    def register(run: Callable[[object], int]) -> Callable[[object], int]:
        COMMANDS.append(Command(name, config, run))
        return run

    return register


def group(name: str, *, help: str, description: str) -> None:
    """A word that only groups commands (`posttrain world ...`): its help in the command list, and its
    page."""
    GROUPS[name] = Group(name, help, description)
