"""The admin view's numbers: progress, time per item, agreement between labelers, gold accuracy.

- **Pairwise agreement**: over items ranked by two or more labelers, every pair of labelers and
  every pair of completions both ordered strictly: how often they order it alike. InstructGPT's
  labelers agreed on 72.6 +- 1.5% (Ouyang et al. 2022, section 3.4); the same count as
  `posttrain label agreement` and `posttrain world agreement`.
- **Kendall tau-b against the consensus**: a labeler's ranking of an item against the mean rank
  the *other* labelers of that item gave each completion (leave-one-out, so no one agrees with
  themselves); 1 is the same order, 0 unrelated, -1 reversed; tau-b counts ties.
- **Gold accuracy**: on gold items, how often the labeler orders a pair of completions as the
  known correct order does (pairs both order strictly).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict

from posttrain.world.labelers import AgreementTally

INSTRUCTGPT_AGREEMENT = 0.726


def kendall_tau_b(x: list[float], y: list[float]) -> float | None:
    """Kendall's tau-b of two rank vectors (lower is better); None when either ranks everything alike.

    >>> kendall_tau_b([0, 1, 2], [0, 1, 2]), kendall_tau_b([0, 1, 2], [2, 1, 0])
    (1.0, -1.0)
    >>> round(kendall_tau_b([0, 0, 1], [0, 1, 2]), 4)   # scipy.stats.kendalltau gives 0.8165
    0.8165
    """
    concordant = discordant = tied_x_only = tied_y_only = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = _sign(x[i] - x[j]), _sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tied_x_only += 1
        elif dy == 0:
            tied_y_only += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    denominator = math.sqrt((concordant + discordant + tied_x_only) * (concordant + discordant + tied_y_only))
    return (concordant - discordant) / denominator if denominator else None


def positions(ranking: list[list[int]]) -> list[int]:
    """Each completion's group number (0 is best), by completion index.

    >>> positions([[2], [0, 3], [1]])
    [1, 2, 0, 1]
    """
    by_index = {i: g for g, group in enumerate(ranking) for i in group}
    return [by_index[i] for i in range(len(by_index))]


def admin_stats(items: list[dict], labels: list[dict], labelers_per_item: int) -> dict:
    """Everything the admin view shows, from the stored items and labels."""
    gold = {item["id"]: item["gold"] for item in items if item["gold"] is not None}
    ranked = [x for x in labels if x["kind"] == "ranked"]
    by_item: dict[str, list[dict]] = defaultdict(list)
    for x in ranked:
        by_item[x["item_id"]].append(x)
    regular = [item["id"] for item in items if item["gold"] is None]
    names = sorted({x["labeler"] for x in labels})
    per_labeler = {name: _labeler_row(name, labels, by_item, gold) for name in names}
    overall_agreement = AgreementTally()
    for group in by_item.values():
        for a, b in itertools.combinations(group, 2):
            overall_agreement.add(a["ranking"], b["ranking"])
    taus = [t for row in per_labeler.values() for t in row.pop("_taus")]
    gold_tally = AgreementTally()
    for x in ranked:
        if x["item_id"] in gold:
            gold_tally.add(gold[x["item_id"]], x["ranking"])
    seconds = [x["seconds"] for x in labels if x["seconds"] is not None]
    return {
        "progress": {
            "items": len(regular),
            "gold_items": len(gold),
            "labelers_per_item": labelers_per_item,
            "items_done": sum(len(by_item.get(i, [])) >= labelers_per_item for i in regular),
            "ranked": len(ranked),
            "skipped": len(labels) - len(ranked),
        },
        "time": {
            "median_seconds": statistics.median(seconds) if seconds else None,
            "mean_seconds": statistics.fmean(seconds) if seconds else None,
        },
        "agreement": {
            "items": sum(len(g) >= 2 for g in by_item.values()),
            **_tally(overall_agreement),
            "kendall_tau": statistics.fmean(taus) if taus else None,
            "instructgpt": INSTRUCTGPT_AGREEMENT,
        },
        "gold": {"items_labeled": sum(len(by_item.get(i, [])) for i in gold), **_tally(gold_tally)},
        "labelers": [{"name": name, **row} for name, row in per_labeler.items()],
    }


def _labeler_row(name: str, labels: list[dict], by_item: dict[str, list[dict]], gold: dict) -> dict:
    mine = [x for x in labels if x["labeler"] == name]
    agreement, gold_tally, taus = AgreementTally(), AgreementTally(), []
    for x in mine:
        if x["kind"] != "ranked":
            continue
        others = [o for o in by_item[x["item_id"]] if o["labeler"] != name]
        for o in others:
            agreement.add(x["ranking"], o["ranking"])
        if others:
            consensus = [statistics.fmean(col) for col in zip(*(positions(o["ranking"]) for o in others))]
            tau = kendall_tau_b(positions(x["ranking"]), consensus)
            if tau is not None:
                taus.append(tau)
        if x["item_id"] in gold:
            gold_tally.add(gold[x["item_id"]], x["ranking"])
    seconds = [x["seconds"] for x in mine if x["seconds"] is not None]
    return {
        "ranked": sum(x["kind"] == "ranked" for x in mine),
        "skipped": sum(x["kind"] == "skipped" for x in mine),
        "median_seconds": statistics.median(seconds) if seconds else None,
        "agreement": _tally(agreement),
        "kendall_tau": statistics.fmean(taus) if taus else None,
        "gold": _tally(gold_tally),
        "_taus": taus,
    }


def _tally(tally: AgreementTally) -> dict:
    """Agreement as a share of pairs both ranked strictly; None before any such pair."""
    return {"agreement": tally.agree / tally.strict if tally.strict else None, "strict_pairs": tally.strict}


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)
