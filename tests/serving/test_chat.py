"""`posttrain chat` through a pseudo-terminal, as a person meets it: typing, streamed replies,
slash commands, feedback records, and Ctrl-C stopping a reply while the session goes on."""

import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from posttrain.cli import main
from tests.tiny import BASE, llama_config


class Terminal:
    """A child process on a pseudo-terminal that is its controlling terminal, so \\x03 sends SIGINT."""

    def __init__(self, *args: str, cwd: Path):
        self.master, slave = os.openpty()
        env = {**os.environ, "TERM": "dumb", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "posttrain.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=self._as_terminal_job,
        )
        os.close(slave)
        self.seen = ""  # everything the terminal showed
        self.pos = 0  # how far `expect` has read

    @staticmethod
    def _as_terminal_job() -> None:
        """In the child: take the pty as controlling terminal, and SIGINT's default disposition, as a
        shell gives its foreground job (a test run from a background job inherits SIGINT ignored)."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    def expect(self, pattern: str, timeout: float = 60) -> str:
        """Read until `pattern` (a regex) shows after what was already matched; return the text up to its
        end."""
        deadline = time.monotonic() + timeout
        while not (m := re.search(pattern, self.seen[self.pos :])):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{pattern!r} did not show; the terminal showed:\n{self.seen[-3000:]}")
        text = self.seen[self.pos : self.pos + m.end()]
        self.pos += m.end()
        return text

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], min(timeout, 1.0))
        if ready:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                return False
            self.seen += data.decode("utf-8", "replace").replace("\r\n", "\n")
            return bool(data)
        return self.proc.poll() is None

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def type(self, line: str) -> None:
        """Type a line once the REPL asks for one (text typed ahead of readline's prompt can be garbled)."""
        self.expect(r"(> |\.\.\. )$")
        self.send(line + "\n")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        finally:
            os.close(self.master)


@pytest.fixture
def terminals():
    opened = []
    yield lambda *args, cwd: opened.append(Terminal(*args, cwd=cwd)) or opened[-1]
    for t in opened:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait(timeout=30)


def random_model(directory: Path) -> Path:
    """An untrained Llama: greedy text that never reaches EOS, so a long reply is still streaming at
    Ctrl-C."""
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    config = llama_config(
        len(tokenizer),
        max_position_embeddings=100_000,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_session_through_a_terminal(tmp_path, terminals):
    """One process (starting one costs seconds): typing, streaming, commands, feedback, Ctrl-C, Ctrl-D."""
    model = random_model(tmp_path / "random")
    term = terminals(
        "chat", str(model), "--temperature", "0", "--max-tokens", "30", "--feedback", "fb.jsonl", cwd=tmp_path
    )
    term.expect(r"/help for commands")
    term.type("Hi")
    shown = term.expect(r"\[\d+/100000 tokens\]")
    reply = shown.rsplit("Hi\n", 1)[1].rsplit("\n[", 1)[0]  # what streamed between the echo and the count
    assert len(reply) > 20
    term.type("/good clear enough")
    term.expect(r"saved feedback fb-\w+ to fb.jsonl")
    term.type("/flag hallucination off_topic")
    term.expect(r"saved feedback")
    for line in ('"""', "first line", "second line", '"""'):  # a multi-line message
        term.type(line)
    term.expect(r"\[\d+/100000 tokens\]")
    term.type("/save chat.jsonl")
    term.expect(r"saved 4 messages to chat.jsonl")
    term.type("/undo")
    term.expect(r"removed the last exchange \(2 messages left\)")
    term.type("/set temperature 9")
    term.expect(r"error: /set temperature: must be between 0 and 2, got 9\n")

    term.type("/set max_tokens 50000")
    term.expect(r"max_tokens 50000")
    term.type("Tell me everything.")
    term.expect(r"everything\.\n[^\n]{20}")  # the reply is streaming: its first words are on the screen
    term.send("\x03")
    stopped = term.expect(r"\[stopped\]\n\[(\d+)/100000 tokens\]", timeout=30)
    assert int(re.search(r"(\d+)/100000", stopped).group(1)) < 50000
    term.type("/set max_tokens 3")
    term.expect(r"max_tokens 3")
    term.type("/regen")  # the session goes on: the model answers again
    term.expect(r"\n\[\d+/100000 tokens\]")
    term.type("/undo")
    term.expect(r"removed the last exchange \(2 messages left\)")
    term.expect(r"> $")
    term.send("\x04")  # Ctrl-D leaves
    assert term.close() == 0

    records = [json.loads(line) for line in (tmp_path / "fb.jsonl").read_text().splitlines()]
    assert [r["rating"] for r in records] == ["up", None]
    assert records[0]["notes"] == "clear enough" and records[1]["flags"] == ["hallucination", "off_topic"]
    assert records[0]["messages"] == [{"role": "user", "content": "Hi"}]
    assert records[0]["completion"] == reply
    saved = json.loads((tmp_path / "chat.jsonl").read_text())
    assert saved["messages"][2] == {"role": "user", "content": "first line\nsecond line"}


def test_a_model_that_does_not_exist_is_a_clear_error(tmp_path, capsys):
    assert main(["chat", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such model directory" in err and "Traceback" not in err


def test_bad_sampling_options_are_rejected_before_loading(capsys):
    assert main(["chat", str(BASE), "--top-p", "0"]) == 2
    assert "--top-p must be in (0, 1], got 0.0" in capsys.readouterr().err
