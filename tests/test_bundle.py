"""Models bundles: written from verified models, imported only after every checksum matched."""

import contextlib
import io
import tarfile

import pytest
from conftest import REAL_MODELS

from app.cli import main
from models import inventory

SMALL = "smollm2-135m-instruct-q4_1"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, object]:
    """Two bundles written once from the real, installed models folder (what `make models-bundle`
    does): SmolLM2 alone, and e5 (with its int8 variant) plus SmolLM2 for a first run; read only."""
    folder = tmp_path_factory.mktemp("bundles")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("ZHIKU_MODELS", str(REAL_MODELS))
        mp.setenv("ZHIKU_HOME", str(folder / "home"))
        assert main(["models", "bundle", str(folder / "models.tar"), SMALL]) == 0
        assert main(["models", "bundle", str(folder / "first-run.tar"), "multilingual-e5-small", SMALL]) == 0
    return {"small": folder / "models.tar", "first-run": folder / "first-run.tar", "printed": out.getvalue()}


@pytest.fixture
def bundle(bundles):
    assert SMALL in bundles["printed"]
    return bundles["small"]


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


@pytest.mark.gui
def test_the_first_run_panel_takes_a_bundle(qtbot, bundles, scratch_models):
    pytest.importorskip("pytestqt")
    from test_gui import open_window

    w = open_window(qtbot, llm_name=SMALL)
    assert w.chat.banner.isVisible() and "multilingual-e5-small" in w.chat.banner_text.text()
    assert w.chat.banner_import.isVisible()
    w.install_models(bundle=str(bundles["first-run"]))  # what "Import models bundle…" does with the file
    qtbot.waitUntil(lambda: not w.chat.banner.isVisible(), timeout=120_000)
    assert (scratch_models / "multilingual-e5-small" / "model.safetensors").is_file()


def test_a_bundle_carries_the_int8_variant_so_the_other_machine_need_not_derive_it(bundles, scratch_models, capsys):
    from models import onnx_int8
    from models.checksum import folder_model_id

    with tarfile.open(bundles["first-run"]) as tar:
        assert "multilingual-e5-small-int8/model.onnx" in tar.getnames()
    assert main(["models", "import", str(bundles["first-run"])]) == 0
    e5 = scratch_models / "multilingual-e5-small"
    assert onnx_int8.problem(e5, folder_model_id(e5)) is None
    assert not [p for p in scratch_models.glob(".*") if p.is_dir()]
