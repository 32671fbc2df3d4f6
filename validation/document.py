"""A tiny document model rendered to Markdown and to HTML with the same content.

The report is built once as a list of blocks; :func:`to_markdown` and :func:`to_html`
render it, so the two files can never disagree. Text may link to another page of the
report as ``[text](page)``, ``page`` without extension: each rendering links to its own
format (``page.md`` or ``page.html``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["Block", "Heading", "Image", "Items", "Paragraph", "Table", "to_html", "to_markdown"]


_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\[\]]*\])+)\]\(([^)\s]+)\)")
"""``[label](page)``; the label may hold one level of brackets (``s[bw=4]/L``)."""


def _links(text: str, extension: str, to_anchor: bool) -> str:
    """Give page links the format's extension (as Markdown, or as HTML anchors)."""

    def one(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2) + extension
        return f"<a href='{target}'>{label}</a>" if to_anchor else f"[{label}]({target})"

    return _LINK.sub(one, text)


@dataclass(frozen=True, slots=True)
class Heading:
    """A section title (level 1-3)."""

    text: str
    level: int = 2


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Running text; ``**bold**`` and ```code``` are kept in both renderings."""

    text: str


@dataclass(frozen=True, slots=True)
class Items:
    """A bulleted list."""

    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A table; ``align`` is one of ``l``/``r`` per column."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """A picture file relative to the report, with its caption."""

    path: str
    caption: str


Block = Heading | Paragraph | Items | Table | Image


def _md_cell(text: str) -> str:
    return _links(text, ".md", False).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """Render as GitHub-flavoured Markdown."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append("#" * block.level + " " + block.text)
        elif isinstance(block, Paragraph):
            out.append(_links(block.text, ".md", False))
        elif isinstance(block, Items):
            out.append("\n".join(f"- {_links(item, '.md', False)}" for item in block.items))
        elif isinstance(block, Table):
            align = block.align or "l" * len(block.header)
            out.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            out[-1] += "\n|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
            for row in block.rows:
                out[-1] += "\n| " + " | ".join(_md_cell(c) for c in row) + " |"
        else:
            out.append(f"![{block.caption}]({block.path})\n\n*{block.caption}*")
        out.append("")
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then turn ``**x**`` into <b> and ```x``` into <code>."""
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(p if i % 2 == 0 else f"<b>{p}</b>" for i, p in enumerate(parts))
    parts = escaped.split("`")
    escaped = "".join(p if i % 2 == 0 else f"<code>{p}</code>" for i, p in enumerate(parts))
    return _links(escaped, ".html", True)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; }
th { background: #f0f0f0; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; font-size: 13px; margin-bottom: 1.2em; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def to_html(blocks: list[Block], title: str) -> str:
    """Render as a standalone HTML page."""
    out = [
        "<!DOCTYPE html>",
        "<html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
    ]
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            out.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Items):
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            align = block.align or "l" * len(block.header)
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>"
                + "".join(
                    f"<td class='{a}'>{_inline(c)}</td>" for c, a in zip(row, align, strict=True)
                )
                + "</tr>"
                for row in block.rows
            )
            out.append(f"<table><tr>{head}</tr>{body}</table>")
        else:
            out.append(
                f"<figure><img src='{html.escape(block.path)}' alt='{html.escape(block.caption)}'>"
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
