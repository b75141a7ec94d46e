"""The chat model: a GGUF file run by llama.cpp (llama-cpp-python), streamed and stoppable."""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Iterator, Sequence

from models import cpu_load, llama_backends
from models.checksum import verify_file
from models.model_files import NotGGUF, check_gguf

__all__ = ["LocalLLM", "NotGGUF", "check_gguf", "default_threads", "default_batch_threads"]

# 4k tokens: the evidence (300), the conversation so far and a full answer fit with room to spare;
# the KV cache of the 1.5B model at 4k is ~110 MB
DEFAULT_N_CTX = 4096
log = logging.getLogger("zhiku.llama")


def default_threads() -> int:
    """Decoding threads: max(1, cores - 1), leaving a core to the UI and the indexer.

    Decoding syncs its threads every token, so one busy core stalls them all (measured on two
    cores: 2 threads fell to ~3 tok/s beside another process, 1 thread kept ~20).
    """
    return max(1, (os.cpu_count() or 2) - 1)


def default_batch_threads() -> int:
    """Prompt-processing threads: every core. Prompt processing is what the user waits for
    before the first token, and it is a short burst of large matrix products that scales with
    cores (Qwen2.5 1.5B here: 39 tok/s on one thread, 80 on two)."""
    return max(1, os.cpu_count() or 1)

# Models still open when the interpreter exits are closed first: llama-cpp-python's own __del__
# runs after its module's globals are gone and prints "Exception ignored in: Llama.__del__ …
# TypeError: 'NoneType' object is not callable" (seen at the end of the test run and of the CLI).
_open: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def close_all(wait_s: float = 5.0) -> None:
    """Close every model still open (at exit; a generation still running gets `wait_s` to stop)."""
    for llm in list(_open):
        llm.close(wait_s)


class LocalLLM:
    """A loaded GGUF chat model. One generation at a time; `stop()` may come from any thread."""

    def __init__(self, path: Path, n_ctx: int = DEFAULT_N_CTX, n_gpu_layers: int = 0,
                 n_threads: int | None = None, n_threads_batch: int | None = None, expected_sha256: str | None = None,
                 expected_size: int | None = None, seed: int = 0, n_batch: int = 256) -> None:
        self.path = Path(path)
        check_gguf(self.path)
        if expected_sha256:
            verify_file(self.path, expected_sha256, expected_size)
        import llama_cpp

        self._stop = threading.Event()
        self._busy = threading.Lock()
        threads = n_threads or default_threads()
        batch_threads = n_threads_batch or max(threads, default_batch_threads())
        llama_backends.ensure_loaded()  # routes llama.cpp's log lines to logging first
        self._llm = llama_cpp.Llama(
            model_path=str(self.path), n_ctx=n_ctx, n_gpu_layers=n_gpu_layers,
            n_threads=threads, n_threads_batch=batch_threads, n_batch=n_batch, seed=seed, verbose=False)
        # Without this, a stop during prompt processing would wait for the whole prompt (seconds);
        # llama.cpp polls the callback between graph nodes, so decode aborts within milliseconds.
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._stop.is_set())
        llama_cpp.llama_set_abort_callback(self._llm._ctx.ctx, self._abort_cb, None)
        # Always format with the template the GGUF carries; llama-cpp-python would otherwise swap
        # in a built-in format when it recognises the template, which can differ in details.
        if "chat_template.default" in self._llm._chat_handlers:
            self._llm.chat_format = "chat_template.default"
        self.n_threads, self.n_threads_batch = threads, batch_threads
        self.max_threads, self.max_threads_batch = threads, batch_threads  # fewer when cores are busy
        self.n_gpu_layers = n_gpu_layers
        self.load = cpu_load.shared()
        self._prefilling: list[int] | None = None  # the tokens a running prefill is processing
        # (tokens found in llama.cpp's cache, prompt tokens) of each recent prompt: the log and tests
        self.reuse_log: collections.deque = collections.deque(maxlen=16)
        _open.add(self)

    def prefill(self, messages: Sequence[dict], cut: str) -> int:
        """Process the prompt of `messages` up to the last `cut` in it into llama.cpp's cache now,
        while the user is still typing; returns the tokens processed (-1: the model was busy).

        A later prompt that starts with the same text then only pays for the rest. An answer that
        arrives meanwhile stops this unless its prompt begins with what is being processed.
        """
        text = self.format_prompt(messages)
        at = text.rfind(cut)
        if at <= 0:
            return 0
        tokens = self._llm.tokenize(text[:at].encode("utf-8"), add_bos=False, special=True)
        if not self._busy.acquire(blocking=False):
            return -1  # answering: type-ahead waits
        self._busy.release()
        with self._working(prefilling=tokens):
            keep = self._cached_prefix(tokens)
            if keep >= len(tokens):
                return 0
            self._llm.n_tokens = keep
            try:
                self._llm.eval(tokens[keep:])
            except RuntimeError as e:
                if not (self._stop.is_set() and "returned 2" in str(e)):
                    raise
            return int(self._llm.n_tokens) - keep

    def _cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many of `tokens` llama.cpp holds already (from the start)."""
        keep = 0
        for a, b in zip(self._llm._input_ids[: self._llm.n_tokens], tokens):
            if a != b:
                break
            keep += 1
        return keep

    def _give_way(self, tokens: Sequence[int] | None) -> None:
        """A prefill that does not lead into `tokens` is stopped, so this work need not wait for it."""
        target = self._prefilling
        if target is not None and (tokens is None or list(tokens[: len(target)]) != list(target)):
            self._stop.set()

    @contextlib.contextmanager
    def _working(self, prefilling: Sequence[int] | None = None,
                 tokens: Sequence[int] | None = None) -> Iterator[None]:
        """Hold the model for one piece of work, on as many threads as there are free cores."""
        if prefilling is None:
            self._give_way(tokens)
        with self._busy:
            self._prefilling = list(prefilling) if prefilling is not None else None
            self._stop.clear()
            self.fit_threads()
            self.load.generating = True
            try:
                yield
            finally:
                self.load.generating = False
                self._prefilling = None

    def fit_threads(self) -> tuple[int, int]:
        """Use only the cores other processes leave free (models.cpu_load): (decode, prompt) threads."""
        free = self.load.free_cores()
        wanted = (min(self.max_threads, free), min(self.max_threads_batch, free))
        if wanted != (self.n_threads, self.n_threads_batch):
            import llama_cpp

            llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, *wanted)
            self.n_threads, self.n_threads_batch = wanted
            log.info("llama.cpp threads: %d decode, %d prompt (%.1f cores busy elsewhere)",
                     *wanted, self.load.busy_cores())
        return wanted

    @classmethod
    def default(cls, name: str | None = None, **kwargs) -> "LocalLLM":
        """The catalog's default chat model (or `name`), verified before llama.cpp loads it."""
        from models.inventory import resolve

        found = resolve(name=name, role="llm")
        return cls(found.path, **kwargs)

    @property
    def n_ctx(self) -> int:
        """Context length in tokens."""
        return int(self._llm.n_ctx())

    @property
    def chat_template(self) -> str | None:
        """The Jinja chat template stored in the GGUF, if any."""
        return self._llm.metadata.get("tokenizer.chat_template")

    @property
    def uses_gguf_template(self) -> bool:
        """True when prompts are formatted with the GGUF's own chat template."""
        return self._llm.chat_format == "chat_template.default"

    @property
    def model_name(self) -> str:
        """The model's own name from its GGUF metadata (file name if absent)."""
        return self._llm.metadata.get("general.name") or self.path.stem

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary (no BOS)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def format_prompt(self, messages: Sequence[dict]) -> str:
        """The exact text llama.cpp will see for `messages` (GGUF template, generation prompt on)."""
        from llama_cpp import llama_chat_format

        tmpl = self.chat_template
        if not tmpl:
            raise ValueError(f"{self.path.name} has no chat template")
        eos_id, bos_id = self._llm.token_eos(), self._llm.token_bos()
        text = self._llm._model.token_get_text
        fmt = llama_chat_format.Jinja2ChatFormatter(
            template=tmpl, eos_token=text(eos_id) if eos_id != -1 else "",
            bos_token=text(bos_id) if bos_id != -1 else "")
        return fmt(messages=list(messages)).prompt

    def count_prompt_tokens(self, messages: Sequence[dict]) -> int:
        """Tokens of the formatted prompt, special tokens parsed as llama.cpp does when chatting."""
        return len(self.tokenize_prompt(messages))

    def tokenize_prompt(self, messages: Sequence[dict]) -> list[int]:
        """Token ids of the formatted prompt (special tokens recognised, as in generation)."""
        return self._llm.tokenize(self.format_prompt(messages).encode("utf-8"), add_bos=False, special=True)

    def token_id(self, piece: str) -> int | None:
        """The id of a special token such as '<|im_start|>', if the vocabulary has it."""
        ids = self._llm.tokenize(piece.encode("utf-8"), add_bos=False, special=True)
        return ids[0] if len(ids) == 1 else None

    def prime(self, messages: Sequence[dict]) -> int:
        """Process the prompt that `messages` begin every chat with (the system message) now, so
        the first question only pays for its own tokens; returns the tokens processed."""
        marker = "\x1f"
        text = self.format_prompt([*messages, {"role": "user", "content": marker}])
        tokens = self._llm.tokenize(text[: text.index(marker)].encode("utf-8"), add_bos=False, special=True)
        with self._working():
            self._llm.reset()
            self._llm.eval(tokens)
        return len(tokens)

    def first_token_probabilities(self, messages: Sequence[dict], options: dict[str, Sequence[str]]) -> dict[str, float]:
        """How likely the reply to `messages` starts with each option (the first token of any of
        its spellings), from one forward pass; the prompt shares llama.cpp's cache with the chat.

        Only the tokens after the longest cached prefix are processed, so asking this right after
        (or right before) a chat over the same prompt costs a few tokens, not the prompt.
        """
        import numpy as np

        tokens = self.tokenize_prompt(messages)
        firsts = {k: {self._llm.tokenize(s.encode("utf-8"), add_bos=False, special=False)[0] for s in v}
                  for k, v in options.items()}
        with self._working(tokens=tokens):
            llm = self._llm
            keep = self._cached_prefix(tokens[:-1])  # at least the last token is evaluated
            self.reuse_log.append((keep, len(tokens)))
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        return {k: float(sum(probs[t] for t in ids)) for k, ids in firsts.items()}

    @property
    def cached_tokens(self) -> int:
        """Tokens whose keys and values llama.cpp holds from the last prompt and answer."""
        return int(self._llm.n_tokens)

    def stop(self) -> None:
        """Ask the running generation to end; it returns within one graph node or token."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True if the last generation ended because stop() was called."""
        return self._stop.is_set()

    def stream_chat(self, messages: Sequence[dict], max_tokens: int = 512, temperature: float = 0.2,
                    top_p: float = 0.9, stop: Sequence[str] | None = None) -> Iterator[str]:
        """Yield the reply to `messages` piece by piece, formatted with the GGUF's chat template."""
        prompt = self.tokenize_prompt(messages)
        with self._working(tokens=prompt):
            self.reuse_log.append((self._cached_prefix(prompt), len(prompt)))
            try:
                chunks = self._llm.create_chat_completion(
                    messages=list(messages), max_tokens=max_tokens, temperature=temperature,
                    top_p=top_p, stop=list(stop or []), stream=True)
                for chunk in chunks:
                    if self._stop.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except RuntimeError as e:
                # llama_decode returns 2 when our abort callback fired: that is a stop, not an error
                if not (self._stop.is_set() and "returned 2" in str(e)):
                    raise

    def chat(self, messages: Sequence[dict], **kwargs) -> str:
        """The whole reply as one string."""
        return "".join(self.stream_chat(messages, **kwargs))

    def close(self, wait_s: float | None = None) -> None:
        """Free the model's memory now rather than at garbage collection (again: nothing).

        A generation on another thread is stopped first; with `wait_s`, one that has not let go
        by then is left to the process's end instead of blocking it.
        """
        self._stop.set()
        if not self._busy.acquire(timeout=-1 if wait_s is None else wait_s):
            return
        try:
            self._llm.close()
            _open.discard(self)
        finally:
            self._busy.release()
