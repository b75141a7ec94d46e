"""An answer drawn sentence by sentence with what the checker found (kb.answering.grounding).

Supported sentences look like ordinary text but are links to the passage that backs them;
unsupported ones are marked (red, underlined, tinted) and their link's tooltip says why. A line
above the answer counts them, so a reader sees at once how much of it the documents back.
"""

from __future__ import annotations

import html
import re

from app.gui.i18n import place, tr

_CITE = re.compile(r"\s*[\[【](\d+(?:\s*[,，、]\s*\d+)*)[\]】]")
UNSUPPORTED_FG = "#b3261e"
UNSUPPORTED_BG = "#fdecea"


def summary_line(checks: list[dict], muted: str) -> str:
    """The line above a checked answer: how many sentences the documents do not back."""
    checked = [c for c in checks if c["status"] != "skipped"]
    bad = sum(c["status"] == "unsupported" for c in checked)
    if not checked:
        return ""
    if bad:
        text = tr("{n} of {m} sentences could not be checked against your documents", n=bad, m=len(checked))
        return f"<p style='color:{UNSUPPORTED_FG}'>⚠ {html.escape(text)}</p>"
    text = tr("Every sentence was checked against your documents")
    return f"<p style='color:{muted}'>✓ {html.escape(text)}</p>"


def _citations(piece: str, message: int) -> tuple[str, str]:
    """A sentence without its [n] markers, and the markers as links to the message's sources."""
    links = []
    for group in _CITE.findall(piece):
        for n in re.split(r"\s*[,，、]\s*", group):
            if n.isdigit():
                links.append(f"<a href='cite:{message}:{n}'>[{n}]</a>")
    return _CITE.sub("", piece), "".join(links)


def checked_html(content: str, checks: list[dict], message: int, text_color: str) -> str:
    """The answer as HTML: each checked sentence a `check:<message>:<index>` link, marked when unsupported."""
    out, pos = [], 0
    for j, c in enumerate(checks):
        out.append(html.escape(content[pos:c["start"]]))
        text, cites = _citations(content[c["start"]:c["end"]], message)
        body = html.escape(text)
        if c["status"] == "unsupported":
            out.append(f"<a href='check:{message}:{j}' style='color:{UNSUPPORTED_FG}; background-color:"
                       f"{UNSUPPORTED_BG}; text-decoration:underline'>{body}</a>{cites}")
        elif c["status"] == "supported" and c.get("support"):
            out.append(f"<a href='check:{message}:{j}' style='color:{text_color}; text-decoration:none'>"
                       f"{body}</a>{cites}")
        else:
            out.append(body + cites)
        pos = c["end"]
    out.append(html.escape(content[pos:]))
    return "<p>" + "".join(out).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"


def tooltip(check: dict) -> str:
    """What hovering a checked sentence says."""
    if check["status"] == "unsupported":
        return tr("Not backed by your documents: {reason}", reason=check.get("reason") or "")
    support = check.get("support") or {}
    if support:
        return tr("Backed by {name}, {place} — click to open", name=support.get("name", ""),
                  place=place(support.get("path", ""), support.get("page", "")))
    return ""


def attempt_html(attempt: dict, message: int, unfolded: bool, muted: str) -> str:
    """The answer the checks turned away, under a not-found reply: folded behind a link, and when
    unfolded drawn with its unsupported sentences marked and why."""
    arrow, label = ("▾", tr("Hide the model's attempt")) if unfolded else ("▸", tr("Show the model's attempt"))
    head = (f"<p><a href='attempt:{message}' style='text-decoration:none'>{arrow} {html.escape(label)}</a>"
            f" <span style='color:{muted}'>— {html.escape(tr('not backed by your documents'))}</span></p>")
    if not unfolded:
        return head
    checks = attempt.get("checks") or []
    body = checked_html(attempt.get("text", ""), [dict(c, support=None) for c in checks], message, muted)
    why = "".join(f"<li>{html.escape(_CITE.sub('', c['text']).strip())} — {html.escape(c.get('reason') or '')}</li>"
                  for c in checks if c.get("status") == "unsupported")
    return (head + f"<blockquote style='color:{muted}'>{body}"
            + (f"<ul style='color:{UNSUPPORTED_FG}'>{why}</ul>" if why else "") + "</blockquote>")
