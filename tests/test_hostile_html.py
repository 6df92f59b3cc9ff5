"""Nothing from a notebook runs in anyone's browser: formgrader and feedback, in a real browser.

A student hands in a notebook whose markdown, raw cells, attachments, outputs, metadata and extra files
are full of scripts (:data:`attacks.XSS_MARKDOWN`): scripts that would change scores through formgrader's
API and start a kernel as the instructor. After ``nbgrader autograde``, the instructor opens that
submission in formgrader (a real Jupyter server with nbgrader's extension, in Debian's Chromium driven by
Playwright), clicks every link, and opens the feedback file. No script of the student's runs
(``window.__pwned`` stays unset, no dialog opens, no kernel starts), no score in the gradebook changes,
and the student's own files are not served.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from attacks import FULL, LESSON, STUDENTS, write
from autograder.command import init_course
from autograder.sandbox import sandbox_available
from nbgrader_cli import nbgrader as _nbgrader
from browser_tools import CHROMIUM, LAUNCH_ARGS, jupyter_server, need_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)"),
]


def _scores(course: Path) -> dict[str, tuple]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "supercourse") as gb:
        for student in ("xss-in-the-notebook", "zz-honest"):
            nb = gb.find_submission_notebook(LESSON, LESSON, student)
            out[student] = tuple((g.name, g.auto_score, g.manual_score) for g in sorted(nb.grades, key=lambda g: g.name))
    return out


def _submission_id(course: Path, student: str) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "supercourse") as gb:
        return gb.find_submission_notebook(LESSON, LESSON, student).id


def test_no_script_of_a_submission_runs_in_formgrader_or_feedback(tmp_path):
    need_browser()
    from playwright.sync_api import sync_playwright

    course = init_course(tmp_path / "course")
    _nbgrader(course, "generate_assignment", LESSON)
    release = course / "release" / LESSON / f"{LESSON}.ipynb"
    solution = course / "source" / LESSON / f"{LESSON}.ipynb"
    for s in STUDENTS:
        if s.name in ("xss-in-the-notebook", "zz-honest"):
            write(s, release, solution, course / "submitted" / s.name / LESSON)
    _nbgrader(course, "autograde", LESSON)
    _nbgrader(course, "generate_feedback", LESSON)
    before = _scores(course)
    assert sum(g[1] or 0 for g in before["xss-in-the-notebook"]) == FULL

    token = secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"))
    with jupyter_server("jupyter_server", [f"--ServerApp.root_dir={course}",
                                           "--ServerApp.jpserver_extensions={'nbgrader': True}"],
                        env, course, tmp_path / "server.log", token) as base:
        sid = _submission_id(course, "xss-in-the-notebook")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{base}/formgrader?token={token}")
            page.goto(f"{base}/formgrader/submissions/{sid}/")
            page.wait_for_load_state("networkidle")
            time.sleep(1)
            assert "My notes" in page.content(), "the learner's notes are shown (sanitised, not dropped)"
            ran: list[str] = []

            def pwned() -> None:
                value = page.evaluate("() => window.__pwned === undefined ? null : String(window.__pwned)")
                if value is not None:
                    ran.append(value)

            pwned()
            # Every link in the rendered notebook (formgrader's own buttons, which may rightly open a kernel, are
            # outside it).
            n_links = page.locator("#notebook-container a").count()
            for i in range(min(n_links, 80)):
                try:
                    page.locator("#notebook-container a").nth(i).click(timeout=2000, no_wait_after=True)
                    time.sleep(0.2)
                    pwned()
                except Exception:  # noqa: BLE001 - hidden or detached links, or a page that went away
                    pass
                if page.url.split("#")[0] != f"{base}/formgrader/submissions/{sid}/":
                    page.goto(f"{base}/formgrader/submissions/{sid}/")
                    pwned()
            assert ran == [], f"a learner's script ran in formgrader: {ran}"
            assert dialogs == []
            # The student's own files beside the notebook are not served.
            for name in ("evil.html", "evil.svg"):
                response = page.request.get(f"{base}/formgrader/submissions/{sid}/{name}")
                assert response.status == 404, (name, response.status)
            # The feedback file, opened as the instructor (or the student) would.
            feedback = course / "feedback" / "xss-in-the-notebook" / LESSON / f"{LESSON}.html"
            page.goto(feedback.as_uri())
            page.wait_for_load_state("load")
            assert "My notes" in page.content()
            time.sleep(1)
            pwned()
            assert ran == [], f"a learner's script ran in the feedback: {ran}"
            assert dialogs == []
            browser.close()
        with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
            assert r.read().strip() == b"[]", "no kernel was started"
    assert _scores(course) == before, "no score changed"
