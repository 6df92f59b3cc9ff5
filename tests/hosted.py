"""A hosted grader's container, simulated: its folders bound in place by bubblewrap, its CPU and memory
bounded by a cgroup (v1, as on the course's machines) when this machine lets the tests make one.

``run_in_container(binds, command, cpus, memory_bytes)`` runs ``command`` (a list) in a bubblewrap that sees
the whole machine plus ``binds`` (``{path inside: folder here}``, e.g. ``{"/autograder": tmp/"autograder"}``),
inside a fresh cgroup with a CPU quota of ``cpus`` and a memory limit of ``memory_bytes`` (swap included),
as Gradescope and PrairieLearn bound a submission's container. The grading process inside makes its own
sandbox (bubblewrap again) and its own cgroup below this one, as it would there.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_OWN = {}
for _line in Path("/proc/self/cgroup").read_text().splitlines() if Path("/proc/self/cgroup").exists() else []:
    _, _controllers, _path = _line.split(":", 2)
    for _c in _controllers.split(","):
        _OWN[_c] = _path


def _v1(controller: str) -> Path | None:
    base = Path("/sys/fs/cgroup") / controller / _OWN.get(controller, "/").lstrip("/")
    return base if base.is_dir() and os.access(base, os.W_OK) else None


def limits_available() -> bool:
    """Whether a cgroup v1 with a CPU quota and a memory limit can be made here."""
    return _v1("cpu") is not None and _v1("memory") is not None


@contextmanager
def _cgroups(cpus: float, memory_bytes: int) -> Iterator[list[Path]]:
    made = []
    if limits_available():
        name = f"supercourse-container-{uuid.uuid4().hex[:8]}"
        cpu, memory = _v1("cpu") / name, _v1("memory") / name
        for path in (cpu, memory):
            path.mkdir()
            made.append(path)
        (cpu / "cpu.cfs_period_us").write_text("100000")
        (cpu / "cpu.cfs_quota_us").write_text(str(int(100000 * cpus)))
        (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
        swap = memory / "memory.memsw.limit_in_bytes"
        if swap.exists():
            try:
                swap.write_text(str(memory_bytes))
            except OSError:
                pass
    try:
        yield made
    finally:
        for path in made:
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), 9)
                    except OSError:
                        pass
                path.rmdir()
            except OSError:
                pass


def run_in_container(binds: dict[str, Path], command: list[str], cpus: float, memory_bytes: int,
                     env: dict[str, str] | None = None, timeout: float = 600,
                     until=None) -> subprocess.CompletedProcess:
    """Run ``command`` in the simulated container; ``until(proc)``, if given, is polled and may kill it early."""
    bwrap = ["bwrap", "--dev-bind", "/", "/", "--die-with-parent"]
    for inside, here in binds.items():
        bwrap += ["--bind", str(here), inside]
    full_env = dict(os.environ, SUPERCOURSE_PYTHON=sys.executable, **(env or {}))
    with _cgroups(cpus, memory_bytes) as groups:
        enter = "".join(f"echo $$ > {shlex.quote(str(g / 'cgroup.procs'))}; " for g in groups)
        script = f"{enter}exec {shlex.join(bwrap + ['--'] + command)}"
        proc = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=full_env)
        if until is not None:
            import time

            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if until():
                    proc.kill()
                    break
                time.sleep(0.2)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return subprocess.CompletedProcess(command, proc.returncode, out, "")
