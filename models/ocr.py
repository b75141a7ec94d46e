"""Offline OCR for Chinese and English: RapidOCR (PP-OCRv4 det/rec ONNX models inside its wheel)."""

from __future__ import annotations

import threading

MIN_SCORE = 0.5  # below this RapidOCR's lines are mostly noise on photos and textures
# Big scans are shrunk to this long side first: recognition at ~150 dpi is as good and 4x faster.
MAX_SIDE = 2400


def available() -> bool:
    """True when the OCR engine is installed."""
    import importlib.util

    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


class OCR:
    """Reads text lines, with their boxes, from an image. Loads its models on first use."""

    _shared: "OCR | None" = None
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._engine = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> "OCR":
        """One engine per process (its models take ~1 s and ~100 MB to load)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    @property
    def engine(self):
        """The RapidOCR engine, loaded on first use."""
        with self._lock:
            if self._engine is None:
                if not available():
                    raise RuntimeError("OCR is not installed (pip install rapidocr-onnxruntime)")
                from rapidocr_onnxruntime import RapidOCR

                self._engine = RapidOCR()
            return self._engine

    def read(self, image) -> list[tuple[str, tuple[float, float, float, float]]]:
        """Text lines of a PIL image in reading order: (text, (x0, y0, x1, y1) as fractions of the image)."""
        import numpy as np

        img = image.convert("RGB")
        w, h = img.size
        if max(w, h) > MAX_SIDE:
            scale = MAX_SIDE / max(w, h)
            img = img.resize((max(1, int(w * scale)), max(1, int(h * scale))))
        iw, ih = img.size
        result, _ = self.engine(np.asarray(img))
        lines = []
        for box, text, score in result or []:
            text = text.strip()
            if not text or float(score) < MIN_SCORE:
                continue
            xs, ys = [p[0] for p in box], [p[1] for p in box]
            lines.append((text, (min(xs) / iw, min(ys) / ih, max(xs) / iw, max(ys) / ih)))
        return lines  # RapidOCR already sorts its boxes top to bottom, left to right
