"""The layers hold: app -> kb -> models, nothing back up, no Qt below app/, no import circles, and
app/ reaches a knowledge base only through KnowledgeBase. Read from the source, imports inside
functions included (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "kb", "models")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = f
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every module named by an import in the file (for `from a import b`, both a and a.b)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


IMPORTS = {m: _imports(f) for m, f in MODULES.items()}


@pytest.mark.parametrize("layer, forbidden", [
    ("models", ("kb", "app", "PySide6")),
    ("kb", ("app", "PySide6")),
])
def test_lower_layers_import_nothing_from_above_and_no_qt(layer, forbidden):
    bad = sorted(f"{m} imports {i}" for m, imps in IMPORTS.items() if m.split(".")[0] == layer
                 for i in imps if i.split(".")[0] in forbidden)
    assert bad == []


def test_no_module_imports_itself_through_others():
    graph = {m: {i for i in imps if i in MODULES and i != m} for m, imps in IMPORTS.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


# kb/'s rooms, bottom up: a package may import its own modules and those of lower floors only
FLOORS = {"kb.defaults": 0, "kb.text": 1, "kb.storage": 2, "kb.search": 3, "kb.ingest": 4, "kb.answering": 4,
          "kb.knowledge_base": 5}


def _floor(module: str) -> tuple[str, int] | None:
    return next(((room, n) for room, n in FLOORS.items() if module == room or module.startswith(room + ".")), None)


def test_kb_packages_import_only_from_the_floors_below_them():
    assert {m.split(".")[1] for m in MODULES if m.startswith("kb.")} == {r.split(".")[1] for r in FLOORS}
    up = []
    for m, imps in IMPORTS.items():
        here = _floor(m)
        if here is None:
            continue
        for i in imps:
            there = _floor(i)
            if there and there[0] != here[0] and there[1] >= here[1]:
                up.append(f"{m} imports {i}")
    assert up == []


def test_the_app_reaches_a_knowledge_base_only_through_knowledge_base():
    found = []
    for m, f in MODULES.items():
        if not m.startswith("app"):
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            # kb.store, kb.embedder._model, a raw Store or Conversations built from a store
            if isinstance(node, ast.Attribute) and node.attr in ("store", "_model", "conn"):
                found.append(f"{m}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                    ("kb.storage.sqlite", "kb.storage.postgres")):  # a backend: its errors are the contract's
                found.append(f"{m}:{node.lineno} imports from the backend {node.module}")
            if isinstance(node, ast.ImportFrom) and node.module in ("kb.storage.conversations", "kb.ingest.files"):
                # expanding paths (no knowledge base involved) is fine
                names = {a.name for a in node.names} - {"collect", "NO_SUCH_PATH"}
                if names:
                    found.append(f"{m}:{node.lineno} imports {sorted(names)} from {node.module}")
    assert found == []


def test_the_checks_find_what_they_look_for():
    """The scans above would pass on an empty tree: they must see the real imports."""
    assert "kb.knowledge_base" in IMPORTS["app.kb_commands"] or any(
        i.startswith("kb.knowledge_base") for i in IMPORTS["app.kb_commands"])
    assert "models.llm" in IMPORTS["kb.defaults"]
    assert len(MODULES) > 80


def test_both_backends_and_their_rooms_provide_the_whole_contract_as_siblings():
    """Each backend's store, database and rooms have every method of the contract with its
    parameters, and neither backend's store inherits from the other's."""
    import inspect

    from kb.storage import contract as api
    from kb.storage.postgres.conversations import ServerConversationRows
    from kb.storage.postgres.database import PgDatabase
    from kb.storage.postgres.paths import ServerPaths
    from kb.storage.postgres.pictures import ServerPictures
    from kb.storage.postgres.queue import ServerQueue
    from kb.storage.postgres.store import PgStore
    from kb.storage.sqlite.conversations import ConversationRows
    from kb.storage.sqlite.database import Database
    from kb.storage.sqlite.paths import Paths
    from kb.storage.sqlite.pictures import Pictures
    from kb.storage.sqlite.queue import Queue
    from kb.storage.sqlite.store import Store

    pairs = ((api.KnowledgeStore, (Store, PgStore)), (api.Database, (Database, PgDatabase)),
             (api.Queue, (Queue, ServerQueue)), (api.Paths, (Paths, ServerPaths)),
             (api.Pictures, (Pictures, ServerPictures)),
             (api.ConversationRows, (ConversationRows, ServerConversationRows)))
    for proto, impls in pairs:
        wanted = {n: m for n, m in vars(proto).items() if callable(m) and not n.startswith("_")}
        assert len(wanted) >= 6
        for impl in impls:
            for name, method in wanted.items():
                mine = getattr(impl, name, None)
                assert mine is not None, f"{impl.__name__} lacks {name}"
                assert list(inspect.signature(mine).parameters) == list(inspect.signature(method).parameters), \
                    f"{impl.__name__}.{name}"
            assert not getattr(impl, "__abstractmethods__", None), f"{impl.__name__} leaves abstract methods"
    assert not issubclass(PgStore, Store) and not issubclass(Store, PgStore)
    assert not issubclass(ServerPictures, Pictures) and not issubclass(PgDatabase, Database)


def test_no_sql_is_written_outside_the_storage_backends():
    """Statements live in kb/storage/sqlite and kb/storage/postgres, each in its own dialect: the
    engine, the shared storage modules and the app hold none, and nothing rewrites one dialect
    into the other."""
    sql = re.compile(r"""["'](SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER)\s""")
    found, seen = [], 0
    for name, path in MODULES.items():
        if name.startswith(("kb.storage.sqlite.", "kb.storage.postgres.")):
            text = path.read_text(encoding="utf-8")
            seen += len(sql.findall(text))
            dialect = "postgres" if ".postgres." in name else "sqlite"
            foreign = (r"\?[,)]|INSERT OR|group_concat" if dialect == "postgres" else r"%s|ON CONFLICT|= ANY\(")
            found += [f"{name}:{text[:m.start()].count(chr(10)) + 1} {m.group(0)!r} in {dialect}"
                      for m in re.finditer(foreign, text)]
            continue
        if name.startswith(("kb.", "app.")):
            text = path.read_text(encoding="utf-8")
            found += [f"{name}:{text[:m.start()].count(chr(10)) + 1}" for m in sql.finditer(text)]
    assert found == []
    assert seen > 100  # the scan sees the backends' statements


PARTS = {  # the main window's parts, each with the panel it owns
    "app.gui.parts.answering": "app.gui.widgets.chat",
    "app.gui.parts.image_search": "app.gui.widgets.images",
    "app.gui.parts.indexing": None,
    "app.gui.widgets.documents": None,
    "app.gui.widgets.kb_list": None,
}


def test_the_window_parts_know_nothing_of_one_another():
    """The window's parts talk by signals: none imports another part or the window, none calls
    into the window (it is only a parent for their dialogs), and the window mixes nothing in."""
    from app.gui.main_window import MainWindow

    others = set(PARTS) | {p for p in PARTS.values() if p} | {"app.gui.main_window"}
    found = []
    for part, panel in PARTS.items():
        found += [f"{part} imports {i}" for i in IMPORTS[part] if i in others - {part, panel}]
        for node in ast.walk(ast.parse(MODULES[part].read_text(encoding="utf-8"))):
            call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            if call and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "attr", "") == "window":
                found.append(f"{part}:{node.lineno} self.window().{node.func.attr}()")  # a widget's window
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "window":
                found.append(f"{part}:{node.lineno} self.window.{node.attr}")
    assert found == []
    assert [c.__module__.split(".")[0] for c in MainWindow.__mro__[1:3]] == ["PySide6", "PySide6"]
