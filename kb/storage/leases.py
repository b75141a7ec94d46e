"""Who is working on what, when several desktops share a server knowledge base.

Queued files and chunks waiting for a vector are leased to one process at a time, so two desktops
adding at once split the work instead of both doing it. A lease names its holder ("host:pid") and
runs out after LEASE_S seconds without news; a holder on this same computer that is no longer
running (killed mid-add) loses its leases at once, so the next run resumes without waiting.
"""

from __future__ import annotations

import os
import socket

import psutil

# long enough for a window of embedding batches on a busy laptop (8 × 32 chunks at ~3 chunks/s
# is ~85 s); a desktop that vanished holds its work this long for the others
LEASE_S = 300.0
HOST = socket.gethostname()


def me() -> str:
    """This process's name on leases."""
    return f"{HOST}:{os.getpid()}"


def dead(holders) -> list[str]:
    """The holders among `holders` that ran on this computer and run no more."""
    out = []
    for holder in holders:
        if not holder:
            continue
        host, _, pid = holder.rpartition(":")
        if host == HOST and pid.isdigit() and not psutil.pid_exists(int(pid)):
            out.append(holder)
    return out
