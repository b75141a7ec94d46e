"""Hybrid retrieval: FTS5 bm25 and FAISS candidates fused by weighted reciprocal-rank fusion."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Collection

import numpy as np

from kb.text import lexical
from kb.text.language import language
from kb.storage.contract import ChunkRecord, KnowledgeStore

from kb.defaults import TOP_K as DEFAULT_TOP_K  # noqa: E402 (re-exported)
# Raw cosines do not make a floor: e5 scores an unrelated Chinese pair ~0.83 and a relevant
# cross-lingual pair ~0.83 too. So each query is calibrated against everyday sentences that answer
# nothing: a hit must beat their mean similarity to this query by a margin.
NULL_PASSAGES = [
    "今天天气很好，适合出去散步。", "我早上喝了一杯咖啡，然后去上班。", "这家餐厅的菜很好吃，价格也不贵。",
    "周末我们去公园看了花。", "请在下午三点之前把文件发给我。", "他买了一辆新自行车。",
    "The weather is nice today, good for a walk.", "I had a cup of coffee this morning before work.",
    "The restaurant was busy on Saturday night.", "Please send me the file before three o'clock.",
    "We watched a movie with friends last weekend.", "Thank you for your help, see you tomorrow.",
]
# (same language, across languages): cross-lingual matches score lower, so they get a lower bar;
# measured on e5-small: relevant same-language pairs +0.11..+0.19, unrelated technical text up to
# +0.094; relevant zh<->en pairs only +0.036..+0.06, unrelated ones up to +0.022. Same-language
# margin tuned with bench/tune.py --floor: 0.11 keeps 99.7% of answers (as 0.10 did) and turns
# away 36% of questions the KB cannot answer (0.10: 17%); 0.12 turns away 58% but already loses
# everyday-topic answers ("下雨天气温" over a weather note scores +0.119: the null sentences are
# everyday sentences themselves).
# The int8 e5 (models/onnx_int8.py, version 2) keeps the float model's margins: the same sweep,
# run for both back to back, gave it 0.11 -> 99.50% of answers kept (float 99.66%, one question in
# 595 fewer) and 47.8% of unanswerable questions turned away (float 36.3%); 0.10 -> 99.66%, 23.5%.
# (Version 1 scored relevant passages up to 0.02 lower and had its own 0.10.)
MARGINS = {"multilingual-e5": (0.11, 0.03), "all-minilm": (0.15, 0.15)}
DEFAULT_MARGIN = (0.10, 0.10)
_null_cache: dict[str, np.ndarray] = {}
# Tuned on CMRC 2018 dev questions 0-999 (bench/tune.py); why each value: bench/README.md.
DEFAULTS = {"lexical_weight": 1.0, "dense_weight": 1.0, "rrf_k": 10, "candidates": 50, "doc_weight": 0.0,
            "min_term_coverage": 0.5}


_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zhiku-lexical")
    return _executor


def default_margins(model_id: str) -> tuple[float, float]:
    """How far above the null sentences a hit must score (same language, cross-language)."""
    for prefix, margins in MARGINS.items():
        if model_id.lower().startswith(prefix):
            return margins
    return DEFAULT_MARGIN


def null_vectors(embedder) -> np.ndarray:
    """The embedder's vectors for the null sentences (computed once per model)."""
    key = embedder.model_id
    if key not in _null_cache:
        _null_cache[key] = embedder.embed_passages(NULL_PASSAGES)
    return _null_cache[key]


@dataclass
class Candidates:
    """What each side found for one query: (chunk id, score) lists, best first."""

    lexical: list[tuple[int, float]]
    dense: list[tuple[int, float]]
    query_vector: np.ndarray | None
    baseline: float  # the query's mean similarity to the null sentences
    doc_of: dict[int, int]  # chunk id -> document id (filled when documents weigh in)


def fuse(cand: Candidates, lexical_weight: float, dense_weight: float, rrf_k: int,
         doc_weight: float = 0.0) -> dict[int, float]:
    """Weighted reciprocal-rank fusion, plus a share of the chunk's document's total.

    The document term lifts a chunk whose neighbours matched too: an answer usually sits in a
    document that is about the question as a whole, not in a lone chunk that shares a few words.
    """
    fused: dict[int, float] = {}
    for weight, found in ((lexical_weight, cand.lexical), (dense_weight, cand.dense)):
        for r, (cid, _) in enumerate(found, 1):
            fused[cid] = fused.get(cid, 0.0) + weight / (rrf_k + r)
    if doc_weight and cand.doc_of:
        per_doc: dict[int, float] = {}
        for cid, s in fused.items():
            d = cand.doc_of.get(cid)
            per_doc[d] = per_doc.get(d, 0.0) + s
        fused = {cid: s + doc_weight * per_doc[cand.doc_of.get(cid)] for cid, s in fused.items()}
    return fused


@dataclass
class Hit(ChunkRecord):
    """A retrieved chunk with where it comes from and why it ranked."""

    score: float = 0.0  # fused RRF score
    lexical_rank: int | None = None
    dense_rank: int | None = None
    similarity: float | None = None  # cosine with the query, when the chunk has a vector
    relevance: float | None = None  # similarity minus the query's mean similarity to null sentences

    @property
    def chunk_id(self) -> int:
        """The chunk's id in the store."""
        return self.id


class Retriever:
    """Ranks a knowledge base's chunks for a query.

    Weights are settings because they matter: an English-only dense model drags fusion down on
    Chinese text. The floor is what lets the answer step say "not found": a hit must either beat
    the query's similarity to sentences that answer nothing by a margin (dense), or contain most
    of the query's words (lexical).
    """

    def __init__(self, store: KnowledgeStore, embedder, lexical_weight: float = DEFAULTS["lexical_weight"],
                 dense_weight: float = DEFAULTS["dense_weight"], rrf_k: int = DEFAULTS["rrf_k"],
                 candidates: int = DEFAULTS["candidates"], doc_weight: float = DEFAULTS["doc_weight"],
                 min_margin: float | None = None, min_margin_cross: float | None = None,
                 min_term_coverage: float = DEFAULTS["min_term_coverage"],
                 documents: Collection[int] | None = None) -> None:
        self.store, self.embedder = store, embedder
        self.documents = documents  # a scope: only these documents' chunks are searched (None: all)
        self.lexical_weight, self.dense_weight = lexical_weight, dense_weight
        self.rrf_k, self.candidates, self.doc_weight = rrf_k, candidates, doc_weight
        same, cross = default_margins(store.model_id or "")
        self.min_margin = same if min_margin is None else min_margin
        self.min_margin_cross = cross if min_margin_cross is None else min_margin_cross
        self.min_term_coverage = min_term_coverage

    def candidates_for(self, query: str) -> Candidates:
        """Both sides' candidate lists for a query, before fusion.

        Keyword search runs in a helper thread while the query is embedded (both release the
        GIL), so a query costs the slower of the two rather than their sum.
        """
        lex_job = None
        if self.lexical_weight > 0:
            lex_job = _pool().submit(self.store.lexical_search, query, self.candidates, self.documents)
        dense, qvec, baseline = [], None, 0.0
        if self.dense_weight > 0:
            qvec = self.embedder.embed_query(query)  # before touching the store: it is locked meanwhile
            if self.store.has_vectors():
                dense = self.store.dense_search(qvec, self.candidates, self.documents)
                baseline = float((null_vectors(self.embedder) @ qvec).mean())
            else:
                qvec = None
        lex = lex_job.result() if lex_job is not None else []
        docs = self.store.doc_ids({cid for cid, _ in lex} | {cid for cid, _ in dense}) if self.doc_weight else {}
        return Candidates(lex, dense, qvec, baseline, docs)

    def search(self, query: str, k: int = DEFAULT_TOP_K, apply_floor: bool = True) -> list[Hit]:
        """The top-k chunks for `query`, best first (only those above the floor, unless told)."""
        cand = self.candidates_for(query)
        fused = fuse(cand, self.lexical_weight, self.dense_weight, self.rrf_k, self.doc_weight)
        ranked = sorted(fused, key=lambda c: -fused[c])
        lex_rank = {cid: r for r, (cid, _) in enumerate(cand.lexical, 1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(cand.dense, 1)}
        sim = dict(cand.dense)
        qvec = cand.query_vector
        records = self.store.chunks(ranked[: max(k * 4, k)])
        query_terms = lexical.query_terms(query)
        query_lang = language(query)
        hits: list[Hit] = []
        for cid in ranked:
            rec = records.get(cid)
            if rec is None:
                continue
            if cid not in sim and qvec is not None:
                vec = self.store.vector(cid)  # a lexical-only candidate: still judge its similarity
                if vec is not None:
                    sim[cid] = float(vec @ qvec)
            similarity = sim.get(cid)
            hit = Hit(**vars(rec), score=fused[cid], lexical_rank=lex_rank.get(cid),
                      dense_rank=dense_rank.get(cid), similarity=similarity,
                      relevance=None if similarity is None else similarity - cand.baseline)
            if apply_floor and not self._passes(hit, query_terms, query_lang):
                continue
            hits.append(hit)
            if len(hits) == k:
                break
        return hits

    def _passes(self, hit: Hit, query_terms: set[str], query_lang: str) -> bool:
        if hit.relevance is not None:
            cross = language(hit.text) != query_lang
            if hit.relevance >= (self.min_margin_cross if cross else self.min_margin):
                return True
        if hit.lexical_rank is not None and query_terms:
            covered = query_terms & set(lexical.terms(hit.text))
            return len(covered) / len(query_terms) >= self.min_term_coverage
        return False
