"""Starting and talking to the worker that runs a learner's code, in a sandbox.

On Linux with bubblewrap (Debian's ``bubblewrap`` package) the worker runs:

* as an unprivileged uid of its own (when the grader is root), with no
  capabilities, in new user, pid, network, IPC and UTS namespaces: no network,
  no view of other processes;
* on a file system that holds only a read-only view of the system (``/usr``,
  ``/etc``, the Python installation and its site-packages, the grading
  library copy) and one private writable scratch folder, which is also its
  home, ``/tmp`` and working directory: no course directory, gradebook, other
  submission, ``HOME`` or repository checkout is visible;
* under limits on address space, CPU time, file size and processes; its whole
  process tree is killed when it ends, when a request runs past its time limit,
  or when the grader exits.

Without bubblewrap (macOS, no user namespaces) :func:`sandbox_available` is
False; the worker can still run out of process under the same limits
(``sandbox=False``), and callers must say so plainly.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import select
import shutil
import signal
import site
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .worker import wire

__all__ = ["Limits", "Worker", "WorkerDied", "WorkerTimeout", "sandbox_available", "Unsandboxed"]

_SCRATCH = "/grading"
_LIB = "/opt/supercourse-grading"
_UIDS = itertools.count()


class WorkerDied(RuntimeError):
    """The worker process ended (crash, ``os._exit``, killed for a limit) before answering."""


class WorkerTimeout(WorkerDied):
    """A request ran past its time limit; the worker was killed."""


class Unsandboxed(RuntimeError):
    """Grading was asked to run in a sandbox where none is available."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one worker process tree."""

    memory_bytes: int = 6 * 2**30
    cpu_seconds: int = 900
    file_bytes: int = 256 * 2**20
    processes: int = 256


@lru_cache(maxsize=None)
def sandbox_available() -> bool:
    """Whether bubblewrap can make a sandbox here (Linux, user namespaces allowed)."""
    if not sys.platform.startswith("linux") or shutil.which("bwrap") is None:
        return False
    try:
        unshare = ["--unshare-pid", "--unshare-net", "--unshare-ipc"] if os.geteuid() == 0 else ["--unshare-all"]
        proc = subprocess.run(
            ["bwrap", *unshare, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def _next_uid() -> int | None:
    """A uid of the worker's own (when the grader is root), distinct for each worker of this process."""
    if os.geteuid() != 0:
        return None
    return 200_000 + (os.getpid() * 64 + next(_UIDS)) % 700_000


def _site_dirs() -> list[str]:
    dirs = list(site.getsitepackages()) + [site.getusersitepackages()]
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def _hidden_package_dirs() -> list[str]:
    """Installed (non-editable) copies of the course's packages: hidden inside the sandbox."""
    out = []
    for d in _site_dirs():
        for name in ("supercourse", "autograder"):
            if os.path.isdir(os.path.join(d, name)):
                out.append(os.path.join(d, name))
    return out


def _readonly_dirs() -> list[str]:
    dirs = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", sys.base_prefix, sys.prefix, *_site_dirs()]
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


class Worker:
    """One worker process serving a learner's namespace over two pipes.

    Args:
        lib: the grading library folder (from :func:`autograder.redact.build_library`).
        files: a folder whose files are copied into the worker's scratch folder
            (the lesson's own files, e.g. its figures), or None.
        sandbox: run under bubblewrap (True), or only out of process (False).
        limits: resource limits.
    """

    def __init__(self, lib: Path, files: Path | None = None, sandbox: bool = True, limits: Limits = Limits()) -> None:
        if sandbox and not sandbox_available():
            raise Unsandboxed("bubblewrap is not available here (install Debian's `bubblewrap`; needs Linux user namespaces)")
        self.sandbox = sandbox
        self.limits = limits
        self.scratch = Path(tempfile.mkdtemp(prefix="supercourse-worker-"))
        if files is not None and Path(files).is_dir():
            for path in Path(files).rglob("*"):
                rel = path.relative_to(files)
                if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb" and ".ipynb_checkpoints" not in rel.parts:
                    (self.scratch / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, self.scratch / rel)
        # Unsandboxed (no bubblewrap), the worker keeps the grader's user: it is out of process, not
        # confined, and says so; dropping to a fresh uid there would also lose the interpreter (often under ~).
        uid = _next_uid() if sandbox else None
        if uid is not None:
            for p in [self.scratch, *self.scratch.rglob("*")]:
                os.chown(p, uid, uid)
        self.scratch.chmod(0o700)
        req_r, self._req_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        self._log = open(self.scratch.with_name(self.scratch.name + ".log"), "wb")
        keep = [req_r, resp_w]
        cmd = [sys.executable, "-I", "-S", f"{_LIB if sandbox else lib}/grading_worker/boot.py",
               str(_LIB if sandbox else lib), json.dumps(_site_dirs()), str(req_r), str(resp_w)]
        cwd = str(self.scratch)
        env = {
            "PATH": "/usr/bin:/bin", "HOME": _SCRATCH if sandbox else str(self.scratch), "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SUPERCOURSE_GRADING": "1",
            "MPLCONFIGDIR": f"{_SCRATCH if sandbox else self.scratch}/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
            "IPYTHONDIR": f"{_SCRATCH if sandbox else self.scratch}/.ipython", "TMPDIR": _SCRATCH if sandbox else str(self.scratch),
        }
        if sandbox:
            if uid is not None:
                # Root grader: bubblewrap (as root) builds the namespaces and mounts, then setpriv drops to
                # the worker's own uid with no capabilities and no way to regain privileges.
                args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
            else:
                args = ["bwrap", "--unshare-all", "--cap-drop", "ALL"]
            args += ["--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]
            # Folders bubblewrap makes on the way to a mount point would be private to root: make them traversable.
            parents = sorted({str(a) for d in [*_readonly_dirs(), _LIB, _SCRATCH] for a in Path(d).parents if str(a) != "/"}, key=len)
            for parent in parents:
                args += ["--perms", "0755", "--dir", parent]
            for d in _readonly_dirs():
                args += ["--symlink", os.readlink(d), d] if os.path.islink(d) else ["--ro-bind", d, d]
            for d in _hidden_package_dirs():
                args += ["--tmpfs", d]
            args += ["--ro-bind", str(lib), _LIB, "--bind", str(self.scratch), _SCRATCH, "--chdir", _SCRATCH, "--clearenv"]
            for k, v in env.items():
                args += ["--setenv", k, v]
            drop = []
            if uid is not None:
                drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                        "--bounding-set=-all", "--inh-caps=-all"]
            cmd = args + ["--"] + drop + cmd
        limits = self.limits

        def preexec() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
            resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if uid is not None:
                # Counted against the worker's own uid once it drops to it (bubblewrap itself stays root).
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            pass_fds=keep, start_new_session=True, preexec_fn=preexec, cwd=cwd, env=None if sandbox else env,
        )
        for fd in (req_r, resp_w):
            os.close(fd)
        os.set_blocking(self._req_w, False)
        os.set_blocking(self._resp_r, False)
        self._buffer = b""

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
                self.proc.wait(timeout=10)
                raise WorkerDied(self._death())
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def _death(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            return f"the process running your code was killed by {name}"
        return f"the process running your code exited (status {code})"

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        """Send one request and wait up to ``timeout`` seconds for its answer (killing the worker on time-out)."""
        if self.proc.poll() is not None:
            raise WorkerDied(self._death())
        deadline = time.monotonic() + timeout
        blobs: dict[str, torch.Tensor] = {}
        body = json.dumps(wire.encode(message, blobs)).encode("utf-8")
        blob = b""
        if blobs:
            from safetensors.torch import save

            blob = save(blobs)
        try:
            self._write(struct.pack(">QQ", len(body), len(blob)) + body + blob, deadline)
            n_json, n_blob = struct.unpack(">QQ", self._read(16, deadline))
            if n_json > wire.MAX_JSON or n_blob > wire.MAX_BLOB:
                raise wire.WireError(f"answer too large ({n_json} + {n_blob} bytes)")
            raw_body = self._read(n_json, deadline)
            raw_blob = self._read(n_blob, deadline) if n_blob else b""
        except WorkerTimeout:
            self.kill()
            raise
        return _decode_answer(raw_body, raw_blob)

    def log(self) -> str:
        """What the worker wrote on its own stdout/stderr (the last 4000 characters)."""
        try:
            return Path(self._log.name).read_bytes()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """End the worker's whole process tree."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Kill the worker and delete its scratch folder."""
        self.kill()
        for fd in (self._req_w, self._resp_r):
            try:
                os.close(fd)
            except OSError as err:
                if err.errno != errno.EBADF:
                    raise
        self._log.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_answer(raw_body: bytes, raw_blob: bytes) -> Any:
    try:
        body = json.loads(raw_body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise wire.WireError(f"answer is not JSON: {err}") from None
    blobs: dict[str, torch.Tensor] = {}
    if raw_blob:
        from safetensors.torch import load

        try:
            blobs = load(raw_blob)
        except Exception as err:
            raise wire.WireError(f"bad tensor data: {err}") from None
    return wire.decode(body, blobs)
