"""The Zhiku desktop app (PySide6). Qt lives here and nowhere below app/."""
