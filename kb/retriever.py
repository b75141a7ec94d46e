"""Hybrid retrieval: FTS5 bm25 and FAISS candidates fused by weighted reciprocal-rank fusion."""

from __future__ import annotations

from dataclasses import dataclass

from kb import lexical

DEFAULT_TOP_K = 5
# Cosine floors per embedding model family: e5 packs every text into a narrow band of high
# similarities (unrelated Chinese pairs score ~0.83), MiniLM spreads them out.
SIMILARITY_FLOORS = {"multilingual-e5": 0.88, "all-minilm": 0.45}
DEFAULT_SIMILARITY_FLOOR = 0.5


def similarity_floor(model_id: str) -> float:
    """The default dense-similarity floor for an embedding model id."""
    for prefix, floor in SIMILARITY_FLOORS.items():
        if model_id.lower().startswith(prefix):
            return floor
    return DEFAULT_SIMILARITY_FLOOR


@dataclass
class Hit:
    """A retrieved chunk with where it comes from and why it ranked."""

    chunk_id: int
    score: float  # fused RRF score
    doc_id: int
    path: str
    name: str
    page: int
    start: int
    end: int
    text: str
    lexical_rank: int | None = None
    dense_rank: int | None = None
    similarity: float | None = None  # cosine with the query, when the chunk has a vector


class Retriever:
    """Ranks a knowledge base's chunks for a query.

    Weights are settings because they matter: an English-only dense model drags fusion down on
    Chinese text. The floor is what lets the answer step say "not found": a hit must either be
    similar enough to the query (dense) or contain most of the query's words (lexical).
    """

    def __init__(self, store, embedder, lexical_weight: float = 1.0, dense_weight: float = 1.0,
                 rrf_k: int = 60, candidates: int = 50, min_similarity: float | None = None,
                 min_term_coverage: float = 0.5) -> None:
        self.store, self.embedder = store, embedder
        self.lexical_weight, self.dense_weight = lexical_weight, dense_weight
        self.rrf_k, self.candidates = rrf_k, candidates
        if min_similarity is None:
            min_similarity = similarity_floor(store.get_meta("embed_model_id") or "")
        self.min_similarity, self.min_term_coverage = min_similarity, min_term_coverage

    def search(self, query: str, k: int = DEFAULT_TOP_K, apply_floor: bool = True) -> list[Hit]:
        """The top-k chunks for `query`, best first (only those above the floor, unless told)."""
        lex = self.store.lexical_search(query, self.candidates) if self.lexical_weight > 0 else []
        dense, qvec = [], None
        if self.dense_weight > 0 and self.store.count("vectors") > 0:
            qvec = self.embedder.embed_query(query)
            dense = self.store.dense_search(qvec, self.candidates)
        fused: dict[int, float] = {}
        lex_rank = {cid: r for r, (cid, _) in enumerate(lex, 1)}
        dense_rank = {cid: r for r, (cid, _) in enumerate(dense, 1)}
        sim = dict(dense)
        for cid, r in lex_rank.items():
            fused[cid] = fused.get(cid, 0.0) + self.lexical_weight / (self.rrf_k + r)
        for cid, r in dense_rank.items():
            fused[cid] = fused.get(cid, 0.0) + self.dense_weight / (self.rrf_k + r)
        ranked = sorted(fused, key=lambda c: -fused[c])
        records = self.store.chunks(ranked[: max(k * 4, k)])
        query_terms = {t for t in lexical.terms(query) if t not in lexical.STOPWORDS}
        hits: list[Hit] = []
        for cid in ranked:
            rec = records.get(cid)
            if rec is None:
                continue
            if cid not in sim and qvec is not None:
                vec = self.store.vector(cid)  # a lexical-only candidate: still judge its similarity
                if vec is not None:
                    sim[cid] = float(vec @ qvec)
            hit = Hit(cid, fused[cid], rec.doc_id, rec.path, rec.name, rec.page, rec.start, rec.end,
                      rec.text, lex_rank.get(cid), dense_rank.get(cid), sim.get(cid))
            if apply_floor and not self._passes(hit, query_terms):
                continue
            hits.append(hit)
            if len(hits) == k:
                break
        return hits

    def _passes(self, hit: Hit, query_terms: set[str]) -> bool:
        if hit.similarity is not None and hit.similarity >= self.min_similarity:
            return True
        if hit.lexical_rank is not None and query_terms:
            covered = query_terms & set(lexical.terms(hit.text))
            return len(covered) / len(query_terms) >= self.min_term_coverage
        return False
