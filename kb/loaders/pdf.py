"""PDF: text per page with pypdf, keeping the real page numbers; pages without text go to OCR."""

from __future__ import annotations

from pathlib import Path

from kb.document import Document, LoadError, Page, PasswordNeeded
from kb.loaders.options import Options
from kb.loaders.pdf_text import SUSPECT, as_gbk, best, oddness, suspect
from kb.loaders.pictures import PictureCollector, from_pdf_pages

# A page with fewer characters than this in its text layer is taken for a scan (page numbers and
# stray headers survive in some scans' text layers).
MIN_TEXT_CHARS = 20
OCR_SCALE = 2.0  # 144 dpi: enough for 9-point CJK, and 4x fewer pixels than 288


def load(path: Path, options: Options | None = None) -> Document:
    """Read each page's text; encrypted files are tried with the given password, then the empty one."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    options = options or Options()
    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF-" not in head:
        raise LoadError(f"not a PDF: starts with {head[:8]!r}")
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                ok = any(reader.decrypt(pw) for pw in dict.fromkeys([options.password or "", ""]))
            except (NotImplementedError, DependencyError) as e:
                raise LoadError(f"encrypted PDF: cannot decrypt ({e})") from None
            if not ok:
                raise PasswordNeeded("encrypted PDF: password needed" if not options.password
                                     else "encrypted PDF: wrong password")
        count = len(reader.pages)
    except FileNotDecryptedError:
        raise PasswordNeeded("encrypted PDF: password needed") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError) as e:
        return _with_pdfium(path, options, f"damaged PDF: {e}")
    pages, first_error = [], None
    for i in range(count):
        try:
            text = reader.pages[i].extract_text() or ""
        except FileNotDecryptedError:
            raise PasswordNeeded("encrypted PDF: password needed") from None
        except Exception as e:  # one bad page costs that page, not the document
            text, first_error = "", first_error or e
        pages.append(Page(i + 1, text.replace("\x00", "")))
        options.page_done(i + 1, count)
    _reread_misread(path, options, pages)
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


def _reread_misread(path: Path, options: Options, pages: list[Page]) -> None:
    """Pages whose pypdf text looks misread (kb.loaders.pdf_text) get the most plausible reading."""
    suspects = [p for p in pages if p.text.strip() and suspect(p.text)]
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
            readings += [(f"{name}+gbk", fixed) for name, text in list(readings)
                         if oddness(text) > SUSPECT and (fixed := as_gbk(text))]
            name, text = best(readings)
            if name != "pypdf":
                pages[page.number - 1] = Page(page.number, text, extractor=name)
    finally:
        if pdf is not None:
            pdf.close()


def _pdfium_text(pdf, index: int) -> str:
    return pdf[index].get_textpage().get_text_range().replace("\r\n", "\n").replace("\x00", "")


def _ocr(path: Path, options: Options, pages: list[Page], scans: list[Page]) -> None:
    import pypdfium2 as pdfium

    from models.ocr import OCR

    try:
        pdf = pdfium.PdfDocument(str(path), password=options.password or None)
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
