"""Spreadsheets: .xlsx sheets and .csv/.tsv files as rows of text, one page per sheet.

Each row is written as "header: value" pairs when the first row looks like a header, so a chunk
cut from the middle of a sheet still says what its numbers are.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from kb.text.document import Document, LoadError, Page
from kb.ingest.loaders.docx import check_ooxml
from kb.ingest.loaders.text import decode

MAX_ROWS = 200_000  # per sheet; beyond this a sheet is data, not reading


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip().replace("\n", " ")


def _rows_text(rows: list[list[str]]) -> str:
    rows = [r for r in rows if any(c for c in r)]
    if not rows:
        return ""
    header = rows[0]
    named = len(rows) > 1 and all(header) and len(set(header)) == len(header) and not any(
        h.replace(".", "").replace("-", "").isdigit() for h in header)
    if not named:
        return "\n".join(" | ".join(c for c in r) for r in rows)
    out = [" | ".join(header)]
    for r in rows[1:]:
        out.append("; ".join(f"{h}: {c}" for h, c in zip(header, r) if c))
    return "\n".join(out)


def load_xlsx(path: Path) -> Document:
    """Every sheet's used cells (values, not formulas)."""
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_ooxml(path, "XLSX", ".xls")
    try:
        wb = load_workbook(str(path), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise LoadError(f"damaged XLSX: {e}") from None
    pages = []
    try:
        for number, ws in enumerate(wb.worksheets, start=1):
            rows = []
            for row in ws.iter_rows(values_only=True):
                rows.append([_cell(v) for v in row])
                if len(rows) >= MAX_ROWS:
                    break
            body = _rows_text(rows)
            pages.append(Page(number, f"{ws.title}\n{body}" if body else ""))
    finally:
        wb.close()
    return Document(Path(path), "xlsx", pages)


def load_csv(path: Path) -> Document:
    """The table as rows of text; the delimiter sniffed (comma, tab, semicolon)."""
    text, _enc = decode(Path(path).read_bytes())
    if "\x00" in text:
        raise LoadError("binary file, not CSV text")
    sample = text[:20000]
    delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        pass
    csv.field_size_limit(10_000_000)
    try:
        rows = [[_cell(c) for c in r] for _, r in zip(range(MAX_ROWS), csv.reader(io.StringIO(text), delimiter=delimiter))]
    except csv.Error as e:
        raise LoadError(f"malformed CSV: {e}") from None
    kind = "tsv" if delimiter == "\t" else "csv"
    return Document(Path(path), kind, [Page(1, _rows_text(rows))])
