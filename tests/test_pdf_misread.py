"""PDF pages pypdf reads wrong without a word are read again: GBK fonts, symbol soup, reversed runs."""


from fixtures import make_gbk_font_pdf, make_pdf, make_reversed_runs_pdf

from kb.loaders.pdf import load
from kb.loaders.pdf_text import as_gbk, suspect

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
    assert doc.pages[0].text.startswith("表22：现金流量表（单位：百万元）")
    assert doc.pages[0].extractor == "pdfium"


def test_well_read_pages_stay_with_pypdf(tmp_path):
    doc = load(make_pdf(tmp_path / "fine.pdf", [["知识库把文档切成小段，再建立索引。"],
                                                 ["Café crème and a résumé: accents are not mojibake."]]))
    assert [p.extractor for p in doc.pages] == ["", ""]


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
