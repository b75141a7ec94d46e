"""The int8 ONNX variant of a sentence-transformers model: derived once at install, used to embed.

Why: embedding is most of indexing time on a CPU. Measured here (2 cores, 256 CMRC passages of
~280 tokens, both at 2 threads): PyTorch float32 at batch 32 embeds 5.7-6.2 passages/s; the same
weights exported to ONNX with eager attention (which ONNX Runtime's BERT optimizer fuses into
its Attention operator; the SDPA export is not fused and runs slower than PyTorch), then MatMul
weights quantized to int8 per channel, run 9.3-11.6/s at batch 2-8, with cosine >= 0.995 to the
float vectors (0.9960 worst, 0.9976 mean). Quantizing every op type, or per tensor, loses more
(cosine 0.980). sentence-transformers' own ONNX backend needs optimum, which would pull
transformers back to 4.x, so the export is done here with torch.onnx and onnxruntime.

Version 2 also quantizes the fused Attention operator's query/key/value projection (QAttention: a
quarter of the matrix work, left in float by version 1, where Attention took 45% of the time), with
weights in 7 bits (`reduce_range`: on CPUs without VNNI the int8 kernels add pairs of products in 16
bits, which 8-bit weights can saturate). Measured side by side on 200 CMRC chunks, four
interleaved rounds: 12.5 chunks/s (version 1) vs 14.1 (+13%), cosine to the float model 0.9946
worst, 0.9972 mean on 535 chunks (version 1: 0.9950, 0.9975); the same with 8-bit weights: 0.9940.
Per-tensor weights fell to 0.980 again; MultiHeadAttention in place of Attention ran no faster.

The variant is a folder beside its source (`multilingual-e5-small-int8`) with a manifest naming
the source model id it was made from, the recipe's version, its parity and the checksums of its
files; vectors made with it carry the source's id plus "+int8v2", so a knowledge base never mixes
float vectors, version 1's ("+int8") and version 2's.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import threading
import warnings
import weakref
from pathlib import Path
from typing import Sequence

import numpy as np

VARIANT = "int8v2"  # the model id's variant (models.model_files.model_id): the recipe below, version 2
OLDER_VARIANTS = ("int8",)  # made by earlier versions of derive(); their vectors need re-embedding
MANIFEST = "zhiku-int8.json"
# A derived model whose vectors stray further than this from the float model's is refused.
MIN_PARITY = 0.99
# Short batches waste less on padding and fit the cache: batch 2-8 ran 1.4-1.9x batch 32's rate.
BATCH = 4
# Fixed texts for the parity check: Chinese, English and mixed, short and paragraph-long.
PARITY_TEXTS = [
    "知库是一个私有的离线知识库，文档只保存在你自己的电脑上。",
    "The default chunk size is 256 tokens with an overlap of 38 tokens.",
    "CLIP 通过对比学习把图像和文本映射到同一个向量空间。",
    "GPT-3 has 175 billion parameters and was trained on a filtered web corpus.",
    "2023年度报告显示，公司营业收入同比增长了百分之十二，净利润达到三亿元。",
    "Where does Zhiku keep its vectors? 向量保存在 SQLite 中，FAISS 只是缓存。",
    "《战国无双3》是由光荣和ω-force开发的战国无双系列的正统第三续作。本作以三大故事为主轴，分别是以武田信玄"
    "等人为主的《关东三国志》，织田信长等人为主的《战国三杰》，石田三成等人为主的《关原的年轻武者》。" * 2,
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
    "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway. " * 2,
]


class Int8Error(RuntimeError):
    """The int8 variant is missing, damaged or strays from its source model."""


class OlderVariant(FileNotFoundError):
    """Vectors made by an int8 variant that this version no longer makes."""


def variant_dir(source: Path) -> Path:
    """Where the int8 variant of the model folder `source` lives."""
    source = Path(source)
    return source.parent / f"{source.name}-int8"


def problem(source: Path, source_id: str) -> str | None:
    """Why the int8 variant of `source` cannot be used (None when it can)."""
    from models.checksum import cached_sha256

    folder = variant_dir(source)
    try:
        info = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return f"no int8 variant of {Path(source).name} (`zhiku models install` makes it)"
    if info.get("variant", OLDER_VARIANTS[0]) != VARIANT:
        return f"the int8 variant of {Path(source).name} is an older version (`zhiku models install` remakes it)"
    if info.get("source_model_id") != source_id:
        return f"the int8 variant was made from {info.get('source_model_id')}, not {source_id}"
    for name, sha in info.get("files", {}).items():
        f = folder / name
        if not f.exists() or cached_sha256(f) != sha:
            return f"the int8 variant's {name} is missing or damaged (`zhiku models install` remakes it)"
    return None


def derive(source: Path, source_id: str) -> Path:
    """Export `source` to ONNX, fuse and quantize it, check it against the float model, and put it
    in place (about a minute and 2 GB of memory once)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoConfig, AutoModel

    source, dest = Path(source), variant_dir(source)
    stage = dest.parent / f".{dest.name}.partial"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic logs advice as warnings
    try:
        config = AutoConfig.from_pretrained(str(source), local_files_only=True)
        base = AutoModel.from_pretrained(str(source), local_files_only=True, attn_implementation="eager").eval()

        class Hidden(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: D102 (torch)
                return self.model(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        names = ["input_ids", "attention_mask", "token_type_ids"]
        dummy = tuple(torch.ones(2, 16, dtype=torch.long) for _ in names)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on traced Python conditions
            torch.onnx.export(Hidden(base), dummy, str(stage / "float.onnx"), input_names=names,
                              output_names=["hidden"], opset_version=17, dynamo=False,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]})
        del base
        fused = optimizer.optimize_model(str(stage / "float.onnx"), model_type="bert",
                                         num_heads=config.num_attention_heads, hidden_size=config.hidden_size)
        fused.save_model_to_file(str(stage / "fused.onnx"))
        quantize_dynamic(str(stage / "fused.onnx"), str(stage / "model.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True, op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": 1})  # fused ops hide their output types
        for f in ("float.onnx", "fused.onnx"):
            (stage / f).unlink()
        for f in ("tokenizer.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
            if (source / f).exists():
                shutil.copy2(source / f, stage / f)
        (stage / "1_Pooling").mkdir()
        shutil.copy2(source / "1_Pooling" / "config.json", stage / "1_Pooling" / "config.json")
        accept(stage, source, source_id)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        logging.getLogger().setLevel(quiet)
    return dest


def accept(stage: Path, source: Path, source_id: str) -> Path:
    """Put the variant made in `stage` in place of `source`'s, or refuse it (Int8Error, nothing
    installed) when its vectors stray from the float model's on PARITY_TEXTS."""
    worst = parity(source, stage)
    if worst < MIN_PARITY:
        raise Int8Error(f"the int8 variant of {source.name} strays from it (cosine {worst:.4f} < "
                        f"{MIN_PARITY}); the float model stays in use")
    write_manifest(stage, source_id, worst)
    dest = variant_dir(source)
    shutil.rmtree(dest, ignore_errors=True)
    stage.rename(dest)
    return dest


def write_manifest(folder: Path, source_id: str, worst: float) -> None:
    """Record what the variant was made from, how close it is, and its files' checksums."""
    from models.checksum import remember, sha256_file

    files = {p.relative_to(folder).as_posix(): sha256_file(p)
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(
        {"variant": VARIANT, "source_model_id": source_id, "parity_min_cosine": round(worst, 5), "files": files}, indent=2))
    for name, sha in files.items():
        remember(folder / name, sha)


def parity(source: Path, variant: Path) -> float:
    """The worst cosine between the float model's and the variant's vectors on PARITY_TEXTS."""
    weights = max(Path(source).glob("*.safetensors"), default=Path(source), key=lambda p: p.stat().st_size)
    ref = _reference(str(source), weights.stat().st_mtime_ns)
    got = OnnxEncoder(variant).encode(PARITY_TEXTS, normalize_embeddings=True)
    return float((ref * got).sum(axis=1).min())


@functools.lru_cache(maxsize=2)
def _reference(source: str, stamp: int) -> np.ndarray:
    # the float model's vectors, kept for a second variant judged against the same model in this
    # process (loading it is ~3 s); `stamp` (its weights' mtime) makes a replaced model count as new
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(source, device="cpu", local_files_only=True).encode(
        PARITY_TEXTS, normalize_embeddings=True, convert_to_numpy=True)


# One ONNX Runtime session per model file in a process, shared by every encoder of it: a session
# holds its 400 MB of weights in private memory (PyTorch maps safetensors from the file instead), so
# a window with five knowledge bases open, or a test run, would otherwise hold one copy per
# knowledge base (the suite reached 20 GB). ONNX Runtime runs one session from several threads.
_sessions: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_sessions_lock = threading.Lock()


def _session(model: Path, threads: int | None):
    """The process's session of `model` (a file changed on disk gets a new one)."""
    import onnxruntime as ort

    st = model.stat()
    key = (str(model), st.st_size, st.st_mtime_ns, threads)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            # idle workers sleep instead of spinning: spinning took the window's thread off the CPU
            # (event-loop stalls of 190-300 ms while indexing, tests/test_robustness.py); the encoder
            # alone ran 14.0 chunks/s either way (200 CMRC chunks, 2 threads)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            _sessions[key] = session
        return session


class OnnxEncoder:
    """Runs the int8 variant with ONNX Runtime: the slice of SentenceTransformer that Embedder uses."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        from models.tokenizer_files import shared_tokenizer

        folder = Path(folder)
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise Int8Error(f"{folder.name}: only mean pooling is supported")
        self.dim = int(pooling["word_embedding_dimension"])
        st_config = folder / "sentence_bert_config.json"
        self.max_seq_length = int(json.loads(st_config.read_text()).get("max_seq_length", 512)) \
            if st_config.exists() else 512
        prompts = folder / "config_sentence_transformers.json"
        self.prompts = dict(json.loads(prompts.read_text()).get("prompts") or {}) if prompts.exists() else {}
        self.tokenizer = shared_tokenizer(folder / "tokenizer.json", truncate=self.max_seq_length)
        self.pad_id = self.tokenizer.token_to_id("<pad>") or 0
        self.session = _session(folder / "model.onnx", threads)

    def get_embedding_dimension(self) -> int:
        """Vector size."""
        return self.dim

    def encode(self, texts: Sequence[str], prompt_name: str | None = None, batch_size: int = BATCH,
               normalize_embeddings: bool = True, **_ignored) -> np.ndarray:
        """Mean-pooled (and normalised) vectors, longest texts batched together to waste little padding."""
        prefix = self.prompts.get(prompt_name, "") if prompt_name else ""
        encoded = self.tokenizer.encode_batch([prefix + t for t in texts])
        order = np.argsort([-len(e.ids) for e in encoded], kind="stable")
        out = np.zeros((len(texts), self.dim), np.float32)
        batch_size = min(batch_size, BATCH)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            width = max(len(encoded[i].ids) for i in idx)
            ids = np.full((len(idx), width), self.pad_id, np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            vecs = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            if normalize_embeddings:
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            out[idx] = vecs
        return out
