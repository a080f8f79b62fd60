"""The answers of an eval, one row per prompt (`answers.jsonl`), and the few the report shows.

Each row holds the prompt's id, family and messages, every system's greedy answer with its gold score
and, under `sampled`, the answers sampled at each temperature T > 0 (`posttrain.evaluation.compare`).
"""

from __future__ import annotations

SAMPLES_PER_FAMILY = 2


def answer_rows(records, runs: dict[str, dict[float, dict]]) -> list[dict]:
    """One row per prompt: its family, messages and every system's greedy answer and gold score;
    under `sampled`, keyed by temperature ("1" for T = 1), the sampled ones."""
    rows = []
    temperatures = [t for t in next(iter(runs.values())) if t > 0]

    def at(t: float, i: int) -> dict:
        return {
            name: {"text": run[t]["answers"][i], "gold_score": run[t]["scores"][i]}
            for name, run in runs.items()
        }

    for i, r in enumerate(records):
        row = {
            "id": r["id"],
            "family": (r.get("meta") or {}).get("family"),
            "messages": r["messages"],
            "answers": at(0.0, i),
        }
        if temperatures:
            row["sampled"] = {f"{t:g}": at(t, i) for t in temperatures}
        rows.append(row)
    return rows


def pick_samples(rows: list[dict], per_family: int = SAMPLES_PER_FAMILY) -> list[dict]:
    """The first few prompts of each family (in file order), families in the world's order."""
    from posttrain.world.families import FAMILY_NAMES

    seen: dict = {}
    out = []
    for row in rows:
        if seen.get(row["family"], 0) < per_family:
            seen[row["family"]] = seen.get(row["family"], 0) + 1
            out.append(row)
    order = {f: i for i, f in enumerate(FAMILY_NAMES)}
    return sorted(out, key=lambda r: order.get(r["family"], len(order)))
