"""The terminal side of `posttrain chat`: read messages, stream replies, survive Ctrl-C.

Ctrl-C while a reply streams stops it and keeps the text so far as the reply; Ctrl-C at the
prompt clears the line; Ctrl-D or /exit leaves. Model output is untrusted text: control
characters (terminal escape sequences) are dropped before it reaches the terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from posttrain.config import RemoteCode, option
from posttrain.errors import UserError
from posttrain.serving.session import Session, Settings

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps \t and \n
FENCE = '"""'


@dataclass(kw_only=True)
class ChatConfig(Settings, RemoteCode):
    model: str = option(
        help="who to talk to: a checkpoint or HF model directory, a .gguf file, or smollm2-135m",
        required=True,
        positional=True,
    )
    system: str | None = option(None, help="system prompt to start with (/system changes it)")
    feedback: Path = option(
        Path("feedback.jsonl"), help="append-only JSONL file for /good, /bad, /flag, /prefer"
    )


def printable(text: str) -> str:
    return _CONTROL.sub("", text)


def read_message(read: Callable[[str], str]) -> str:
    """One message: a line, lines joined by a trailing backslash, or a block between two lines of \"\"\"."""
    line = read("> ")
    if line.strip() == FENCE:
        lines = []
        while (line := read("... ")).strip() != FENCE:
            lines.append(line)
        return "\n".join(lines)
    lines = []
    while line.endswith("\\"):
        lines.append(line[:-1])
        line = read("... ")
    return "\n".join([*lines, line])


def run_repl(session: Session, *, read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> int:
    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    say(
        f"chatting with {session.served.name} (context {session.served.context_length} tokens); "
        f"/help for commands, /exit or Ctrl-D to leave"
    )
    while True:
        try:
            text = read_message(read)
        except EOFError:
            say()
            return 0
        except KeyboardInterrupt:
            say("^C (Ctrl-D or /exit to leave)")
            continue
        try:
            if text.startswith("/"):
                outcome = session.command(text)
                if outcome.message:
                    say(outcome.message)
                if outcome.exit:
                    return 0
                if outcome.generate:
                    stream_reply(session, out)
            elif text.strip():
                session.add_user(text)
                stream_reply(session, out)
        except UserError as e:
            say(f"error: {e}")


def stream_reply(session: Session, out: TextIO) -> None:
    """Print the reply as it comes; on Ctrl-C keep what was written. The reply joins the conversation."""
    parts: list[str] = []
    stopped = False
    try:
        for delta in session.reply():
            parts.append(delta)
            out.write(printable(delta))
            out.flush()
    except KeyboardInterrupt:
        stopped = True
    except UserError:
        session.messages.pop()  # the user turn that did not fit
        raise
    session.add_reply("".join(parts))
    note = " [stopped]" if stopped else ""
    print(f"{note}\n[{session.tokens_used()}/{session.served.context_length} tokens]", file=out, flush=True)
