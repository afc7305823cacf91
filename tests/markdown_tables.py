"""Markdown as GitHub renders it (markdown-it-py, CommonMark with GFM tables), and the tables read back as cells."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest


def as_github_renders(markdown: str) -> str:
    markdown_it = pytest.importorskip(
        "markdown_it", reason="markdown-it-py renders the summary (pip install -e .[dev])"
    )
    rendered: str = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    return rendered


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables(rendered: str) -> list[list[list[str]]]:
    """Every table of rendered HTML as rows of cell texts (entities decoded), header row first."""
    parser = _Tables()
    parser.feed(rendered)
    return parser.tables
