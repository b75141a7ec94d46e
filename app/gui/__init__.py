"""The Zhiku desktop app (PySide6). Qt lives here and nowhere below app/.

The map:

- `app` starts it (logging, the crash dialog, the language); `main_window` is the window, which
  owns the parts and wires them by signals; `settings` (QSettings) and `i18n` (English and
  Simplified Chinese, switched at run time) are read everywhere; `workers` runs anything slow off
  the UI thread.
- `parts/` — what the window does, each owning its state: `answering` (the chat model,
  conversations, streaming answers), `indexing` (drops, resumes, syncs, one job at a time),
  `image_search` (CLIP, by words or by example).
- `widgets/` — what the window shows: `kb_list` (the sidebar), `documents`, `chat` (the transcript
  and question box), `checked_answer` (an answer drawn with its sentence checks), `viewer` (a cited
  page), `images` (the Images tab).
- `dialogs/` — `new_kb` (a name, and this computer or a team's server), `settings`.
"""
