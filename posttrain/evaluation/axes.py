"""What RLHF changed, per axis: the headline table of `posttrain demo` and the report, and its mean and
spread over run seeds (`posttrain demo --seeds`).

`axis_table(summary)` reads a `posttrain eval` summary (`compare.compare_models`): one row per axis (win rate,
gold score, task success, helpful, honest, harmless, passage-QA hallucination, harmful requests refused,
over-refusal, mean words, KL), one column per system (the baseline, then each model) at each measured
temperature, each row with its n, the prompts it is a figure over. Every number comes from the summary's
own fields: the greedy ones at the top of a model's (or the baseline's) row, a sampled temperature's from
its `by_temperature` entry (`rates`, `baseline_rates`). `over_seeds(tables)` puts several seeds' tables
into one whose cells are {mean, sd, min, max, values}. Data in, data out; the callers print.
"""

from __future__ import annotations

import statistics

# (key, label, format): the rows, in order. `task_success` is 1 - `fails_task_rate` (no flag `fails_task`:
# right, complete, not hedged, not refused); `kl_to_sft` is one figure per model, in its greedy column.
AXES = (
    ("win_rate", "win rate vs {baseline} [95% CI]", "pct"),
    ("gold_score", "gold score", "f3"),
    ("task_success", "task success (1 - fails_task)", "pct"),
    ("helpful", "helpful (mean)", "f3"),
    ("honest", "honest (mean)", "f3"),
    ("harmless", "harmless (mean)", "f3"),
    ("hallucination_rate", "hallucination (passage QA)", "pct"),
    ("refusal_rate_harmful", "harmful requests refused", "pct"),
    ("over_refusal_rate", "over-refusal (benign look-alikes)", "pct"),
    ("mean_words", "mean words per answer", "f1"),
    ("kl_to_sft", "KL to {baseline}, nats (T = 1 samples)", "f2"),
)


def axis_table(summary: dict, baseline: str = "baseline") -> dict:
    """{"prompts", "columns": [{"system", "temperature"}], "rows": [{"key", "label", "format", "n", "values",
    "ci"}]}: `values[i]` (and `ci[i]`, a (low, high) win-rate interval) belong to `columns[i]`; None where
    a figure was not measured. `baseline` names the baseline in the columns and labels."""
    models, config = summary["models"], summary.get("config", {})
    temperatures = [0.0] + [
        t for t in config.get("temperatures", []) if t > 0 and all(entry(m, t) for m in models.values())
    ]
    columns = [{"system": name, "temperature": t} for t in temperatures for name in [baseline, *models]]
    rows = []
    for key, label, kind in AXES:
        cells = [
            cell(summary, key, None if c["system"] == baseline else c["system"], c["temperature"])
            for c in columns
        ]
        if any(v is not None for v, _ in cells):
            rows.append(
                {
                    "key": key,
                    "label": label.format(baseline=baseline),
                    "format": kind,
                    "n": row_n(summary, key),
                    "values": [v for v, _ in cells],
                    "ci": [ci for _, ci in cells],
                }
            )
    return {"prompts": config.get("prompts"), "columns": columns, "rows": rows}


def entry(model: dict, temperature: float) -> dict | None:
    """A model's `by_temperature` entry at `temperature` (None when it was not measured)."""
    return next((e for e in model.get("by_temperature", []) if e["temperature"] == temperature), None)


def rates_at(summary: dict, model: str | None, temperature: float) -> dict:
    """The rates of a model (None: the baseline) at a temperature: its row when greedy, else its entry's."""
    if temperature == 0:
        return summary["baseline"] if model is None else summary["models"][model]
    if model is None:
        return (entry(next(iter(summary["models"].values())), temperature) or {}).get("baseline_rates", {})
    return (entry(summary["models"][model], temperature) or {}).get("rates", {})


def cell(summary: dict, key: str, model: str | None, temperature: float) -> tuple[float | None, tuple | None]:
    """(value, win-rate interval or None) of one row at one column."""
    if key == "win_rate":
        if model is None:
            return None, None
        m = summary["models"][model]
        if temperature == 0:
            return m.get("win_rate"), (m.get("win_rate_ci_low"), m.get("win_rate_ci_high"))
        e = entry(m, temperature) or {}
        return e.get("win_rate"), (e.get("ci_low"), e.get("ci_high"))
    if key == "kl_to_sft":
        return (summary["models"][model].get(key) if model is not None and temperature == 0 else None), None
    rates = rates_at(summary, model, temperature)
    if key == "task_success":
        failed = rates.get("fails_task_rate")
        return (None if failed is None else 1 - failed), None
    return rates.get(key), None


def row_n(summary: dict, key: str) -> int | None:
    """How many prompts a row's figures are over (None when the summary does not say: an older one)."""
    config = summary.get("config", {})
    prompts = config.get("prompts")
    if key == "win_rate" or prompts is None:
        return prompts
    if key == "kl_to_sft":
        return prompts * config.get("kl_samples", 1)
    n = summary["baseline"].get("n") or {}
    return n.get("fails_task_rate" if key == "task_success" else key)


def spread(values: list[float | None]) -> dict | None:
    """Mean, sample standard deviation (None for one value), min and max of the values measured.

    >>> spread([0.5, 0.7, None])
    {'mean': 0.6, 'sd': 0.14142135623730948, 'min': 0.5, 'max': 0.7, 'values': [0.5, 0.7, None]}
    """
    got = [v for v in values if v is not None]
    if not got:
        return None
    return {
        "mean": statistics.fmean(got),
        "sd": statistics.stdev(got) if len(got) > 1 else None,
        "min": min(got),
        "max": max(got),
        "values": list(values),
    }


def over_seeds(tables: dict[int, dict]) -> dict:
    """{seed: axis_table} -> one table of the same shape whose values are `spread`s over the seeds (rows and
    columns of the first seed's table, matched by key and by (system, temperature)); `n` is each row's n,
    or the list of them when the seeds' differ."""
    seeds = list(tables)
    first = tables[seeds[0]]
    columns = [(c["system"], c["temperature"]) for c in first["columns"]]
    rows = []
    for row in first["rows"]:
        per_seed = {s: next((r for r in tables[s]["rows"] if r["key"] == row["key"]), None) for s in seeds}
        ns = [r["n"] if r else None for r in per_seed.values()]
        values = []
        for col in columns:
            got = []
            for s, r in per_seed.items():
                where = [(c["system"], c["temperature"]) for c in tables[s]["columns"]]
                got.append(r["values"][where.index(col)] if r and col in where else None)
            values.append(spread(got))
        rows.append(
            {
                "key": row["key"],
                "label": row["label"],
                "format": row["format"],
                "n": ns[0] if len(set(ns)) == 1 else ns,
                "values": values,
            }
        )
    return {"seeds": seeds, "prompts": first["prompts"], "columns": first["columns"], "rows": rows}


def fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    return {"pct": f"{value:.1%}", "f3": f"{value:.3f}", "f2": f"{value:.2f}", "f1": f"{value:.1f}"}[kind]


def text_cells(table: dict) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of strings) of an `axis_table` or an `over_seeds` table: a value with its interval
    ("72.3% [68.8%, 75.8%]"), or a mean over seeds with its range ("72.3% (66.0%..78.1%)")."""
    headers = ["axis", "n"] + [
        c["system"] + (", greedy" if c["temperature"] == 0 else f", T={c['temperature']:g}")
        for c in table["columns"]
    ]
    rows = []
    for row in table["rows"]:
        n = row["n"]
        cells = [
            row["label"],
            "-" if n is None else str(n) if not isinstance(n, list) else "/".join(map(str, n)),
        ]
        for i, value in enumerate(row["values"]):
            kind = row["format"]
            if isinstance(value, dict):
                cells.append(
                    f"{fmt(value['mean'], kind)} ({fmt(value['min'], kind)}..{fmt(value['max'], kind)})"
                )
            elif value is not None and row.get("ci") and row["ci"][i] and None not in row["ci"][i]:
                low, high = row["ci"][i]
                cells.append(f"{fmt(value, kind)} [{fmt(low, kind)}, {fmt(high, kind)}]")
            else:
                cells.append(fmt(value, kind))
        rows.append(cells)
    return headers, rows


def plain_table(table: dict) -> str:
    """The table as aligned text, for the terminal."""
    headers, rows = text_cells(table)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(headers), "-" * len(line(headers)), *map(line, rows)])
