"""OpenAI (.pt) and open_clip CLIP checkpoints, converted to transformers and checked against a reference.

The reference forward pass below is written from the checkpoint layout itself (patch convolution,
class token, pre/post LayerNorm, stacked q/k/v attention, causal text mask, pooling at the end-of-text
token, projections applied as `x @ proj`), independently of the converter's key mapping.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import picture

from app.cli import main
from models.clip import ClipModel, detect_format

W, LAYERS, PATCH, GRID, EMBED, CONTEXT, VOCAB = 64, 2, 16, 4, 32, 77, 49408


def _checkpoint(seed: int = 0) -> dict:
    """A tiny ViT CLIP in OpenAI's state-dict layout, random weights."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, std=0.05):
        return torch.randn(*shape, generator=g) * std

    sd = {"visual.conv1.weight": r(W, 3, PATCH, PATCH), "visual.class_embedding": r(W),
          "visual.positional_embedding": r(GRID * GRID + 1, W), "visual.proj": r(W, EMBED, std=0.2),
          "token_embedding.weight": r(VOCAB, W), "positional_embedding": r(CONTEXT, W),
          "text_projection": r(W, EMBED, std=0.2), "logit_scale": torch.tensor(4.6052)}
    for ln in ("visual.ln_pre", "visual.ln_post", "ln_final"):
        sd[f"{ln}.weight"], sd[f"{ln}.bias"] = 1 + r(W), r(W)
    for prefix in ("visual.transformer.resblocks.", "transformer.resblocks."):
        for i in range(LAYERS):
            p = f"{prefix}{i}."
            sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"] = r(3 * W, W, std=0.1), r(3 * W)
            sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"] = r(W, W, std=0.1), r(W)
            for ln in ("ln_1", "ln_2"):
                sd[f"{p}{ln}.weight"], sd[f"{p}{ln}.bias"] = 1 + r(W), r(W)
            sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = r(4 * W, W, std=0.1), r(4 * W)
            sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = r(W, 4 * W, std=0.1), r(W)
    return sd


def _act(quick: bool):
    return (lambda x: x * torch.sigmoid(1.702 * x)) if quick else F.gelu


def _blocks(sd, prefix, x, mask, act):
    heads = W // 64
    for i in range(LAYERS):
        p = f"{prefix}{i}."
        h = F.layer_norm(x, (W,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"]).transpose(0, 1)
        a, _ = F.multi_head_attention_forward(
            h, h, h, W, heads, sd[p + "attn.in_proj_weight"], sd[p + "attn.in_proj_bias"], None, None, False, 0.0,
            sd[p + "attn.out_proj.weight"], sd[p + "attn.out_proj.bias"], training=False, need_weights=False,
            attn_mask=mask)
        x = x + a.transpose(0, 1)
        h = F.layer_norm(x, (W,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"])
        x = x + F.linear(act(F.linear(h, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])),
                         sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    return x


def _reference_image(sd, pixels, quick):
    x = F.conv2d(pixels, sd["visual.conv1.weight"], stride=PATCH).flatten(2).transpose(1, 2)
    cls = sd["visual.class_embedding"].expand(x.shape[0], 1, W)
    x = torch.cat([cls, x], 1) + sd["visual.positional_embedding"]
    x = F.layer_norm(x, (W,), sd["visual.ln_pre.weight"], sd["visual.ln_pre.bias"])
    x = _blocks(sd, "visual.transformer.resblocks.", x, None, _act(quick))
    x = F.layer_norm(x[:, 0], (W,), sd["visual.ln_post.weight"], sd["visual.ln_post.bias"])
    return F.normalize(x @ sd["visual.proj"], dim=-1)


def _reference_text(sd, ids, quick):
    n = ids.shape[1]
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"][:n]
    mask = torch.full((n, n), float("-inf")).triu(1)
    x = _blocks(sd, "transformer.resblocks.", x, mask, _act(quick))
    x = F.layer_norm(x, (W,), sd["ln_final.weight"], sd["ln_final.bias"])
    return F.normalize(x[torch.arange(len(ids)), ids.argmax(-1)] @ sd["text_projection"], dim=-1)


def _check_against_reference(clip: ClipModel, sd: dict, quick: bool) -> None:
    images = [picture(1), picture(2, (90, 130))]
    pixels = clip._processor(images=images, return_tensors="pt")["pixel_values"]
    assert pixels.shape[-1] == PATCH * GRID
    with torch.no_grad():
        want_img = _reference_image(sd, pixels, quick).numpy()
        texts = ["a photo of a cat", "a bar chart of revenue by quarter"]
        ids = clip._tokenizer(texts, padding=True, return_tensors="pt")["input_ids"]
        want_txt = _reference_text(sd, ids, quick).numpy()
    np.testing.assert_allclose(clip.embed_images(images), want_img, atol=2e-4)
    np.testing.assert_allclose(clip.embed_text(texts), want_txt, atol=2e-4)


def test_openai_checkpoint_converts_and_matches_the_reference(tmp_path, capsys):
    sd = _checkpoint()
    pt = tmp_path / "ViT-tiny.pt"
    torch.save(sd, pt)
    assert detect_format(pt) == "openai"
    assert main(["models", "add", str(pt), "--role", "clip"]) == 0
    capsys.readouterr()
    clip = ClipModel.default()
    assert clip.path == pt and clip.dim == EMBED and clip._folder != pt
    assert (clip._folder / "config.json").exists() and (clip._folder / "vocab.json").exists()
    # CLIP's own BPE: OpenAI's tokenizer gives these ids for this sentence
    assert clip._tokenizer("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    _check_against_reference(clip, sd, quick=True)  # OpenAI's models use QuickGELU
    again = ClipModel(pt)  # converted once: the second load reuses the folder
    assert again._folder == clip._folder and again.model_id == clip.model_id


def test_open_clip_folder_converts_with_its_own_activation_and_normalisation(tmp_path):
    sd = _checkpoint(seed=3)
    folder = tmp_path / "tiny-open-clip"
    folder.mkdir()
    torch.save(sd, folder / "open_clip_pytorch_model.bin")
    mean, std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]
    (folder / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": {"embed_dim": EMBED, "vision_cfg": {"image_size": PATCH * GRID, "layers": LAYERS, "width": W,
                                                         "patch_size": PATCH},
                      "text_cfg": {"context_length": CONTEXT, "vocab_size": VOCAB, "width": W, "heads": 1,
                                   "layers": LAYERS}},
        "preprocess_cfg": {"mean": mean, "std": std}}))
    assert detect_format(folder) == "open_clip"
    clip = ClipModel(folder)
    assert list(clip._processor.image_mean) == mean and list(clip._processor.image_std) == std
    _check_against_reference(clip, sd, quick=False)  # open_clip's models use GELU unless "-quickgelu"


def test_checkpoints_that_cannot_be_converted_say_why(tmp_path):
    from models.registry import InvalidModel

    sd = _checkpoint()
    del sd["visual.conv1.weight"]  # what a ResNet CLIP lacks
    torch.save(sd, tmp_path / "RN50.pt")
    with pytest.raises(InvalidModel, match="only ViT CLIP models"):
        ClipModel(tmp_path / "RN50.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(InvalidModel, match="not a CLIP checkpoint"):
        ClipModel(tmp_path / "notes.pt")
    empty = tmp_path / "empty-open-clip"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text("{}")
    with pytest.raises(InvalidModel, match="without weights"):
        detect_format(empty)


def test_the_download_is_listed_but_never_part_of_installing_everything(capsys, scratch_models):
    from models.catalog import by_name, downloadable, package_requirements

    spec = by_name("clip-vit-b-32-openai")
    assert downloadable(spec) and spec.files[0].sha256 in spec.source.url
    assert main(["models", "list", "--no-verify"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("clip-vit-b-32-openai"))
    assert "not installed" in row
    assert "open-clip-torch==3.3.0" in package_requirements()  # the BPE vocabulary comes from PyPI
