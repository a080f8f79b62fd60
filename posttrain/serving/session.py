"""A chat session: the conversation, sampling settings, feedback, and the slash commands that change them.

No terminal I/O here (repl.py does that): commands return the text to show, and `reply()`
yields the assistant's text as it is generated, so both can be tested without a terminal.
"""

from __future__ import annotations

import json
import shlex
import typing
from collections.abc import Iterator
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path

from posttrain.arguments import check_ranges, range_text
from posttrain.config import Options, option
from posttrain.data.chat import chat_ids
from posttrain.data.jsonline import dumps
from posttrain.data.records import read_conversations
from posttrain.errors import UserError
from posttrain.generation.grammar import Grammar, GrammarError
from posttrain.generation.streaming import Decoder, Sampling
from posttrain.serving.feedback import FeedbackLog, feedback_record
from posttrain.serving.model import ServedModel
from posttrain.serving.textstream import TextStream

SETTABLE = ("temperature", "top_p", "max_tokens")  # what /set changes


@dataclass(kw_only=True)
class Settings(Options):
    """How replies are sampled: `posttrain chat` options, and what /set changes, in the same ranges."""

    temperature: float = option(
        0.7, help="sampling temperature, 0 for greedy (/set temperature changes it)", ge=0, le=2
    )
    top_p: float = option(0.95, help="nucleus sampling mass (/set top_p changes it)", gt=0, le=1)
    max_tokens: int = option(
        256, help="longest reply in tokens (/set max_tokens changes it)", ge=1, le=1_000_000
    )
    seed: int | None = option(None, help="seed for reproducible replies; None: a fresh seed each reply", ge=0)

    def set(self, name: str, value: str) -> None:
        """`/set NAME VALUE`; a value outside the option's declared range is refused, as on the command
        line."""
        if name not in SETTABLE:
            raise UserError(f"/set: unknown setting {name!r}; use one of {', '.join(SETTABLE)}")
        kind = typing.get_type_hints(Settings)[name]
        try:
            parsed = kind(value)
        except ValueError:
            raise UserError(
                f"/set {name}: {value!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
        try:
            check_ranges(replace(self, **{name: parsed}))
        except UserError:
            raise UserError(f"/set {name}: must be {range_text(declared(name))}, got {value}") from None
        setattr(self, name, parsed)

    def show(self) -> str:
        return f"temperature {self.temperature}, top_p {self.top_p}, max_tokens {self.max_tokens}"


def declared(name: str) -> Field:
    return next(f for f in fields(Settings) if f.name == name)


HELP = f"""commands:
  /reset               start over (keeps the system prompt)
  /system [TEXT]       set the system prompt (no text: show it; /system - clears it)
  /regen               answer the last message again
  /undo                remove the last exchange (your message and the reply)
  /save FILE           write the conversation as one JSONL conversation record, to a new file
  /save! FILE          the same, replacing FILE if it exists
  /load FILE           continue a conversation saved with /save (first record of a JSONL file);
                       one that ends with your message gets its reply
  /json [FILE|object|-] replies as JSON following the schema in FILE, or any JSON object; - ends it
  /set [NAME VALUE]    change a setting; no arguments: show them
                       {", ".join(f"{name} {range_text(declared(name))}" for name in SETTABLE)}
  /good [NOTE]         rate the last reply up        /bad [NOTE]    rate it down
  /flag NAME [NAME..]  flag the last reply (e.g. hallucination harmful over_refusal)
  /prefer TEXT         record a better answer for the last reply
  /exit                leave (Ctrl-D too)
input: end a line with \\ to continue it; a line of \"\"\" opens and closes a multi-line message.
Ctrl-C stops a reply and keeps what was written so far."""


@dataclass
class Outcome:
    """What a command asks the REPL to do."""

    message: str = ""
    generate: bool = False  # produce an assistant reply now
    exit: bool = False


@dataclass
class Session:
    served: ServedModel
    feedback: FeedbackLog
    settings: Settings = field(default_factory=Settings)
    system: str | None = None
    messages: list[dict] = field(default_factory=list)  # user and assistant turns, alternating
    replies: int = 0  # replies generated, to vary a fixed seed
    json: tuple[str, Grammar] | None = None  # /json: what replies follow, and its grammar

    def conversation(self) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages

    def tokens_used(self) -> int:
        conv = self.conversation()
        if not conv:
            return 0
        return len(chat_ids(self.served.tokenizer, conv))

    def add_user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def reply(self) -> Iterator[str]:
        """Stream the assistant's answer to the conversation; the caller appends it with `add_reply`."""
        prompt = self.served.chat_prompt(self.conversation())
        room = self.served.context_length - len(prompt)
        if room < 1:
            raise UserError(
                f"the conversation is {len(prompt)} tokens and the context {self.served.context_length}; "
                "/undo or /reset to make room"
            )
        seed = None if self.settings.seed is None else self.settings.seed + self.replies
        self.replies += 1
        cfg, grammar = self.settings, self.json and self.json[1]
        sampling = Sampling(cfg.temperature, cfg.top_p, min(cfg.max_tokens, room), seed, grammar=grammar)
        tokenizer = self.served.tokenizer
        decoder = Decoder(
            self.served.model,
            [prompt],
            [sampling],
            eos_ids=self.served.eos_ids,
            pad_id=tokenizer.pad_token_id or 0,
        )
        text = TextStream(tokenizer)
        for (token,) in decoder:
            if token is not None and (delta := text.push(token)):
                yield delta
        if tail := text.flush():
            yield tail

    def add_reply(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})

    def command(self, line: str) -> Outcome:
        """Run one slash command; UserError for a bad one (the session is unchanged)."""
        name, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        handler = COMMANDS.get(name)
        if handler is None:
            raise UserError(f"unknown command {name}; /help lists them")
        return handler(self, rest)

    def last_exchange(self) -> tuple[list[dict], str]:
        """The conversation up to the last user turn, and the reply to it."""
        if not self.messages or self.messages[-1]["role"] != "assistant":
            raise UserError("there is no reply to give feedback on yet")
        return self.conversation()[:-1], self.messages[-1]["content"]

    def give_feedback(self, **fields) -> str:
        prompt, completion = self.last_exchange()
        record = feedback_record(model=self.served.name, messages=prompt, completion=completion, **fields)
        self.feedback.append(record)
        return f"saved feedback {record['id']} to {self.feedback.path}"

    def save(self, path: str, *, force: bool = False) -> str:
        """Write the conversation to a new file `path`; `force` (/save!) replaces an existing one."""
        if not path:
            raise UserError("/save needs a file name, e.g. /save chat.jsonl")
        if not self.messages:
            raise UserError("/save: the conversation is empty")
        record = {
            "id": f"chat-{self.served.name}",
            "messages": self.conversation(),
            "source": f"chat:{self.served.name}",
            "meta": {"temperature": self.settings.temperature, "top_p": self.settings.top_p},
        }
        try:
            with Path(path).expanduser().open("w" if force else "x", encoding="utf-8") as f:
                f.write(dumps(record) + "\n")
        except FileExistsError:
            raise UserError(f"/save: {path} already exists; /save! {path} replaces it") from None
        except OSError as e:
            raise UserError(f"/save: cannot write {path} ({e.strerror})") from None
        return f"saved {len(self.messages)} messages to {path}"

    def load(self, path: str) -> str:
        if not path:
            raise UserError("/load needs a file name, e.g. /load chat.jsonl")
        try:
            records = read_conversations(Path(path).expanduser())
        except OSError as e:
            raise UserError(f"/load: cannot read {path} ({e.strerror})") from None
        if not records:
            raise UserError(f"/load: {path} holds no conversation")
        messages = records[0]["messages"]
        self.system = messages[0]["content"] if messages[0]["role"] == "system" else None
        self.messages = [dict(m) for m in messages if m["role"] != "system"]
        return f"loaded {len(self.messages)} messages from {path}"


def _system(s: Session, rest: str) -> Outcome:
    if not rest:
        return Outcome(f"system prompt: {s.system!r}" if s.system else "no system prompt")
    s.system = None if rest == "-" else rest
    return Outcome("system prompt cleared" if s.system is None else "system prompt set")


def _regen(s: Session, rest: str) -> Outcome:
    if not s.messages or s.messages[-1]["role"] != "assistant":
        raise UserError("/regen: there is no reply to answer again")
    s.messages.pop()
    return Outcome(generate=True)


def _undo(s: Session, rest: str) -> Outcome:
    if not s.messages:
        raise UserError("/undo: the conversation is empty")
    removed = s.messages.pop()
    if removed["role"] == "assistant" and s.messages:
        s.messages.pop()
    return Outcome(f"removed the last exchange ({len(s.messages)} messages left)")


def _json(s: Session, rest: str) -> Outcome:
    """Constrain replies to JSON (the server's response_format, strict), or end that with `-`."""
    if rest in ("", "-"):
        s.json = None if rest else s.json
        return Outcome(f"replies follow {s.json[0]}" if s.json else "replies are free text")
    try:
        schema = None if rest == "object" else json.loads(Path(rest).expanduser().read_text(encoding="utf-8"))
        s.json = (rest, s.served.grammars.json(schema, strict=True))
    except OSError as e:
        raise UserError(f"/json: cannot read {rest} ({e.strerror})") from None
    except (ValueError, GrammarError) as e:  # not JSON, or a schema the grammar cannot enforce
        raise UserError(f"/json: {rest}: {e}") from None
    return Outcome(f"replies follow {rest}")


def _set(s: Session, rest: str) -> Outcome:
    if not rest:
        return Outcome(s.settings.show())
    parts = rest.split()
    if len(parts) != 2:
        raise UserError("/set takes a name and a value, e.g. /set temperature 0.2")
    s.settings.set(*parts)
    return Outcome(s.settings.show())


def _flag(s: Session, rest: str) -> Outcome:
    flags = shlex.split(rest)
    if not flags:
        raise UserError("/flag needs at least one name, e.g. /flag hallucination")
    return Outcome(s.give_feedback(flags=flags))


def _prefer(s: Session, rest: str) -> Outcome:
    if not rest:
        raise UserError("/prefer needs the better answer, e.g. /prefer The capital is Nir.")
    return Outcome(s.give_feedback(preferred=rest))


def _reset(s: Session, rest: str) -> Outcome:
    s.messages.clear()
    return Outcome("conversation cleared")


COMMANDS = {
    "/help": lambda s, rest: Outcome(HELP),
    "/reset": _reset,
    "/system": _system,
    "/regen": _regen,
    "/undo": _undo,
    "/save": lambda s, rest: Outcome(s.save(rest)),
    "/save!": lambda s, rest: Outcome(s.save(rest, force=True)),
    "/load": lambda s, rest: Outcome(
        s.load(rest), generate=s.messages[-1:] != [] and s.messages[-1]["role"] == "user"
    ),
    "/set": _set,
    "/json": _json,
    "/good": lambda s, rest: Outcome(s.give_feedback(rating="up", notes=rest or None)),
    "/bad": lambda s, rest: Outcome(s.give_feedback(rating="down", notes=rest or None)),
    "/flag": _flag,
    "/prefer": _prefer,
    "/exit": lambda s, rest: Outcome(exit=True),
    "/quit": lambda s, rest: Outcome(exit=True),
}
