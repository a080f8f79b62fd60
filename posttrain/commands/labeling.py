"""Commands of posttrain.labeling: the human labeling web app, its labelers, items and export."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from posttrain.config import add_arguments, from_namespace
from posttrain.errors import UserError


def cmd_label_serve(args: argparse.Namespace) -> int:
    from posttrain.labeling.configs import ServeConfig
    from posttrain.labeling.intake import add_files
    from posttrain.labeling.server import serve

    cfg = from_namespace(ServeConfig, args)
    cfg.check()
    store = open_store(cfg.db)
    print_added(add_files(store, cfg))
    if all(who.admin for who in store.labelers()):
        print(f"no labelers yet: add one with `posttrain label add-labeler --db {cfg.db} --name NAME`")
    if not _is_loopback(cfg.host):
        print(f"warning: listening on {cfg.host}, reachable from other machines; tokens travel in clear "
              "text unless a TLS proxy stands in front")
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(f"labeling at http://{host}:{cfg.port}/ (open the link `add-labeler` printed; Ctrl-C stops)", flush=True)
    serve(store, cfg)
    return 0


def cmd_label_add_labeler(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    token = store.add_labeler(args.name, admin=args.admin)
    role = "admin" if args.admin else "labeler"
    print(f"added {role} {args.name!r}; token (shown once, keep it secret):\n{token}")
    print(f"page (at `label serve`'s default address): http://127.0.0.1:8000/#token={token}")
    return 0


def cmd_label_add_samples(args: argparse.Namespace) -> int:
    from posttrain.labeling.configs import AddSamplesConfig
    from posttrain.labeling.intake import add_files

    cfg = from_namespace(AddSamplesConfig, args)
    if not (cfg.samples or cfg.feedback or cfg.gold):
        raise UserError("nothing to add: give --samples, --feedback or --gold files")
    print_added(add_files(open_store(cfg.db), cfg))
    return 0


def cmd_label_export(args: argparse.Namespace) -> int:
    from posttrain.labeling.configs import LabelExportConfig
    from posttrain.labeling.export import export_rankings

    cfg = from_namespace(LabelExportConfig, args)
    print(f"wrote {export_rankings(cfg)} rankings to {cfg.out}")
    return 0


def open_store(path: Path):
    """The database; a new one gets an admin whose token is printed once."""
    from posttrain.labeling.store import Store

    store = Store(path)
    if store.created:
        token = store.add_labeler("admin", admin=True)
        print(f"created {path}; admin token (shown once, keep it secret):\n{token}")
    return store


def print_added(counts: list) -> None:
    for path, c in counts:
        extra = "".join(f", {n} {note}" for note, n in c.items() if note not in ("added", "already_there"))
        print(f"{path}: {c['added']} items added, {c['already_there']} already in the database{extra}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this group's commands on `commands`."""
    from posttrain.labeling.configs import AddSamplesConfig, LabelExportConfig, ServeConfig

    p = commands.add_parser("serve", help="the labeling web app: people rank K answers in a browser",
                            description="Serve the labeling page and its JSON API (docs/labeling.md) over a "
                                        "SQLite database; --samples / --feedback / --gold files are added first.",
                            epilog="example: posttrain label serve --samples samples.jsonl --db labels.sqlite "
                                   "--labelers-per-item 2")
    add_arguments(p, ServeConfig)
    p.set_defaults(run=cmd_label_serve)

    p = commands.add_parser("add-labeler", help="add a labeler (or admin) and print their token",
                            description="Add a labeler to the database and print their token, shown once.",
                            epilog="example: posttrain label add-labeler --db labels.sqlite --name ana")
    p.add_argument("--db", type=Path, required=True, help="labeling database (created if missing)")
    p.add_argument("--name", required=True, help="the labeler's name, as it appears in the exported rankings")
    p.add_argument("--admin", action="store_true", help="may open the admin view (progress, agreement, gold accuracy)")
    p.set_defaults(run=cmd_label_add_labeler)

    p = commands.add_parser("add-samples", help="add items to label: posttrain sample output, chat feedback, gold items",
                            description="Add items to the labeling database. Items already there are skipped.",
                            epilog="example: posttrain label add-samples --db labels.sqlite --samples samples.jsonl "
                                   "--feedback feedback.jsonl")
    add_arguments(p, AddSamplesConfig)
    p.set_defaults(run=cmd_label_add_samples)

    p = commands.add_parser("export", help="write the labels as rankings JSONL for `posttrain rm`",
                            description="Write every ranked label as a ranking record (DESIGN.md format).",
                            epilog="example: posttrain label export --db labels.sqlite --out rankings.jsonl")
    add_arguments(p, LabelExportConfig)
    p.set_defaults(run=cmd_label_export)

