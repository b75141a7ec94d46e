"""The source viewer: a cited page, with the cited passage highlighted."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QImage,
    QPainter,
    QPixmap,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
)

from app.gui.i18n import place, tr
from kb.text.file_names import readable



IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def locate(haystack: str, needle: str) -> tuple[int, int] | None:
    """Where `needle` occurs in `haystack`, ignoring whitespace, ligatures and line-end hyphens;
    (start, end) or None.

    pypdf (which made the chunk) and PDFium (which shows the page) extract the same text with
    different spaces and line breaks, and LaTeX PDFs write "ﬁ" ligatures and "algo-\nrithm", so
    both sides are compared as their letters only (NFKC), each mapped back to its offset.
    """
    flat, index = _letters(haystack)
    target = "".join(_letters(needle)[0])
    flat_text = "".join(flat)
    for probe in (target, target[:60], target[:25]):
        if probe:
            at = flat_text.find(probe)
            if at >= 0:
                end = at + (len(target) if probe == target else len(probe))
                end = min(end, len(index))
                return index[at], index[end - 1] + 1
    return None


def _letters(text: str) -> tuple[list[str], list[int]]:
    """The text's characters without whitespace, soft hyphens and hyphens that end a line, each
    compatibility-decomposed ("ﬁ" -> "f", "i"), with the offset each came from."""
    flat: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or ch == "\u00ad":
            continue
        if ch in "-\u2010" and text[i + 1:i + 2] in ("\n", "\r"):
            continue  # "algo-\nrithm" is "algorithm"
        for c in unicodedata.normalize("NFKC", ch) if ord(ch) > 0x7f else ch:
            if not c.isspace():
                flat.append(c)
                index.append(i)
    return flat, index


class SourceViewer(QDialog):
    """Shows a PDF page rendered with the passage highlighted, or text scrolled to the passage."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.resize(820, 900)
        self.path: Path | None = None
        self.page = 1
        self.passage = ""
        self.page_text = ""
        self.pdf = None
        self.header = QLabel()
        self.header.setStyleSheet("font-weight: 600;")
        self.prev_btn, self.next_btn, self.open_btn = QPushButton(), QPushButton(), QPushButton()
        self.prev_btn.clicked.connect(lambda: self._go(self.page - 1))
        self.next_btn.clicked.connect(lambda: self._go(self.page + 1))
        self.open_btn.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path))))
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        for b in (self.prev_btn, self.next_btn, self.open_btn):
            top.addWidget(b)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.image)
        self.scroll.setWidgetResizable(True)
        self.text = QTextBrowser()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.scroll)
        self.stack.addWidget(self.text)
        self.note = QLabel()
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.note)
        self.highlight_rects: list[QRectF] = []
        self.retranslate()

    def retranslate(self) -> None:
        """Set every visible text in the current language."""
        self.setWindowTitle(tr("Source"))
        self.prev_btn.setText(tr("Previous page"))
        self.next_btn.setText(tr("Next page"))
        self.open_btn.setText(tr("Open in default app"))

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def show_source(self, path: str, page: int, passage: str, page_text: str = "",
                    boxes: list | None = None) -> None:
        """Open `path` at `page` and highlight `passage` on it (OCR `boxes` locate it on scans and images)."""
        self.path, self.passage, self.page_text = Path(path), passage, page_text
        self.boxes = boxes or []
        self.pdf = None
        if self.path.suffix.lower() == ".pdf":
            from PySide6.QtPdf import QPdfDocument

            doc = QPdfDocument(self)
            doc.load(str(self.path))
            if doc.status() == QPdfDocument.Status.Ready:
                self.pdf = doc
        self._go(page)
        self.show()
        self.raise_()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.pdf is not None and self.isVisible():
            self._show_pdf_page()  # keep the page fitted to the width

    def _go(self, page: int) -> None:
        count = self.pdf.pageCount() if self.pdf else 1
        self.page = max(1, min(page, count))
        self.prev_btn.setEnabled(self.pdf is not None and self.page > 1)
        self.next_btn.setEnabled(self.pdf is not None and self.page < count)
        self.header.setText(f"{readable(self.path.name)} · {place(str(self.path), self.page)}")
        if self.pdf is not None:
            self._show_pdf_page()
        elif self.boxes and self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._show_image()
        else:
            self._show_text()

    def _show_pdf_page(self) -> None:
        doc, index = self.pdf, self.page - 1
        points = doc.pagePointSize(index)
        room = self.scroll.viewport().width() - 24
        scale = max(0.75, min(2.5, room / points.width())) if points.width() > 0 and room > 100 else 1.5
        size = QSize(int(points.width() * scale), int(points.height() * scale))
        rendered = doc.render(index, size)
        page = QImage(size, QImage.Format_ARGB32)
        page.fill(Qt.white)  # render() leaves the background transparent
        painter = QPainter(page)
        painter.drawImage(0, 0, rendered)
        self.highlight_rects = []
        found = locate(doc.getAllText(index).text(), self.passage) if self.passage else None
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor(255, 214, 0, 110))
        if found:
            sel = doc.getSelectionAtIndex(index, found[0], found[1] - found[0])
            for poly in sel.bounds():
                rect = poly.boundingRect()
                r = QRectF(QPointF(rect.left() * scale, rect.top() * scale),
                           QPointF(rect.right() * scale, rect.bottom() * scale))
                self.highlight_rects.append(r)
                painter.drawRect(r)
        elif self.boxes:  # a scanned page: the passage's OCR lines
            found = self._paint_boxes(painter, size)
        painter.end()
        self._present(page, found)

    def _present(self, page: QImage, found) -> None:
        """Show a painted page image, scrolled to the highlight, noting when the passage was not found."""
        self.image.setPixmap(QPixmap.fromImage(page))
        self.stack.setCurrentWidget(self.scroll)
        self.note.setText("" if found or not self.passage else tr("Not found in this document’s text"))
        if self.highlight_rects:
            self.scroll.ensureVisible(0, int(self.highlight_rects[0].top()), 0, 200)

    def _paint_boxes(self, painter: QPainter, size: QSize) -> tuple[int, int] | None:
        """Highlight the OCR lines that overlap the passage; returns the passage's offsets."""
        found = locate(self.page_text, self.passage) if self.passage else None
        if not found:
            return None
        for start, end, x0, y0, x1, y1 in self.boxes:
            if start < found[1] and end > found[0]:
                r = QRectF(QPointF(x0 * size.width(), y0 * size.height()),
                           QPointF(x1 * size.width(), y1 * size.height()))
                self.highlight_rects.append(r)
                painter.drawRect(r)
        return found

    def _show_image(self) -> None:
        """An image document, fitted to the width, with the passage's OCR lines highlighted."""
        source = QImage(str(self.path))
        self.highlight_rects = []
        if source.isNull():
            self._show_text()
            return
        room = self.scroll.viewport().width() - 24
        if room > 100 and source.width() > room:
            source = source.scaledToWidth(room, Qt.SmoothTransformation)
        page = source.convertToFormat(QImage.Format_ARGB32)
        painter = QPainter(page)
        painter.setPen(Qt.NoPen)
        painter.setBrush(QColor(255, 214, 0, 110))
        found = self._paint_boxes(painter, page.size())
        painter.end()
        self._present(page, found)

    def _show_text(self) -> None:
        self.text.setPlainText(self.page_text)
        found = locate(self.page_text, self.passage) if self.passage else None
        selections = []
        if found:
            cursor = QTextCursor(self.text.document())
            cursor.setPosition(found[0])
            cursor.setPosition(found[1], QTextCursor.KeepAnchor)
            extra = QTextEdit.ExtraSelection()
            fmt = QTextCharFormat()
            fmt.setBackground(QColor(255, 214, 0, 140))
            extra.format, extra.cursor = fmt, cursor
            selections.append(extra)
            self.text.setTextCursor(QTextCursor(cursor.document().findBlock(found[0])))
            # ensureCursorVisible() left the passage's first line at the bottom edge, the passage
            # itself below it: put it a quarter down the view instead, once the text is laid out
            QTimer.singleShot(0, lambda at=found[0]: self._scroll_to(at))
        self.text.setExtraSelections(selections)
        self.highlight_rects = []
        self.stack.setCurrentWidget(self.text)
        self.note.setText("" if found or not self.passage else tr("Not found in this document’s text"))

    def _scroll_to(self, offset: int) -> None:
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(offset)
        bar = self.text.verticalScrollBar()
        top = self.text.cursorRect(cursor).top()
        bar.setValue(bar.value() + top - self.text.viewport().height() // 4)

    def highlighted_text(self) -> str:
        """The text under the highlight in text mode (for tests)."""
        sels = self.text.extraSelections()
        return sels[0].cursor.selectedText() if sels else ""
