"""Which chat model answers: a local GGUF (the default) or a model on the user's own server."""

from __future__ import annotations

import atexit
import functools
import logging
from dataclasses import dataclass
from typing import Callable

from models.llm import DEFAULT_N_CTX

log = logging.getLogger("zhiku.server")


@dataclass(frozen=True)
class ServerChoice:
    """An OpenAI-compatible server to answer through; the key comes from the key store unless given."""

    url: str
    model: str = ""  # "" = the first model the server lists
    api_key: str | None = None
    timeout_s: float = 120.0

    def key(self) -> str | None:
        """The API key to send: the one given, else the one kept for this server."""
        from models.api_keys import load_key
        from models.remote_llm import root_of

        return self.api_key if self.api_key is not None else load_key(root_of(self.url))


def open_chat_model(name: str | None = None, *, n_ctx: int = DEFAULT_N_CTX, n_threads: int | None = None,
                    n_gpu_layers: int = 0, server: ServerChoice | None = None):
    """The chat model to answer with: `server`'s when one is set, else the local GGUF `name`."""
    if server is not None and server.url:
        from models.remote_llm import RemoteLLM

        return RemoteLLM(server.url, server.model, server.key(), n_ctx=n_ctx, timeout_s=server.timeout_s,
                         local_tokenizer=family_tokenizer(server.model))
    from models.llm import LocalLLM

    return LocalLLM.default(name, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers)


# families whose sizes share one vocabulary, by a word in the served model's name
FAMILIES = {"qwen": "qwen"}


def family_tokenizer(model: str) -> Callable[[str], int] | None:
    """A token counter from an installed GGUF of the served model's family (vocabulary only), if any."""
    family = next((f for word, f in FAMILIES.items() if word in model.lower()), None)
    return _vocabulary(family) if family else None


@functools.lru_cache(maxsize=4)
def _vocabulary(family: str) -> Callable[[str], int] | None:
    from models.catalog import CATALOG
    from models.installed import problems
    from models.inventory import resolve

    for spec in CATALOG:
        if spec.role == "llm" and family in spec.name.lower() and not problems(spec):
            import llama_cpp

            from models import llama_backends

            llama_backends.ensure_loaded()
            vocab = llama_cpp.Llama(str(resolve(name=spec.name, role="llm").path), vocab_only=True, verbose=False)
            atexit.register(vocab.close)  # before llama_cpp's globals go: its __del__ fails after
            log.info("token counts for the server's %s model come from %s's vocabulary", family, spec.name)
            return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    return None
