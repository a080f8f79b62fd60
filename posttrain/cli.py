"""`posttrain <command>`: assembles the parser from the registered commands (posttrain/commands/) and
dispatches.

A command's options come from its config; before the command runs, the config is built and
checked (ranges, then its own rules), so bad input is one clear line on stderr and exit code 2,
never a traceback and never after a model has loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import textwrap

from posttrain import __version__
from posttrain.arguments import add_arguments, from_namespace
from posttrain.commands import COMMANDS, GROUPS, Command
from posttrain.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    # each command module registers its commands when imported
    from posttrain.commands import data, demo, evaluation, labeling, rlhf, serving, training, world  # noqa: F401

    parser = argparse.ArgumentParser(
        prog="posttrain", description="Post-train a language model into an aligned assistant (SFT, RM, PPO)."
    )
    parser.add_argument("--version", action="version", version=f"posttrain {__version__}")
    top = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    leaves = {c.name for c in COMMANDS}
    for c in COMMANDS:
        head, _, rest = c.name.partition(" ")
        if rest and head in GROUPS:  # `posttrain world export`
            if head not in groups:
                groups[head] = add_group(top, GROUPS[head])
            add_command(groups[head], rest, c, leaves)
        else:  # `posttrain sft`; `posttrain rm score` (see main)
            add_command(top, c.name, c, leaves)
    return parser


def add_group(commands: argparse._SubParsersAction, g) -> argparse._SubParsersAction:
    p = commands.add_parser(g.name, help=g.help, description=g.description)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])
    return p.add_subparsers(title=f"{g.name} commands", metavar="COMMAND")


def add_command(commands: argparse._SubParsersAction, name: str, c: Command, leaves: set[str]) -> None:
    children = sorted(n.split(" ", 1)[1] for n in leaves if n.startswith(c.name + " "))
    more = f"more: posttrain {c.name} {{{','.join(children)}}} --help" if children else None
    p = commands.add_parser(
        name,
        help=c.help,
        description=c.description,
        epilog="\n\n".join(filter(None, [c.example, more])) or None,
        formatter_class=argparse.RawDescriptionHelpFormatter if c.raw else Paragraphs,
    )
    add_arguments(p, c.config)
    p.set_defaults(run=lambda args: run_command(c, args))


class Paragraphs(argparse.HelpFormatter):
    """Help text filled to the terminal's width paragraph by paragraph (argparse joins them all)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            textwrap.fill(p, width, initial_indent=indent, subsequent_indent=indent)
            for p in text.split("\n\n")
        )


def run_command(c: Command, args: argparse.Namespace) -> int:
    cfg = from_namespace(c.config, args)
    cfg.check()
    return c.run(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) > 1 and f"{argv[0]} {argv[1]}" in {c.name for c in COMMANDS} and argv[0] not in GROUPS:
        argv = [f"{argv[0]} {argv[1]}", *argv[2:]]  # `rm score`, `eval overoptimization`: one parser each
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    rank = os.environ.get("RANK", "0")  # under torchrun: only rank 0 prints the command's output
    who = f" (rank {rank})" if "WORLD_SIZE" in os.environ and os.environ["WORLD_SIZE"] != "1" else ""
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")) if rank != "0" else contextlib.nullcontext():
            return args.run(args)
    except UserError as e:
        print(f"posttrain: error{who}: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a disk or permission failure mid-run: what and where, no traceback
        where = f"{e.filename}: " if e.filename else ""
        print(
            (
                f"posttrain: error{who}: {where}{e.strerror or e}; check the path, its permissions and free "
                "disk space"
            ),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("posttrain: interrupted", file=sys.stderr)
        return 130
    finally:  # a torchrun stage started a process group: end it (torch is imported by then, or it never was)
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
