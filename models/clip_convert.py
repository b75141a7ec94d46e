"""OpenAI and open_clip CLIP checkpoints as transformers CLIPModel folders, converted offline.

open_clip itself cannot run here (it needs torchvision, which has no build for the CPU torch we
pin), but ViT CLIPs from OpenAI's release (`ViT-B-32.pt`) and open_clip's (`open_clip_config.json`
+ `open_clip_pytorch_model.bin` / `open_clip_model.safetensors`) share one state-dict layout that
maps one-to-one onto transformers' CLIPModel. The tokenizer is CLIP's byte-level BPE, whose
vocabulary open_clip's wheel carries (`bpe_simple_vocab_16e6.txt.gz`; installed with --no-deps,
read as data, never imported).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

from models.model_files import WEIGHT_NAMES, InvalidModel

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
BPE_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"


def bpe_path() -> Path:
    """CLIP's BPE merges file, from the open-clip-torch package (a catalog data dependency)."""
    import importlib.util

    from models.checksum import cached_sha256

    if getattr(sys, "frozen", False):  # the packaged app carries the file as data (packaging/zhiku.spec)
        path = Path(sys._MEIPASS) / "open_clip" / "bpe_simple_vocab_16e6.txt.gz"
        if path.is_file():
            return path
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidModel("converting an OpenAI/open_clip CLIP needs CLIP's BPE vocabulary from the "
                           "open-clip-torch package: pip install --no-deps open-clip-torch==3.3.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.is_file() or cached_sha256(path) != BPE_SHA256:
        raise InvalidModel(f"{path}: CLIP's BPE vocabulary is missing or not the expected file")
    return path


def load_state_dict(source: Path) -> tuple[dict, dict]:
    """The weights of an OpenAI .pt file or an open_clip folder, and its open_clip_config.json ({} for .pt)."""
    import torch

    source = Path(source)
    if source.is_file():
        try:  # OpenAI's release files are TorchScript archives
            return {k: v.float() for k, v in torch.jit.load(str(source), map_location="cpu").state_dict().items()}, {}
        except RuntimeError:
            pass
        try:
            sd = torch.load(str(source), map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 (pickle, zip and format errors alike)
            raise InvalidModel(f"{source}: not a CLIP checkpoint ({type(e).__name__}: {e})") from None
        return _unwrap(sd), {}
    cfg = json.loads((source / "open_clip_config.json").read_text(encoding="utf-8"))
    weights = next((source / n for n in WEIGHT_NAMES if (source / n).is_file()), None)
    if weights is None:
        raise InvalidModel(f"{source}: no weights ({' or '.join(WEIGHT_NAMES)})")
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(weights)), cfg
    return _unwrap(torch.load(str(weights), map_location="cpu", weights_only=True)), cfg


def _unwrap(sd) -> dict:
    if isinstance(sd, dict) and "state_dict" in sd:
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InvalidModel("not a CLIP state dict")
    return {re.sub(r"^module\.", "", k): v.float() for k, v in sd.items()}


def _layers(sd: dict, prefix: str) -> int:
    found = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def hf_config(sd: dict, cfg: dict):
    """A transformers CLIPConfig for this state dict (sizes read from the weights themselves)."""
    from transformers import CLIPConfig

    model_cfg = cfg.get("model_cfg", {})
    if "visual.conv1.weight" not in sd or "visual.transformer.resblocks.0.attn.in_proj_weight" not in sd:
        raise InvalidModel("only ViT CLIP models can be converted (ResNet and custom towers cannot)")
    text_cfg, vision_cfg = model_cfg.get("text_cfg", {}), model_cfg.get("vision_cfg", {})
    if text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"):
        raise InvalidModel("this open_clip model uses a Hugging Face text tower; use its transformers release")
    vw = sd["visual.conv1.weight"].shape[0]
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    tw = sd["ln_final.weight"].shape[0]
    # OpenAI's models and open_clip's "-quickgelu" ones use QuickGELU; other open_clip models GELU
    act = "quick_gelu" if (not cfg or model_cfg.get("quick_gelu")) else "gelu"
    vocab = sd["token_embedding.weight"].shape[0]
    return CLIPConfig(
        text_config=dict(vocab_size=vocab, hidden_size=tw, intermediate_size=sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                         num_hidden_layers=_layers(sd, "transformer.resblocks."),
                         num_attention_heads=text_cfg.get("heads", tw // 64),
                         max_position_embeddings=sd["positional_embedding"].shape[0], hidden_act=act,
                         bos_token_id=vocab - 2, eos_token_id=vocab - 1, pad_token_id=vocab - 1),
        vision_config=dict(hidden_size=vw, intermediate_size=sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                           num_hidden_layers=_layers(sd, "visual.transformer.resblocks."),
                           num_attention_heads=vw // vision_cfg.get("head_width", 64),
                           image_size=patch * grid, patch_size=patch, hidden_act=act),
        projection_dim=sd["text_projection"].shape[1],
        logit_scale_init_value=float(sd["logit_scale"]) if "logit_scale" in sd else 2.6592,
    )


def hf_state_dict(sd: dict) -> dict:
    """The same weights under transformers CLIPModel's names."""
    out = {}

    def blocks(src: str, dst: str) -> None:
        for i in range(_layers(sd, src)):
            s, d = f"{src}{i}.", f"{dst}{i}."
            for kind in ("weight", "bias"):
                q, k, v = sd[f"{s}attn.in_proj_{kind}"].chunk(3)  # stacked q, k, v
                out[f"{d}self_attn.q_proj.{kind}"] = q
                out[f"{d}self_attn.k_proj.{kind}"] = k
                out[f"{d}self_attn.v_proj.{kind}"] = v
                out[f"{d}self_attn.out_proj.{kind}"] = sd[f"{s}attn.out_proj.{kind}"]
                out[f"{d}layer_norm1.{kind}"] = sd[f"{s}ln_1.{kind}"]
                out[f"{d}layer_norm2.{kind}"] = sd[f"{s}ln_2.{kind}"]
                out[f"{d}mlp.fc1.{kind}"] = sd[f"{s}mlp.c_fc.{kind}"]
                out[f"{d}mlp.fc2.{kind}"] = sd[f"{s}mlp.c_proj.{kind}"]

    blocks("visual.transformer.resblocks.", "vision_model.encoder.layers.")
    blocks("transformer.resblocks.", "text_model.encoder.layers.")
    out["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    out["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    out["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    for kind in ("weight", "bias"):
        out[f"vision_model.pre_layrnorm.{kind}"] = sd[f"visual.ln_pre.{kind}"]
        out[f"vision_model.post_layernorm.{kind}"] = sd[f"visual.ln_post.{kind}"]
        out[f"text_model.final_layer_norm.{kind}"] = sd[f"ln_final.{kind}"]
    out["visual_projection.weight"] = sd["visual.proj"].t().contiguous()  # x @ proj == Linear(proj.T)
    out["text_projection.weight"] = sd["text_projection"].t().contiguous()
    out["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    if "logit_scale" in sd:
        out["logit_scale"] = sd["logit_scale"].reshape(())
    return out


def write_tokenizer(dest: Path, bpe: Path) -> None:
    """CLIP's vocabulary and merges in transformers' CLIPTokenizer files (as OpenAI's tokenizer builds them)."""
    from transformers import CLIPTokenizer

    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    alphabet = list(bytes_to_unicode().values())
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (dest / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False),
                                     encoding="utf-8")
    (dest / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                     encoding="utf-8")
    CLIPTokenizer(str(dest / "vocab.json"), str(dest / "merges.txt")).save_pretrained(dest)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's byte-level alphabet: every byte as a printable character (the BPE's base tokens)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def convert(source: Path, dest: Path) -> Path:
    """Write a transformers CLIP folder for an OpenAI .pt file or an open_clip folder; returns `dest`."""
    import os
    import shutil

    from transformers import CLIPImageProcessor, CLIPModel

    sd, cfg = load_state_dict(source)
    config = hf_config(sd, cfg)
    if config.text_config.vocab_size != 49408:
        raise InvalidModel(f"{source}: a text vocabulary of {config.text_config.vocab_size} tokens is not CLIP's BPE")
    tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model = CLIPModel(config)
    missing, unexpected = model.load_state_dict(hf_state_dict(sd), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise InvalidModel(f"{source}: weights do not fit CLIP (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval().save_pretrained(tmp)
    write_tokenizer(tmp, bpe_path())
    preprocess = cfg.get("preprocess_cfg", {})
    size = config.vision_config.image_size
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                       image_mean=preprocess.get("mean", OPENAI_MEAN),
                       image_std=preprocess.get("std", OPENAI_STD)).save_pretrained(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest
