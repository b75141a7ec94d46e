"""Pictures in documents and CLIP image search, with a tiny CLIP built at test time (real architecture)."""

import json
import sqlite3

import numpy as np
import pytest
from fixtures import make_picture_pdf, picture
from tinyclip import build_tiny_clip

from app.cli import main
from models.clip import ClipModel


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


@pytest.fixture
def clip(clip_dir):
    return ClipModel(clip_dir)


def _report_pdf(path):
    """Pictures A on page 1, B on page 2, a 40 px icon on page 2 and A again on page 3."""
    a, b = picture(1), picture(2, (160, 220))
    icon = picture(3, (40, 40))
    make_picture_pdf(path, [
        (["第一章 系统架构", "图 1：架构图 architecture diagram of the indexer"], [a]),
        (["第二章 收入", "Figure 2: bar chart of revenue by quarter"], [b, icon]),
        (["第三章 附录", "the architecture again, for reference"], [a]),
    ])
    return path, a, b


def _pictures(kb):
    con = sqlite3.connect(kb.store.db_path)
    try:
        return con.execute("SELECT d.name, i.page, i.width, i.height, i.sha256 FROM images i "
                           "JOIN documents d ON d.id=i.doc_id ORDER BY d.name, i.page").fetchall()
    finally:
        con.close()


def test_pdf_pictures_land_on_their_pages_and_tiny_and_repeated_ones_are_skipped(make_kb, tmp_path):
    pdf, a, b = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("pics")
    kb.add([pdf])
    rows = _pictures(kb)
    assert [(r[0], r[1]) for r in rows] == [("report.pdf", 1), ("report.pdf", 2)]
    assert (rows[0][2], rows[0][3]) == a.size and (rows[1][2], rows[1][3]) == b.size
    for *_, sha in rows:
        thumb = kb.pictures.thumb_path(sha)
        assert thumb.exists() and thumb.read_bytes()[:3] == b"\xff\xd8\xff"
    assert kb.pictures.count_pending() == 2  # no CLIP model yet: extracted, not embedded
    assert kb.info()["pictures"] == 2


def test_docx_slides_and_image_files_give_pictures_with_pages(make_kb, tmp_path):
    import docx
    from pptx import Presentation
    from pptx.util import Inches

    a, b, c = picture(11), picture(12), picture(13, (300, 300))
    for name, im in (("a.png", a), ("b.png", b)):
        im.save(tmp_path / name)
    d = docx.Document()
    d.add_paragraph("报告里的两张图")
    d.add_picture(str(tmp_path / "a.png"))
    d.add_picture(str(tmp_path / "b.png"))
    d.save(tmp_path / "report.docx")
    deck = Presentation()
    for im_name in ("a.png", "b.png"):
        slide = deck.slides.add_slide(deck.slide_layouts[5])
        slide.shapes.title.text = f"slide with {im_name}"
        slide.shapes.add_picture(str(tmp_path / im_name), Inches(1), Inches(2))
    deck.save(tmp_path / "deck.pptx")
    photo = tmp_path / "photo.jpg"  # a picture without any text: indexed as a picture, not failed
    c.save(photo)
    (tmp_path / "a.png").unlink()
    (tmp_path / "b.png").unlink()

    kb = make_kb("formats")
    report = kb.add([tmp_path])
    assert sorted(p.rsplit("/", 1)[-1] for p in report.added) == ["deck.pptx", "photo.jpg", "report.docx"]
    assert [(r[0], r[1]) for r in _pictures(kb)] == [("deck.pptx", 1), ("deck.pptx", 2), ("photo.jpg", 1),
                                                      ("report.docx", 1), ("report.docx", 1)]
    # the PNG inside the DOCX and inside the slides is the same picture: the same hash, one thumbnail
    shas = {(r[0], r[1]): r[4] for r in _pictures(kb)}
    assert shas[("deck.pptx", 1)] in {r[4] for r in _pictures(kb) if r[0] == "report.docx"}


def test_adding_a_clip_model_later_indexes_the_pictures_already_extracted(make_kb, tmp_path, clip):
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("later")
    kb.add([pdf])
    assert kb.pictures.count_pending() == 2 and kb.pictures.index is None
    kb.use_clip(clip)
    seen = []
    done = kb.indexer().index_pictures(progress=lambda p: seen.append((p.phase, p.chunks_done, p.chunks_total)))
    assert done == 2 and kb.pictures.count_pending() == 0
    assert seen[-1] == ("pictures", 2, 2)
    assert kb.pictures.model_id == clip.model_id and kb.pictures.index.count == 2
    assert (kb.store.folder / "images.faiss").exists()
    # a document added now is embedded as part of its job
    pdf2 = make_picture_pdf(tmp_path / "more.pdf", [(["another picture"], [picture(5)])])
    report = kb.add([pdf2])
    assert report.pictures_embedded == 1 and kb.pictures.count_pending() == 0


def test_image_to_image_returns_the_identical_picture_first(make_kb, tmp_path, clip):
    pdf, a, b = _report_pdf(tmp_path / "report.pdf")
    make_picture_pdf(tmp_path / "other.pdf", [(["other"], [picture(7), picture(8)])])
    kb = make_kb("like")
    kb.use_clip(clip)
    kb.add([tmp_path])
    for query, page in ((a, 1), (b, 2)):
        hits = kb.image_search().by_image(query)
        assert hits[0].path.endswith("report.pdf") and hits[0].page == page
        assert hits[0].score > 0.999 and hits[0].score > hits[1].score
    # a dropped file works like a PIL image; the repeated picture A lists its other page
    a.save(tmp_path / "query.png")
    top = kb.image_search().by_image(tmp_path / "query.png")[0]
    assert top.page == 1 and top.clip_similarity > 0.999


def test_text_to_image_runs_end_to_end_with_scored_thumbnails_linked_to_pages(make_kb, tmp_path, clip):
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    make_picture_pdf(tmp_path / "other.pdf", [(["天气很好，我们去公园散步。"], [picture(7)])])
    kb = make_kb("words")
    kb.use_clip(clip)
    kb.add([tmp_path])
    search = kb.image_search()
    hits = search.by_text("bar chart of revenue")
    assert hits, "no pictures found"
    # random CLIP weights rank arbitrarily: whatever CLIP says, the picture whose caption matches best
    # stays in the top two and above every picture whose page does not match at all
    chart = next(h for h in hits if h.page == 2)
    assert chart.path.endswith("report.pdf") and chart.text_rank == 1 and hits.index(chart) <= 1
    assert all(chart.score > h.score for h in hits if h.text_rank is None)
    assert all(0 < h.score <= 1 for h in hits) and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.clip_similarity is not None for h in hits)  # every picture was ranked by CLIP too
    assert hits[0].thumb.exists()
    zh = search.by_text("架构图")
    assert zh[0].page == 1 and zh[0].clip_similarity is None  # an English-only CLIP is not asked
    assert "English only" in search.warning("架构图") and "Chinese-CLIP" in search.warning("架构图")
    assert search.warning("bar chart") is None


def test_without_clip_pictures_are_found_by_their_pages_text(make_kb, tmp_path):
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("noclip")
    kb.add([pdf])
    search = kb.image_search()
    assert "no image search model" in search.warning("chart")
    hits = search.by_text("bar chart of revenue")
    assert hits[0].page == 2 and hits[0].clip_similarity is None
    with pytest.raises(RuntimeError, match="needs an image search model"):
        search.by_image(picture(1))


def test_removing_a_document_removes_its_pictures(make_kb, tmp_path, clip):
    pdf, a, _ = _report_pdf(tmp_path / "report.pdf")
    keep = make_picture_pdf(tmp_path / "keep.pdf", [(["kept"], [a])])  # the same picture A elsewhere
    kb = make_kb("remove")
    kb.use_clip(clip)
    kb.add([tmp_path])
    sha_a = next(r[4] for r in _pictures(kb) if r[0] == "keep.pdf")
    only_report = [r[4] for r in _pictures(kb) if r[0] == "report.pdf" and r[4] != sha_a]
    kb.remove(str(pdf))
    assert [r[0] for r in _pictures(kb)] == ["keep.pdf"]
    assert not kb.pictures.thumb_path(only_report[0]).exists()  # B's thumbnail went with it
    assert kb.pictures.thumb_path(sha_a).exists()  # A is still used by keep.pdf
    hits = kb.image_search().by_image(picture(2, (160, 220)))
    assert [h.path for h in hits] == [str(keep)]
    con = sqlite3.connect(kb.store.db_path)
    assert con.execute("SELECT COUNT(*) FROM image_vectors").fetchone()[0] == 1
    con.close()


def test_documents_read_before_pictures_existed_get_them_when_clip_arrives(make_kb, tmp_path, clip):
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("old")
    kb.add([pdf])
    with kb.store.db.transaction() as db:  # what a KB migrated from schema 3 looks like
        db.execute("DELETE FROM images")
        db.execute("UPDATE documents SET pictures=NULL")
    assert kb.pictures.missing_documents()
    kb.use_clip(clip)
    assert kb.indexer().index_pictures() == 2
    assert not kb.pictures.missing_documents() and len(_pictures(kb)) == 2


def test_cli_images_by_words_and_by_example(make_kb, tmp_path, clip_dir, capsys):
    pdf, a, _ = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("cli")
    kb.add([pdf])
    kb.close()
    assert main(["models", "add", str(clip_dir), "--role", "clip"]) == 0
    capsys.readouterr()
    assert main(["images", "cli", "bar chart of revenue", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    chart = [r for r in out["results"][:2] if r["page"] == 2]
    assert chart and chart[0]["path"] == str(pdf) and chart[0]["text_rank"] == 1
    assert chart[0]["thumb"].endswith(".jpg") and chart[0]["clip_similarity"] is not None
    a.save(tmp_path / "like.png")
    assert main(["images", "cli", "--like", str(tmp_path / "like.png")]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("1.") and "report.pdf" in text.splitlines()[0] and "p.1" in text
    assert main(["images", "cli", "--like", str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in capsys.readouterr().err


def test_clip_vectors_are_normalised_and_stored_per_model(make_kb, tmp_path, clip, clip_dir):
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    kb = make_kb("models")
    kb.use_clip(clip)
    kb.add([pdf])
    first = kb.pictures.vector(1)
    np.testing.assert_allclose(np.linalg.norm(first), 1.0, atol=1e-2)
    other = ClipModel(build_tiny_clip(tmp_path / "other-clip", seed=1))
    kb.use_clip(other)
    assert kb.indexer().index_pictures() == 2  # another model: every vector recomputed
    assert kb.pictures.model_id == other.model_id
    assert not np.allclose(kb.pictures.vector(1), first)


def test_a_broken_clip_model_does_not_stop_zhiku_add(tmp_path, clip_dir, capsys):
    import shutil

    mine = tmp_path / "my-clip"
    shutil.copytree(clip_dir, mine)
    assert main(["models", "add", str(mine), "--role", "clip"]) == 0
    (mine / "model.safetensors").write_bytes(b"damaged")  # changed since it was registered
    pdf, _, _ = _report_pdf(tmp_path / "report.pdf")
    capsys.readouterr()
    assert main(["add", "broken-clip", str(pdf)]) == 0
    out = capsys.readouterr()
    assert "1 added" in out.out and "image search model not used" in out.err
