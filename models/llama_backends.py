"""llama.cpp's CPU kernels, chosen for this CPU when the first model loads.

Zhiku's llama.cpp is built with runtime dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS, see the
Makefile): next to libggml sit fourteen CPU backends, one per instruction-set level from plain
x86-64 to AVX-512 VNNI/BF16 and AMX, and llama.cpp scores each against the CPU and loads the best.
Nothing loads them by itself: until `ensure_loaded()` runs, llama.cpp has no backend at all and
refuses every model ("no backends are loaded"). A build without dispatch (its CPU kernels linked
in) already has its backend; then this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("zhiku.llama")
_lock = threading.Lock()
_variant: str | None = None
_log_callback = None


def _route_llama_log() -> None:
    """Send llama.cpp's own log lines to logging (debug) instead of the user's terminal."""
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _cb(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        log.debug("%s", text.decode("utf-8", "replace").rstrip())

    _log_callback = _cb
    llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))


class NoCpuBackend(RuntimeError):
    """llama.cpp found no CPU backend it can run on this machine."""


def lib_dir() -> Path:
    """Where llama-cpp-python keeps libllama, libggml and the CPU variant libraries."""
    import llama_cpp

    return Path(llama_cpp.__file__).parent / "lib"


def _ggml() -> ctypes.CDLL:
    # the copy libllama itself links to (its soname): a wheel cannot hold symlinks, so libggml.so
    # is a second file, and loading it would give a second, empty backend registry
    ggml = ctypes.CDLL(str(lib_dir() / "libggml.so.0"))
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    return ggml


def _loaded_variant() -> str:
    """The CPU variant library this process mapped ("haswell", "zen4", ...), else "built in"."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "loaded"
    names = {line.rsplit("/", 1)[-1] for line in maps.splitlines() if "libggml-cpu-" in line}
    return ", ".join(sorted(n[len("libggml-cpu-"):].split(".so")[0] for n in names)) or "built in"


def ensure_loaded() -> str:
    """Load the best CPU backend for this machine once (before the first model); returns its name."""
    global _variant
    with _lock:
        if _variant is not None:
            return _variant
        _route_llama_log()
        ggml = _ggml()
        if ggml.ggml_backend_reg_count() == 0:
            ggml.ggml_backend_load_all_from_path(os.fsencode(lib_dir()))
            if ggml.ggml_backend_reg_count() == 0:
                raise NoCpuBackend(
                    f"llama.cpp found no CPU backend for this processor in {lib_dir()}; "
                    "reinstall Zhiku (its libggml-cpu-*.so files are missing)")
        _variant = _loaded_variant()
        log.info("llama.cpp CPU kernels: %s", _variant)
        return _variant


def variants() -> list[str]:
    """The CPU variants shipped beside libggml (empty for a build without dispatch)."""
    return sorted(p.name[len("libggml-cpu-"):-3] for p in lib_dir().glob("libggml-cpu-*.so"))
