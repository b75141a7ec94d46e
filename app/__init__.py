"""The zhiku CLI and the desktop app."""
