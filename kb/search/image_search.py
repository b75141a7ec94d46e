"""Image search: pictures by words (CLIP's text tower, plus the text of their pages) or by example.

A text query ranks pictures two ways and fuses the ranks: by CLIP similarity to the query, and by
how well the text of the picture's page (its caption, the slide, OCR of a scan or photo) matches
the query through the ordinary retriever. Either alone still works: without a CLIP model pictures
are found by their pages' text only; a page-less photo is found by CLIP only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kb.storage.pictures import PictureRow

RRF_K = 10  # few candidates: a small k keeps the top ranks apart
TEXT_WEIGHT = 0.8  # page text is strong evidence when it matches, but says less about *which* picture
TEXT_PAGES = 12  # pages taken from the text retriever
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass
class ImageHit:
    """A picture that matched, where it is, and why it ranked."""

    picture: PictureRow
    score: float  # 0..1: the fused rank score for text queries, cosine similarity for image queries
    clip_similarity: float | None = None
    text_rank: int | None = None  # rank of its page among the text matches (1 = best)
    also_in: list[tuple[str, int]] = field(default_factory=list)  # the same picture elsewhere: (path, page)

    @property
    def path(self) -> str:
        """The document the picture is in."""
        return self.picture.path

    @property
    def page(self) -> int:
        """The page (slide, frame) it is on."""
        return self.picture.page

    @property
    def thumb(self) -> Path:
        """Its thumbnail file."""
        return self.picture.thumb

    def as_dict(self) -> dict:
        """A JSON-ready summary."""
        p = self.picture
        return {"score": round(self.score, 4), "clip_similarity": None if self.clip_similarity is None
                else round(self.clip_similarity, 4), "text_rank": self.text_rank, "path": p.path,
                "name": p.name, "page": p.page, "width": p.width, "height": p.height, "thumb": str(p.thumb),
                "sha256": p.sha256, "also_in": [{"path": a, "page": b} for a, b in self.also_in]}


class ImageSearch:
    """Searches one knowledge base's pictures with an optional CLIP model."""

    def __init__(self, kb, clip=None) -> None:
        self.kb, self.clip = kb, clip
        self.pictures = kb.store.pictures

    def warning(self, query: str = "") -> str | None:
        """What the user should know about this search's limits, or None."""
        if self.clip is None:
            return ("no image search model (CLIP) is set up: pictures are found by the text of their "
                    "pages only; add one with `zhiku models add PATH --role clip`")
        if _CJK.search(query or "") and not getattr(self.clip, "multilingual", False):
            return (f"{self.clip.path.name} understands English only, so this Chinese query matches pictures by "
                    "their pages' text alone; describe the picture in English, or use a multilingual CLIP "
                    "such as Chinese-CLIP (OFA-Sys/chinese-clip-vit-base-patch16)")
        pending = self.pictures.count_pending()
        if pending:
            return f"{pending} pictures are not embedded yet (indexing them finishes that)"
        return None

    def by_text(self, query: str, k: int = 24) -> list[ImageHit]:
        """Pictures for a description, best first."""
        clip_ranked: list[tuple[int, float]] = []
        understood = self.clip is not None and (getattr(self.clip, "multilingual", False) or not _CJK.search(query))
        if understood:
            clip_ranked = self.pictures.search(self.clip.embed_text([query])[0], max(k * 4, 50))
        pages: dict[tuple[int, int], int] = {}
        for hit in self.kb.search(query, k=TEXT_PAGES):
            pages.setdefault((hit.doc_id, hit.page), len(pages) + 1)
        on_pages = self.pictures.on_pages(pages)
        scores: dict[int, float] = {}
        similarity = dict(clip_ranked)
        for rank, (image_id, _) in enumerate(clip_ranked, start=1):
            scores[image_id] = 1 / (RRF_K + rank)
        text_rank: dict[int, int] = {}
        for row in on_pages:
            r = pages[(row.doc_id, row.page)]
            text_rank[row.id] = r
            scores[row.id] = scores.get(row.id, 0.0) + TEXT_WEIGHT / (RRF_K + r)
        best = (1 + (TEXT_WEIGHT if pages else 0)) / (RRF_K + 1) if clip_ranked else TEXT_WEIGHT / (RRF_K + 1)
        rows = self.pictures.rows(scores)
        hits = [ImageHit(rows[i], s / best, similarity.get(i), text_rank.get(i))
                for i, s in scores.items() if i in rows]
        return _distinct(sorted(hits, key=lambda h: -h.score), k)

    def by_image(self, image, k: int = 24) -> list[ImageHit]:
        """Pictures that look like `image` (a path or a PIL image), best first."""
        if self.clip is None:
            raise RuntimeError("searching by example needs an image search model (CLIP): "
                               "add one with `zhiku models add PATH --role clip`")
        vec = self.clip.embed_images([image])[0]
        ranked = self.pictures.search(vec, max(k * 4, 50))
        rows = self.pictures.rows(i for i, _ in ranked)
        hits = [ImageHit(rows[i], s, s) for i, s in ranked if i in rows]
        return _distinct(hits, k)


def _distinct(hits: list[ImageHit], k: int) -> list[ImageHit]:
    """One hit per picture (the best placed); its other places listed with it."""
    out: dict[str, ImageHit] = {}
    for h in hits:
        first = out.get(h.picture.sha256)
        if first is None:
            out[h.picture.sha256] = h
        else:
            first.also_in.append((h.picture.path, h.picture.page))
    return list(out.values())[:k]
