"""Every resource a submission can touch is bounded per submission, from outside: each bound proven by an attack.

These drive one sandboxed worker directly (what :func:`autograder.grader.grade_notebook` starts for a
submission) with small limits, in every way the sandbox can be bounded here: a control group (as root),
the fallback watchdog (forced), and an unprivileged grader (as ``nobody``, with the fallback). The whole
catalogue of hostile notebooks is in ``test_grading_attacks.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from autograder.confine import cgroup_kind
from autograder.limits import GradingLimits
from autograder.redact import build_library
from autograder.sandbox import GraderFault, Worker, WorkerDied, remove_tree, sandbox_available
from autograder.worker import wire
from processes import alive_with

pytestmark = pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")

MiB = 2**20
LIMITS = GradingLimits(memory_bytes=768 * MiB, processes=48, disk_bytes=32 * MiB, answer_json_bytes=MiB)
KINDS = [k for k in ("cgroup1", "cgroup2") if cgroup_kind() == k] + ["watchdog"]


def _run(worker: Worker, source: str, seconds: float = 30) -> dict:
    return worker.request({"op": "run_cell", "source": textwrap.dedent(source), "timeout": seconds}, seconds + 5)["ok"]


@pytest.fixture(scope="module")
def lib():
    return build_library(())


@pytest.mark.parametrize("kind", KINDS)
def test_memory_counts_every_process_of_the_sandbox(lib, kind):
    """Two processes, each under the limit, together over it: the sandbox as a whole is bounded."""
    with Worker(lib, limits=LIMITS, confinement=kind) as worker:
        assert worker.confinement.kind == kind
        try:
            out = _run(worker, """
                import subprocess, sys, time
                hogs = [subprocess.Popen([sys.executable, '-c', 'x = bytearray(500 * 2**20); import time; time.sleep(30)'])
                        for _ in range(2)]
                time.sleep(6)
                print('alive', sum(h.poll() is None for h in hogs))
            """)
            assert "alive 1" in out["stdout"] or "alive 0" in out["stdout"], out
        except WorkerDied as err:  # the watchdog ends the whole sandbox, and says why
            assert kind == "watchdog" and "memory" in str(err), err


@pytest.mark.parametrize("kind", KINDS)
def test_tmpfs_counts_against_memory_and_disk_is_bounded(lib, kind):
    with Worker(lib, limits=LIMITS, confinement=kind) as worker:
        out = _run(worker, """
            import os, shutil
            for where in ('/grading/fill', '/tmp/fill', '/dev/shm/fill'):
                try:
                    with open(where, 'wb') as f:
                        while True:
                            f.write(b'x' * 2**20)
                except OSError as err:
                    print(where, 'full', err.errno, os.path.getsize(where) // 2**20)
            for ro in ('/fill', '/run/fill', '/etc/fill', '/dev/fill'):
                try:
                    open(ro, 'w')
                    print('WROTE', ro)
                except OSError:
                    print('read-only', ro)
        """)
        text = out["stdout"]
        assert "WROTE" not in text, text
        sizes = {line.split()[0]: int(line.split()[-1]) for line in text.splitlines() if " full " in line}
        assert sizes["/grading/fill"] <= 32 and sizes["/tmp/fill"] <= 32 and sizes["/dev/shm/fill"] <= 4, sizes


@pytest.mark.parametrize("kind", KINDS)
def test_processes_are_bounded_and_none_outlives_the_worker(lib, kind):
    marker = f"supercourse-bound-{uuid.uuid4().hex[:8]}"
    with Worker(lib, limits=LIMITS, confinement=kind) as worker:
        out = _run(worker, f"""
            import shutil, subprocess, sys
            kids = []
            try:
                for _ in range(500):
                    kids.append(subprocess.Popen(['{marker}', '300'], executable=shutil.which('sleep')))
            except OSError:
                pass
            print('started', len(kids))
            for kid in kids[:5]:
                kid.kill()
                kid.wait()
            subprocess.Popen(['sh', '-c', 'setsid "$0" -c "import time; time.sleep(300)" {marker}-daemon &',
                              sys.executable])  # a detached daemon
        """)
        started = int(out["stdout"].split("started")[1])
        assert 0 < started < LIMITS.processes, out
        alive = alive_with(marker)  # (the kernel may have ended some of them already: a cgroup's OOM killer)
        assert alive, "no process of the submission was found alive inside the worker: the test would prove nothing"
    assert alive_with(marker) == [], f"a process of the submission outlived its worker ({len(alive)} were alive in it)"


def test_answers_are_refused_by_size_before_they_are_decoded(lib):
    with Worker(lib, limits=LIMITS) as worker:
        _run(worker, "def big():\n    return [[0.5] * 1000] * 2000\n")
        with pytest.raises(wire.WireError, match="too large"):
            worker.request({"op": "call", "target": "big", "args": [], "kwargs": {}}, 60)
        assert len(worker._buffer) < 64 * 1024, "the answer's body was never read"


def test_a_worker_that_cannot_start_is_the_graders_fault(lib, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with pytest.raises(GraderFault, match="no grade was written"):
        Worker(lib, limits=LIMITS)


def test_every_import_folder_is_seen_by_the_worker(lib, monkeypatch):
    """Packages reached through PYTHONPATH or a .pth file, outside the site directories, import in the sandbox."""
    folder = Path(tempfile.mkdtemp(prefix="supercourse-extra-"))  # readable by the worker's own uid
    folder.chmod(0o755)
    try:
        (folder / "extra_course_module.py").write_text("VALUE = 42\n")
        (folder / "extra_course_module.py").chmod(0o644)
        monkeypatch.syspath_prepend(str(folder))
        with Worker(lib, limits=LIMITS) as worker:
            out = _run(worker, "import extra_course_module\nprint(extra_course_module.VALUE)")
        assert out["stdout"].strip() == "42", out
    finally:
        shutil.rmtree(folder)


def test_unsandboxed_clean_up_survives_deep_trees_odd_permissions_and_links(tmp_path):
    root = tmp_path / "scratch"
    deep = root / "t"
    deep.mkdir(parents=True)
    os.chdir(deep)  # build 3000 levels with relative paths (an absolute one would pass PATH_MAX)
    try:
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(tmp_path)
    (root / "locked" / "inner").mkdir(parents=True)
    (root / "locked" / "inner" / "f").write_text("x")
    (root / "locked" / "inner").chmod(0)
    (root / "locked").chmod(0)
    outside = tmp_path / "keep-me"
    outside.write_text("precious")
    (root / "link").symlink_to(outside)
    (root / "link-dir").symlink_to(tmp_path)
    os.mkfifo(root / "fifo")
    remove_tree(root)
    assert not root.exists()
    assert outside.read_text() == "precious", "a link was followed"


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3.11").exists(),
                    reason="needs root (to become nobody) and Debian's python3.11")
def test_an_unprivileged_grader_bounds_processes_and_memory_too():
    """As ``nobody`` there is no control group to write: the fallback bounds the sandbox all the same."""
    tmp_path = Path(tempfile.mkdtemp(prefix="supercourse-unprivileged-"))  # pytest's own are private to root
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir())
    repo = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{repo!r}]
        from autograder.limits import GradingLimits
        from autograder.redact import build_library
        from autograder.sandbox import Worker, WorkerDied
        limits = GradingLimits(memory_bytes=768 * 2**20, processes=48, disk_bytes=32 * 2**20)
        out = {{}}
        with Worker(build_library(()), limits=limits) as w:
            out["kind"] = w.confinement.kind
            r = w.request({{"op": "run_cell", "timeout": 30, "source":
                "import subprocess\\nk = []\\ntry:\\n    [k.append(subprocess.Popen(['sleep', '60'])) for _ in range(500)]\\n"
                "except OSError:\\n    pass\\nprint(len(k))"}}, 35)["ok"]
            out["processes"] = int(r["stdout"])
        with Worker(build_library(()), limits=limits) as w:
            try:
                w.request({{"op": "run_cell", "timeout": 30, "source":
                    "import subprocess, sys, time\\nh = [subprocess.Popen([sys.executable, '-c', "
                    "'x = bytearray(500 * 2**20); import time; time.sleep(30)']) for _ in range(2)]\\ntime.sleep(6)"}}, 35)
                out["memory"] = "not stopped"
            except WorkerDied as err:
                out["memory"] = str(err)
        print(json.dumps(out))
    """))
    tmp_path.chmod(0o755)
    script.chmod(0o644)
    home = tmp_path / "home"
    home.mkdir(mode=0o777)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": site}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3.11",
                           str(script)], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["kind"] == "watchdog"
    assert out["processes"] < 48
    assert "memory" in out["memory"], out
