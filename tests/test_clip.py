"""CLIP runtime with a tiny CLIP built at test time and loaded through the real path."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from tinyclip import build_tiny_clip

from app.cli import main
from models.clip import ClipModel, detect_format
from models.registry import InvalidModel


def _images():
    red = Image.new("RGB", (64, 48), (220, 30, 30))
    chart = Image.new("RGB", (80, 80), "white")
    d = ImageDraw.Draw(chart)
    for i, h in enumerate((20, 50, 35, 70)):
        d.rectangle([5 + i * 18, 78 - h, 18 + i * 18, 78], fill=(30, 60, 200))
    gray = Image.new("L", (40, 40), 128)  # not RGB: must be converted
    return red, chart, gray


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_round_trip_through_models_add(tiny_clip_dir, capsys):
    assert main(["models", "add", str(tiny_clip_dir), "--role", "clip"]) == 0
    capsys.readouterr()
    main(["models", "list"])
    assert "tiny-clip (yours)" in capsys.readouterr().out
    clip = ClipModel.default()
    assert clip.path == tiny_clip_dir and clip.dim == 16
    assert clip.model_id.startswith("tiny-clip@")

    red, chart, gray = _images()
    vecs = clip.embed_images([red, chart, gray, red.copy()])
    assert vecs.shape == (4, 16) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vecs[0], vecs[3], atol=1e-6)  # identical images embed identically
    assert float(vecs[0] @ vecs[1]) < 0.9999

    text = clip.embed_text(["a red square", "a bar chart", "架构图"])
    assert text.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert clip.embed_text([]).shape == (0, 16)


def test_images_by_path(tiny_clip_dir, tmp_path):
    red, _, _ = _images()
    p = tmp_path / "red.png"
    red.save(p)
    clip = ClipModel(tiny_clip_dir)
    np.testing.assert_allclose(clip.embed_images([p])[0], clip.embed_images([red])[0], atol=1e-6)


def test_folders_that_are_not_clip_are_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InvalidModel, match="not a CLIP folder"):
        detect_format(tmp_path)
    oc = tmp_path / "oc"
    oc.mkdir()
    (oc / "open_clip_config.json").write_text("{}")
    with pytest.raises(InvalidModel, match="open_clip folder without weights"):
        detect_format(oc)


def test_no_clip_model_says_how_to_add_one():
    from models.inventory import ModelNotInstalled

    with pytest.raises(ModelNotInstalled, match="zhiku models add PATH --role clip"):
        ClipModel.default()


def test_a_chinese_clip_folder_reads_chinese_queries(tmp_path, make_kb):
    from fixtures import make_picture_pdf
    from tinyclip import build_tiny_chinese_clip

    clip = ClipModel(build_tiny_chinese_clip(tmp_path / "tiny-cn-clip"))
    assert clip.model_type == "chinese_clip" and clip.multilingual
    vecs = clip.embed_text(["架构图", "收入柱状图"])
    assert vecs.shape == (2, 16) and not np.allclose(vecs[0], vecs[1], atol=1e-6)
    ids = clip._tokenizer("收入柱状图")["input_ids"]
    assert clip._tokenizer.unk_token_id not in ids and len(ids) == 7  # five characters, not [UNK]s
    red, chart, _ = _images()
    assert clip.embed_images([red, chart]).shape == (2, 16)
    make_picture_pdf(tmp_path / "r.pdf", [(["第一页"], [chart.resize((120, 120))])])
    kb = make_kb("cn")
    kb.use_clip(clip)
    kb.add([tmp_path / "r.pdf"])
    search = kb.image_search()
    hits = search.by_text("柱状图")
    assert hits and hits[0].clip_similarity is not None  # the Chinese query went through CLIP
    assert search.warning("柱状图") is None


def test_multilingual_is_read_from_the_config_or_whole_words_of_the_name(tiny_clip_dir, tmp_path):
    import shutil

    for name, expected in (("clip-vit-b-32", False), ("zhang-clip", False), ("clip-zh", True),
                           ("xlm-roberta-clip", True), ("M-CLIP-base", True)):
        folder = tmp_path / name
        shutil.copytree(tiny_clip_dir, folder)
        assert ClipModel(folder).multilingual is expected, name
