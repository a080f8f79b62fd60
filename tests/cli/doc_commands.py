"""A command written in the docs, checked without running it: `posttrain ...` parses with the real parser and
passes its config's checks, a bench script's arguments parse with its own parser, `make X` names a
Makefile target, anything else is a repository file or a program on PATH (tests/cli/test_docs.py)."""

import argparse
import contextlib
import functools
import importlib.util
import io
import os
import re
import shutil
import sys
from unittest import mock

import pytest

from tests.tiny import ROOT

# synopsis placeholders that stand for numbers (others, like MODEL or DIR, are fine as strings)
NUMBERS = {"N": "1", "S": "0", "SECONDS": "600"}


def check_command(argv: list[str], where: str) -> None:
    prog = argv[0]
    if prog == "posttrain":
        check_posttrain(argv[1:], where)
    elif prog == "make":
        makefile = (ROOT / "Makefile").read_text()
        missing = [t for t in argv[1:] if not re.search(rf"^{re.escape(t)}:", makefile, re.M)]
        assert not missing, f"{where}: the Makefile has no target {missing}"
    elif prog.endswith("/python") and len(argv) > 1 and argv[1].startswith("bench/"):
        check_bench_script(argv[1], argv[2:], where)
    elif (ROOT / prog).is_file():
        assert os.access(ROOT / prog, os.X_OK), f"{where}: {prog} is not executable"
    else:
        assert shutil.which(prog), f"{where}: `{prog}` is neither a repository file nor a program on PATH"


def synopsis_argv(words: list[str]) -> list[str]:
    """A synopsis line as argv: brackets dropped, the first of `a|b|c`, `FLAG ...` left out, numbers for N,
    S."""
    out: list[str] = []
    for w in words:
        w = w.replace("[", "").replace("]", "")
        if w == "...":
            if out and out[-1].startswith("--"):
                out.pop()
        elif w:
            out.append(NUMBERS.get(w, w if w.startswith("--") else w.split("|")[0]))
    return out


@functools.cache
def cli():
    """The real parser, each command's own subparser by its full name ("world export", "rm score"), the
    registry."""
    from posttrain.cli import build_parser
    from posttrain.commands import COMMANDS, GROUPS

    parser, subs = build_parser(), {}

    def walk(p: argparse.ArgumentParser, prefix: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    subs[f"{prefix} {name}".strip()] = sub
                    walk(sub, f"{prefix} {name}".strip())

    walk(parser, "")
    return parser, subs, {c.name: c for c in COMMANDS}, GROUPS


def command_of(words: list[str]) -> str | None:
    """The longest command or group name that `words` start with."""
    _, subs, _, _ = cli()
    return max((n for n in subs if words[: len(n.split())] == n.split()), key=len, default=None)


def check_posttrain(words: list[str], where: str) -> None:
    """Parse as `posttrain.cli.main` does, then build the config and run its checks (ranges, cross-field
    rules)."""
    from posttrain.arguments import from_namespace
    from posttrain.errors import UserError

    parser, _, commands, groups = cli()
    argv = synopsis_argv(words)
    shown = "posttrain " + " ".join(words)
    name = command_of(argv)
    assert name in commands, f"{where}: `{shown}` names no command (see `posttrain --help`)"
    if " " in name and name.split()[0] not in groups:  # `rm score`: one parser, as main() joins it
        argv = [name, *argv[2:]]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `{shown}` does not parse: {err.getvalue().strip().splitlines()[-1]}")
    try:
        from_namespace(commands[name].config, args).check()
    except UserError as e:
        pytest.fail(f"{where}: `{shown}` is refused: {e}")


class Parsed(Exception):
    pass


def check_bench_script(script: str, args: list[str], where: str) -> None:
    """The script's own argparse parser takes `args` (its main() is stopped right after parsing)."""
    path = ROOT / script
    assert path.is_file(), f"{where}: no {script}"
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, _args=None, namespace=None):
        original(self, args, namespace)
        raise Parsed

    err = io.StringIO()
    sys.path.insert(0, str(path.parent))  # the scripts import bench/harness.py
    try:
        spec.loader.exec_module(module)
        with (
            mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop),
            contextlib.redirect_stderr(err),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            module.main()
    except Parsed:
        return
    except SystemExit:
        pytest.fail(
            f"{where}: `{script} {' '.join(args)}` does not parse: {err.getvalue().strip().splitlines()[-1]}"
        )
    finally:
        sys.path.remove(str(path.parent))
    pytest.fail(f"{where}: {script}'s main() never parsed its arguments")
