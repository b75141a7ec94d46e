"""The knowledge-base engine (loaders, chunking, store, retrieval, answering); see issue 3."""
