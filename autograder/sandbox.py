"""Starting and talking to the worker that runs a learner's code, in a sandbox.

On Linux with bubblewrap (Debian's ``bubblewrap`` package) the worker runs:

* as an unprivileged uid of its own (when the grader is root), with no
  capabilities, in new user, pid, network, IPC and UTS namespaces: no network,
  no view of other processes;
* on a file system that holds only a read-only view of the system (``/usr``,
  ``/etc``, the Python installation and every directory of the grader's import
  path, the grading library copy) and the lesson's own files, read-only. Its
  only writable places are size-limited tmpfs mounts (its home and working
  directory ``/grading``, with ``/tmp`` in it, and ``/dev/shm``): nothing it
  writes reaches the grader's disk, and nothing is left to clean up. No course
  directory, gradebook, other submission, ``HOME`` or repository checkout is
  visible;
* inside one control group per worker (:mod:`autograder.confine`) that bounds
  the memory and processes of the whole sandbox, tmpfs included; its whole
  process tree is killed when a request runs past its time limit, when the
  worker is closed, or when the grader exits.

Answers are refused by size before they are decoded (:mod:`autograder.limits`).

Without bubblewrap (macOS, no user namespaces) :func:`sandbox_available` is
False; the worker can still run out of process under the same limits
(``sandbox=False``), and callers must say so plainly.
"""

from __future__ import annotations

import collections
import errno
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from .confine import Confinement
from .limits import DEFAULT_LIMITS, GradingLimits
from .worker import wire

__all__ = ["Worker", "WorkerDied", "WorkerTimeout", "GraderFault", "Unsandboxed", "sandbox_available", "doctor_row",
           "import_dirs", "lesson_files", "SCRATCH"]

SCRATCH = "/grading"
_LIB = "/opt/supercourse-grading"
_UIDS = itertools.count()
_NAMES = itertools.count()
_LOG_TAIL = 8000


class WorkerDied(RuntimeError):
    """The worker process ended (crash, ``os._exit``, killed for a limit) before answering."""


class WorkerTimeout(WorkerDied):
    """A request ran past its time limit; the worker was killed."""


class GraderFault(RuntimeError):
    """Grading itself cannot work here (the worker cannot start, the sandbox is broken): never a learner's zero."""


class Unsandboxed(RuntimeError):
    """Grading was asked to run in a sandbox where none is available."""


@lru_cache(maxsize=None)
def sandbox_available() -> bool:
    """Whether bubblewrap (0.8 or later: size-limited tmpfs) can make a sandbox here (Linux, user namespaces allowed)."""
    if not sys.platform.startswith("linux") or shutil.which("bwrap") is None:
        return False
    try:
        unshare = ["--unshare-pid", "--unshare-net", "--unshare-ipc"] if os.geteuid() == 0 else ["--unshare-all"]
        proc = subprocess.run(
            ["bwrap", *unshare, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
             "--size", str(2**20), "--tmpfs", "/tmp", "true"],
            capture_output=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def doctor_row() -> str:
    """``supercourse doctor``'s grading-sandbox row: bubblewrap or not, and how a sandbox is bounded here."""
    from .confine import cgroup_kind

    if sandbox_available():
        bound = {"cgroup2": "a cgroup v2 per worker", "cgroup1": "a cgroup v1 per worker",
                 "watchdog": "per-process limits and a watchdog (no writable cgroup)"}[cgroup_kind()]
        return f"yes (bubblewrap; memory and processes bounded by {bound})"
    return ("no: supercourse check still grades, out of process but unsandboxed; instructors need it for "
            "nbgrader autograde (Linux: apt-get install bubblewrap; needs user namespaces or root)")


def _next_uid() -> int | None:
    """A uid of the worker's own (when the grader is root), distinct for each worker of this process."""
    if os.geteuid() != 0:
        return None
    return 200_000 + (os.getpid() * 64 + next(_UIDS)) % 700_000


def _course_roots() -> set[str]:
    """Folders that hold the course's own packages (a source checkout): never shown to the worker."""
    roots = set()
    for name in ("supercourse", "autograder"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            roots.add(str(Path(module.__file__).resolve().parents[1]))
    return roots


def import_dirs() -> list[str]:
    """Every directory of the grader's import path that holds packages: the worker sees the same ones, read-only.

    That is the site directories and whatever ``.pth`` files and ``PYTHONPATH`` add, less the working
    directory (a course folder, a workspace) and the folders that hold the course's own packages (the
    worker imports the grading library copy instead).
    """
    cwd = os.path.realpath(os.getcwd())
    hidden = _course_roots()
    out = []
    for entry in [*site.getsitepackages(), site.getusersitepackages(), *sys.path]:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in hidden or real == cwd or cwd.startswith(real.rstrip("/") + "/") or real == "/":
            continue
        if real not in out:
            out.append(real)
    return out


def _hidden_package_dirs() -> list[str]:
    """Installed (non-editable) copies of the course's packages: hidden inside the sandbox."""
    out = []
    for d in import_dirs():
        for name in ("supercourse", "autograder"):
            if os.path.isdir(os.path.join(d, name)):
                out.append(os.path.join(d, name))
    return out


def _readonly_dirs() -> list[str]:
    dirs = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", sys.base_prefix, sys.prefix, *import_dirs()]
    real = []
    for d in dirs:
        if os.path.isdir(d) and not os.path.islink(d):
            real.append(os.path.abspath(d))
        elif os.path.islink(d):
            real.append(d)  # e.g. /lib -> usr/lib on merged-/usr systems: recreated as a symlink
    out: list[str] = []
    for d in sorted(dict.fromkeys(real), key=len):
        if not any(d == o or d.startswith(o.rstrip("/") + "/") for o in out if not os.path.islink(o)):
            out.append(d)
    return out


_NOT_LESSON_FILES = (".py", ".pyc", ".ipynb")


def lesson_files(folder: Path | None) -> list[tuple[Path, str]]:
    """``(file, path relative to the scratch folder)`` for the lesson's own files a notebook may read (its figures).

    Notebooks, Python files (checks, mistakes, tests) and caches are never shown to the worker.
    """
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for path in sorted(Path(folder).rglob("*")):
        rel = path.relative_to(folder)
        if (path.is_file() and not path.is_symlink() and path.suffix not in _NOT_LESSON_FILES
                and not {"__pycache__", ".ipynb_checkpoints"} & set(rel.parts)):
            out.append((path, rel.as_posix()))
    return out


def remove_tree(path: Path) -> None:
    """Delete ``path`` whatever it holds: trees of any depth, folders without permissions, links (never followed)."""
    if not os.path.lexists(path):
        return
    # GNU chmod and rm walk with file descriptors (fts): no recursion limit, no path-length limit.
    subprocess.run(["chmod", "-R", "-f", "u+rwx", "--", str(path)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


class _LogTail:
    """Drains the worker's stdout/stderr pipe in a thread, keeping only the last few thousand bytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._tail: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._thread = threading.Thread(target=self._drain, name="supercourse-worker-log", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self._tail.append(chunk)
            self._size += len(chunk)
            while self._size > 2 * _LOG_TAIL and len(self._tail) > 1:
                self._size -= len(self._tail.popleft())
        try:
            os.close(self._fd)
        except OSError:
            pass

    def finish(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until everything the worker wrote has been read."""
        self._thread.join(timeout)

    def text(self) -> str:
        return b"".join(self._tail)[-_LOG_TAIL:].decode("utf-8", "replace")


class Worker:
    """One worker process serving a learner's namespace over two pipes.

    Args:
        lib: the grading library folder (from :func:`autograder.redact.build_library`).
        files: the lesson's folder; its own files (:func:`lesson_files`) are shown read-only in the
            worker's scratch folder, or None.
        sandbox: run under bubblewrap (True), or only out of process (False).
        limits: the bounds (:class:`~autograder.limits.GradingLimits`).
        confinement: force a kind of :class:`~autograder.confine.Confinement` (tests); None picks the best here.
        seed: where the learner's global random streams (torch, random, NumPy) start; a fresh one by default.

    The worker is started and answering when the constructor returns; a worker that cannot start raises
    :class:`GraderFault` (no learner code has run yet, so it is never the learner's fault).
    """

    def __init__(self, lib: Path, files: Path | None = None, sandbox: bool = True,
                 limits: GradingLimits = DEFAULT_LIMITS, confinement: str | None = None, seed: int | None = None) -> None:
        if sandbox and not sandbox_available():
            raise Unsandboxed("bubblewrap is not available here (install Debian's `bubblewrap`; needs Linux user namespaces)")
        self.sandbox = sandbox
        self.limits = limits
        self.proc: subprocess.Popen | None = None
        name = f"supercourse-worker-{os.getpid()}-{next(_NAMES)}"
        self.confinement = Confinement.create(name, limits.memory_bytes, limits.processes,
                                              tmpfs=[SCRATCH] if sandbox else [], mode=confinement)
        self.scratch: Path | None = None
        if not sandbox:  # out of process only: a scratch folder on the grader's disk, removed by close()
            self.scratch = Path(tempfile.mkdtemp(prefix="supercourse-worker-"))
            for path, rel in lesson_files(files):
                (self.scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, self.scratch / rel)
            self.scratch.chmod(0o700)
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        log_r, log_w = os.pipe()
        self._log = _LogTail(log_r)
        keep = [req_r, resp_w]
        home = SCRATCH if sandbox else str(self.scratch)
        cmd = [sys.executable, "-I", "-S", f"{_LIB if sandbox else lib}/grading_worker/boot.py",
               str(_LIB if sandbox else lib), json.dumps(import_dirs()), str(req_r), str(resp_w)]
        env = {
            "PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SUPERCOURSE_GRADING": "1",
            "MPLCONFIGDIR": f"{home}/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
            "IPYTHONDIR": f"{home}/.ipython", "TMPDIR": "/tmp" if sandbox else home,
        }
        uid = _next_uid() if sandbox else None
        if sandbox:
            cmd = self._bubblewrap(lib, files, env, uid) + cmd
        limits_ = self.limits
        confinement_ = self.confinement
        confinement_.prepare()

        def preexec() -> None:
            import resource

            confinement_.enter()
            resource.setrlimit(resource.RLIMIT_CPU, (limits_.cpu_seconds, limits_.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits_.disk_bytes, limits_.disk_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log_w, stderr=log_w,
                pass_fds=keep, start_new_session=True, preexec_fn=preexec,
                cwd=home if not sandbox else "/", env=None if sandbox else env,
            )
        except OSError as err:
            for fd in (req_r, resp_w, log_w, self._req_w, self._resp_r):
                os.close(fd)
            self.confinement.close()
            raise GraderFault(f"the grading worker could not be started: {err}") from None
        finally:
            pass
        for fd in (req_r, resp_w, log_w):
            os.close(fd)
        self.confinement.watch(self.proc.pid)
        os.set_blocking(self._req_w, False)
        os.set_blocking(self._resp_r, False)
        self._buffer = bytearray()
        self._started(secrets.randbits(63) if seed is None else seed)

    def _bubblewrap(self, lib: Path, files: Path | None, env: dict[str, str], uid: int | None) -> list[str]:
        limits = self.limits
        if uid is not None:
            # Root grader: bubblewrap (as root) builds the namespaces and mounts, then setpriv drops to
            # the worker's own uid with no capabilities and no way to regain privileges.
            args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        else:
            args = ["bwrap", "--unshare-all", "--unshare-user", "--cap-drop", "ALL", "--disable-userns"]
        args += ["--die-with-parent", "--new-session", "--proc", "/proc"]
        # Folders bubblewrap makes on the way to a mount point would be private to root: make them traversable.
        parents = sorted({str(a) for d in [*_readonly_dirs(), _LIB] for a in Path(d).parents if str(a) != "/"}, key=len)
        for parent in parents:
            args += ["--perms", "0755", "--dir", parent]
        for d in _readonly_dirs():
            args += ["--symlink", os.readlink(d), d] if os.path.islink(d) else ["--ro-bind", d, d]
        for d in _hidden_package_dirs():
            args += ["--tmpfs", d]
        args += ["--ro-bind", str(lib), _LIB]
        # Every writable place is a size-limited tmpfs: the scratch folder (home and working directory), /tmp
        # (made first, so that import folders under /tmp are bound on top of it) ...
        args = args[:1] + ["--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", "/tmp"] + args[1:]
        args += ["--perms", "1777", "--size", str(limits.disk_bytes), "--tmpfs", SCRATCH]
        # ... and /dev/shm; /dev itself and /run are read-only.
        args += ["--dev", "/dev", "--perms", "1777", "--size", str(max(limits.disk_bytes // 10, 2**20)),
                 "--tmpfs", "/dev/shm", "--remount-ro", "/dev", "--tmpfs", "/run", "--remount-ro", "/run"]
        for path, rel in lesson_files(files):
            args += ["--ro-bind", str(path), f"{SCRATCH}/{rel}"]
        args += ["--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
        for k, v in env.items():
            args += ["--setenv", k, v]
        drop = []
        if uid is not None:
            drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                    "--bounding-set=-all", "--inh-caps=-all"]
        return args + ["--"] + drop

    def _started(self, seed: int) -> None:
        """Wait for the worker's first answer; a worker that cannot start is the grader's fault, not the learner's."""
        try:
            answer = self.request({"op": "ping", "seed": seed}, self.limits.startup_seconds)
        except (WorkerDied, wire.WireError) as err:
            self._log.finish(2.0)
            log = self.log().strip()
            self.close()
            raise GraderFault(
                f"the grading worker could not start ({err}). No learner code had run, so no grade was written. "
                f"What it printed: {log[-1500:] or '(nothing)'}. Run `supercourse doctor` to see what the sandbox "
                "lacks (every folder of Python's import path must be readable; torch and IPython must import)."
            ) from None
        ok = answer.get("ok") if isinstance(answer, dict) else None
        if not isinstance(ok, dict) or ok.get("ready") is not True:
            self.close()
            raise GraderFault(f"the grading worker answered its start-up check wrongly: {str(answer)[:300]}")

    # ------------------------------------------------------------------ I/O with deadlines
    def _write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout("timed out sending a request")
            _, ready, _ = select.select([], [self._req_w], [], min(left, 1.0))
            if not ready:
                if self.proc.poll() is not None:
                    raise WorkerDied(self._death())
                continue
            try:
                n = os.write(self._req_w, view[: 1 << 16])
            except BrokenPipeError:
                raise WorkerDied(self._death()) from None
            except BlockingIOError:
                continue
            view = view[n:]

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self._buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout("timed out waiting for an answer")
            ready, _, _ = select.select([self._resp_r], [], [], min(left, 1.0))
            if not ready:
                continue
            try:
                chunk = os.read(self._resp_r, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise WorkerDied(self._death())
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def _death(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if self.confinement.exceeded:
            return f"the process running your code was stopped: it used {self.confinement.exceeded}"
        if self.confinement.memory_exceeded():
            return (f"the process running your code was stopped: it used more than "
                    f"{self.limits.memory_bytes / 2**30:g} GiB of memory")
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return f"the process running your code was killed by {name}"
        return f"the process running your code exited (status {code})"

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        """Send one request and wait up to ``timeout`` seconds for its answer (killing the worker on time-out).

        The answer's size is checked against the limits before any of it is decoded.
        """
        if self.proc.poll() is not None:
            raise WorkerDied(self._death())
        deadline = time.monotonic() + timeout
        data = wire.frame(message)
        limits = self.limits
        try:
            self._write(data, deadline)
            n_json, n_blob = wire.header(self._read(wire.HEADER_BYTES, deadline),
                                         limits.answer_json_bytes, limits.answer_blob_bytes)
            raw_body = self._read(n_json, deadline)
            raw_blob = self._read(n_blob, deadline) if n_blob else b""
        except WorkerTimeout:
            self.kill()
            raise
        except wire.WireError:
            self.kill()  # an answer too large to read: the worker is ended rather than drained
            raise
        return wire.parse(raw_body, raw_blob, max_tensors=limits.answer_tensors)

    def log(self) -> str:
        """What the worker wrote on its own stdout/stderr (the last few thousand characters)."""
        return self._log.text()

    def kill(self) -> None:
        """End the worker's whole process tree."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.confinement.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Kill the worker's whole tree and remove what it left (its group; its scratch folder when unsandboxed)."""
        self.kill()
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError as err:
                if err.errno != errno.EBADF:
                    raise
        self.confinement.close()
        if self.scratch is not None:
            remove_tree(self.scratch)
            self.scratch = None

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
