"""`posttrain label ...`: simulated labelers, and the web app where people rank K answers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from posttrain.commands import command, group
from posttrain.errors import UserError
from posttrain.labeling.configs import AddLabelerConfig, AddSamplesConfig, LabelExportConfig, LabelServeConfig
from posttrain.labeling.simulated import LabelSimConfig, RankingsAgreementConfig

group(
    "label",
    help="rank samples: simulated labelers, or people in the labeling web app",
    description="Turn samples into rankings.",
)


@command("label sim", LabelSimConfig)
def label_sim(cfg: LabelSimConfig) -> int:
    """the world's simulated labelers rank the samples

    Rank samples with the world's simulated labelers (ties, Likert, flags).

    example: posttrain label sim --samples samples.jsonl --out rankings.jsonl --labelers-per-item 2
    """
    from posttrain.labeling.simulated import label_sim as run

    print(f"wrote {run(cfg)} rankings to {cfg.out}")
    return 0


@command("label agreement", RankingsAgreementConfig)
def label_agreement(cfg: RankingsAgreementConfig) -> int:
    """pairwise agreement of labelers who ranked the same items

    Measure how often labelers who ranked the same item order pairs alike.

    example: posttrain label agreement --data rankings.jsonl
    """
    from posttrain.labeling.simulated import agreement_from_rankings

    r = agreement_from_rankings(cfg.data)
    print(
        f"{r['items']} items ranked by 2+ labelers: agreement {r['agreement']:.1%} on {r['strict_pairs']} "
        f"pairs both ranked strictly ({r['tie_rate']:.1%} of {r['pairs']} pairs tied by one of them); "
        "InstructGPT: 72.6%"
    )
    return 0


@command("label serve", LabelServeConfig)
def label_serve(cfg: LabelServeConfig) -> int:
    """the labeling web app: people rank K answers in a browser

    Serve the labeling page and its JSON API (docs/labeling.md) over a SQLite database; --samples /
    --feedback / --gold files are added first.

    example: posttrain label serve --samples samples.jsonl --db labels.sqlite --labelers-per-item 2
    """
    from posttrain.labeling.intake import add_files
    from posttrain.labeling.server import serve

    store = open_store(cfg.db)
    print_added(add_files(store, cfg))
    if all(who.admin for who in store.labelers()):
        print(f"no labelers yet: add one with `posttrain label add-labeler --db {cfg.db} --name NAME`")
    if not _is_loopback(cfg.host):
        print(
            f"warning: listening on {cfg.host}, reachable from other machines; tokens travel in clear "
            "text unless a TLS proxy stands in front"
        )
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(
        f"labeling at http://{host}:{cfg.port}/ (open the link `add-labeler` printed; Ctrl-C stops)",
        flush=True,
    )
    serve(store, cfg)
    return 0


@command("label add-labeler", AddLabelerConfig)
def label_add_labeler(cfg: AddLabelerConfig) -> int:
    """add a labeler (or admin) and print their token

    Add a labeler to the database and print their token, shown once.

    example: posttrain label add-labeler --db labels.sqlite --name ana
    """
    store = open_store(cfg.db)
    token = store.add_labeler(cfg.name, admin=cfg.admin)
    role = "admin" if cfg.admin else "labeler"
    print(f"added {role} {cfg.name!r}; token (shown once, keep it secret):\n{token}")
    print(f"page (at `label serve`'s default address): http://127.0.0.1:8000/#token={token}")
    return 0


@command("label add-samples", AddSamplesConfig)
def label_add_samples(cfg: AddSamplesConfig) -> int:
    """add items to label: posttrain sample output, chat feedback, gold items

    Add items to the labeling database. Items already there are skipped.

    example: posttrain label add-samples --db labels.sqlite --samples samples.jsonl --feedback feedback.jsonl
    """
    from posttrain.labeling.intake import add_files

    if not (cfg.samples or cfg.feedback or cfg.gold):
        raise UserError("nothing to add: give --samples, --feedback or --gold files")
    print_added(add_files(open_store(cfg.db), cfg))
    return 0


@command("label export", LabelExportConfig)
def label_export(cfg: LabelExportConfig) -> int:
    """write the labels as rankings JSONL for `posttrain rm`

    Write every ranked label as a ranking record (docs/design.md format).

    example: posttrain label export --db labels.sqlite --out rankings.jsonl
    """
    from posttrain.labeling.export import export_rankings

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
