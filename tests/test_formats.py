"""More formats, read by maintained parsers from files the tests generate."""

import email.message
import zipfile

import pytest
from fixtures import make_docx, text_image

from kb.ingest import loaders
from kb.text.document import LoadError


def test_pptx_slides_are_pages_with_tables_and_notes(tmp_path):
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    s1 = deck.slides.add_slide(deck.slide_layouts[1])
    s1.shapes.title.text = "检索增强生成"
    s1.placeholders[1].text = "把文档切成小段，再按问题检索。"
    s1.notes_slide.notes_text_frame.text = "讲者备注：先讲 FAISS。"
    s2 = deck.slides.add_slide(deck.slide_layouts[5])
    s2.shapes.title.text = "Results"
    table = s2.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for (r, c), v in {(0, 0): "model", (0, 1): "recall", (1, 0): "e5-small", (1, 1): "0.985"}.items():
        table.cell(r, c).text = v
    deck.save(tmp_path / "deck.pptx")
    doc = loaders.load(tmp_path / "deck.pptx")
    assert [p.number for p in doc.pages] == [1, 2]
    assert "检索增强生成" in doc.pages[0].text and "讲者备注：先讲 FAISS。" in doc.pages[0].text
    assert "e5-small | 0.985" in doc.pages[1].text and "FAISS" not in doc.pages[1].text


def test_xlsx_sheets_are_pages_and_rows_keep_their_headers(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "销量"
    ws.append(["产品", "季度", "销量"])
    ws.append(["知库", "Q3", 1200])
    ws2 = wb.create_sheet("Notes")
    ws2.append(["free text without a header row"])
    wb.save(tmp_path / "book.xlsx")
    doc = loaders.load(tmp_path / "book.xlsx")
    assert [p.number for p in doc.pages] == [1, 2]
    assert doc.pages[0].text.startswith("销量\n") and "产品: 知库; 季度: Q3; 销量: 1200" in doc.pages[0].text
    assert "free text without a header row" in doc.pages[1].text


@pytest.mark.parametrize("delimiter,suffix", [(",", ".csv"), (";", ".csv"), ("\t", ".tsv")])
def test_csv_in_gbk_with_any_delimiter(tmp_path, delimiter, suffix):
    rows = [["城市", "气温"], ["北京", "零下五度"], ["上海", "八度"]]
    f = tmp_path / f"t{suffix}"
    f.write_bytes("\n".join(delimiter.join(r) for r in rows).encode("gbk"))
    text = loaders.load(f).pages[0].text
    assert "城市: 北京; 气温: 零下五度" in text and "城市: 上海; 气温: 八度" in text


def test_epub_chapters_are_pages_in_reading_order(tmp_path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("zhiku-test")
    book.set_title("知库手册")
    book.set_language("zh")
    chapters = []
    for i, body in enumerate(["第一章：安装与模型。", "第二章：拖入文档并提问。"], start=1):
        c = epub.EpubHtml(title=f"c{i}", file_name=f"c{i}.xhtml", lang="zh")
        c.content = f"<html><body><h1>章节{i}</h1><p>{body}</p></body></html>"
        book.add_item(c)
        chapters.append(c)
    book.toc = chapters
    book.spine = list(reversed(chapters))  # the spine, not the file order, is the reading order
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(tmp_path / "b.epub"), book)
    doc = loaders.load(tmp_path / "b.epub")
    assert doc.title == "知库手册"
    assert "第二章" in doc.pages[0].text and "第一章" in doc.pages[1].text


def test_odt_rtf_and_eml(tmp_path):
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    odt = OpenDocumentText()
    odt.text.addElement(H(outlinelevel=1, text="标题：知识库"))
    odt.text.addElement(P(text="OpenDocument 段落，中文与 English。"))
    odt.save(str(tmp_path / "d.odt"))
    assert loaders.load(tmp_path / "d.odt").pages[0].text == "标题：知识库\nOpenDocument 段落，中文与 English。"

    # RTF stores CJK as \uN escapes
    (tmp_path / "d.rtf").write_text(r"{\rtf1\ansi{\fonttbl\f0 Arial;}\f0 Hello \u30693?\u35782?\u24211? world\par}",
                                    encoding="ascii")
    assert loaders.load(tmp_path / "d.rtf").pages[0].text.strip() == "Hello 知识库 world"

    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "li@example.org", "wang@example.org", "季度报告"
    msg.set_content("附件是第三季度的销量。")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="q3.pdf")
    (tmp_path / "m.eml").write_bytes(bytes(msg))
    doc = loaders.load(tmp_path / "m.eml")
    assert doc.title == "季度报告"
    text = doc.pages[0].text
    assert "Subject: 季度报告" in text and "附件是第三季度的销量。" in text and "Attachments: q3.pdf" in text


def test_docx_tables_with_irregular_grids_still_read(tmp_path):
    f = make_docx(tmp_path / "t.docx", ["前言", [["a", "b"], ["c", "d"]]])
    # drop the last cell of the last row: python-docx's Table API refuses such grids
    with zipfile.ZipFile(f) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    xml = parts["word/document.xml"].decode()
    last = xml.rindex("<w:tc>")
    xml = xml[:last] + xml[xml.index("</w:tc>", last) + len("</w:tc>"):]
    with zipfile.ZipFile(f, "w") as z:
        for n, data in parts.items():
            z.writestr(n, xml if n == "word/document.xml" else data)
    text = loaders.load(f).pages[0].text
    assert "a | b" in text and "c" in text


def test_old_binary_and_encrypted_office_files_say_what_they_are(tmp_path):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600
    for name, expected in [("a.doc", "old binary Word .doc"), ("a.xls", "old binary Excel .xls"),
                           ("a.ppt", "old binary PowerPoint .ppt"), ("a.msg", "Outlook .msg"),
                           ("locked.xlsx", "password-protected XLSX"), ("locked.pptx", "password-protected PPTX")]:
        (tmp_path / name).write_bytes(ole)
        with pytest.raises(LoadError, match=expected):
            loaders.load(tmp_path / name)


def test_image_document_ocr_in_chinese_and_english_with_boxes(tmp_path):
    img = text_image(["发票号码：知库二零二六", "Total amount due: 1,280 yuan"])
    img.save(tmp_path / "receipt.webp")
    doc = loaders.load(tmp_path / "receipt.webp")
    page = doc.pages[0]
    assert doc.kind == "image" and page.ocr
    assert "知库" in page.text and "1,280" in page.text
    assert len(page.boxes) >= 2
    for b in page.boxes:
        assert 0 <= b.x0 < b.x1 <= 1 and 0 <= b.y0 < b.y1 <= 1
        assert page.text[b.start:b.end].strip()
    first, second = page.boxes[0], page.boxes[-1]
    assert first.y1 <= second.y0 + 0.01  # the first line is above the second
    as_picture = loaders.load(tmp_path / "receipt.webp", loaders.Options(ocr=False))  # a picture, no words
    assert as_picture.text_chars == 0 and [p.page for p in as_picture.pictures] == [1]
    with pytest.raises(LoadError, match="turn OCR on"):
        loaders.load(tmp_path / "receipt.webp", loaders.Options(ocr=False, pictures=False))


def test_pictures_of_text_in_pptx_and_docx_are_read_by_ocr_onto_their_page(tmp_path):
    import io

    import docx
    from pptx import Presentation
    from pptx.util import Inches

    shot = io.BytesIO()
    text_image(["第二季度销售额", "华东区 三百万元"]).save(shot, format="PNG")
    deck = Presentation()
    s1 = deck.slides.add_slide(deck.slide_layouts[5])
    s1.shapes.title.text = "季度回顾"
    s2 = deck.slides.add_slide(deck.slide_layouts[6])  # blank: the slide is one screenshot
    shot.seek(0)
    s2.shapes.add_picture(shot, Inches(0.5), Inches(0.5), width=Inches(9))
    deck.save(tmp_path / "deck.pptx")
    pages = loaders.load(tmp_path / "deck.pptx").pages
    assert "华东区" in pages[1].text and "华东区" not in pages[0].text

    d = docx.Document()
    d.add_paragraph("下面是截图：")
    shot.seek(0)
    d.add_picture(shot, width=docx.shared.Inches(6))
    d.save(tmp_path / "memo.docx")
    text = loaders.load(tmp_path / "memo.docx").pages[0].text
    assert text.startswith("下面是截图：") and "第二季度销售额" in text
    # with OCR off the pictures are still found for image search, their words are not read
    off = loaders.load(tmp_path / "memo.docx", loaders.Options(ocr=False))
    assert "第二季度" not in off.pages[0].text and off.pictures
