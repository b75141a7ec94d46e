"""Starting the desktop app: logging, crash dialog, language, the window. Models load later."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import traceback

from models.paths import data_dir

log = logging.getLogger("zhiku")


def log_file():
    """The rotating log file in the data folder."""
    folder = data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "zhiku.log"


def setup_logging() -> None:
    """Log to a rotating file (1 MB x 3) in the data folder."""
    handler = logging.handlers.RotatingFileHandler(log_file(), maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_excepthook() -> None:
    """An unhandled exception is logged and shown in a dialog with the log's path, never silent."""
    def hook(kind, value, tb):
        log.error("unhandled exception:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        from PySide6.QtWidgets import QApplication, QMessageBox

        from app.gui.i18n import tr

        if QApplication.instance() is not None:
            QMessageBox.critical(None, tr("Something went wrong"),
                                 tr("Zhiku hit an unexpected error. Details were written to:\n{path}",
                                    path=str(log_file())) + f"\n\n{kind.__name__}: {value}")
    sys.excepthook = hook


def make_app(argv: list[str] | None = None):
    """The QApplication, with name and language set (returns the existing one in tests)."""
    from PySide6.QtWidgets import QApplication

    from app.gui.i18n import set_language
    from app.gui.settings import AppSettings

    app = QApplication.instance() or QApplication(argv or sys.argv)
    app.setApplicationName("Zhiku")
    app.setApplicationDisplayName("Zhiku 知库")
    app.setOrganizationName("Zhiku")
    set_language(AppSettings.load().ui_language)
    return app


def run(argv: list[str] | None = None, paths: list[str] | None = None, screenshot: str | None = None) -> int:
    """Open the main window (adding `paths`, e.g. files opened from the desktop) and run the event loop.

    `screenshot`: save a picture of the window once models are loaded, then quit (checks a
    packaged build under Xvfb).
    """
    from pathlib import Path

    from PySide6.QtCore import QThread, QTimer

    setup_logging()
    install_excepthook()
    app = make_app([sys.argv[0]] if argv is None else argv)  # Qt must not take our arguments for its own
    from app.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    log.info("window shown")
    if paths:
        QTimer.singleShot(0, lambda: window.index_paths([Path(p) for p in paths]))
    if screenshot:
        def shoot() -> None:
            if window.warm is None or not window.warm.isFinished():
                QTimer.singleShot(200, shoot)
                return
            window.grab().save(screenshot)
            log.info("screenshot saved to %s", screenshot)
            window.close()
            app.quit()

        QTimer.singleShot(500, shoot)
    code = app.exec()
    # Closing the window cancelled its jobs and kept their queue; a step that is still running
    # (a batch being embedded beside busy programs at background priority can take a minute, and
    # loading a model cannot be interrupted) would have Qt abort the process when its thread is
    # destroyed ("QThread: Destroyed while thread is still running", SIGABRT). Everything it had
    # committed is kept; the batch in flight is embedded again at the next start.
    running = [t for t in window.findChildren(QThread) if t.isRunning()]
    if running:
        log.info("quitting with %d background step(s) still running: redone at the next start", len(running))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
