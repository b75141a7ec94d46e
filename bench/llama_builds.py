"""Prompt and decode speed of two llama.cpp builds side by side: the portable AVX2-only build
(GGML_NATIVE=OFF, what Zhiku shipped before) and the runtime-dispatch build (GGML_BACKEND_DL +
GGML_CPU_ALL_VARIANTS, what the Makefile builds now).

Each build's wheel is unpacked into bench/cache and run in its own process, alternating A B A B
so that a machine that gets busier or quieter affects both alike. Usage:
    python bench/llama_builds.py OLD.whl NEW.whl [--rounds 3] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "cache" / "llama-builds"

# run inside each build's process: load the model, time a 480-token prompt and 48 decoded tokens
PROBE = r"""
import ctypes, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import llama_cpp
lib = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
ggml = ctypes.CDLL(os.path.join(lib, "libggml.so.0"))
ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
if ggml.ggml_backend_reg_count() == 0:
    ggml.ggml_backend_load_all_from_path(lib.encode())
maps = open("/proc/self/maps").read()
variant = sorted({l.rsplit("/", 1)[-1] for l in maps.splitlines() if "libggml-cpu" in l})
llm = llama_cpp.Llama(model_path=sys.argv[2], n_ctx=1024, n_threads=int(sys.argv[3]), n_batch=512, verbose=False)
toks = llm.tokenize(("知识库把文档切成小块，用向量模型编码后放进索引。" * 40).encode())[:480]
llm.reset()
t = time.perf_counter(); llm.eval(toks); prompt = len(toks) / (time.perf_counter() - t)
t = time.perf_counter()
for _ in range(48):
    llm.eval([llm.sample(temp=0.0)])
decode = 48 / (time.perf_counter() - t)
print(json.dumps({"prompt": prompt, "decode": decode, "kernels": variant}))
"""


def unpack(wheel: Path) -> Path:
    """The wheel's files in a folder of their own (once)."""
    dest = CACHE / wheel.parent.name
    if not (dest / "llama_cpp").exists():
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(dest)
    return dest


def main(argv=None) -> int:
    """Alternate the two builds and print medians."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from models.inventory import resolve

    model = str(resolve(name=args.model).path)
    dirs = {"before (AVX2 only)": unpack(args.old), "after (dispatch)": unpack(args.new)}
    runs: dict[str, list[dict]] = {k: [] for k in dirs}
    for _ in range(args.rounds):
        for name, folder in dirs.items():
            out = subprocess.run([sys.executable, "-c", PROBE, str(folder), model, str(args.threads)],
                                 capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {}
    for name, rs in runs.items():
        rows[name] = {"prompt_tok_s": round(statistics.median(r["prompt"] for r in rs), 1),
                      "decode_tok_s": round(statistics.median(r["decode"] for r in rs), 1),
                      "kernels": rs[0]["kernels"] or ["built in"]}
        print(name, json.dumps(rows[name]), flush=True)
    out = ROOT / "bench" / "results" / "llama-builds.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": args.model, "threads": args.threads, "rounds": args.rounds,
                               "cpu_flags_avx512": "avx512f" in open("/proc/cpuinfo").read(), **rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
