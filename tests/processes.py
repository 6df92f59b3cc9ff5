"""Finding the processes a test's submission started, by a marker each of them carries on its command line.

A marker unique to one test (``uuid``) keeps the search to that test's processes: the suite runs on several
workers at once, and another test's submission may have processes of its own alive at the same moment.
"""
from __future__ import annotations

import os
from pathlib import Path


def alive_with(marker: str) -> list[str]:
    """``"pid: command line"`` of every live process (but this one) whose command line holds ``marker``.

    A zombie has an empty command line, so only processes still running are found.
    """
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline[:120]}")
    return found
