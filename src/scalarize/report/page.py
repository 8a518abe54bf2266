"""A report is a list of sections (text, tables, figures) rendered twice: one self-contained
HTML page (figures embedded, opens without a server) and a Markdown twin beside PNG files."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalarize.files import atomic_write_text
from scalarize.report.tables import LEGEND, display_frame
from scalarize.runs.layout import REPORT_HTML, REPORT_MD

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #eee}
h1,h2,p,figcaption{overflow-wrap:anywhere}
.table-wrap{max-width:100%;overflow-x:auto;margin:0.5em 0 1em}
table{border-collapse:collapse;font-size:0.85em;max-width:100%}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}
td{overflow-wrap:anywhere}
th{background:#f4f4f4;vertical-align:bottom;overflow-wrap:normal;word-break:normal;hyphens:none}
td:first-child,th:first-child{text-align:left}
ul.items li{margin:0.3em 0}
p.legend{font-size:0.8em;color:#555}
figure{margin:1em 0}figcaption{font-size:0.9em;color:#555}img{max-width:100%;height:auto}
"""


@dataclass
class Section:
    """A titled part of a report."""

    title: str
    text: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # a bulleted list after the text
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def html_table(frame: pd.DataFrame) -> str:
    """A table that fits its page: the display cells of ``frame`` in a horizontally scrolling
    wrapper; a column name breaks only between words or after an underscore, never inside a
    word (the CSS keeps ``th`` from breaking anywhere else)."""
    shown = display_frame(frame)
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in shown.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))
    return (f"<div class='table-wrap'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div>")


def render_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
        if section.items:
            parts.append("<ul class='items'>" + "".join(
                f"<li>{html.escape(item)}</li>" for item in section.items) + "</ul>")
        for caption, frame in section.tables:
            parts.append(f"<p class='caption'><b>{html.escape(caption)}</b></p>")
            parts.append(html_table(frame))
        if section.tables:
            parts.append(f"<p class='legend'>{html.escape(LEGEND)}</p>")
        for caption, path in section.figures:
            data = base64.b64encode(path.read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(caption)}' "
                         f"src='data:image/png;base64,{data}'><figcaption>"
                         f"{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[Section], root: Path) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.text:
            lines += [paragraph, ""]
        if section.items:
            lines += [*(f"- {item}" for item in section.items), ""]
        for caption, frame in section.tables:
            lines += [f"**{caption}**", "", _markdown_table(display_frame(frame)), ""]
        if section.tables:
            lines += [f"*{LEGEND}*", ""]
        for caption, path in section.figures:
            lines += [f"![{caption}]({path.relative_to(root).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' own needs the optional ``tabulate`` package)."""
    cells = [[str(c) for c in frame.columns]] + [
        [str(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)
    ]
    header, *body = cells
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def write_report(title: str, sections: list[Section], out: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = out / REPORT_HTML, out / REPORT_MD
    atomic_write_text(html_path, render_html(title, sections))
    atomic_write_text(md_path, render_markdown(title, sections, out))
    return html_path, md_path
