"""Drive the real app with a demo knowledge base and save PNGs of its main screens.

Run through scripts/screenshots.sh (Xvfb). Output: <out>/main-answer.png, viewer-pdf.png,
settings.png, new-kb.png, images.png, main-chinese.png, settings-chinese.png, new-kb-chinese.png,
server-unreachable.png and -chinese.png, and more (the list is printed at the end).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is the default chunk size, and where are the vectors kept?"
QUESTION_ZH = "知库会把我的文档上传到网络吗？"
QUESTION_NOT_FOUND = "默认的嵌入模型是哪家公司训练的？"  # on the documents' topic, but not in them


def wait(app, predicate, timeout: float) -> None:
    """Process events until `predicate()` holds (or fail after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def picture_report(path: Path) -> Path:
    """A PDF with drawn figures and their captions: a bar chart, an architecture diagram, a photo-like scene."""
    from PIL import Image, ImageDraw
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    chart = Image.new("RGB", (420, 280), "white")
    d = ImageDraw.Draw(chart)
    for i, h in enumerate((90, 140, 120, 210)):
        d.rectangle([40 + i * 90, 250 - h, 100 + i * 90, 250], fill=(52, 101, 164))
    d.line([30, 250, 400, 250], fill="black", width=2)
    diagram = Image.new("RGB", (420, 280), (245, 245, 240))
    d = ImageDraw.Draw(diagram)
    for x, colour in ((20, (200, 80, 60)), (160, (90, 160, 90)), (300, (80, 120, 200))):
        d.rectangle([x, 100, x + 100, 170], fill=colour, outline="black")
    d.line([120, 135, 160, 135], fill="black", width=3)
    d.line([260, 135, 300, 135], fill="black", width=3)
    scene = Image.new("RGB", (420, 280), (135, 190, 235))
    d = ImageDraw.Draw(scene)
    d.rectangle([0, 190, 420, 280], fill=(70, 140, 60))
    d.ellipse([310, 30, 380, 100], fill=(250, 210, 60))
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for caption, image in (("图 1：季度收入柱状图 Figure 1: bar chart of revenue by quarter", chart),
                           ("图 2：系统架构图 Figure 2: architecture diagram (loader → chunker → index)", diagram),
                           ("图 3：公园的风景照片 Figure 3: a photo of a park on a sunny day", scene)):
        c.setFont("STSong-Light", 12)
        c.drawString(60, 780, caption)
        c.drawImage(ImageReader(image), 60, 420, width=420, height=280)
        c.showPage()
    c.save()
    return path


AUTOSHOWS_ZH = ("车展新闻汇编\n\n2017年上海车展于4月19日在国家会展中心开幕，展期十天，吸引了上千家参展商。\n\n"
                "2018年北京车展于4月25日在中国国际展览中心开幕，展出新车一百多款。\n\n"
                "2019年广州车展于11月22日开幕，新能源汽车成为焦点。\n")
AUTOSHOWS_EN = ("Auto show news\n\nThe 2017 Shanghai Auto Show opened on April 19 at the National Exhibition "
                "Centre and ran for ten days.\n\nThe 2018 Beijing Auto Show opened on April 25 at the China "
                "International Exhibition Centre, showing more than a hundred new cars.\n")


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
    app.processEvents()
    w.grab().save(str(out / "welcome.png"))  # the first start: no knowledge base yet
    w.create_kb("Zhiku demo")
    folder = Path(tempfile.mkdtemp()) / "documents"
    docs = write_documents(folder)
    wait(app, lambda: w.warm is not None and w.warm.isFinished(), 300)
    w.index_paths(docs)
    wait(app, lambda: w.indexing.worker.isFinished(), 600)
    for question in (QUESTION_ZH, QUESTION):
        if question is QUESTION:
            w.answering.new_chat()  # another topic: a follow-up would be searched together with the question before
        w.chat.input.setPlainText(question)
        w.chat.submit()
        wait(app, lambda: not w.chat.busy, 900)
    w.chat.view.verticalScrollBar().setValue(w.chat.view.verticalScrollBar().maximum())
    app.processEvents()
    w.grab().save(str(out / "main-answer.png"))

    last = len(w.chat.messages) - 1
    pdf = next(s for s in w.chat.messages[last]["sources"] if s["name"].endswith(".pdf"))
    w.answering.open_source(last, pdf["number"])
    wait(app, lambda: w.viewer.isVisible(), 30)
    w.viewer.resize(760, 900)
    app.processEvents()
    w.viewer.grab().save(str(out / "viewer-pdf.png"))
    w.viewer.hide()

    # the Images tab without a CLIP model: it says what it needs, and finds pictures by their captions
    w.index_paths([picture_report(folder / "figures.pdf")])
    wait(app, lambda: w.indexing.worker.isFinished(), 600)
    w.tabs.setCurrentWidget(w.images)
    w.images.query.setText("柱状图 revenue chart")
    w.images.search_requested.emit(w.images.query.text())
    wait(app, lambda: w.images.grid.count() > 0, 120)
    app.processEvents()
    w.grab().save(str(out / "images.png"))
    w.tabs.setCurrentWidget(w.chat)

    from app.gui.dialogs.settings import SettingsDialog

    dialog = SettingsDialog(w.settings, w)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "settings.png"))
    dialog.close()
    from app.gui.dialogs.new_kb import NewKnowledgeBaseDialog

    dialog = NewKnowledgeBaseDialog(w, "Team handbook")
    dialog.server.setText("postgresql://zhiku@db.office.lan:5432/knowledge")
    dialog.server.setCursorPosition(0)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "new-kb.png"))
    dialog.close()

    w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": "zh_CN"}))
    app.processEvents()
    w.grab().save(str(out / "main-chinese.png"))
    dialog = SettingsDialog(AppSettings(**{**w.settings.__dict__, "server_url": "http://gpu-box:8000/v1"}), w)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "settings-chinese.png"))  # with a model server filled in
    dialog.close()
    dialog = NewKnowledgeBaseDialog(w, "团队手册")
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "new-kb-chinese.png"))
    dialog.close()
    # "ask only these documents", and a narrow Documents pane (the name keeps its room)
    w.answering.ask_only([str(p) for p in docs if p.suffix == ".txt"])
    sizes = w.splitter.sizes()
    w.splitter.setSizes([200, 280, sum(sizes) - 480])
    app.processEvents()
    w.grab().save(str(out / "scoped-narrow-chinese.png"))
    w.answering.clear_scope()
    w.splitter.setSizes(sizes)
    # a question the demo documents do not answer: the not-found message and "possibly related"
    w.answering.new_chat()
    w.chat.input.setPlainText(QUESTION_NOT_FOUND)
    w.chat.submit()
    wait(app, lambda: not w.chat.busy, 900)
    app.processEvents()
    w.grab().save(str(out / "not-found-chinese.png"))
    # look-alike news: the answer's date belongs to another show, so the check turns it into
    # not-found and keeps the attempt folded (unfolded here, to show why)
    news = folder.parent / "news"
    news.mkdir()
    (news / "车展新闻.txt").write_text(AUTOSHOWS_ZH, encoding="utf-8")
    (news / "auto-shows.txt").write_text(AUTOSHOWS_EN, encoding="utf-8")
    from PySide6.QtCore import QUrl

    w.index_paths([news])
    wait(app, lambda: w.indexing.worker.isFinished(), 600)
    for question, png in (("2018年上海车展什么时候开幕？", "checked-not-found-chinese.png"),
                          ("When did the 2018 Shanghai Auto Show open?", "checked-not-found.png")):
        if png == "checked-not-found.png":
            w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": "en"}))
        w.answering.new_chat()
        w.chat.input.setPlainText(question)
        w.chat.submit()
        wait(app, lambda: not w.chat.busy, 900)
        last = len(w.chat.messages) - 1
        if w.chat.messages[last].get("attempt"):
            w.chat._link(QUrl(f"attempt:{last}"))
        else:
            print(f"{png}: the answer was not turned away by the check", file=sys.stderr)
        app.processEvents()
        w.grab().save(str(out / png))
    # a team's knowledge base whose server does not answer (a port that never replies): one calm
    # line in the list, the whole message in the status bar once selected
    import socket

    from app.gui.i18n import tr
    from kb.knowledge_base import kbs_dir
    from kb.storage.postgres.link import write_link

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    write_link(kbs_dir() / "team", f"postgresql://team@127.0.0.1:{silent.getsockname()[1]}/zhiku", "zhiku_team")
    for language, png in (("en", "server-unreachable.png"), ("zh_CN", "server-unreachable-chinese.png")):
        w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": language}))
        app.processEvents()
        w.kb_list.reload(select="team")
        calm = "team\n" + tr("server not reachable")
        wait(app, lambda: w.kb_list.list.currentItem().text() == calm and "team:" in w.status_label.text(), 60)
        app.processEvents()
        w.grab().save(str(out / png))
    silent.close()
    w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": "zh_CN"}))
    w.create_kb("空白知识库")  # an empty one: the three steps, in Chinese
    app.processEvents()
    w.grab().save(str(out / "welcome-chinese.png"))
    w.apply_settings(AppSettings(**{**w.settings.__dict__, "ui_language": ""}))
    w.close()
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")))
