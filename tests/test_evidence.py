"""Packing ranked chunks into a prompt budget: neighbours merged, budget kept, nothing invented."""

from kb.answering.evidence import pack
from kb.search.retriever import Retriever

PARAGRAPHS = ["".join(f"第{i}段第{j}句：知库把文档切成小块，编号{i * 10 + j}的事实在这里。" for j in range(1, 7))
              for i in range(1, 9)]


def test_neighbours_merge_into_one_exact_span_and_the_budget_holds(make_kb, tmp_path, small_llm):
    kb = make_kb(chunk_tokens=64, overlap_tokens=8)
    page = "\n\n".join(PARAGRAPHS)
    (tmp_path / "doc.txt").write_text(page, encoding="utf-8")
    kb.add([tmp_path / "doc.txt"])
    chunks = sorted(kb.store.chunks(range(1, 100)).values(), key=lambda c: c.start)
    assert len(chunks) >= 4
    spans = pack([chunks[1], chunks[2], chunks[0]], 10_000, small_llm.count_tokens, kb.store.page_text)
    assert len(spans) == 1 and spans[0].members == [0, 1, 2]
    assert spans[0].text == page[chunks[0].start:chunks[2].end].strip()
    assert spans[0].tokens == small_llm.count_tokens(spans[0].text)
    for budget in (60, 150, 400):
        spans = pack(chunks[::2], budget, small_llm.count_tokens, kb.store.page_text)
        used = sum(s.tokens + 12 for s in spans)
        assert used <= budget
        assert all(s.text == page[s.start:s.end].strip() for s in spans)


def test_a_chunk_too_big_is_skipped_not_the_end(make_kb, tmp_path, small_llm):
    kb = make_kb(chunk_tokens=64, overlap_tokens=0)
    (tmp_path / "a.txt").write_text("\n\n".join(PARAGRAPHS[:3]), encoding="utf-8")
    (tmp_path / "b.txt").write_text("短的一段：编号九。", encoding="utf-8")
    kb.add([tmp_path / "a.txt", tmp_path / "b.txt"])
    hits = Retriever(kb.store, kb.embedder).search("编号", 10, apply_floor=False)
    big = max(hits, key=lambda h: small_llm.count_tokens(h.text))
    small = next(h for h in hits if h.name == "b.txt")
    budget = small_llm.count_tokens(small.text) + 12
    assert small_llm.count_tokens(big.text) + 12 > budget
    spans = pack([big, small], budget, small_llm.count_tokens, kb.store.page_text)
    assert [s.text for s in spans] == [small.text]
