"""Human-readable sizes and durations, shared by the CLI and the GUI."""

from __future__ import annotations


def human_size(n: float) -> str:
    """Bytes as '1.2 MB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def clock(seconds: float | None) -> str:
    """Seconds as 'm:ss' (or 'h:mm:ss'); '--:--' when unknown."""
    if seconds is None:
        return "--:--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
