"""How many cores other processes keep busy, so llama.cpp uses only the free ones.

llama.cpp's threads meet after every graph node: one thread that shares its core with another
process holds all of them back. Measured on this 2-core machine, with the retrieval bench (one
busy process) beside it, Qwen2.5 1.5B: prompt processing 13.2 tok/s on 2 threads, 22.2 on 1;
decoding 0.9-4.0 tok/s on 2 threads, 10.7-11.1 on 1. On a quiet machine 2 threads process
prompts twice as fast as one (80 vs 39 tok/s), so the count is chosen at the start of each
answer from what the others used over the last few seconds.
"""

from __future__ import annotations

import os
import threading
import time

import psutil

INTERVAL_S = 0.5  # one sample costs ~50 µs; twice a second keeps the estimate at most ~2 s old
WINDOW = 4  # samples averaged (2 s): a compile or a tab opening should not shrink an answer
BUSY_SHARE = 0.5  # another process using half a core or more counts as a busy core


class CpuLoad:
    """A background sampler of the cores that processes other than this one keep busy."""

    def __init__(self) -> None:
        self.cores = os.cpu_count() or 1
        self._me = psutil.Process()
        self._samples: list[float] = []
        # set while this process runs the model (for the log); this process's own CPU is never
        # counted: answer checks and query embeddings just before an answer made a follow-up
        # start on one thread (follow-up TTFT 0.83x a cold question instead of 0.47x)
        self.generating = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last = self._read()
        self._thread = threading.Thread(target=self._run, name="zhiku-cpu-load", daemon=True)
        self._thread.start()

    def _read(self) -> tuple[float, float, float]:
        total = psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        mine = self._me.cpu_times()
        return time.monotonic(), busy, mine.user + mine.system

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            self.sample()

    def sample(self) -> None:
        """Take one sample now (the thread does this every INTERVAL_S)."""
        now = self._read()
        wall = now[0] - self._last[0]
        if wall > 0:
            others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall
            with self._lock:
                self._samples = (self._samples + [others])[-WINDOW:]
        self._last = now

    def busy_cores(self) -> float:
        """Cores' worth of CPU the other processes used over the last ~2 s."""
        with self._lock:
            return sum(self._samples) / len(self._samples) if self._samples else 0.0

    def free_cores(self) -> int:
        """Cores nobody else is busy on (at least 1)."""
        busy = int(self.busy_cores() + 1 - BUSY_SHARE)  # 0.5 busy core or more counts as one
        return max(1, self.cores - busy)

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()


_shared: CpuLoad | None = None


def shared() -> CpuLoad:
    """The process's one sampler (started on first use)."""
    global _shared
    if _shared is None:
        _shared = CpuLoad()
    return _shared
