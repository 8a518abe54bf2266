"""A report is a list of sections (text, tables, figures) rendered twice: one self-contained
HTML page (figures embedded, opens without a server) and a Markdown twin beside PNG files."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scalarize.files import atomic_write_text
from scalarize.runs.layout import REPORT_HTML, REPORT_MD

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #ddd}h2{margin-top:2em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}
figure{margin:1em 0}figcaption{font-size:0.9em;color:#555}img{max-width:100%}
"""


@dataclass
class Section:
    """A titled part of a report."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else v)


def render_html(title: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
        for caption, frame in section.tables:
            parts.append(f"<p class='caption'><b>{html.escape(caption)}</b></p>")
            parts.append(_fmt(frame).to_html(index=False, na_rep="–", border=0))
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
        for caption, frame in section.tables:
            lines += [f"**{caption}**", "", _markdown_table(_fmt(frame)), ""]
        for caption, path in section.figures:
            lines += [f"![{caption}]({path.relative_to(root).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table (pandas' own needs the optional ``tabulate`` package)."""
    cells = [[str(c) for c in frame.columns]] + [
        ["–" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)
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
