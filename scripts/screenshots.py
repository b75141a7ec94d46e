"""Drive the real app with a demo knowledge base and save PNGs of its main screens.

Run through scripts/screenshots.sh (Xvfb). Output: <out>/main-answer.png, viewer-pdf.png,
settings.png, main-chinese.png.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is the default chunk size, and where are the vectors kept?"
QUESTION_ZH = "知库会把我的文档上传到网络吗？"


def wait(app, predicate, timeout: float) -> None:
    """Process events until `predicate()` holds (or fail after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def main(out: Path) -> int:
    """Build the demo KB in the window, ask, open a citation, open settings, switch language."""
    out.mkdir(parents=True, exist_ok=True)
    from app.demo import write_documents
    from app.gui.app import make_app
    from app.gui.i18n import set_language
    from app.gui.main_window import MainWindow
    from app.gui.settings import AppSettings

    app = make_app()
    set_language("en")
    w = MainWindow(AppSettings(ui_language="en"))
    w.resize(1360, 860)
    w.show()
    w.create_kb("Zhiku demo")
    docs = write_documents(Path(tempfile.mkdtemp()) / "documents")
    wait(app, lambda: w.warm is not None and w.warm.isFinished(), 300)
    w.index_paths(docs)
    wait(app, lambda: w.index_worker.isFinished(), 600)
    for question in (QUESTION_ZH, QUESTION):
        w.chat.input.setPlainText(question)
        w.chat.submit()
        wait(app, lambda: not w.chat.busy, 900)
    w.chat.view.verticalScrollBar().setValue(w.chat.view.verticalScrollBar().maximum())
    app.processEvents()
    w.grab().save(str(out / "main-answer.png"))

    last = len(w.chat.messages) - 1
    pdf = next(s for s in w.chat.messages[last]["sources"] if s["name"].endswith(".pdf"))
    w.open_source(last, pdf["number"])
    wait(app, lambda: w.viewer.isVisible(), 30)
    w.viewer.resize(760, 900)
    app.processEvents()
    w.viewer.grab().save(str(out / "viewer-pdf.png"))
    w.viewer.hide()

    from app.gui.settings_dialog import SettingsDialog

    dialog = SettingsDialog(w.settings, w)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "settings.png"))
    dialog.close()

    w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": "zh_CN"}))
    app.processEvents()
    w.grab().save(str(out / "main-chinese.png"))
    w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": ""}))
    w.close()
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")))
