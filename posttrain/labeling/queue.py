"""Which item a labeler sees next, and how far along they are.

Order of choice:
1. an item already shown to them and not yet submitted (reloading the page shows it again);
2. at the gold rate, a gold item they have not labeled (their n-th submission is followed by a gold
   item whenever floor((n + 1) * rate) > floor(n * rate), so a rate of 0.1 is one item in ten);
3. the first regular item they have not labeled that still needs labelers: fewer than
   `labelers_per_item` rankings, counting items others hold open (shown within the last hour).
   Items some labeler already ranked come first, so overlapping items get finished.
Labelers do not know which items are gold.

Choosing an item and recording it as served are one write transaction (BEGIN IMMEDIATE): labelers
asking at the same moment queue for it, and each sees the items the ones before were given. (Two
steps let twenty labelers opening the page at once share one item under --labelers-per-item 1, issue 28.)
An open item with all its rankings (another labeler got it after its hold ran out) is not shown again.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from posttrain.labeling.schema import item_from_row
from posttrain.labeling.store import HOLD_SECONDS, Labeler, Store

RANKED = "(SELECT COUNT(*) FROM labels WHERE labels.item_id = items.id AND labels.kind = 'ranked')"
OPEN_FOR_ME = f"""
SELECT items.* FROM served JOIN items ON items.id = served.item_id
WHERE served.labeler_id = :me
  AND NOT EXISTS (SELECT 1 FROM labels WHERE labels.item_id = served.item_id AND labels.labeler_id = :me)
  AND (items.gold IS NOT NULL OR {RANKED} < :per_item)
ORDER BY served.served LIMIT 1"""

GOLD_FOR_ME = """
SELECT items.* FROM items
WHERE items.gold IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM labels WHERE labels.item_id = items.id AND labels.labeler_id = :me)
ORDER BY items.seq LIMIT 1"""

HELD_BY_OTHERS = """(SELECT COUNT(*) FROM served
   WHERE served.item_id = items.id AND served.labeler_id != :me AND served.served > :cutoff
     AND NOT EXISTS (SELECT 1 FROM labels WHERE labels.item_id = served.item_id
                     AND labels.labeler_id = served.labeler_id))"""
REGULAR_FOR_ME = f"""
FROM items
WHERE items.gold IS NULL
  AND NOT EXISTS (SELECT 1 FROM labels WHERE labels.item_id = items.id AND labels.labeler_id = :me)
  AND {RANKED} + {HELD_BY_OTHERS} < :per_item"""


def next_item(store: Store, labeler: Labeler, labelers_per_item: int, gold_rate: float) -> dict | None:
    """The item to show `labeler` now (recorded as served), or None when nothing is left for them."""
    params = {"me": labeler.id, "per_item": labelers_per_item, "cutoff": _cutoff()}
    row = store.db.execute(OPEN_FOR_ME, params).fetchone()  # a reload takes no write lock
    if row is not None:
        return item_from_row(row)
    with store.transaction() as db:
        row = db.execute(OPEN_FOR_ME, params).fetchone()  # the same labeler in a second tab, just now
        if row is None and gold_due(sum(store.counts(labeler).values()), gold_rate):
            row = db.execute(GOLD_FOR_ME, params).fetchone()
        if row is None:
            row = db.execute(
                f"SELECT items.* {REGULAR_FOR_ME} ORDER BY {RANKED} DESC, items.seq LIMIT 1", params
            ).fetchone()
        if row is None:
            return None
        store.serve(labeler, row["id"], db)
    return item_from_row(row)


def gold_due(submitted: int, rate: float) -> bool:
    """Whether the item after `submitted` submissions is a gold item.

    >>> [gold_due(n, 0.25) for n in range(8)]
    [False, False, False, True, False, False, False, True]
    """
    return rate > 0 and math.floor((submitted + 1) * rate + 1e-9) > math.floor(submitted * rate + 1e-9)


def progress(store: Store, labeler: Labeler, labelers_per_item: int) -> dict:
    """A labeler's counts: ranked, skipped, and regular items still waiting for them."""
    params = {"me": labeler.id, "per_item": labelers_per_item, "cutoff": _cutoff()}
    waiting = store.db.execute(f"SELECT COUNT(*) {REGULAR_FOR_ME}", params).fetchone()[0]
    return {**store.counts(labeler), "remaining": waiting}


def _cutoff() -> str:
    return (datetime.now(UTC) - timedelta(seconds=HOLD_SECONDS)).isoformat(timespec="milliseconds")
