"""A learner's first exercise in a real browser (issue 12): JupyterLab under headless Chromium.

The learner's path, end to end: ``supercourse start`` makes a workspace, JupyterLab serves it,
Chromium (Debian's ``chromium``, driven by Playwright; Playwright's own browsers are never
downloaded) opens lesson 01, runs the setup cell, writes a wrong and then a right
``generate_batch``, runs the check cell under it each time, and reads what the learner reads:
``[FAIL] ... N/8 points`` and then ``[PASS] ... 8/8 points``.

Nothing here needs a GPU; it takes about a minute on two CPU cores. It is skipped (with the
reason) only where Chromium or Playwright is missing; CI installs both (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder.workspace import start_workspace

CHROMIUM = os.environ.get("SUPERCOURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LESSON = "01-sparse-features"
SETUP_CELL, EXERCISE_CELL, CHECK_CELL = 1, 4, 5  # indices in lessons/01-sparse-features (asserted below)
WAIT_MS = 150_000
"""How long one step may take before the test says which step hung (on a very busy machine)."""

WRONG = '''def generate_batch(batch_size, feature_probability, generator=None):
    p = feature_probability
    # wrong: every feature is on (no sparsity)
    return torch.rand((batch_size, *p.shape), generator=generator, device=p.device, dtype=p.dtype)
'''
RIGHT = '''def generate_batch(batch_size, feature_probability, generator=None):
    p = feature_probability
    shape = (batch_size, *p.shape)
    active = torch.rand(shape, generator=generator, device=p.device, dtype=p.dtype) < p
    values = torch.rand(shape, generator=generator, device=p.device, dtype=p.dtype)
    return values * active
'''

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _jupyter_env(tmp: Path) -> dict[str, str]:
    """A JupyterLab of its own: fresh config, settings and workspaces under ``tmp``.

    The dev install has nbgrader (the tests use it); a learner's install does not, so its
    lab extensions are disabled here to show what learners see. Cells are all kept in the
    page (no windowing), so each can be found by its index.
    """
    config = tmp / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps({"disabledExtensions": {
        "@jupyter/nbgrader": True, "@jupyterlab/apputils-extension:announcements": True,
    }}))
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"nbgrader": False}}}
    ))
    settings = tmp / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config), JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    for key in ("SUPERCOURSE_GRADING", "NBGRADER_EXECUTION"):
        env.pop(key, None)
    return env


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a learner workspace; yields ``(base url, token, workspace)``."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra has it)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (CI does)")
    work = tmp_path / "work"
    start_workspace(work)
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
        f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
    ]
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, env=_jupyter_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base, token, work
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        print("JupyterLab's log (shown only when the test fails):")
        print((tmp_path / "jupyterlab.log").read_text()[-4000:])


def _cell_sources(notebook: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]]


def test_learner_fails_then_passes_the_first_exercise_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    base, token, work = lab
    sources = _cell_sources(work / LESSON / f"{LESSON}.ipynb")
    assert sources[SETUP_CELL].startswith("SCALE = ")
    assert sources[EXERCISE_CELL].startswith("def generate_batch(") and "YOUR CODE HERE" in sources[EXERCISE_CELL]
    assert 'check("01.generate_batch", generate_batch)' in sources[CHECK_CELL]
    expect.set_options(timeout=WAIT_MS)
    start = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{base}/lab/tree/{LESSON}/{LESSON}.ipynb?token={token}")
        cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
        expect(cells.nth(CHECK_CELL)).to_be_visible()
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1)

        def run(index: int, source: str | None = None) -> None:
            cell = cells.nth(index)
            prompt = cell.locator(".jp-InputPrompt")
            cell.scroll_into_view_if_needed()
            cell.locator(".jp-InputArea-editor").click()
            expect(cell).to_have_class(re.compile(r"jp-mod-active"))
            if source is not None:  # what a learner does: select the cell's text, type over it
                page.keyboard.press("Control+a")
                page.keyboard.insert_text(source)
            before = prompt.inner_text()
            # On a busy machine a key press can land before the editor has focus; like a learner
            # who sees nothing happen, press again (running a cell twice changes nothing here).
            for _ in range(4):
                page.keyboard.press("Shift+Enter")
                try:
                    expect(prompt).not_to_have_text(before, timeout=15_000)
                    return
                except AssertionError:
                    cell.locator(".jp-InputArea-editor").click()
            expect(prompt).not_to_have_text(before)

        def verdict() -> str:
            out = cells.nth(CHECK_CELL).locator(".jp-OutputArea")
            expect(out).to_contain_text(re.compile(r"\[(PASS|FAIL)\]"), timeout=WAIT_MS)
            expect(cells.nth(CHECK_CELL).locator(".jp-InputPrompt")).not_to_contain_text("*", timeout=WAIT_MS)
            return out.inner_text()

        run(SETUP_CELL)
        expect(cells.nth(SETUP_CELL).locator(".jp-InputPrompt")).to_contain_text("[1]", timeout=WAIT_MS)
        assert "Error" not in cells.nth(SETUP_CELL).locator(".jp-OutputArea").inner_text()

        run(EXERCISE_CELL, WRONG)
        run(CHECK_CELL)
        wrong = verdict()
        assert "[FAIL] 01.generate_batch" in wrong, wrong
        print("wrong implementation:", wrong.strip().splitlines()[0])
        points = re.search(r"(\d+(?:\.\d+)?)/8 points", wrong)
        assert points and float(points.group(1)) < 8, wrong

        run(EXERCISE_CELL, RIGHT)
        run(CHECK_CELL)
        expect(cells.nth(CHECK_CELL).locator(".jp-OutputArea")).to_contain_text("[PASS]", timeout=WAIT_MS)
        right = cells.nth(CHECK_CELL).locator(".jp-OutputArea").inner_text()
        assert "[PASS] 01.generate_batch" in right and "8/8 points" in right, right
        assert "[FAIL]" not in right
        print("right implementation:", right.strip().splitlines()[0])
        browser.close()
    print(f"browser session: {time.monotonic() - start:.0f} s")
