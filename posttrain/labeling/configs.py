"""The labeling commands' configs; each field's help is its `--help` text (posttrain/config.py).

Kept apart from the server so that building the command line does not import FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Options, Overwrite, WorldRef, option


@dataclass(kw_only=True)
class AddSamplesConfig(Options, WorldRef):
    db: Path = option(help="labeling database (SQLite; created if missing)", required=True)
    samples: list[Path] = option([], help="samples JSONL files from `posttrain sample`", nargs="*")
    feedback: list[Path] = option([], help="feedback JSONL files from the chat server", nargs="*")
    gold: list[Path] = option(
        [],
        help="samples JSONL files of gold items: each record carries its correct "
        "`ranking`, or its meta names a world task the gold scorer orders",
        nargs="*",
    )


@dataclass(kw_only=True)
class LabelServeConfig(AddSamplesConfig):
    host: str = option(
        "127.0.0.1",
        help="address to listen on; keep the loopback default unless a proxy with TLS stands in front",
    )
    port: int = option(8000, help="port to listen on", ge=0, le=65535)
    labelers_per_item: int = option(
        1, help="labelers who rank each regular item (2+ measures agreement)", ge=1
    )
    gold_rate: float = option(
        0.1, help="share of the items a labeler sees that are gold items (0 to 1)", ge=0, le=1
    )
    allowed_host: list[str] | None = option(
        None,
        repeat=True,
        help="a Host name the page may be reached by; when given, names "
        "other than these, localhost, 127.0.0.1 and --host get HTTP 421",
    )

    def hosts(self) -> list[str] | None:
        """The Host names answered besides the loopback ones; None for any (tokens guard every API route)."""
        return [self.host, *self.allowed_host] if self.allowed_host else None


@dataclass(kw_only=True)
class LabelExportConfig(Options, Overwrite):
    db: Path = option(help="labeling database written by `posttrain label serve`", required=True)
    out: Path = option(help="rankings JSONL to write", required=True)


@dataclass(kw_only=True)
class AddLabelerConfig(Options):
    db: Path = option(help="labeling database (created if missing)", required=True)
    name: str = option(help="the labeler's name, as it appears in the exported rankings", required=True)
    admin: bool = option(False, help="may open the admin view (progress, agreement, gold accuracy)")
