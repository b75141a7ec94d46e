"""HTML: the page's main text, without scripts, styles and navigation."""

from __future__ import annotations

import re
from pathlib import Path

from kb.text.document import Document, Page

_DROP = ["script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "header",
         "footer", "aside", "form", "button"]


def load(path: Path) -> Document:
    """Main text (the <main> or <article> element when present), blocks on their own lines."""
    text, title = main_text(Path(path).read_bytes())
    return Document(Path(path), "html", [Page(1, text)], title)


def main_text(data: bytes) -> tuple[str, str]:
    """The main text and the title of an HTML page given as bytes."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")  # detects the charset from BOM, <meta> or content
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    text = root.get_text("\n")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip(), title
