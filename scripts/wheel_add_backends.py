"""Put llama.cpp's CPU variant libraries into a built llama-cpp-python wheel, beside libggml.

Built with GGML_BACKEND_DL and GGML_CPU_ALL_VARIANTS, llama.cpp makes one CPU backend per
instruction-set level (libggml-cpu-haswell.so, -icelake, -zen4, ...) and picks the best one at
start; llama-cpp-python 0.3.36 builds them but its wheel leaves them out. models/llm.py loads them
from llama_cpp/lib. Usage: wheel_add_backends.py WHEEL BUILD_BIN_DIR
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def add_backends(wheel: Path, bin_dir: Path) -> list[str]:
    """Rewrite `wheel` with bin_dir's libggml-cpu-*.so under llama_cpp/lib/; returns their names."""
    libs = sorted(bin_dir.glob("libggml-cpu-*.so"))
    if not libs:
        raise SystemExit(f"{bin_dir}: no libggml-cpu-*.so (was llama.cpp built with GGML_CPU_ALL_VARIANTS=ON?)")
    tmp = wheel.with_name(wheel.name + ".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
        record_name = next(n for n in src.namelist() if n.endswith(".dist-info/RECORD"))
        record = src.read(record_name).decode().splitlines()
        for info in src.infolist():
            if info.filename != record_name and not info.filename.startswith("llama_cpp/lib/libggml-cpu-"):
                out.writestr(info, src.read(info.filename))
        record = [r for r in record if r and not r.startswith(("llama_cpp/lib/libggml-cpu-", record_name))]
        for lib in libs:
            name = f"llama_cpp/lib/{lib.name}"
            data = lib.read_bytes()
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data)
            record.append(_record_line(name, data))
        record.append(f"{record_name},,")
        out.writestr(record_name, "\n".join(record) + "\n")
    os.replace(tmp, wheel)
    return [lib.name for lib in libs]


if __name__ == "__main__":
    names = add_backends(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"added {len(names)} CPU backends to {Path(sys.argv[1]).name}: "
          + ", ".join(n[len("libggml-cpu-"):-3] for n in names))
