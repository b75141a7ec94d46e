"""PDF: text per page with pypdf, keeping the real page numbers; pages without text go to OCR."""

from __future__ import annotations

from pathlib import Path

from kb.text.document import Document, LoadError, Page, PasswordNeeded
from kb.ingest.loaders.options import Options
from kb.ingest.loaders.pdf_text import SUSPECT, as_gbk, best, oddness, suspect
from kb.ingest.loaders.pictures import PictureCollector, from_pdf_pages

# A page with fewer characters than this in its text layer is taken for a scan (page numbers and
# stray headers survive in some scans' text layers).
MIN_TEXT_CHARS = 20
HEADER_SEARCH = 64 * 1024  # the spec says the header is in the first 1024 bytes; real files stray further
OCR_SCALE = 2.0  # 144 dpi: enough for 9-point CJK, and 4x fewer pixels than 288


def load(path: Path, options: Options | None = None) -> Document:
    """Read each page's text; encrypted files are tried with the given password, then the empty one."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    options = options or Options()
    with open(path, "rb") as f:
        head = f.read(HEADER_SEARCH)
    if b"%PDF-" not in head:  # (pypdf finds a header after junk that mail gateways and CGI scripts prepend)
        return _not_a_pdf(path, options, head)
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                ok = any(reader.decrypt(pw) for pw in dict.fromkeys([options.password or "", ""]))
            except (NotImplementedError, DependencyError) as e:
                raise LoadError(f"encrypted PDF: cannot decrypt ({e})") from None
            if not ok and _only_attachments_encrypted(reader):
                # the pages are in the clear (StmF/StrF /Identity): PDFium reads them without a password
                return _with_pdfium(path, options, "encrypted PDF: password needed")
            if not ok:
                raise PasswordNeeded("encrypted PDF: password needed" if not options.password
                                     else "encrypted PDF: wrong password")
        count = len(reader.pages)
    except FileNotDecryptedError:
        raise PasswordNeeded("encrypted PDF: password needed") from None
    except LoadError:
        raise
    except MemoryError:  # a few hundred bytes that declare gigabytes
        return _with_pdfium(path, options, "damaged PDF: it declares an impossible size")
    except Exception as e:  # noqa: BLE001 (pypdf's limits, missing filters, broken trees: PDFium repairs many)
        return _with_pdfium(path, options, f"damaged PDF: {e}")
    pages, failed_pages, first_error = [], set(), None
    for i in range(count):
        try:
            text = reader.pages[i].extract_text() or ""
            extra = _annotation_text(reader.pages[i])
            text = f"{text}\n{extra}" if text.strip() and extra else text or extra
        except FileNotDecryptedError:
            raise PasswordNeeded("encrypted PDF: password needed") from None
        except Exception as e:  # one bad page costs that page, not the document; PDFium tries it below
            text, first_error = "", first_error or e
            failed_pages.add(i + 1)
        pages.append(Page(i + 1, text.replace("\x00", "")))
        options.page_done(i + 1, count)
    _reread_misread(path, options, pages, failed_pages, reader)
    scans = [p for p in pages if len("".join(p.text.split())) < MIN_TEXT_CHARS]
    if scans and options.ocr:
        _ocr(path, options, pages, scans)
    if first_error is not None and not any(p.text.strip() for p in pages):
        return _with_pdfium(path, options, f"damaged PDF: {first_error}")
    try:
        title = str((reader.metadata or {}).get("/Title") or "")
    except Exception:  # metadata is optional; a broken info dict must not cost the text
        title = ""
    doc = Document(Path(path), "pdf", pages, title)
    if doc.text_chars == 0 and scans and not options.ocr:
        raise LoadError("no text layer (a scan?): turn OCR on to index it")
    if options.pictures:
        collector = PictureCollector()
        from_pdf_pages(reader.pages, collector)
        doc.pictures = collector.pictures
    return doc


def _only_attachments_encrypted(reader) -> bool:
    """True for a PDF whose encryption covers only its embedded files (/EFF): its streams and
    strings use the /Identity crypt filter (the default for /V 4 and 5 when none is named)."""
    try:
        enc = reader.trailer["/Encrypt"].get_object()
        return (int(enc.get("/V", 0)) >= 4 and "/EFF" in enc
                and enc.get("/StmF", "/Identity") == "/Identity" and enc.get("/StrF", "/Identity") == "/Identity")
    except Exception:  # noqa: BLE001 (an odd encryption dictionary: ask for the password as before)
        return False


# Annotations whose /Contents people wrote (a comment, a sticky note, a text box); links, popups
# (which repeat their parent's text) and form widgets are not among them.
_NOT_WRITTEN = {"/Link", "/Popup", "/Widget"}


def _annotation_text(page) -> str:
    """Filled-in form field values and annotation texts of one page: some PDFs hold all their words
    there (24 of the pdf.js test files), where a text-layer reader finds nothing."""
    from pypdf.generic import ByteStringObject, TextStringObject

    def text_of(value) -> list[str]:
        if isinstance(value, (TextStringObject, ByteStringObject)):
            return [str(value)] if str(value).strip() else []
        if isinstance(value, list):  # a multiple-choice field
            return [t for v in value for t in text_of(v)]
        return []  # a check box's /Yes or /Off: a name, not words

    out: list[str] = []
    try:
        annots = page.get("/Annots") or []
        for ref in annots:
            a = ref.get_object()
            subtype = a.get("/Subtype")
            if subtype == "/Widget":
                value = a.get("/V")
                if value is None and a.get("/Parent") is not None:
                    value = a["/Parent"].get_object().get("/V")
                out += text_of(value)
            elif subtype not in _NOT_WRITTEN:
                out += text_of(a.get("/Contents"))
    except Exception:  # noqa: BLE001 (a broken annotation costs its own text, never the page's)
        pass
    return "\n".join(dict.fromkeys(t.replace("\r", "\n").strip() for t in out))


def _reread_misread(path: Path, options: Options, pages: list[Page], failed: set[int] = frozenset(),
                    reader=None) -> None:
    """Pages whose pypdf text looks misread (kb.ingest.loaders.pdf_text), or that pypdf failed on, get the
    most plausible reading."""
    suspects = [p for p in pages if (p.text.strip() and suspect(p.text)) or p.number in failed]
    if not suspects:
        return
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path), password=options.password or None)
    except pdfium.PdfiumError:
        pdf = None
    try:
        for page in suspects:
            readings = [("pypdf", page.text)]
            if pdf is not None:
                try:
                    readings.append(("pdfium", _pdfium_text(pdf, page.number - 1)))
                except pdfium.PdfiumError:
                    pass
            if reader is not None and page.number not in failed:
                readings.append(("pypdf-layout", _layout_text(reader.pages[page.number - 1])))
            readings += [(f"{name}+gbk", fixed) for name, text in list(readings)
                         if oddness(text) > SUSPECT and (fixed := as_gbk(text))]
            name, text = best(readings)
            if name != "pypdf":
                pages[page.number - 1] = Page(page.number, text, extractor=name)
    finally:
        if pdf is not None:
            pdf.close()


# What a file named .pdf really is, by its first bytes: said in words when it is not a PDF.
_MAGIC = [
    (b"\x89PNG", "a PNG image", True), (b"\xff\xd8\xff", "a JPEG image", True), (b"GIF8", "a GIF image", True),
    (b"II*\x00", "a TIFF image", True), (b"MM\x00*", "a TIFF image", True),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)", False), (b"{\\rtf", "an RTF document", False),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.doc, .xls or .ppt)", False),
]


def _not_a_pdf(path: Path, options: Options, head: bytes) -> Document:
    """A file named .pdf without a PDF header: an image is read as one; PDFium opens some PDFs whose
    header is damaged; anything else fails saying what it is."""
    for magic, what, is_image in _MAGIC:
        if head.startswith(magic):
            if not is_image:
                raise LoadError(f"not a PDF: this is {what} named .pdf")
            from kb.ingest.loaders.image import load as load_image

            doc = load_image(path, options)
            doc.note = f"this is {what} named .pdf — it was read as an image"
            return doc
    if not head.strip():
        raise LoadError("empty file" if not head else "not a PDF: the file is blank")
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise LoadError("not a PDF: this is a web page (HTML) named .pdf")
    return _with_pdfium(path, options, f"not a PDF: starts with {head[:8]!r}")


def _layout_text(page) -> str:
    """pypdf's reading with the runs placed by their position on the page (the padding that aligns
    columns squeezed to one space), or "" where that mode fails."""
    import re

    try:
        text = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False) or ""
    except Exception:  # noqa: BLE001 (one more reading to choose from; its failure costs nothing)
        return ""
    return "\n".join(re.sub(r"[ \t]{2,}", " ", line).strip() for line in text.replace("\x00", "").splitlines())


def _pdfium_text(pdf, index: int) -> str:
    return pdf[index].get_textpage().get_text_range().replace("\r\n", "\n").replace("\x00", "")


def _ocr(path: Path, options: Options, pages: list[Page], scans: list[Page]) -> None:
    import pypdfium2 as pdfium

    from models.ocr import OCR

    try:
        pdf = pdfium.PdfDocument(str(path), password=options.password or None)
        pdf.init_forms()  # filled-in form fields are drawn on the page the OCR reads
    except pdfium.PdfiumError as e:
        if pages and not any(p.text.strip() for p in pages):
            raise LoadError(f"scanned PDF that cannot be rendered for OCR: {e}") from None
        return
    ocr = OCR.shared()
    try:
        for done, page in enumerate(scans, start=1):
            try:
                bitmap = pdf[page.number - 1].render(scale=OCR_SCALE)
                image = bitmap.to_pil()
            except pdfium.PdfiumError:
                continue  # this page cannot be drawn; the others still can
            found = Page.from_lines(page.number, ocr.read(image))
            if len(found.text.strip()) > len(page.text.strip()):
                pages[page.number - 1] = found
            options.page_done(done, len(scans))
    finally:
        pdf.close()


def _with_pdfium(path: Path, options: Options, reason: str) -> Document:
    """PDFium repairs files pypdf gives up on; if it cannot read them either, the file fails with `reason`."""
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path), password=options.password or None)
    except pdfium.PdfiumError:
        raise LoadError(reason) from None
    try:
        pages = []
        for i in range(len(pdf)):
            pages.append(Page(i + 1, _pdfium_text(pdf, i), extractor="pdfium"))
            options.page_done(i + 1, len(pdf))
    except pdfium.PdfiumError:
        raise LoadError(reason) from None
    finally:
        pdf.close()
    scans = [p for p in pages if len("".join(p.text.split())) < MIN_TEXT_CHARS]
    if scans and options.ocr:
        _ocr(path, options, pages, scans)
    return Document(Path(path), "pdf", pages)
