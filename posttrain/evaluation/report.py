"""The evaluation report: one self-contained HTML page, `summary.json` and `answers.jsonl`.

The page embeds its figures as PNG data URIs and has no script or outside link, so it opens
anywhere, offline. Every text that comes from a model or a prompt is HTML-escaped: model output
is untrusted.
"""

from __future__ import annotations

from pathlib import Path

from posttrain.data.records import write_jsonl
from posttrain.evaluation import axes, plots
from posttrain.evaluation.pages import esc, fmt, image, page, table, write_json, write_page
from posttrain.evaluation.report_temperature import temperature_section

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
        f"</code> on {cfg['prompts']} prompts{prompts_note(cfg)}; greedy answers of at most "
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


def prompts_note(cfg: dict) -> str:
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
