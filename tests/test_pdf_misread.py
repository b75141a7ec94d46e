"""PDF pages pypdf reads wrong without a word are read again: GBK fonts, symbol soup, reversed runs."""

from fixtures import make_gbk_font_pdf, make_pdf, make_reversed_runs_pdf

from kb.ingest.loaders.pdf import load
from kb.ingest.loaders.pdf_text import as_gbk, best, suspect

NOTICE = ["关于红军长征胜利八十周年的通知", "各有关单位：现将纪念活动的有关事项通知如下。"]


def test_a_font_named_in_gbk_without_a_tounicode_map_is_read_with_pdfium(tmp_path):
    doc = load(make_gbk_font_pdf(tmp_path / "notice.pdf", NOTICE))
    page = doc.pages[0]
    assert page.text.split("\n") == NOTICE and page.extractor == "pdfium" and not page.ocr


def test_symbol_soup_that_pdfium_reads_the_same_way_is_decoded_as_gbk(tmp_path):
    doc = load(make_gbk_font_pdf(tmp_path / "notice.pdf", NOTICE, font_name=b"SimSun"))
    page = doc.pages[0]
    assert page.text.split("\n") == NOTICE and page.extractor.endswith("+gbk")


def test_runs_written_last_first_come_back_in_reading_order(tmp_path):
    runs = ["表", "22", "：现金流量表（单位：百万元）"]
    doc = load(make_reversed_runs_pdf(tmp_path / "report.pdf", runs, "经营活动产生的现金流量净额为一百二十亿元。"))
    # read again (PDFium, or pypdf by position where PDFium lost the "表" for want of a CJK font)
    assert doc.pages[0].text.startswith("表22：现金流量表（单位：百万元）")
    assert doc.pages[0].extractor in ("pdfium", "pypdf-layout")


def test_well_read_pages_stay_with_pypdf(tmp_path):
    doc = load(make_pdf(tmp_path / "fine.pdf", [["知识库把文档切成小段，再建立索引。"],
                                                 ["Café crème and a résumé: accents are not mojibake."]]))
    assert [p.extractor for p in doc.pages] == ["", ""]


def test_of_equally_plausible_readings_the_fullest_wins():
    # PDFium without the page's CJK font loses characters; the reading that kept them is chosen
    fuller = ("pypdf-layout", "表22：现金流量表（单位：百万元）")
    assert best([("pdfium", "22：现金流量表（单位：百万元）"), fuller]) == fuller
    assert best([("pypdf", "：现金流量表（单位：百万元）\n22\n表"), ("pdfium", "22：现金流量表")])[0] == "pdfium"


def test_what_counts_as_misread():
    assert suspect("¹ØÓÚºì¾ü³¤Õ÷Ê¤Àû°ËÊ®ÖÜÄêµÄÍ¨Öª")  # GBK bytes read as Latin-1
    assert suspect("ϚʔέοτϞσϧ")  # Greek and IPA letters standing in for Japanese
    assert suspect("：现金流量表（单位：百万元）\n22\n表")  # a line cannot start with "："
    assert not suspect("Naïve Bayes, the café's Zürich résumé — ordinary European text.")
    assert not suspect("第一章 总则\n第一条 为了规范管理，制定本办法。")
    assert as_gbk("¹ØÓÚºì¾ü") == "关于红军" and as_gbk("ϚʔέοτϞσϧ") is None


def test_a_misread_pdf_is_found_by_its_words(make_kb, tmp_path):
    f = make_gbk_font_pdf(tmp_path / "notice.pdf", NOTICE)
    kb = make_kb()
    assert kb.add([f]).added == [str(f)]
    assert kb.search("红军长征胜利", k=1)[0].name == "notice.pdf"


def test_form_field_values_and_annotation_texts_are_page_text(tmp_path):
    from fixtures import make_form_pdf

    f = make_form_pdf(tmp_path / "form.pdf", "申请人：张三，申请金额为五万元整", "审批意见：同意，请财务部尽快办理")
    page = load(f).pages[0]
    assert "申请人：张三，申请金额为五万元整" in page.text and "审批意见：同意，请财务部尽快办理" in page.text
    assert not page.ocr


def test_a_png_named_pdf_is_read_as_an_image_and_says_so(make_kb, tmp_path):
    from fixtures import text_image

    f = tmp_path / "scan.pdf"
    text_image(["这其实是一张图片"]).save(f, format="PNG")
    kb = make_kb()
    report = kb.add([f])
    assert report.added == [str(f)] and not report.failed
    assert report.notes == [(str(f), "this is a PNG image named .pdf — it was read as an image")]
    assert kb.search("图片", k=1)[0].name == "scan.pdf"


def test_files_named_pdf_that_are_something_else_say_what_they_are(tmp_path):
    import zipfile

    import pytest

    from kb.text.document import LoadError

    z = tmp_path / "a.pdf"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x.txt", "x")
    h = tmp_path / "b.pdf"
    h.write_text("<!DOCTYPE html><html><body>hi</body></html>")
    for f, why in ((z, "not a PDF: this is a ZIP archive (or an Office document) named .pdf"),
                   (h, "not a PDF: this is a web page (HTML) named .pdf")):
        with pytest.raises(LoadError) as e:
            load(f)
        assert str(e.value) == why


def test_a_pdf_after_junk_bytes_is_still_read(tmp_path):
    f = make_pdf(tmp_path / "ok.pdf", [["邮件网关在文件前面加了两千字节的垃圾，这一页仍然能读。"]])
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"JUNK" * 500 + f.read_bytes())
    assert "邮件网关" in load(junk).pages[0].text


def test_a_pdf_whose_only_encrypted_part_is_an_attachment_is_read_without_a_password(tmp_path):
    from fixtures import make_attachment_encrypted_pdf
    from pypdf import PdfReader

    f = make_attachment_encrypted_pdf(tmp_path / "mail.pdf", ["只有附件加密的文件，正文不需要口令也能读。"])
    assert PdfReader(str(f)).is_encrypted  # a password-protected file as far as pypdf knows
    assert "正文不需要口令也能读" in load(f).pages[0].text


def test_a_brotli_compressed_pdf_is_read(tmp_path):
    import brotli
    from fixtures import _one_page_pdf

    content = b"BT /F1 14 Tf 60 700 Td (Brotli compressed streams are read since PDF 2.0 writers use them.) Tj ET"
    packed = brotli.compress(content)
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    data = _one_page_pdf(packed, [font]).replace(b"<< /Length %d >>" % len(packed),
                                                 b"<< /Length %d /Filter /BrotliDecode >>" % len(packed))
    f = tmp_path / "brotli.pdf"
    f.write_bytes(data)
    assert "Brotli compressed streams are read" in load(f).pages[0].text
