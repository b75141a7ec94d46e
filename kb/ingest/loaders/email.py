"""E-mail (.eml): headers that matter, then the plain-text body (or the HTML body's text)."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.html import main_text
from kb.ingest.loaders.text import decode


def load(path: Path) -> Document:
    """From, To, Cc, Date and Subject, then the body; attachments are listed by name."""
    data = Path(path).read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:200].count(b"\x00") > 50:
        msg = email.message_from_string(decode(data)[0], policy=policy.default)  # saved as UTF-16
    else:
        msg = email.message_from_bytes(data, policy=policy.default)
    if not msg.keys():
        raise LoadError("not an e-mail message (no headers)")
    head = [f"{h}: {msg[h]}" for h in ("From", "To", "Cc", "Date", "Subject") if msg[h]]
    body = ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        try:
            content = part.get_content()
        except (LookupError, ValueError):  # an unknown charset: decode as UTF-8 with replacements
            content = (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")
        body = main_text(content.encode("utf-8"))[0] if part.get_content_subtype() == "html" else content
    files = [p.get_filename() for p in msg.iter_attachments() if p.get_filename()]
    if files:
        head.append("Attachments: " + ", ".join(files))
    return Document(Path(path), "email", [Page(1, "\n".join(head) + "\n\n" + body.strip())],
                    str(msg["Subject"] or ""))
