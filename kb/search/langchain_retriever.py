"""A LangChain BaseRetriever over a knowledge base, for people who build on LangChain."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from kb import defaults


class KBRetriever(BaseRetriever):
    """Returns a KB's top chunks as Documents with file, page, offsets and scores in metadata."""

    kb: Any
    k: int = defaults.TOP_K
    settings: dict = {}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.kb.search(query, k=self.k, **self.settings)
        return [Document(page_content=h.text, metadata={
            "source": h.path, "name": h.name, "page": h.page, "start": h.start, "end": h.end,
            "score": h.score, "similarity": h.similarity, "chunk_id": h.chunk_id}) for h in hits]
