"""`posttrain data ...`: convert data sets into posttrain's formats and back."""

from __future__ import annotations

from posttrain.commands import command, group
from posttrain.data.imports import DataExportConfig, ImportConfig

group(
    "data",
    help="convert data sets into posttrain's formats",
    description="Convert data sets into posttrain's formats.",
)


@command("data import", ImportConfig)
def data_import(cfg: ImportConfig) -> int:
    """Hugging Face datasets (messages column) or Alpaca data to conversation JSONL

    Convert a dataset into conversation JSONL (docs/design.md formats).

    example: posttrain data import --format alpaca --input alpaca.json --out demos.jsonl
    """
    from posttrain.data.imports import import_dataset

    n = import_dataset(cfg)
    print(f"wrote {n} {'rankings' if cfg.format in ('trl', 'hh') else 'conversations'} to {cfg.out}")
    return 0


@command("data export", DataExportConfig)
def data_export(cfg: DataExportConfig) -> int:
    """rankings to TRL or HH-style preference pairs

    Write every strictly ordered pair of each ranking as a preference row.

    example: posttrain data export --data rankings.jsonl --out pairs.jsonl
    """
    from posttrain.data.imports import export_pairs

    print(f"wrote {export_pairs(cfg)} preference pairs to {cfg.out}")
    return 0
