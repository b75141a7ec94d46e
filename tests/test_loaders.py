"""Loaders: real files generated here, each format and each failure with its own message."""

import codecs

import pytest
from fixtures import make_docx, make_pdf

from kb.ingest import loaders
from kb.text.document import LoadError

ZH = "知识库把文档切成小段，建立索引，然后回答问题并注明出处。繁简混排也要能读。"
TW = "知識庫把文件切成小段，建立索引，然後回答問題並註明出處。"


def test_pdf_keeps_real_page_numbers(tmp_path):
    pdf = make_pdf(tmp_path / "a.pdf", [["第一页 alpha one"], [], ["第三页 gamma three", "CLIP 训练"]])
    doc = loaders.load(pdf)
    assert doc.kind == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "alpha one" in doc.pages[0].text and "第一页" in doc.pages[0].text
    assert doc.pages[1].text.strip() == ""
    assert "gamma three" in doc.pages[2].text and "CLIP 训练" in doc.pages[2].text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "utf-16-le", "utf-16-be"])
def test_simplified_chinese_text_in_every_encoding(tmp_path, encoding):
    f = tmp_path / f"note-{encoding}.txt"
    text = ZH + "\nEnglish line, mixed 中英文。\n" * 3
    data = text.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # no BOM: must be detected from the NUL pattern
        assert not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    f.write_bytes(data)
    assert loaders.load(f).pages[0].text == text


@pytest.mark.parametrize("text", [TW, TW * 5, "Big5 with English: " + TW])
def test_traditional_chinese_big5(tmp_path, text):
    f = tmp_path / "big5.txt"
    f.write_bytes(text.encode("big5"))
    assert loaders.load(f).pages[0].text == text


def test_short_gbk_with_english_is_not_taken_for_korean(tmp_path):
    f = tmp_path / "short.txt"
    text = "Hello 世界 mixed text, 中文和English。"
    f.write_bytes(text.encode("gbk"))
    assert loaders.load(f).pages[0].text == text


def test_markdown_and_form_feed_pages(tmp_path):
    md = tmp_path / "n.md"
    md.write_text("# 标题\n\n第一节\fSecond section\f第三节", encoding="utf-8")
    doc = loaders.load(md)
    assert doc.kind == "markdown"
    assert [(p.number, p.text) for p in doc.pages] == [(1, "# 标题\n\n第一节"), (2, "Second section"), (3, "第三节")]


def test_docx_paragraphs_and_tables_in_order(tmp_path):
    f = make_docx(tmp_path / "r.docx", ["开头段落", [["名称", "数量"], ["苹果", "3"]], "Closing paragraph"])
    text = loaders.load(f).pages[0].text
    assert text.index("开头段落") < text.index("名称 | 数量") < text.index("苹果 | 3") < text.index("Closing")


def test_html_main_text_without_scripts_and_styles(tmp_path):
    f = tmp_path / "p.html"
    f.write_bytes("""<html><head><meta charset="gbk"><title>页面标题</title>
        <style>body { color: red }</style><script>var secret = "do not index";</script></head>
        <body><nav>菜单 Menu</nav><main><h1>正文标题</h1><p>这是正文。Main text here.</p></main>
        <footer>版权所有</footer></body></html>""".encode("gbk"))
    doc = loaders.load(f)
    assert doc.title == "页面标题"
    text = doc.pages[0].text
    assert "正文标题" in text and "这是正文。Main text here." in text
    for gone in ("color: red", "do not index", "菜单", "版权所有"):
        assert gone not in text


def test_each_bad_file_has_its_own_error(tmp_path):
    cases = {}
    (tmp_path / "empty.txt").write_bytes(b"")
    cases["empty.txt"] = "empty file"
    (tmp_path / "fake.pdf").write_bytes(b"PK\x03\x04 a zip pretending")
    cases["fake.pdf"] = "not a PDF: this is a ZIP archive (or an Office document) named .pdf"
    good = make_pdf(tmp_path / "good.pdf", [["hello"], ["world"]]).read_bytes()
    (tmp_path / "broken.pdf").write_bytes(good[: len(good) // 3])
    cases["broken.pdf"] = "PDF"
    make_pdf(tmp_path / "locked.pdf", [["秘密 secret"]], password="pw")
    cases["locked.pdf"] = "encrypted PDF: password needed"
    (tmp_path / "image.xyz").write_bytes(b"\x89PNG")
    cases["image.xyz"] = "unsupported file type '.xyz'"
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    cases["old.docx"] = "or an old binary .doc renamed"
    (tmp_path / "blank.txt").write_text("   \n\n  ")
    cases["blank.txt"] = "no text found"
    for name, expected in cases.items():
        with pytest.raises(LoadError) as e:
            loaders.load(tmp_path / name)
        assert expected in str(e.value), (name, str(e.value))


def test_encrypted_pdf_with_empty_user_password_opens(tmp_path):
    pdf = make_pdf(tmp_path / "open.pdf", [["no password needed to read"]], password="")
    from pypdf import PdfReader

    assert PdfReader(str(pdf)).is_encrypted
    assert "no password needed" in loaders.load(pdf).pages[0].text


def test_long_markdown_is_cut_at_headings_and_long_text_near_3000_characters(tmp_path):
    from kb.ingest.loaders.text import SECTION_CHARS

    intro = "# Handbook\nA short opening line.\n\n"
    setup = "## Setup\n" + "Install the package and run it once. " * 60 + "\n\n"
    usage = "## Usage\n```\n# a comment in code, not a heading\n```\n" + "Ask a question and read the sources. " * 30
    md = tmp_path / "handbook.md"
    md.write_text(intro + setup + usage, encoding="utf-8")
    pages = loaders.load(md).pages
    assert [p.text.splitlines()[0] for p in pages] == ["# Handbook", "## Usage"]  # the short opening stays
    assert "## Setup" in pages[0].text and "# a comment in code" in pages[1].text
    assert "".join(p.text for p in pages) == md.read_text(encoding="utf-8")

    txt = tmp_path / "长文.txt"
    paragraphs = ["第{}段。".format(i) + "这是一个很长的段落，用来测试切分。" * 20 for i in range(40)]
    txt.write_text("\n\n".join(paragraphs), encoding="utf-8")
    pages = loaders.load(txt).pages
    assert len(pages) >= 4 and all(len(p.text) <= SECTION_CHARS for p in pages)
    assert all(p.text.startswith("第") for p in pages[1:])  # cut between paragraphs, not inside one
    assert "".join(p.text for p in pages) == txt.read_text(encoding="utf-8")
