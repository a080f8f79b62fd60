"""`posttrain label export`: the labels in the database as ranking records, the format `posttrain rm` reads.

    posttrain label export --db labels.sqlite --out rankings.jsonl

One record per ranked label (skips are not rankings):

    {"id": "<item>/<labeler>", "prompt", "completions", "ranking", "labeler", "likert", "flags", "notes"?,
     "meta": {...the item's meta, "item", "gold", "none_acceptable", "order_touched", "seconds", "submitted"}}

A better answer the labeler wrote is one more completion, `source: "human:<labeler>"`, ranked alone
above every model completion (its Likert rating is recorded as 7, since they wrote it as the best
answer). `posttrain rm` leaves human-written completions out unless `--human-completions keep`.
"""

from __future__ import annotations

from posttrain.data.rankings import validate_ranking
from posttrain.data.records import check_output, write_jsonl
from posttrain.errors import UserError
from posttrain.labeling.configs import LabelExportConfig
from posttrain.labeling.store import Store

BETTER_ANSWER_LIKERT = 7


def export_rankings(cfg: LabelExportConfig) -> int:
    """Write the rankings; returns how many."""
    check_output(cfg.out, force=cfg.force, inputs=[cfg.db])
    if not cfg.db.is_file():
        raise UserError(f"{cfg.db}: no such database; check --db (it is written by `posttrain label serve`)")
    records = ranking_records(Store(cfg.db, readonly=True))  # never writes: a read-only copy exports too
    for r in records:
        validate_ranking(r, f"{cfg.db}: label of item {r['meta']['item']!r} by {r['labeler']!r}")
    return write_jsonl(cfg.out, records)


def ranking_records(store: Store) -> list[dict]:
    items = {item["id"]: item for item in store.items()}
    return [ranking_record(items[label["item_id"]], label) for label in store.labels(kind="ranked")]


def ranking_record(item: dict, label: dict) -> dict:
    completions, ranking = list(item["completions"]), label["ranking"]
    likert, flags = list(label["likert"]), list(label["flags"])
    if label["better_answer"]:
        completions.append({"text": label["better_answer"], "source": f"human:{label['labeler']}"})
        ranking = [[len(completions) - 1], *ranking]
        likert.append(BETTER_ANSWER_LIKERT)
        flags.append([])
    meta = {
        **item["meta"],
        "item": item["id"],
        "gold": item["gold"] is not None,
        "none_acceptable": label["none_acceptable"],
        "order_touched": label["order_touched"],
        "seconds": label["seconds"],
        "submitted": label["submitted"],
    }
    if item["gold"] is not None:
        meta["gold_ranking"] = item["gold"]
    record = {
        "id": f"{item['id']}/{label['labeler']}",
        "prompt": item["prompt"],
        "completions": completions,
        "ranking": ranking,
        "labeler": label["labeler"],
        "likert": likert,
        "flags": flags,
    }
    if label["notes"]:
        record["notes"] = label["notes"]
    return {**record, "meta": meta}
