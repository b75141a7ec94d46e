"""A team's knowledge base whose server does not answer: one calm line in the list, and a window
that never waits for it (the counts are read in the background; opening it happens off the UI
thread). The "server" is a real socket on 127.0.0.1 that accepts connections and never answers,
as a server behind a dropped VPN looks to libpq."""

import socket

import pytest

from test_gui import open_window

pytestmark = pytest.mark.gui


@pytest.fixture
def silent_server():
    """A TCP port that takes connections into its backlog and never says a word."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield f"postgresql://team@127.0.0.1:{srv.getsockname()[1]}/zhiku"
    srv.close()


def _item(w, name):
    from PySide6.QtCore import Qt

    items = [w.kb_list.list.item(i) for i in range(w.kb_list.list.count())]
    return next(i for i in items if i.data(Qt.UserRole) == name)


def test_a_server_that_does_not_answer_is_one_calm_line_and_the_list_never_waits(qtbot, make_kb, silent_server):
    from kb.knowledge_base import kbs_dir
    from kb.storage.postgres.link import write_link

    make_kb("笔记").close()  # a local knowledge base beside it, listed with its counts at once
    write_link(kbs_dir() / "team", silent_server, "zhiku_team")
    w = open_window(qtbot)
    w.kb_list.reload(select="team")
    # drawn before the server could have answered or timed out: the counts are not waited for
    assert _item(w, "team").text() == "team\nreading counts from the server…"
    assert _item(w, "笔记").text().startswith("笔记\n0 documents")
    assert w.status_label.text() == "Opening team on its server…" and w.kb is None
    qtbot.waitUntil(lambda: "server not reachable" in _item(w, "team").text(), timeout=60_000)
    item = _item(w, "team")
    assert item.text() == "team\nserver not reachable"  # one calm line: no socket path, no advice
    assert "does not answer" in item.toolTip() and "127.0.0.1" in item.toolTip()
    # selected, the status bar carries the whole message; the window opened nothing
    qtbot.waitUntil(lambda: "does not answer" in w.status_label.text(), timeout=60_000)
    assert w.status_label.text().startswith("team: ") and w.kb is None and "team" not in w.kbs
    # another knowledge base can be chosen meanwhile, and is shown at once
    w.kb_list.reload(select="笔记")
    assert w.kb is not None and w.kb.name == "笔记"
    qtbot.waitUntil(lambda: w.warm is None or w.warm.isFinished(), timeout=120_000)  # its embedder loads


def test_the_calm_line_is_in_chinese_too(qtbot, silent_server):
    from app.gui.i18n import set_language
    from kb.knowledge_base import kbs_dir
    from kb.storage.postgres.link import write_link

    write_link(kbs_dir() / "团队", silent_server, "zhiku_team")
    w = open_window(qtbot)
    set_language("zh_CN")
    w.kb_list.reload(select="团队")
    assert _item(w, "团队").text() == "团队\n正在从服务器读取数量…"
    qtbot.waitUntil(lambda: _item(w, "团队").text() == "团队\n服务器无法连接", timeout=60_000)
