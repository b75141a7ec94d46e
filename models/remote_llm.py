"""A chat model behind an OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, LM Studio,
llama-cpp-python's server): the same interface as `LocalLLM`, so answering does not change.

Nothing is sent anywhere but the address the user gave. The prompt budget needs token counts in
the server model's vocabulary; they come from the first of these that works, and the log says
which (`budget` below):
- the server's own tokenizer: `/tokenize` (llama.cpp's server, vLLM) or `/extras/tokenize`
  (llama-cpp-python) — exact;
- a local tokenizer of the same family (a Qwen GGUF here for a Qwen model on the server),
  plus 10%: sibling Qwen2.5 sizes share one vocabulary, but the server may run a newer one;
- an estimate (`estimate_tokens`), plus 25%: against Qwen's real counts on 665 passages
  (seeds-zh paragraphs, XQuAD-en, CMRC) it is 0.91-2.0x (median 1.38-1.51x), so with the margin
  none is under-counted; the worst were bullet lists, where indents and digits are tokens each.
Each message also gets 8 tokens for the chat template's role markers (Qwen's take 5).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable, Iterator, Sequence

import httpx
from httpx_sse import SSEError, connect_sse

from models.llm import DEFAULT_N_CTX
from models.server_errors import ReplyCutOff, ServerError, ServerUnavailable, UnknownModel, WrongKey

__all__ = ["RemoteLLM", "ServerError", "ServerUnavailable", "WrongKey", "UnknownModel", "ReplyCutOff",
           "estimate_tokens", "root_of"]

log = logging.getLogger("zhiku.server")
# httpx logs every request at INFO: a token count per evidence span would flood the app's log
logging.getLogger("httpx").setLevel(logging.WARNING)

TEMPLATE_TOKENS = 8  # per message: role markers of the server's chat template
# seconds; `read` is the longest wait for the next piece, which includes the server's prompt
# processing before the first one (a 14B model on a busy GPU server took ~40 s for 4k tokens)
DEFAULT_TIMEOUT_S = 120.0
_BREAKS = re.compile(r"\n|[ \t]{2,}")
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def root_of(base_url: str) -> str:
    """The server's root from an OpenAI base URL ('http://h:8000/v1' -> 'http://h:8000')."""
    url = base_url.strip().rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def estimate_tokens(text: str) -> int:
    """Tokens by rule of thumb: a CJK character, a digit, a symbol, a line break or an indent is
    one; other letters, one per 3."""
    cjk = len(_CJK.findall(text))
    letters = sum(1 for c in text if c.isalpha()) - cjk
    others = sum(1 for c in text if not c.isspace() and not c.isalpha())
    return cjk + others + len(_BREAKS.findall(text)) + (letters + 2) // 3


class RemoteLLM:
    """A chat model on an OpenAI-compatible server. One generation at a time; `stop()` may come
    from any thread and closes the connection, so a stop does not wait for the server."""

    path = None  # no local file: answerability thresholds are calibrated per local model only

    def __init__(self, base_url: str, model: str = "", api_key: str | None = None,
                 n_ctx: int = DEFAULT_N_CTX, timeout_s: float = DEFAULT_TIMEOUT_S,
                 local_tokenizer: Callable[[str], int] | None = None) -> None:
        self.base_url = base_url.strip().rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.root = root_of(self.base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0))
        self._stop = threading.Event()
        self._busy = threading.Lock()
        self._response: httpx.Response | None = None
        self._counts: dict[str, int] = {}
        served = self._served()
        self.model = self._pick_model(model, [m.get("id", "") for m in served])
        self._n_ctx = self._context_length(served) or n_ctx
        self.budget, self._count = self._pick_counter(local_tokenizer)
        self.n_threads = 0  # decoding happens on the server
        self.reuse_log: list = []  # local prompt-cache reuse has no meaning here
        log.info("chat model %s at %s: %d-token context; prompt budget counted %s",
                 self.model, self.base_url, self._n_ctx, self.budget)

    # ---- connecting -------------------------------------------------------------------------
    def _call(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            r = self._client.request(method, url, **kwargs)
        except httpx.ConnectError as e:
            raise ServerUnavailable(f"No model server answers at {self.base_url} ({e}). Start it, or check the "
                                    "address in Settings → Model server (or --server).") from e
        except httpx.TimeoutException as e:
            raise ServerError(f"The model server at {self.base_url} did not answer in time; it may be busy or "
                              "its address wrong. Try again, or raise Settings → Server time-out.") from e
        if r.status_code in (401, 403):
            raise WrongKey(f"The model server at {self.base_url} refused the API key (HTTP {r.status_code}). "
                           "Enter the key its administrator gave you in Settings → API key (or --api-key).")
        return r

    def _served(self) -> list[dict]:
        """The server's models list (GET /models), which also proves the address and the key."""
        r = self._call("GET", f"{self.base_url}/models")
        if r.status_code != 200:
            raise ServerError(f"{self.base_url} does not look like an OpenAI-compatible server "
                              f"(GET /models gave HTTP {r.status_code}). The address usually ends in /v1.")
        try:
            return list(r.json().get("data", []))
        except (ValueError, AttributeError) as e:
            raise ServerError(f"{self.base_url} answered GET /models with something other than a models "
                              "list; is it an OpenAI-compatible server?") from e

    def _pick_model(self, wanted: str, served: list[str]) -> str:
        if not wanted:
            if not served:
                raise UnknownModel(f"The server at {self.base_url} serves no model yet: load one there first.")
            return served[0]
        if served and wanted not in served:
            raise UnknownModel(f"The server at {self.base_url} has no model “{wanted}”. It serves: "
                               f"{', '.join(served)}. Pick one of these in Settings → Model on the server (or --server-model).")
        return wanted

    def _context_length(self, served: list[dict]) -> int | None:
        """The server's context length where it tells (vLLM's models list, llama.cpp's /props)."""
        try:
            for m in served:
                if m.get("id") == self.model and m.get("max_model_len"):
                    return int(m["max_model_len"])
            r = self._client.get(f"{self.root}/props")
            if r.status_code == 200:
                n = r.json().get("default_generation_settings", {}).get("n_ctx")
                return int(n) if n else None
        except (httpx.HTTPError, ValueError, TypeError):
            pass
        return None

    def _pick_counter(self, local: Callable[[str], int] | None) -> tuple[str, Callable[[str], int]]:
        probe = "知库 counts tokens"
        for path, body, read in (
            ("/tokenize", {"content": probe, "prompt": probe, "model": self.model, "add_special": False},
             lambda j: j["count"] if "count" in j else len(j["tokens"])),
            ("/extras/tokenize", {"input": probe, "model": self.model}, lambda j: len(j["tokens"])),
        ):
            try:
                r = self._client.post(f"{self.root}{path}", json=body)
                if r.status_code == 200 and read(r.json()) > 0:
                    def count(text: str, path=path, body=body, read=read) -> int:
                        fields = {k: text if v == probe else v for k, v in body.items()}
                        return read(self._call("POST", f"{self.root}{path}", json=fields).json())

                    return f"by the server's tokenizer ({path})", count
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                continue
        if local is not None:
            return "by a local tokenizer of the same family, +10%", lambda t: int(local(t) * 1.10) + 1
        return "by estimate, +25%", lambda t: int(estimate_tokens(t) * 1.25) + 1

    # ---- the LocalLLM interface -------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        """Context length in tokens (the server's, where it says)."""
        return self._n_ctx

    @property
    def model_name(self) -> str:
        """The model's name on the server."""
        return self.model

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in the server model's vocabulary (see `budget` for how exact)."""
        if text not in self._counts:
            if len(self._counts) > 4096:
                self._counts.clear()
            self._counts[text] = self._count(text) if text else 0
        return self._counts[text]

    def count_prompt_tokens(self, messages: Sequence[dict]) -> int:
        """Tokens of the prompt the server will build from `messages` (its template's markers included)."""
        return sum(self.count_tokens(m["content"]) + TEMPLATE_TOKENS for m in messages) + TEMPLATE_TOKENS

    def prefill(self, messages: Sequence[dict], cut: str) -> int:
        """Nothing to do: the server keeps its own prompt cache (returns 0 tokens processed)."""
        return 0

    def prime(self, messages: Sequence[dict]) -> int:
        """Nothing to do (see `prefill`)."""
        return 0

    def first_token_probabilities(self, messages: Sequence[dict], options: dict) -> dict[str, float]:
        """Not offered: the answerability probe is calibrated for local models only."""
        raise NotImplementedError("the answerability probe runs on local chat models only")

    def stop(self) -> None:
        """End the running generation now: the connection is closed."""
        self._stop.set()
        response = self._response
        if response is not None:
            try:
                response.close()
            except Exception:  # closing from another thread races the reader; it only has to end
                pass

    @property
    def stopped(self) -> bool:
        """True if the last generation ended because stop() was called."""
        return self._stop.is_set()

    def stream_chat(self, messages: Sequence[dict], max_tokens: int = 512, temperature: float = 0.2,
                    top_p: float = 0.9, stop: Sequence[str] | None = None) -> Iterator[str]:
        """Yield the reply to `messages` piece by piece as the server streams it."""
        body = {"model": self.model, "messages": list(messages), "max_tokens": max_tokens, "stream": True,
                "temperature": temperature, "top_p": top_p, **({"stop": list(stop)} if stop else {})}
        with self._busy:
            self._stop.clear()
            got, finished = 0, False
            try:
                with connect_sse(self._client, "POST", f"{self.base_url}/chat/completions", json=body) as source:
                    r = self._response = source.response
                    if r.status_code != 200:
                        r.read()
                        raise self._refusal(r)
                    for event in source.iter_sse():
                        if self._stop.is_set():
                            return
                        if event.data.strip() == "[DONE]":
                            finished = True
                            break
                        choice = self._choice(event)
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            got += 1
                            yield piece
                        if choice.get("finish_reason"):
                            finished = True
                            if choice["finish_reason"] == "length":
                                log.info("the server ended the reply at max_tokens=%d", max_tokens)
            except SSEError as e:  # not an event stream at all (a proxy's HTML page, a plain JSON body)
                raise ServerError(f"The model server at {self.base_url} did not stream its reply ({e}); check "
                                  "that the address is an OpenAI-compatible /v1 endpoint.") from e
            except httpx.ConnectError as e:
                raise ServerUnavailable(f"No model server answers at {self.base_url}. Start it, or check the "
                                        "address in Settings → Model server (or --server).") from e
            except (httpx.TimeoutException, httpx.TransportError, httpx.StreamError) as e:
                if self._stop.is_set():
                    return  # our own close, from stop()
                if isinstance(e, httpx.TimeoutException):
                    raise ServerError(f"The model server at {self.base_url} stopped sending for "
                                      f"{self._client.timeout.read:.0f} s; it may be overloaded. "
                                      "What came so far is kept.") from e
                raise ReplyCutOff(f"The connection to the model server at {self.base_url} broke off in the "
                                  f"middle of the reply ({type(e).__name__}); what came so far is kept. "
                                  "Check that the server is still running, then ask again.") from e
            finally:
                self._response = None
            if not finished and not self._stop.is_set():
                raise ReplyCutOff(f"The model server at {self.base_url} ended the reply early (after {got} "
                                  "pieces, without saying it was done); what came so far is kept.")

    def _choice(self, event) -> dict:
        """The first choice of one streamed chunk; a chunk that is not one is the server's fault."""
        try:
            body = event.json()
            if event.event == "error" or "error" in body:
                raise ServerError(f"The model server at {self.base_url} reported an error in the middle of "
                                  f"the reply: {str(body.get('error', body))[:300]}. What came so far is kept.")
            return (body.get("choices") or [{}])[0]
        except (ValueError, TypeError, AttributeError, IndexError) as e:
            raise ServerError(f"The model server at {self.base_url} sent a piece of its reply Zhiku cannot read "
                              f"({type(e).__name__}: {event.data[:80]!r}); what came so far is kept.") from None

    def _refusal(self, r: httpx.Response) -> ServerError:
        if r.status_code in (401, 403):
            return WrongKey(f"The model server at {self.base_url} refused the API key (HTTP {r.status_code}).")
        if r.status_code == 404:
            return UnknownModel(f"The server at {self.base_url} has no model “{self.model}” (HTTP 404).")
        detail = r.text[:300].strip()
        return ServerError(f"The model server at {self.base_url} answered HTTP {r.status_code}: {detail}")

    def chat(self, messages: Sequence[dict], **kwargs) -> str:
        """The whole reply as one string."""
        return "".join(self.stream_chat(messages, **kwargs))

    def close(self, wait_s: float | None = None) -> None:
        """Close the connection pool (an answer still streaming is stopped; with `wait_s`, one
        that has not let go by then is left to the process's end)."""
        self.stop()
        if not self._busy.acquire(timeout=-1 if wait_s is None else wait_s):
            return
        try:
            self._client.close()
        finally:
            self._busy.release()
