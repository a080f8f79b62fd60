"""Every fenced block of the docs (README.md, docs/*.md) runs as written, or says why it cannot.

What a block is, by its fence's language:

    python, py           exec'd in a scratch directory; a block that talks to http://127.0.0.1:8000 runs
                         against `posttrain serve runs/demo/sft --port 0`, started here on the shipped
                         base model
    bash, sh, console    run by bash in a scratch directory (the venv first on PATH, `assets/` linked in, a
                         timeout); in a console block only the `$ ` lines run, the rest is their output
    json                 parsed
    text                 output, layouts, formulas: never run, never marked

A block that cannot run (minutes of training, a server that runs until Ctrl-C, a synopsis with
[options]) has `<!-- not run: REASON -->` on the line before its fence. It is still checked as far as
that goes without running it: every `posttrain ...` command in it parses with the real parser and
passes its config's checks; a bench script's arguments parse with that script's own parser; `make X`
names a Makefile target; a python block's imports resolve and its calls of imported functions bind to
their signatures. Then it is skipped with its reason, which `pytest -ra` lists, one test id per block.
(Commands named in prose: test_docs_prose.py; how a written command is checked: doc_commands.py.)
"""

import ast
import inspect
import json
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import tiny
from tests.cli.doc_commands import check_command, cli, command_of

ROOT = tiny.ROOT
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BASE = ROOT / "assets" / "base-small-seed0"
LANGS = {
    "python": "python",
    "py": "python",
    "bash": "shell",
    "sh": "shell",
    "console": "shell",
    "json": "json",
    "text": "text",
}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARKER = re.compile(r"^\s*<!-- not run: (.+?) -->\s*$")
SHELL_TIMEOUT = 180  # seconds per run block; the slowest (README's world commands) takes about 25
SERVED = "http://127.0.0.1:8000"  # the address the docs' client examples use; the test server's replaces it


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str  # as written after the fence
    text: str  # dedented to the fence's indent
    not_run: str | None  # the marker's reason

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str | None:
        return LANGS.get(self.lang)


def read_blocks(doc: Path) -> list[Block]:
    lines, out, i = doc.read_text().splitlines(), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{doc.relative_to(ROOT)}:{i + 1}: a fence that never closes"
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(prev)
        text = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        out.append(Block(doc, i + 1, m.group(2), text, marker and marker.group(1)))
        i = end + 1
    return out


BLOCKS = [b for doc in DOCS for b in read_blocks(doc)]
CHECKED = [b for b in BLOCKS if b.kind != "text"]


def test_every_block_says_what_it_is():
    untagged = [f"{b.where} (```{b.lang})" for b in BLOCKS if b.kind is None]
    assert not untagged, f"tag each block with one of {', '.join(LANGS)}: {untagged}"
    pointless = [b.where for b in BLOCKS if b.kind == "text" and b.not_run]
    assert not pointless, f"text blocks are never run; drop their `not run` marker: {pointless}"
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for n, line in enumerate(lines):
            if MARKER.match(line):
                after = next((x for x in lines[n + 1 :] if x.strip()), "")
                assert FENCE.match(after), (
                    f"{doc.relative_to(ROOT)}:{n + 1}: a `not run` marker with no block after it"
                )


@pytest.mark.parametrize("block", CHECKED, ids=lambda b: b.where)
def test_block(block: Block, request, tmp_path, monkeypatch):
    if block.kind == "shell":
        for argv in shell_commands(block):
            check_command(argv, block.where)
    if block.not_run:
        if block.kind == "python":
            check_python_statically(block)
        pytest.skip(f"{block.where}: not run: {block.not_run}")
    if block.kind == "json":
        try:
            check_record(json.loads(block.text), block.where)
        except json.JSONDecodeError as e:
            pytest.fail(
                f"{block.where}: not JSON ({e}); fix it, or mark an elided example `<!-- not run: ... -->`"
            )
    elif block.kind == "python":
        code = block.text
        if SERVED in code:
            code = code.replace(SERVED, request.getfixturevalue("demo_server"))
        monkeypatch.chdir(tmp_path)
        exec(compile(code, block.where, "exec"), {"__name__": "__doc_example__"})
    else:
        run_shell(block, tmp_path)


def check_record(record: dict, where: str) -> None:
    """A JSON example shaped like one of posttrain's records passes posttrain's own validation of it."""
    from posttrain.data.rankings import validate_ranking, validate_samples
    from posttrain.data.records import validate_conversation
    from posttrain.errors import UserError
    from posttrain.labeling.intake import check_feedback
    from posttrain.labeling.submission import check_label

    shapes = [
        ({"prompt", "completions", "ranking"}, validate_ranking),
        ({"prompt", "completions"}, validate_samples),
        ({"messages", "completion"}, check_feedback),
        ({"messages"}, validate_conversation),
        ({"submission_id", "ranking", "likert"}, lambda body, _: check_label(body, len(body["likert"]))),
    ]
    validate = next((v for keys, v in shapes if keys <= set(record)), None)
    try:
        validate and validate(dict(record), where)
    except UserError as e:
        pytest.fail(f"{where}: the example is not a valid record: {e}")


def test_the_design_lists_every_command():
    _, _, commands, _ = cli()
    named = {
        command_of(argv[1:])
        for b in read_blocks(ROOT / "docs" / "design.md")
        if b.kind == "shell"
        for argv in shell_commands(b)
        if argv[0] == "posttrain"
    }
    missing = sorted(set(commands) - named)
    assert not missing, f"docs/design.md's command line leaves out {missing}"


# --- shell blocks ---------------------------------------------------------------------------
def shell_env() -> dict:
    """The venv's bin first on PATH, one torch thread (the docs' commands as a user would run them here)."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
    }


def run_shell(block: Block, cwd: Path) -> None:
    (cwd / "assets").symlink_to(ROOT / "assets")  # the docs run from the repository root
    script = block.text
    if block.lang == "console":
        script = "\n".join(line[2:] for line in script.splitlines() if line.startswith("$ "))
    try:
        r = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=cwd,
            env=shell_env(),
            capture_output=True,
            text=True,
            timeout=SHELL_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: still running after {SHELL_TIMEOUT} s; mark it `<!-- not run: ... -->`")
    assert r.returncode == 0, f"{block.where} exited {r.returncode}:\n{r.stdout[-1500:]}\n{r.stderr[-3000:]}"


def shell_commands(block: Block) -> list[list[str]]:
    """Each command of a shell block as argv: comments, redirections and leading VAR=value dropped.
    As in a synopsis, an indented line continues the command above it, and a lone `|` before an
    option is an alternative (`--kl-coef 0.2 | --kl-target 6`), not a pipe."""
    script = block.text
    if block.lang == "console":
        script = "\n".join(line[2:] for line in script.splitlines() if line.startswith("$ "))
    out = []
    for line in re.sub(r"\n[ \t]+", " ", script.replace("\\\n", " ")).splitlines():
        tokens, cmd, i = shlex.split(line, comments=True), [], 0
        while i < len(tokens):
            t, after = tokens[i], (tokens[i + 1] if i + 1 < len(tokens) else "")
            if t in ("&&", "||", ";") or (t == "|" and not after.lstrip("[").startswith("--")):
                out, cmd = out + [cmd], []
            elif t in (">", ">>", "<", "2>"):
                i += 1
            elif not (t == "|" or (not cmd and re.match(r"^[A-Za-z_]\w*=", t))):
                cmd.append(t)
            i += 1
        out.append(cmd)
    return [c for c in out if c]


# --- python blocks that do not run ----------------------------------------------------------
def check_python_statically(block: Block) -> None:
    """Run the block's imports; check that each call of an imported function or class binds to its
    signature."""
    tree = ast.parse(block.text, block.where)
    names: dict = {}
    imports = ast.Module(
        [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[]
    )
    try:
        exec(compile(imports, block.where, "exec"), names)
    except ImportError as e:
        pytest.fail(f"{block.where}: {e}")
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)):
        f = names.get(call.func.id)
        if (
            not callable(f)
            or any(isinstance(a, ast.Starred) for a in call.args)
            or any(k.arg is None for k in call.keywords)
        ):
            continue
        try:
            inspect.signature(f).bind(*call.args, **{k.arg: k.value for k in call.keywords})
        except TypeError as e:
            pytest.fail(
                f"{block.where}, line {call.lineno}: {call.func.id}(...) does not match its signature: {e}"
            )


# --- the server that serving.md's client example talks to -------------------------------------
@pytest.fixture(scope="module")
def demo_server(tmp_path_factory) -> str:
    """`posttrain serve runs/demo/sft --port 0` with the shipped base model standing in for the demo's SFT
    model: served as `sft`, key `KEY` (from $POSTTRAIN_API_KEY), on a free port of 127.0.0.1."""
    work = tmp_path_factory.mktemp("serve")
    (work / "runs" / "demo").mkdir(parents=True)
    (work / "runs" / "demo" / "sft").symlink_to(BASE)
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        ["posttrain", "serve", "runs/demo/sft", "--port", "0"],
        cwd=work,
        text=True,
        env={**shell_env(), "POSTTRAIN_API_KEY": "KEY"},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        url, deadline = None, time.monotonic() + 120
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            if select.select([proc.stdout], [], [], 1.0)[0]:
                url = (
                    m := re.search(r"at (http://127\.0\.0\.1:\d+)/v1", proc.stdout.readline())
                ) and m.group(1)
        assert url, f"`posttrain serve` printed no URL:\n{(work / 'serve.log').read_text()[-3000:]}"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
