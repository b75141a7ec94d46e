"""UI languages: English (the source strings) and Simplified Chinese, switchable at run time.

A QTranslator fed from this table: every visible string goes through tr(), and widgets redraw
their texts when Qt sends LanguageChange after a translator is installed or removed.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

ZH_CN = {
    "Knowledge bases": "知识库",
    "New knowledge base": "新建知识库",
    "Rename": "重命名",
    "Delete": "删除",
    "Documents": "文档",
    "All files": "所有文件",
    "My documents": "我的资料",
    "Welcome to Zhiku": "欢迎使用知库",
    "Drop files or folders anywhere on this window, or use “Add documents…” (PDF, Word, PowerPoint, Excel, "
    "web pages, notes, e-books, images).":
        "把文件或文件夹拖到窗口任意位置，或点“添加文档…”（PDF、Word、PowerPoint、Excel、网页、笔记、电子书、图片）。",
    "Zhiku reads and indexes them on this computer; nothing leaves it.": "知库在这台电脑上读取并索引它们，什么都不会上传。",
    "Ask a question below: each answer cites the file and page it comes from.": "在下面提问：每个回答都会注明出自哪个文件哪一页。",
    "Try with sample documents": "用示例文档试试",
    "(three short documents in Chinese and English)": "（三篇简短的中英文文档）",
    "Export…": "导出…",
    "Save this conversation as Markdown, with its sources": "把这段对话连同出处保存为 Markdown",
    "Saved {path}": "已保存 {path}",
    "first word after {s} s": "{s} 秒后开始回答",
    "{n} tokens/s": "每秒 {n} 个词元",
    "No pictures match. Try other words — what the picture shows, or words printed near it on its page — "
    "or “Find similar…” with an image you have.":
        "没有匹配的图片。换个说法试试——写图片里画的是什么，或它所在页上的文字——也可以用“找相似图片…”按一张你有的图片搜索。",
    "Name": "名称",
    "Type": "类型",
    "Pages": "页数",
    "Status": "状态",
    "Add documents…": "添加文档…",
    "Add folder…": "添加文件夹…",
    "Remove": "移除",
    "Re-index": "重新索引",
    "Show in folder": "在文件夹中显示",
    "Drop files or folders here to add them": "把文件或文件夹拖到这里即可添加",
    "indexed": "已索引",
    "indexing": "索引中",
    "failed": "失败",
    "Cancel": "取消",
    "OK": "确定",  # Qt's own Chinese has no "OK" for dialog buttons
    "Ask a question about your documents…": "就你的文档提问……",
    "Send": "发送",
    "Stop": "停止",
    "New chat": "新对话",
    "Delete chat": "删除对话",
    "Copy answer": "复制回答",
    "Regenerate": "重新回答",
    "Edit": "编辑",
    "Editing your question: sending it replaces it and everything after it.": "正在编辑问题：发送后将替换它及其后的全部对话。",
    "Ask all documents": "询问全部文档",
    "Asking only {n} documents: {names}": "只询问 {n} 个文档：{names}",
    "Ask a question about the selected documents…": "就选中的文档提问……",
    "Ask only these documents": "只询问这些文档",
    "Ask only this document": "只询问这个文档",
    "Ask only the documents in “{folder}”": "只询问“{folder}”中的文档",
    "Sources": "来源",
    "Possibly related": "可能相关的内容",
    "Show the model's attempt": "显示模型的尝试回答",
    "Hide the model's attempt": "收起模型的尝试回答",
    "not backed by your documents": "你的文档不支持这个回答",
    "{n} of {m} sentences could not be checked against your documents": "{m} 句中有 {n} 句无法在你的文档中核实",
    "Every sentence was checked against your documents": "每一句都已在你的文档中核实",
    "Not backed by your documents: {reason}": "文档中找不到依据：{reason}",
    "Backed by {name}, {place} — click to open": "依据：{name} {place}（点击打开）",
    "page {n}": "第{n}页",
    "section {n}": "第{n}节",
    "slide {n}": "第{n}张幻灯片",
    "Settings": "设置",
    "Settings…": "设置…",
    "Open in default app": "用默认程序打开",
    "Source": "来源",
    "Reading": "正在读取",
    "queued": "排队中",
    "Indexing…": "正在索引……",
    "Bringing linked folders up to date…": "正在同步关联文件夹……",
    "Finishing the interrupted indexing…": "正在完成上次中断的索引……",
    "Pictures": "图片",
    "Embedding": "正在向量化",
    "ETA": "剩余",
    "Ready": "就绪",
    "Loading models…": "正在加载模型…",
    "Thinking…": "正在思考…",
    "Name of the new knowledge base:": "新知识库的名称：",
    "New name:": "新名称：",
    "Delete knowledge base “{name}” and its index? Your files stay where they are.":
        "删除知识库“{name}”及其索引？你的文件不会被删除。",
    "{n} documents · {size}": "{n} 个文档 · {size}",
    "Some files could not be added": "部分文件未能添加",
    "Indexing finished": "索引完成",
    "{added} added, {updated} re-indexed, {unchanged} unchanged, {failed} failed":
        "新增 {added}，重新索引 {updated}，未变 {unchanged}，失败 {failed}",
    "Create a knowledge base first": "请先新建一个知识库",
    "Models": "模型",
    "Chat model": "对话模型",
    "empty: the chat model above, on this computer": "留空：用上面的对话模型，在本机运行",
    "An OpenAI-compatible server (vLLM, llama.cpp, Ollama, LM Studio), e.g. http://gpu-box:8000/v1. "
    "Questions and their sources are sent to it.":
        "兼容 OpenAI 接口的服务器（vLLM、llama.cpp、Ollama、LM Studio），例如 http://gpu-box:8000/v1。"
        "问题和相关出处会发送给它。",
    "Model server": "模型服务器",
    "the first model the server lists": "服务器列出的第一个模型",
    "Model on the server": "服务器上的模型",
    "unchanged (kept in {where})": "不变（保存在 {where}）",
    "none; a key entered here is kept in {where}": "未设置；在此输入的密钥会保存在 {where}",
    "API key": "API 密钥",
    "How long to wait for the server's next word before giving up.": "等待服务器下一个字的最长时间，超时则放弃。",
    "Server time-out": "服务器超时",
    "Embedding model (new knowledge bases)": "向量模型（用于新知识库）",
    "Image search model (CLIP)": "图像搜索模型（CLIP）",
    "none — add one with “zhiku models add”": "无——可用“zhiku models add”添加",
    "Add model file…": "添加模型文件…",
    "Add model folder…": "添加模型文件夹…",
    "GPU layers": "GPU 层数",
    "Context length": "上下文长度",
    "Threads": "线程数",
    "Sources per answer (top-K)": "每个回答的资料数（top-K）",
    "Evidence per answer (tokens)": "每个回答的资料长度（词元）",
    "Less evidence gives a faster first word; more finds more answers.": "资料越少，第一个字出来越快；越多，越能找到答案。",
    "Chunk size (tokens, new knowledge bases)": "分块大小（词元，用于新知识库）",
    "Chunk overlap (tokens)": "分块重叠（词元）",
    "Answer language": "回答语言",
    "Interface language": "界面语言",
    "Automatic": "自动",
    "Follow the system": "跟随系统",
    "Data folder": "数据文件夹",
    "Open": "打开",
    "verified": "已校验",
    "not installed": "未安装",
    "damaged": "已损坏",
    "Models are missing": "缺少模型",
    "Install models": "安装模型",
    "Installing {name}…": "正在安装 {name}…",
    "Something went wrong": "出错了",
    "Team server (optional):": "团队服务器（可选）：",
    "Leave empty to keep it on this computer. With a PostgreSQL server (pgvector), everyone who creates a "
    "knowledge base of the same name there shares it; it is only as private as that server.":
        "留空则保存在这台电脑上。填写 PostgreSQL 服务器（需 pgvector）后，在那里创建同名知识库的人都共用它；"
        "它的私密程度取决于那台服务器。",
    "on {server}": "位于 {server}",
    "reading counts from the server…": "正在从服务器读取数量…",
    "server not reachable": "服务器无法连接",
    "cannot be opened": "无法打开",
    "Opening {name} on its server…": "正在打开服务器上的 {name}…",
    "This answer could not be kept in the conversation: {error}": "这个回答未能保存到对话中：{error}",
    "Zhiku hit an unexpected error. Details were written to:\n{path}":
        "知库遇到了意外错误。详细信息已写入：\n{path}",
    "Chats": "对话",
    "You": "你",
    "Zhiku": "知库",
    "(stopped)": "（已停止）",
    "Not found in this document’s text": "未在该文档文本中找到",
    "Previous page": "上一页",
    "Next page": "下一页",
    "Could not load the chat model": "无法加载对话模型",
    "Link folder…": "关联文件夹…",
    "Keep a folder in sync: new, changed, moved and deleted files are picked up":
        "保持文件夹同步：自动处理新增、修改、移动和删除的文件",
    "{moved} moved, {removed} removed": "{moved} 个已移动，{removed} 个已移除",
    "…and {n} more (see the document list)": "……另有 {n} 个（见文档列表）",
    "Password needed": "需要密码",
    "{names} is encrypted. Password (used once, never saved):": "{names} 已加密。请输入密码（仅用于本次，不会保存）：",
    "{n} pages read by OCR": "{n} 页经 OCR 识别",
    "same file": "相同文件",
    "Read scanned pages and images (OCR)": "识别扫描页和图片中的文字（OCR）",
    "OCR": "文字识别",
    "Time limit per file": "单个文件时限",
    "A file whose reading makes no progress for this long is skipped with a reason.":
        "读取某个文件时若这么久没有进展，就跳过它并注明原因。",
    "Chat": "对话",
    "Images": "图片",
    "Describe a picture (e.g. a bar chart of revenue), or drop an image here": "描述一张图片（例如“收入柱状图”），或把图片拖到这里",
    "Search": "搜索",
    "Find similar…": "找相似图片…",
    "Image search needs a CLIP model, which no Python package ships. Choose a folder with a transformers CLIP or Chinese-CLIP model (config.json + model.safetensors), or download OpenAI's CLIP ViT-B/32 (350 MB, English queries). Without one, pictures are found by the text of their pages only.": "图片搜索需要 CLIP 模型（没有 Python 包自带）。请选择一个 transformers 格式的 CLIP 或 Chinese-CLIP 模型文件夹（config.json + model.safetensors），或下载 OpenAI 的 CLIP ViT-B/32（350 MB，英文查询）。没有模型时，只按图片所在页面的文字查找。",
    "Choose folder…": "选择文件夹…",
    "Download…": "下载…",
    "page text matches (#{n})": "页面文字匹配（第 {n} 名）",
    "also in {name}, page {n}": "也在 {name} 第 {n} 页",
    "The image search model could not be loaded: {error}": "无法加载图片搜索模型：{error}",
    "No CLIP model can be downloaded from inside Zhiku yet: download a transformers CLIP folder yourself (for example openai/clip-vit-base-patch32, or OFA-Sys/chinese-clip-vit-base-patch16 for Chinese queries) and choose it with “Choose folder…”.": "目前还不能在知库内下载 CLIP 模型：请自行下载 transformers 格式的 CLIP 文件夹（例如 openai/clip-vit-base-patch32；中文查询可用 OFA-Sys/chinese-clip-vit-base-patch16），再用“选择文件夹…”选中它。",
    "Download {title} from {url}? Its checksum is verified before it is used.": "从 {url} 下载 {title}？使用前会校验其校验和。",
    "{n} pictures ready for image search": "{n} 张图片可供搜索",
    "Import models bundle…": "导入模型包…",
    "Models bundle": "模型包",
}

TABLES = {"zh_CN": ZH_CN}
LANGUAGES = [("", "Follow the system"), ("en", "English"), ("zh_CN", "简体中文")]


class TableTranslator(QTranslator):
    """A QTranslator backed by a Python dict (no .qm files to build or ship)."""

    def __init__(self, table: dict[str, str]) -> None:
        super().__init__()
        self.table = table

    def translate(self, context, source_text, disambiguation=None, n=-1):  # noqa: D102 (Qt override)
        # None, not "": an empty string is a translation to Qt, and blanked every string missing
        # here (the settings dialog's OK button, "English" in the language list); None lets Qt ask
        # its own translations, then show the source text
        return self.table.get(source_text)

    def isEmpty(self) -> bool:  # noqa: N802 (Qt override)
        return False


_installed: TableTranslator | None = None
_qt_own: QTranslator | None = None  # Qt's own strings: dialog buttons, context menus


def resolve(code: str) -> str:
    """The language to use for a setting ('' follows the system locale)."""
    if code:
        return code
    return "zh_CN" if QLocale.system().name().startswith("zh") else "en"


def set_language(code: str) -> str:
    """Install the translator for `code` ('' = system); widgets retranslate on LanguageChange."""
    global _installed, _qt_own
    app = QCoreApplication.instance()
    lang = resolve(code)
    for old in (_installed, _qt_own):
        if old is not None:
            app.removeTranslator(old)
    _installed = _qt_own = None
    table = TABLES.get(lang)
    if table:
        _qt_own = QTranslator()
        if _qt_own.load(f"qt_{lang}", QLibraryInfo.path(QLibraryInfo.TranslationsPath)):
            app.installTranslator(_qt_own)
        else:
            _qt_own = None
        _installed = TableTranslator(table)
        app.installTranslator(_installed)
    return lang


def tr(text: str, **fields) -> str:
    """Translate a UI string, then fill its {fields}."""
    out = QCoreApplication.translate("zhiku", text)
    return out.format(**fields) if fields else out


def place(path: str, n) -> str:
    """"page 3", "section 3" (a text file's part) or "slide 3", in the UI language."""
    from kb.text.document import part_name

    return tr(f"{part_name(path)} {{n}}", n=n)
