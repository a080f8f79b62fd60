"""The HTML building blocks of posttrain's reports: escaping, number formats, tables, embedded figures,
the page itself, and atomic writes of a page or a JSON file.

A page embeds its figures as PNG data URIs and has no script or outside link, so it opens anywhere,
offline. Cells and titles go through `esc`: what a model or a prompt wrote is untrusted.

    >>> fmt(0.4567, "pct"), fmt(None, "f3")
    ('45.7%', '–')
    >>> rows_cell(fmt(0.5, "pct")), rows_cell(esc("<b>"))
    ('<td class="num">50.0%</td>', '<td>&lt;b&gt;</td>')
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from posttrain.data.records import atomic_path

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
