"""The chat runtime: streaming, stopping from another thread, GGUF checks, the GGUF's template."""

import threading
import time

import pytest
from conftest import real_model, stop_after

from models import catalog
from models.checksum import ChecksumError
from models.llm import LocalLLM, NotGGUF, check_gguf, default_threads

LONG_CONTEXT = "知库把文档切成小段，建立向量索引和关键词索引，然后回答问题并注明出处。" * 60


def test_streams_an_answer_piece_by_piece(small_llm):
    pieces = list(small_llm.stream_chat(
        [{"role": "user", "content": "用中文列出三种水果，用逗号分隔。"}], max_tokens=40, temperature=0.0))
    assert len(pieces) > 3
    text = "".join(pieces)
    assert any(ch >= "\u4e00" for ch in text), text  # answered in Chinese
    assert not small_llm.stopped


def test_llama_cpp_ships_cpu_variants_and_runs_the_best_this_cpu_supports(small_llm):
    import re

    from models import llama_backends

    shipped = llama_backends.variants()
    assert {"x64", "sse42", "haswell", "skylakex", "icelake", "zen4"} <= set(shipped)  # old CPUs still run
    chosen = llama_backends.ensure_loaded()  # small_llm answered, so a backend is loaded
    assert chosen in shipped
    flags = set(re.search(r"^flags\s*:(.*)$", open("/proc/cpuinfo").read(), re.M).group(1).split())
    # the choice follows the CPU: AVX-512 kernels where it has AVX-512, AVX2 ones where it has AVX2 only
    if "avx512f" in flags:
        assert chosen not in ("x64", "sse42", "sandybridge", "ivybridge", "piledriver", "haswell", "alderlake")
    elif "avx2" in flags:
        assert chosen in ("haswell", "alderlake")


def test_stop_from_another_thread_ends_generation_at_the_next_token(small_llm):
    # how soon (target 100 ms) is measured in bench/responsiveness.py; here: that it ends there
    gen = small_llm.stream_chat([{"role": "user", "content": "Count from 1 to 500, one number per line."}],
                                max_tokens=1000, temperature=0.0)
    pieces, after = stop_after(small_llm, gen, 5)
    assert small_llm.stopped and len(pieces) == 5 and after == []


def test_stop_during_prompt_processing_ends_it_and_the_model_answers_again(small_llm):
    started = threading.Event()
    log = small_llm.reuse_log  # a deque of the last 16: its length stops growing, its last entry changes
    before = log[-1] if log else None

    def stop_once_processing():  # stream_chat logs its prompt just before llama.cpp processes it
        while not log or log[-1] is before:
            if started.wait(0.001):
                return
        small_llm.stop()

    stopper = threading.Thread(target=stop_once_processing)
    stopper.start()
    prompt = [{"role": "user", "content": LONG_CONTEXT + "\n总结上文。"}]
    pieces = list(small_llm.stream_chat(prompt, max_tokens=50))
    started.set()
    stopper.join()
    assert small_llm.stopped and pieces == []
    assert small_llm.cached_tokens < small_llm.count_prompt_tokens(prompt)  # it did not get to the end
    # the model is usable right after an abort
    again = small_llm.chat([{"role": "user", "content": "Say OK."}], max_tokens=5, temperature=0.0)
    assert again.strip()


def test_uses_the_chat_template_stored_in_the_gguf(small_llm):
    tmpl = small_llm.chat_template
    assert tmpl and "<|im_start|>" in tmpl  # Qwen's ChatML, read from the file's metadata
    assert small_llm.uses_gguf_template


def test_count_tokens_and_context(small_llm):
    assert small_llm.n_ctx == 2048
    assert small_llm.count_tokens("") == 0
    assert 1 <= small_llm.count_tokens("hello") <= 2
    assert small_llm.count_tokens("知识库 knowledge base") >= 3
    assert small_llm.n_threads == default_threads()


@pytest.mark.parametrize("cores, threads", [(1, 1), (2, 1), (8, 7), (None, 1)])
def test_decoding_leaves_one_core_to_the_window_and_the_indexer(monkeypatch, cores, threads):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert default_threads() == threads


def test_non_gguf_is_refused_before_llama_cpp(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    with pytest.raises(NotGGUF, match="not a GGUF model"):
        LocalLLM(fake)
    with pytest.raises(NotGGUF, match="no such model file"):
        check_gguf(tmp_path / "missing.gguf")


def test_checksum_is_checked_before_loading(tmp_path):
    path = real_model("smollm2-135m-instruct-q4_1")
    with pytest.raises(ChecksumError):
        LocalLLM(path, expected_sha256="0" * 64)
    spec = catalog.by_name("smollm2-135m-instruct-q4_1")
    ok = LocalLLM(path, n_ctx=512, expected_sha256=spec.files[0].sha256, expected_size=spec.files[0].size)
    text = ok.chat([{"role": "user", "content": "What is the capital of France? One word."}],
                   max_tokens=8, temperature=0.0)
    assert "paris" in text.lower()
    ok.close()


def test_prime_caches_the_system_prefix_that_every_prompt_starts_with(small_llm):
    system = [{"role": "system", "content": "你是助手。"}]
    n = small_llm.prime(system)
    assert n > 3 and small_llm.cached_tokens == n
    full = small_llm.tokenize_prompt([*system, {"role": "user", "content": "你好"}])
    assert full[:n] == small_llm._llm._input_ids[:n].tolist()
    assert small_llm.n_threads_batch >= small_llm.n_threads


def _until(condition, what: str, limit_s: float = 60.0) -> None:
    """Wait for `condition()` to hold (the CPU-load sampler's view changes every INTERVAL_S)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.1)


def test_threads_shrink_to_the_free_cores_when_other_processes_are_busy(small_llm):
    import os
    import subprocess
    import sys

    cores = os.cpu_count() or 1
    ambient = small_llm.load.busy_cores()  # other work on this machine (CI runs beside other jobs)
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        _until(lambda: small_llm.load.busy_cores() >= cores - 0.6, "the busy processes")
        small_llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=2)
        assert (small_llm.n_threads, small_llm.n_threads_batch) == (1, 1)
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if ambient >= 0.5:  # the cores were not free before this test either: they cannot be seen free again
        pytest.skip(f"threads shrank; growing back needs a quiet machine ({ambient:.1f} cores busy before)")
    _until(lambda: small_llm.load.busy_cores() < 0.5, "the cores free again")
    small_llm.chat([{"role": "user", "content": "Say hi."}], max_tokens=2)
    assert small_llm.n_threads_batch == small_llm.max_threads_batch == max(1, cores)
