"""The report's figures: matplotlib figures rendered to PNG data URIs, so the page needs no other file.

Figures are built with `matplotlib.figure.Figure` (no pyplot, no global state, no display).
"""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def data_uri(fig: Figure) -> str:
    """The figure as a `data:image/png;base64,...` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def win_rate_figure(
    names: list[str], rates: list[float], lows: list[float], highs: list[float], lc: list[float]
) -> str:
    """Win rate against the baseline with its 95% interval, and the length-controlled rate."""
    fig = Figure(figsize=(max(4.5, 1.6 + 1.3 * len(names)), 3.2))
    ax = fig.subplots()
    xs = range(len(names))
    err = [[r - lo for r, lo in zip(rates, lows)], [hi - r for r, hi in zip(rates, highs)]]
    ax.bar(
        [x - 0.18 for x in xs], rates, 0.36, yerr=err, capsize=4, color=COLORS[0], label="win rate (95% CI)"
    )
    ax.bar([x + 0.18 for x in xs], lc, 0.36, color=COLORS[1], label="length-controlled")
    ax.axhline(0.5, color="black", lw=0.8, ls="--")
    ax.set_xticks(list(xs), names)
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylabel("win rate vs baseline")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return data_uri(fig)


def grouped_bars(
    groups: list[str], series: dict[str, list[float | None]], ylabel: str, *, ylim=(0, 1)
) -> str:
    """One bar per series in each group (None draws no bar)."""
    fig = Figure(figsize=(max(4.0, 0.9 * len(groups) * max(1, len(series)) * 0.5 + 2), 3.2))
    ax = fig.subplots()
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        xs = [g + (k - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(
            xs, [v if v is not None else 0 for v in values], width, label=name, color=COLORS[k % len(COLORS)]
        )
    ax.set_xticks(list(range(len(groups))), groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return data_uri(fig)


def curves_figure(panels: list[dict], *, xlabel: str) -> str:
    """Side-by-side panels; each {"title", "ylabel", "lines": [{"x", "y", "label", "style"}]}."""
    fig = Figure(figsize=(5.2 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        for k, line in enumerate(panel["lines"]):
            ax.plot(
                line["x"],
                line["y"],
                line.get("style", "-o"),
                label=line["label"],
                color=line.get("color", COLORS[k % len(COLORS)]),
                ms=3,
                lw=1.2,
            )
        ax.set_title(panel["title"], fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel["ylabel"])
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return data_uri(fig)
