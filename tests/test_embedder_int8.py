"""The embedder's int8 ONNX variant: made at install, close to the float model, used by the
knowledge bases created with it, and never mixed with float vectors."""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import real_model
from test_embedder import MIXED

from app.cli import main
from kb.knowledge_base import KnowledgeBase
from kb.storage.contract import ModelMismatch, StoreError
from kb.storage.vectors import CHUNK_VECTORS
from models import onnx_int8
from models.embedder import Embedder


@pytest.fixture(scope="module")
def int8():
    e = Embedder(real_model("multilingual-e5-small"), int8=True)
    assert onnx_int8.problem(e.path, e.base_id) is None, "make test installs the int8 variant"
    return e


def test_int8_vectors_stay_within_one_percent_of_the_float_model(int8, e5_float):
    for embed in ("embed_passages", "embed_symmetric"):
        ours, ref = getattr(int8, embed)(MIXED), getattr(e5_float, embed)(MIXED)
        cos = (ours * ref).sum(axis=1)
        assert cos.min() >= 0.98 and cos.mean() >= 0.99, (embed, cos.min(), cos.mean())
        assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-4)
    # a query finds the same passage first with either
    ours, ref = int8.embed_passages(MIXED), e5_float.embed_passages(MIXED)
    for q in ("CLIP 是什么模型？", "Where is the source of truth kept?", "GPT-3 有多少参数", "科幻小说的作者"):
        assert np.argmax(ours @ int8.embed_query(q)) == np.argmax(ref @ e5_float.embed_query(q)), q
    assert int8.dim == e5_float.dim and int8.max_tokens == e5_float.max_tokens
    assert {k: int8.prompts[k] for k in ("query", "passage")} == {k: e5_float.prompts[k] for k in ("query", "passage")}


def test_an_int8_knowledge_base_reopens_with_int8_and_never_mixes(int8, e5_float, zhiku_home, tmp_path):
    assert Embedder.default(int8=True).model_id == int8.model_id == e5_float.model_id + "+int8v2"
    assert Embedder.default().int8 and not Embedder.default(int8=False).int8  # new knowledge bases get int8
    from kb.search.retriever import default_margins

    assert default_margins(int8.model_id) == default_margins(e5_float.model_id)  # bench/tune.py --floor --int8
    (tmp_path / "a.txt").write_text("知库把向量保存在 SQLite 里，FAISS 只是缓存。", encoding="utf-8")
    kb = KnowledgeBase.create("quick", Embedder.default(int8=True))
    kb.add([tmp_path / "a.txt"])
    assert kb.store.model_id.endswith("+int8v2")
    kb.close()
    again = KnowledgeBase.open("quick")
    assert again.embedder.int8 and again.search("向量保存在哪里？", k=1)[0].name == "a.txt"
    again.close()
    with pytest.raises(ModelMismatch, match=r"\+int8v2"):
        KnowledgeBase.open("quick", e5_float)
    # a float knowledge base stays float
    KnowledgeBase.create("float", e5_float).close()
    assert not KnowledgeBase.open("float").embedder.int8


def test_a_damaged_or_stale_variant_is_reported_and_not_used(int8, tmp_path):
    source = tmp_path / "multilingual-e5-small"
    source.mkdir()
    copy = shutil.copytree(onnx_int8.variant_dir(int8.path), onnx_int8.variant_dir(source))
    assert onnx_int8.problem(source, int8.base_id) is None
    assert "made from" in onnx_int8.problem(source, "multilingual-e5-small@000000000000")
    with open(copy / "model.onnx", "r+b") as f:
        f.seek(1 << 20)
        byte = f.read(1)
        f.seek(1 << 20)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert "damaged" in onnx_int8.problem(source, int8.base_id)
    # a variant made by an earlier recipe (its manifest names no variant) is made again, not used
    manifest = json.loads((copy / onnx_int8.MANIFEST).read_text())
    del manifest["variant"]
    (copy / onnx_int8.MANIFEST).write_text(json.dumps(manifest))
    assert "older version" in onnx_int8.problem(source, int8.base_id)


def test_a_knowledge_base_of_the_older_int8_variant_says_to_re_embed_and_re_embeds(int8, zhiku_home, tmp_path,
                                                                                     capsys):
    (tmp_path / "a.txt").write_text("知库把向量保存在 SQLite 里，FAISS 只是缓存。", encoding="utf-8")
    kb = KnowledgeBase.create("older", Embedder.default(int8=True))
    kb.add([tmp_path / "a.txt"])
    # what an earlier version recorded: vectors of its int8 recipe, which this one no longer makes
    kb.store.db.set_meta(CHUNK_VECTORS.model, int8.base_id + "+int8")
    kb.close()
    with pytest.raises(StoreError, match=r"older int8 copy.*zhiku kb reembed older --int8"):
        KnowledgeBase.open("older")
    assert main(["kb", "reembed", "older", "--int8"]) == 0
    assert "int8v2" in capsys.readouterr().out
    again = KnowledgeBase.open("older")
    assert again.embedder.int8 and again.store.model_id == int8.model_id
    assert again.search("向量保存在哪里？", k=1)[0].name == "a.txt"
    again.close()
    assert main(["kb", "reembed", "older"]) == 0  # naming nothing re-embeds with what new ones get
    again = KnowledgeBase.open("older")
    assert again.store.model_id == Embedder.default().model_id
    again.close()


def test_without_a_sound_variant_new_knowledge_bases_get_the_float_model_and_asking_for_int8_says_why(
        int8, scratch_models, zhiku_home):
    e5_copy = shutil.copytree(int8.path, scratch_models / int8.path.name)
    assert not Embedder.default().int8  # no variant here: the float model, not an error
    with pytest.raises(FileNotFoundError, match="zhiku models install"):
        Embedder.default(int8=True)
    assert main(["kb", "create", "wants-int8", "--int8"]) == 2
    shutil.copytree(onnx_int8.variant_dir(int8.path), onnx_int8.variant_dir(e5_copy))
    assert Embedder.default().int8


def test_a_variant_that_strays_from_the_float_model_is_refused_and_nothing_is_installed(int8, tmp_path):
    source = tmp_path / int8.path.name  # the float model, linked: the real variant is never touched
    source.mkdir()
    for f in int8.path.iterdir():
        (source / f.name).symlink_to(f)
    linked = {"ignore": shutil.ignore_patterns(onnx_int8.MANIFEST), "copy_function": os.link}  # no 400 MB copies
    made = shutil.copytree(onnx_int8.variant_dir(int8.path), tmp_path / ".made", **linked)
    # a variant that reads text with another model's vocabulary (MiniLM's): it runs, and strays
    (made / "tokenizer.json").unlink()
    shutil.copy(real_model("all-minilm-l6-v2") / "tokenizer.json", made / "tokenizer.json")
    with pytest.raises(onnx_int8.Int8Error, match=r"strays from it \(cosine"):
        onnx_int8.accept(made, source, int8.base_id)
    assert not onnx_int8.variant_dir(source).exists()
    # the variant as it was made passes the same check and is put in place
    good = shutil.copytree(onnx_int8.variant_dir(int8.path), tmp_path / ".good", **linked)
    assert onnx_int8.accept(good, source, int8.base_id) == onnx_int8.variant_dir(source)
    assert onnx_int8.problem(source, int8.base_id) is None
