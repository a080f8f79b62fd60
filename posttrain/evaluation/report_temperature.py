"""The evaluation report's section on sampling temperature (`report.py`): each model's win rate and gold
scores at every temperature measured (`temperature.py`) and, with three or more, the curve of win rate
against temperature.
"""

from __future__ import annotations

from posttrain.evaluation import plots
from posttrain.evaluation.pages import esc, fmt, image, table


def temperature_section(summary: dict) -> list[str]:
    """Win rate and gold scores at each sampling temperature; with three or more temperatures, also
    the curve of win rate against temperature (the shape of DPO's figure 2, TL;DR; Rafailov et al. 2023)."""
    entries = {n: r["by_temperature"] for n, r in summary["models"].items() if r.get("by_temperature")}
    temperatures = sorted({e["temperature"] for es in entries.values() for e in es})
    if len(temperatures) < 2:
        return []
    judge = next((e["judge"]["name"] for es in entries.values() for e in es if "judge" in e), None)
    ci = lambda e: f"{fmt(e['ci_low'], 'pct')} – {fmt(e['ci_high'], 'pct')}"  # noqa: E731
    rows = []
    for name, es in entries.items():
        for e in es:
            cells = [
                esc(name),
                esc(f"{e['temperature']:g}"),
                fmt(e["win_rate"], "pct"),
                ci(e),
                esc(f"{e['wins']} / {e['ties']} / {e['losses']}"),
                fmt(e.get("gold_score"), "f3"),
                fmt(e.get("baseline_gold_score"), "f3"),
            ]
            if judge:
                cells += [fmt(e["judge"]["win_rate"], "pct"), ci(e["judge"])] if "judge" in e else ["–", "–"]
            rows.append(cells)
    first = next(iter(entries.values()))[0]["win_rate_judge"]
    headers = [
        "model",
        "temperature",
        f"win rate ({first})",
        "95% CI",
        "wins / ties / losses",
        "gold: model",
        "gold: baseline",
        *([f"win rate ({judge})", "95% CI"] if judge else []),
    ]
    out = [
        "<h2>Win rate by sampling temperature</h2>",
        '<p class="note">Temperature 0 is the greedy headline; at each T &gt; 0 the model and the baseline '
        "each answer every prompt once, sampled from the full softmax at that temperature.</p>",
        table(headers, rows),
    ]
    if len(temperatures) >= 3:
        out.append(image(temperature_curves(entries), "win rate against sampling temperature"))
    return out


def temperature_curves(entries: dict[str, list[dict]]) -> str:
    """Win rate (and, on world prompts, gold score) against temperature, one line per model."""
    xs = lambda es: [e["temperature"] for e in es]  # noqa: E731
    lines = [{"x": xs(es), "y": [e["win_rate"] for e in es], "label": n} for n, es in entries.items()]
    every = sorted({t for es in entries.values() for t in xs(es)})
    lines.append(
        {
            "x": every,
            "y": [0.5] * len(every),
            "label": "tie with the baseline",
            "style": "--",
            "color": "black",
        }
    )
    panels = [{"title": "win rate against the baseline", "ylabel": "win rate", "lines": lines}]
    if all("gold_score" in e for es in entries.values() for e in es):
        gold = [{"x": xs(es), "y": [e["gold_score"] for e in es], "label": n} for n, es in entries.items()]
        es = next(iter(entries.values()))
        gold.append(
            {
                "x": xs(es),
                "y": [e["baseline_gold_score"] for e in es],
                "label": "baseline",
                "style": "--o",
                "color": "black",
            }
        )
        panels.append({"title": "gold score", "ylabel": "mean gold score", "lines": gold})
    return plots.curves_figure(panels, xlabel="sampling temperature")
