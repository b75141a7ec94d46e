"""Shared fixtures: an isolated data folder per test, the real models, and no network."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The real models placed by `make test`, found before any test redirects ZHIKU_HOME.
from models.paths import models_dir  # noqa: E402

REAL_MODELS = models_dir()


class NetworkBlocked(AssertionError):
    """A test tried to reach a non-loopback address."""


def _allowed(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a hostname would need DNS: not allowed either


class _Guard:
    """Wraps socket connect calls; records and refuses any non-loopback destination."""

    def __init__(self) -> None:
        self.attempts: list = []
        self.real_connect = socket.socket.connect
        self.real_connect_ex = socket.socket.connect_ex

    def connect(self, sock, address):
        if not _allowed(address):
            self.attempts.append(address)
            raise NetworkBlocked(f"outbound connection to {address!r} blocked by the test suite")
        return self.real_connect(sock, address)

    def connect_ex(self, sock, address):
        if not _allowed(address):
            self.attempts.append(address)
            raise NetworkBlocked(f"outbound connection to {address!r} blocked by the test suite")
        return self.real_connect_ex(sock, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test runs with outbound sockets blocked; any attempt fails the test."""
    guard = _Guard()
    monkeypatch.setattr(socket.socket, "connect", lambda s, a: guard.connect(s, a))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda s, a: guard.connect_ex(s, a))
    yield guard
    if guard.attempts:
        pytest.fail(f"test tried to reach the network: {guard.attempts}")


@pytest.fixture(autouse=True)
def zhiku_home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty data folder; the real models stay readable through ZHIKU_MODELS."""
    home = tmp_path / "zhiku-home"
    home.mkdir()
    monkeypatch.setenv("ZHIKU_HOME", str(home))
    monkeypatch.setenv("ZHIKU_MODELS", str(REAL_MODELS))
    return home


@pytest.fixture
def scratch_models(tmp_path, monkeypatch) -> Path:
    """An empty models folder, for tests that install or damage models."""
    d = tmp_path / "models"
    d.mkdir()
    monkeypatch.setenv("ZHIKU_MODELS", str(d))
    return d


def real_model(name: str) -> Path:
    """Path to an installed catalog model; skips nothing: `make test` installs them all."""
    from models.catalog import by_name

    spec = by_name(name)
    path = REAL_MODELS / spec.name / spec.entry if spec.entry else REAL_MODELS / spec.name
    assert path.exists(), f"{name} is not installed; run `make test` (it installs every catalog model)"
    return path


@pytest.fixture(scope="session")
def e5():
    """The embedder new knowledge bases get (multilingual-e5-small's int8 ONNX variant), loaded once.

    Tests build their knowledge bases on what users get; it also embeds ~2x faster than the float
    model on two cores, and a `zhiku` process opening such a knowledge base starts without PyTorch
    (~1 s, not ~5 s)."""
    from models.embedder import Embedder

    e = Embedder.default(int8=True)
    assert e.int8, "make test installs the int8 variant"
    return e


@pytest.fixture(scope="session")
def e5_float():
    """multilingual-e5-small in PyTorch, loaded once: for tests of the float model itself."""
    from models.embedder import Embedder

    return Embedder(real_model("multilingual-e5-small"))


@pytest.fixture(scope="session")
def small_llm():
    """Qwen2.5-Coder-0.5B, loaded once for the LLM tests."""
    from models.llm import LocalLLM

    llm = LocalLLM(real_model("qwen2.5-coder-0.5b-instruct-q4_k_m"), n_ctx=2048)
    yield llm
    llm.close()


class CountingEmbedder:
    """The real e5 embedder, counting how many passages it is asked to embed."""

    def __init__(self, inner):
        self.inner = inner
        self.passages = 0
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed_passages(self, texts):
        self.calls += 1
        self.passages += len(texts)
        return self.inner.embed_passages(texts)


@pytest.fixture
def make_kb(e5):
    """Create knowledge bases (in this test's data folder) sharing the loaded e5 model."""
    from kb.knowledge_base import KnowledgeBase

    made = []

    def factory(name="test", chunk_tokens=256, overlap_tokens=38, counting=False):
        emb = CountingEmbedder(e5) if counting else e5
        kb = KnowledgeBase.create(name, emb, chunk_tokens, overlap_tokens)
        made.append(kb)
        return kb

    yield factory
    for kb in made:
        kb.close()


@pytest.fixture
def kb_from(make_kb, tmp_path):
    """A knowledge base holding the given {file name: text} documents, indexed."""
    def factory(docs: dict):
        kb = make_kb()
        for name, text in docs.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        kb.add([tmp_path / n for n in docs])
        return kb
    return factory


def stop_after(llm, stream, pieces: int) -> tuple[list[str], list[str]]:
    """Read `stream` and call `llm.stop()` from another thread (as the window's Stop does) once
    `pieces` pieces came; (the pieces before the stop, the pieces after it)."""
    import threading

    before, after = [], []
    for piece in stream:
        (after if llm.stopped else before).append(piece)
        if len(before) == pieces and not llm.stopped:
            stopper = threading.Thread(target=llm.stop)
            stopper.start()
            stopper.join()
    return before, after
