"""Commands of posttrain.evaluation (being built)."""

from __future__ import annotations

import argparse


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this group's commands on `commands`."""
