"""The evaluation report: one self-contained HTML page, `summary.json` and `answers.jsonl`.

The page embeds its figures as PNG data URIs and has no script or outside link, so it opens
anywhere, offline. Every text that comes from a model or a prompt is HTML-escaped: model output
is untrusted.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from posttrain.data.records import atomic_path, write_jsonl
from posttrain.evaluation import axes, plots

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; \
color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; \
white-space: nowrap; }
.answers td { max-width: 330px; white-space: pre-wrap; word-break: break-word; }
.score { color: #666; font-size: 12px; } .note { color: #555; font-size: 13px; max-width: 900px; }
img { max-width: 100%; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
"""

# summary field -> (column title, format); rates print as percentages
HEADLINE = (
    ("win_rate", "win rate", "pct"),
    ("ci", "95% CI", "ci"),
    ("lc_win_rate", "LC win rate", "pct"),
    ("gold_score", "gold score", "f3"),
    ("kl_to_sft", "KL to baseline", "f2"),
    ("refusal_rate_harmful", "refuses harmful", "pct"),
    ("over_refusal_rate", "over-refusal", "pct"),
    ("hallucination_rate", "hallucination (QA)", "pct"),
    ("false_premise_correction_rate", "corrects premise", "pct"),
    ("heldout_loss", "held-out LM loss", "f3"),
    ("knowledge_accuracy", "knowledge", "pct"),
    ("mean_words", "words", "f1"),
)


NUMBER = re.compile(r"^(–|-?[\d.,]+%?( – -?[\d.,]+%?)?)$")  # a formatted number or interval: right-aligned


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value, kind: str) -> str:
    if value is None:
        return "–"
    return {"pct": f"{value:.1%}", "f3": f"{value:.3f}", "f2": f"{value:.2f}", "f1": f"{value:.1f}"}[kind]


def table(headers: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """`rows` hold HTML already escaped by the caller."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><tr>{head}</tr>{body}</table>'


def rows_cell(cell: str) -> str:
    numeric = NUMBER.match(cell) is not None
    return f'<td class="num">{cell}</td>' if numeric else f"<td>{cell}</td>"


def image(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}">'


def page(title: str, body: list[str]) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_page(out_dir: str | Path, name: str, text: str) -> Path:
    path = Path(out_dir) / name
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(out_dir: str | Path, name: str, data: dict) -> Path:
    return write_page(out_dir, name, json.dumps(data, indent=1, default=str) + "\n")


def write_report(summary: dict, out_dir: str | Path) -> Path:
    """Write index.html, summary.json (all but the per-prompt answers) and answers.jsonl; returns the page."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    answers = summary.get("answers", [])
    write_json(out_dir, "summary.json", {k: v for k, v in summary.items() if k != "answers"})
    if answers:
        write_jsonl(out_dir / "answers.jsonl", answers)
    return write_page(out_dir, "index.html", render(summary))


def render(summary: dict) -> str:
    names = list(summary["models"])
    cfg = summary["config"]
    judged = next(iter(summary["models"].values()), {}).get("win_rate_judge", cfg["judge"])
    intro = (
        f'<p class="note">{len(names)} model(s) against the baseline <code>{esc(summary["baseline"]["path"])}'
        f"</code> on {cfg['prompts']} prompts{test_set_note(cfg)}; greedy answers of at most "
        f"{cfg['max_new_tokens']} tokens"
        f"{sampled_note(cfg)}. "
        f"Win rates are judged by the <b>{esc(judged)}</b> judge (ties count half) with a 95% bootstrap "
        f"interval over prompts ({cfg['bootstrap']} resamples); the length-controlled (LC) rate is the win "
        "probability at equal answer length from a logistic fit on the length difference. KL to the "
        f"baseline is estimated from {cfg['kl_samples']} sample(s) per prompt at temperature 1. See "
        "docs/evaluation.md.</p>"
    )
    body = [
        intro,
        *axes_section(summary),
        *control_section(summary),
        "<h2>Headline</h2>",
        headline_table(summary),
    ]
    if names:
        m = summary["models"]
        body.append(
            image(
                plots.win_rate_figure(
                    names,
                    [m[n]["win_rate"] for n in names],
                    [m[n]["win_rate_ci_low"] for n in names],
                    [m[n]["win_rate_ci_high"] for n in names],
                    [m[n]["lc_win_rate"] for n in names],
                ),
                "win rates",
            )
        )
    body += temperature_section(summary)
    if "by_family" in summary["baseline"]:
        body += hhh_sections(summary)
    judge_rows = [
        [
            esc(n),
            fmt(r["judge"]["win_rate"], "pct"),
            f"{fmt(r['judge']['win_rate_ci_low'], 'pct')} – {fmt(r['judge']['win_rate_ci_high'], 'pct')}",
            fmt(r["judge"]["lc_win_rate"], "pct"),
        ]
        for n, r in summary["models"].items()
        if "judge" in r
    ]
    if judge_rows:
        body += [
            f"<h2>Win rate by the {esc(cfg['judge'])} judge</h2>",
            table(["model", "win rate", "95% CI", "LC win rate"], judge_rows),
        ]
    body += samples_section(summary)
    return page("posttrain evaluation", body)


def axes_section(summary: dict) -> list[str]:
    """What each model changed against the baseline, per axis, greedy and at each sampled temperature,
    every row with its n (`axes.py`); nothing off the world, where only the win rate and length exist."""
    if not summary["models"] or "n" not in summary["baseline"]:
        return []
    headers, rows = axes.text_cells(axes.axis_table(summary))
    return [
        "<h2>What changed, per axis</h2>",
        table(headers, [[esc(c) for c in row] for row in rows]),
        '<p class="note">n: the prompts each row is over (passage QA, harmful requests, benign look-alikes '
        "for their rates). Task success is the share of answers without the gold rule's "
        "<code>fails_task</code> flag; helpful, honest and harmless are the means of its components.</p>",
    ]


def test_set_note(cfg: dict) -> str:
    return f" of <code>{esc(cfg['test_set'])}</code>" if cfg.get("test_set") else ""


def sampled_note(cfg: dict) -> str:
    sampled = [t for t in cfg.get("temperatures", []) if t > 0]
    return (
        f" (and one sampled answer per prompt at T = {esc(', '.join(f'{t:g}' for t in sampled))})"
        if sampled
        else ""
    )


def control_section(summary: dict) -> list[str]:
    c = summary.get("control_study")
    if not c:
        return []
    return [
        "<h2>Control study: the same labeling budget spent on demonstrations</h2>",
        f'<p class="note">{c["rankings"]} rankings at {c["ranking_minutes"]:g} min + '
        f"{c['completion_minutes']:g} min per completion = {c['labeler_minutes']:.0f} labeler minutes, "
        f"spent instead on {c['extra_demos']} extra demonstrations at {c['demo_minutes']:g} min each (on "
        f"top of {c['original_demos']}). <b>sft-more-demos</b> is the base model fine-tuned on all of them "
        "with the original SFT settings; <b>rlhf</b> is the PPO policy, and any other row a policy trained "
        "from the same rankings. All are compared with the original SFT model (the baseline) by the gold "
        "judge. The minutes are assumptions (docs/evaluation.md).</p>",
        *wall_table(c),
    ]


def wall_table(c: dict) -> list[str]:
    """Each method's training wall time, from its run's posttrain.json (the shared rankings and reward model
    not counted)."""
    walls = c.get("wall_seconds") or {}
    if not walls:
        return []
    rows = [[esc(name), "–" if s is None else f"{s / 60:.1f} min"] for name, s in walls.items()]
    return [
        table(["method", "training wall time"], rows),
        '<p class="note">From each run\'s <code>posttrain.json</code>; the rankings and the reward model the '
        "methods share are not counted.</p>",
    ]


def headline_table(summary: dict) -> str:
    systems = [("baseline", summary["baseline"])] + list(summary["models"].items())
    rows = []
    for name, r in systems:
        cells = [esc(name)]
        for key, _, kind in HEADLINE:
            if key == "ci":
                cells.append(
                    f"{fmt(r['win_rate_ci_low'], 'pct')} – {fmt(r['win_rate_ci_high'], 'pct')}"
                    if "win_rate_ci_low" in r
                    else "–"
                )
            else:
                cells.append(fmt(r.get(key), kind))
        rows.append(cells)
    return table(["system"] + [title for _, title, _ in HEADLINE], rows)


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


def hhh_sections(summary: dict) -> list[str]:
    systems = {"baseline": summary["baseline"], **summary["models"]}
    families = list(summary["baseline"]["by_family"])
    gold = plots.grouped_bars(
        families,
        {n: [r["by_family"].get(f, {}).get("gold_score") for f in families] for n, r in systems.items()},
        "mean gold score",
    )
    keys = [
        ("refusal_rate_harmful", "refuses harmful"),
        ("over_refusal_rate", "over-refuses benign"),
        ("hallucination_rate", "hallucinates (QA)"),
        ("false_premise_correction_rate", "corrects premise"),
        ("task_success_rate", "task success"),
    ]
    rates = plots.grouped_bars(
        [t for _, t in keys], {n: [r.get(k) for k, _ in keys] for n, r in systems.items()}, "share of prompts"
    )
    models = summary["models"]
    rows = [
        [esc(f)]
        + [fmt(systems[n]["by_family"].get(f, {}).get("gold_score"), "f3") for n in systems]
        + [fmt(models[n].get("win_rate_by_family", {}).get(f), "pct") for n in models]
        + [str(summary["baseline"]["by_family"][f]["n"])]
        for f in families
    ]
    headers = ["family", *(f"gold: {n}" for n in systems), *(f"win rate: {n}" for n in models), "prompts"]
    return [
        "<h2>Helpful, honest, harmless</h2>",
        image(gold, "gold score per family"),
        image(rates, "HHH rates"),
        "<h2>Per family</h2>",
        table(headers, rows),
    ]


def samples_section(summary: dict) -> list[str]:
    samples = summary.get("samples") or []
    if not samples:
        return []
    systems = ["baseline", *summary["models"]]
    rows = []
    for s in samples:
        prompt = "\n\n".join(f"[{m['role']}] {m['content']}" for m in s["messages"] if m["role"] != "system")
        cells = [f"<b>{esc(s['family'] or '')}</b>\n{esc(prompt)}"]
        for name in systems:
            a = s["answers"].get(name, {})
            score = a.get("gold_score")
            cells.append(
                esc(a.get("text", ""))
                + (f'\n<span class="score">gold {score:.2f}</span>' if score is not None else "")
            )
        rows.append(cells)
    return ["<h2>Sample answers</h2>", table(["prompt", *systems], rows, "answers")]
