"""Models bundles: written from verified models, imported only after every checksum matched."""

import io
import tarfile

import pytest

from app.cli import main
from models import inventory

SMALL = "smollm2-135m-instruct-q4_1"


@pytest.fixture
def bundle(tmp_path, capsys):
    # written from the real, installed models folder (what `make models-bundle` does)
    path = tmp_path / "models.tar"
    assert main(["models", "bundle", str(path), SMALL]) == 0
    assert SMALL in capsys.readouterr().out
    return path


def test_a_bundle_installs_and_verifies_on_an_empty_machine(bundle, scratch_models, capsys):
    from models.catalog import by_name

    assert inventory.problems(by_name(SMALL))  # not installed here yet
    assert main(["models", "import", str(bundle)]) == 0
    assert f"{SMALL}: imported and verified" in capsys.readouterr().out
    assert inventory.problems(by_name(SMALL)) == []
    assert inventory.resolve(SMALL).path.is_file()
    assert not [p for p in scratch_models.glob(".*") if p.is_dir()]  # no staging folders left behind


def test_a_damaged_bundle_installs_nothing(bundle, scratch_models, tmp_path, capsys):
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(bundle) as src, tarfile.open(damaged, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith(".gguf"):
                data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]  # one flipped byte
            dst.addfile(m, None if data is None else io.BytesIO(data))
    assert main(["models", "import", str(damaged)]) == 2
    assert "does not match its SHA-256" in capsys.readouterr().err
    assert not (scratch_models / SMALL).exists() and not [p for p in scratch_models.glob(".*") if p.is_dir()]


def test_files_that_are_not_bundles_are_refused(scratch_models, tmp_path, capsys):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")
    assert main(["models", "import", str(junk)]) == 2
    assert "not a models bundle" in capsys.readouterr().err
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    assert main(["models", "import", str(empty)]) == 2
    assert "no zhiku-models.json" in capsys.readouterr().err


@pytest.fixture
def first_run_bundle(tmp_path, capsys):
    path = tmp_path / "first-run.tar"
    assert main(["models", "bundle", str(path), "multilingual-e5-small", SMALL]) == 0
    capsys.readouterr()
    return path


def test_the_first_run_panel_takes_a_bundle(qtbot, first_run_bundle, scratch_models):
    pytest.importorskip("pytestqt")
    from test_gui import open_window

    w = open_window(qtbot, llm_name=SMALL)
    assert w.chat.banner.isVisible() and "multilingual-e5-small" in w.chat.banner_text.text()
    assert w.chat.banner_import.isVisible()
    w.install_models(bundle=str(first_run_bundle))  # what "Import models bundle…" does with the file
    qtbot.waitUntil(lambda: not w.chat.banner.isVisible(), timeout=120_000)
    assert (scratch_models / "multilingual-e5-small" / "model.safetensors").is_file()


def test_a_bundle_carries_the_int8_variant_so_the_other_machine_need_not_derive_it(tmp_path, scratch_models,
                                                                                  monkeypatch, capsys):
    from conftest import REAL_MODELS

    from models import onnx_int8
    from models.checksum import folder_model_id

    path = tmp_path / "e5.tar"
    monkeypatch.setenv("ZHIKU_MODELS", str(REAL_MODELS))
    assert main(["models", "bundle", str(path), "multilingual-e5-small"]) == 0
    with tarfile.open(path) as tar:
        assert "multilingual-e5-small-int8/model.onnx" in tar.getnames()
    monkeypatch.setenv("ZHIKU_MODELS", str(scratch_models))
    assert main(["models", "import", str(path)]) == 0
    e5 = scratch_models / "multilingual-e5-small"
    assert onnx_int8.problem(e5, folder_model_id(e5)) is None
    assert not [p for p in scratch_models.glob(".*") if p.is_dir()]
