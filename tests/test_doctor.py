"""supercourse doctor: it times every way the lessons train, checks torch's threads, and warns when overloaded.

(The environment rows and the fast-path probe are tested in test_cli.py and test_first_hour.py.)
"""

from __future__ import annotations

import io
import os

import pytest
import torch
from rich.console import Console

from supercourse import doctor


def _render(table) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    return console.file.getvalue()


def test_probe_paths_times_each_lesson_path():
    probes = doctor.probe_paths(0.2, device="cpu")
    assert [p.workload for p in probes] == list(doctor.LESSON_PATHS)
    paths = {p.workload: p.path for p in probes}
    assert paths == {"L06": "analytic", "L08": "analytic", "L08F": "autograd", "L09": "analytic"}
    for p in probes:
        assert p.steps >= 3 and p.seconds > 0 and p.steps_per_second == pytest.approx(p.steps / p.seconds)
        assert p.threads >= 1
    with pytest.raises(ValueError, match="seconds"):
        doctor.probe_paths(0)


def test_thread_check_compares_torchs_threads_with_one():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check = doctor.thread_check(0.1)
    finally:
        torch.set_num_threads(old)
    assert check.threads == 2 and check.many_steps_per_second > 0 and check.one_steps_per_second > 0
    assert check.slowdown == pytest.approx(check.one_steps_per_second / check.many_steps_per_second)
    assert doctor.ThreadCheck(2, 10.0, 200.0).contends and not doctor.ThreadCheck(2, 180.0, 200.0).contends
    assert not doctor.ThreadCheck(1, 10.0, 200.0).contends


def test_an_overloaded_machine_gets_a_warning(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0 * cores, 0.0, 0.0))
    rows = dict(doctor.environment())
    assert rows["load average (1 min)"].startswith(f"{3.0 * cores:.2f} on {cores} cores (busy")
    assert "overloaded" in rows["warning"] and f"{cores} cores" in rows["warning"]
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert "warning" not in dict(doctor.environment())
    assert doctor.overloaded(2.5, 2) and not doctor.overloaded(1.9, 2)


def test_the_table_shows_every_path_and_warns_about_contending_threads():
    probes = [doctor.PathProbe("L08F", doctor.LESSON_PATHS["L08F"], "autograd", 144, 100, 2.0, 50.0, 1)]
    text = _render(doctor._table([("torch", "x")], None, probes, doctor.ThreadCheck(2, 5.0, 230.0)))
    assert "lesson 08, your own forward (autograd)" in text and "50 steps/s (144 instances, autograd, 1 thread)" in text
    assert "contend" in text and "46x slower" in text and "torch.set_num_threads(1)" in text
    quiet = _render(doctor._table([("torch", "x")], None, probes, doctor.ThreadCheck(2, 220.0, 230.0)))
    assert "no contention" in quiet and "warning" not in quiet
