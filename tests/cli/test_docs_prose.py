"""Inline code in the docs' prose that starts with `posttrain ` names a real command, with real options."""

import re
from pathlib import Path

import pytest

from tests.cli.doc_commands import cli, command_of
from tests.tiny import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(doc: Path) -> str:
    """The doc without its fenced blocks."""
    return re.sub(r"^\s*```\S*\s*\n.*?^\s*```\s*$", "", doc.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_commands_in_prose_are_real(doc):
    _, subs, _, _ = cli()
    bad = []
    for span in re.findall(r"`posttrain ([^`]+)`", prose(doc)):
        words = span.split()
        name = command_of(words)
        if name is None:
            bad.append(f"`posttrain {' '.join(words)}`: no such command")
            continue
        options = {o for a in subs[name]._actions for o in a.option_strings}
        bad += [
            f"`posttrain {' '.join(words)}`: {name} has no {w}"
            for w in words
            if w.startswith("--") and w.split("=")[0].rstrip(",.;:)") not in options
        ]
    assert not bad, f"{doc.relative_to(ROOT)}: {bad}"
