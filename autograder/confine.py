"""Bounding a whole sandbox from outside: one control group per worker, or a watchdog where there is none.

:class:`Confinement` puts the worker's whole process tree (bubblewrap, the
worker, everything it starts) into a control group of its own:

* **cgroup v2** (a delegated subtree with the ``memory`` and ``pids``
  controllers): ``memory.max`` (processes *and* the tmpfs they write, which the
  kernel charges to the group), ``memory.swap.max = 0``, ``pids.max``; ended
  with ``cgroup.kill``;
* **cgroup v1** (root, or write access to the ``memory`` and ``pids``
  hierarchies): ``memory.limit_in_bytes`` (and ``memsw`` where swap is
  accounted), ``pids.max``; ended by killing every member until none is left;
* **no writable cgroup** (an unprivileged grader on a system without a
  delegated subtree): the fallback, which still holds. Every process gets
  ``RLIMIT_AS`` = the memory limit and the user's ``RLIMIT_NPROC`` is raised by
  exactly the process limit (inside bubblewrap's user namespace the kernel
  counts the sandbox's processes against it); a watchdog thread sums the
  resident memory of the sandbox's processes and the use of its tmpfs every
  0.1 s and kills the whole tree when the sum passes the limit.

``Confinement.kind`` says which one is in force (``supercourse doctor`` and the
grading report show it).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Confinement", "cgroup_kind", "descendants"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _mounts() -> list[tuple[str, str, str]]:
    """``(mount point, file system type, super options)`` for every mount of this process."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        parts, rest = left.split(), right.split()
        if len(parts) >= 5 and len(rest) >= 3:
            out.append((parts[4].replace("\\040", " "), rest[0], rest[2]))
    return out


def _own_cgroups() -> dict[str, str]:
    """``{controller or "" for v2: path}`` from ``/proc/self/cgroup``."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _v2_parent() -> Path | None:
    own = _own_cgroups().get("")
    for mount, fstype, _ in _mounts():
        if fstype != "cgroup2" or own is None:
            continue
        parent = Path(mount) / own.lstrip("/")
        try:
            available = (parent / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        if {"memory", "pids"} <= set(available) and os.access(parent, os.W_OK):
            return parent
    return None


def _v1_parents() -> tuple[Path, Path] | None:
    own = _own_cgroups()
    found: dict[str, Path] = {}
    for mount, fstype, options in _mounts():
        if fstype != "cgroup":
            continue
        for controller in ("memory", "pids"):
            if controller in options.split(",") and controller in own:
                base = Path(mount) / own[controller].lstrip("/")
                if base.is_dir() and os.access(base, os.W_OK):
                    found[controller] = base
    if {"memory", "pids"} <= set(found):
        return found["memory"], found["pids"]
    return None


def cgroup_kind() -> str:
    """``"cgroup2"``, ``"cgroup1"`` or ``"watchdog"``: how a sandbox would be bounded here."""
    if _v2_parent() is not None:
        return "cgroup2"
    if _v1_parents() is not None:
        return "cgroup1"
    return "watchdog"


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from ``/proc``'s parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _user_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


@dataclass
class Confinement:
    """The bounds of one worker's process tree (see the module docstring).

    Call :meth:`enter` in the child before it execs (``preexec_fn``), :meth:`watch` once the
    process runs, :meth:`kill` to end the whole tree, :meth:`close` to remove the group.
    """

    memory_bytes: int
    processes: int
    kind: str = "watchdog"
    groups: list[Path] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    exceeded: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _pid: int | None = None
    _nproc_base: int = 0

    @classmethod
    def create(cls, name: str, memory_bytes: int, processes: int, tmpfs: list[str] = (), mode: str | None = None) -> "Confinement":
        """A confinement with its group made and its limits written; ``mode`` forces a kind (tests)."""
        self = cls(memory_bytes, processes, tmpfs=list(tmpfs))
        wanted = mode or cgroup_kind()
        if wanted == "cgroup2" and (parent := _v2_parent()) is not None:
            try:
                group = parent / name
                group.mkdir()
                self.groups = [group]
                _write(group / "memory.max", str(memory_bytes))
                if (group / "memory.swap.max").exists():
                    _write(group / "memory.swap.max", "0")
                _write(group / "pids.max", str(processes))
                self.kind = "cgroup2"
                return self
            except OSError:
                self.close()
        if wanted in ("cgroup2", "cgroup1") and (parents := _v1_parents()) is not None:
            try:
                memory, pids = parents[0] / name, parents[1] / name
                for g in (memory, pids):
                    g.mkdir()
                    self.groups.append(g)
                _write(memory / "memory.limit_in_bytes", str(memory_bytes))
                if (memory / "memory.memsw.limit_in_bytes").exists():
                    _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
                _write(pids / "pids.max", str(processes))
                self.kind = "cgroup1"
                return self
            except OSError:
                self.close()
        self.kind = "watchdog"
        return self

    # ------------------------------------------------------------------ in the child, before exec
    def enter(self) -> None:
        """Join the group (or, for the watchdog, set the per-process limits); runs in the new process."""
        import resource

        for group in self.groups:
            _write(group / "cgroup.procs", "0")
        if self.kind == "watchdog":
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
            # A root grader's worker drops to a fresh uid, which starts at no processes; an unprivileged
            # grader's is raised by exactly the sandbox's allowance (its user namespace counts against it).
            n = self._nproc_base + self.processes
            resource.setrlimit(resource.RLIMIT_NPROC, (n, n))

    def prepare(self) -> None:
        """In the grader, just before starting the process: what :meth:`enter` needs to know."""
        self._nproc_base = _user_processes() if self.kind == "watchdog" and os.geteuid() != 0 else 0

    # ------------------------------------------------------------------ in the grader
    def watch(self, pid: int) -> None:
        """Start the watchdog thread (fallback only): kill the tree when its memory passes the limit."""
        self._pid = pid
        if self.kind != "watchdog":
            return
        threading.Thread(target=self._watchdog, name=f"supercourse-watchdog-{pid}", daemon=True).start()

    def _tmpfs_used(self) -> int:
        used = 0
        for mount in self.tmpfs:
            try:
                st = os.statvfs(f"/proc/{self._pid}/root{mount}")
                used += (st.f_blocks - st.f_bfree) * st.f_frsize
            except OSError:
                pass
        return used

    def _watchdog(self) -> None:
        while not self._stop.wait(0.1):
            pids = descendants(self._pid)
            if len(pids) > self.processes + 2:  # bubblewrap's own two processes, then the sandbox's
                self.exceeded = f"more than {self.processes} processes"
            elif sum(_rss(p) for p in pids) + self._tmpfs_used() > self.memory_bytes:
                self.exceeded = f"more than {self.memory_bytes / 2**30:g} GiB of memory"
            else:
                continue
            self.kill()
            return

    def memory_exceeded(self) -> bool:
        """Whether the kernel (or the watchdog) ended a process of the group for its memory."""
        if self.exceeded and "memory" in self.exceeded:
            return True
        for group in self.groups:
            for name, key in (("memory.events", "oom_kill"), ("memory.oom_control", "oom_kill")):
                try:
                    for line in (group / name).read_text().splitlines():
                        k, _, v = line.partition(" ")
                        if k == key and int(v) > 0:
                            return True
                except (OSError, ValueError):
                    pass
        return False

    def members(self) -> list[int]:
        pids: set[int] = set()
        for group in self.groups:
            try:
                pids |= {int(p) for p in (group / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        if not self.groups and self._pid is not None:
            pids |= set(descendants(self._pid)) if Path(f"/proc/{self._pid}").exists() else set()
        return sorted(pids)

    def kill(self) -> None:
        """End every process of the tree; returns when none is left (or after 10 s of trying)."""
        self._stop.set()
        if self.kind == "cgroup2" and (self.groups[0] / "cgroup.kill").exists():
            try:
                _write(self.groups[0] / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def close(self) -> None:
        """Kill what is left and remove the group."""
        if self.groups:
            self.kill()
        for group in reversed(self.groups):
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.groups = []
        self._stop.set()
