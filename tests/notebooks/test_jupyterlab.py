"""JupyterLab, used as a person uses it: open notebook 01, Run All Cells from the menu, read the result.

papermill and nbval prove the notebooks run and say the same thing; this proves they also work in
the tool people open them in (a kernel started by JupyterLab, outputs rendered by its front end).

- JupyterLab runs headless on 127.0.0.1 with a free port, a token and throw-away config, data,
  runtime, user-settings and workspace folders, so no earlier session's tabs or settings leak in;
  its root folder is a temp folder holding a *copy* of the notebook (running it through the UI
  writes outputs into the file, and the committed one must not change).
- Headless Debian Chromium, driven by playwright (no browser download), clears all outputs and
  runs all cells through the menus, waits until every code cell has an execution count and the
  kernel is idle, saves, and checks both the rendered page (outputs and figures present, no
  traceback in any stderr area) and the saved file (no error output, every code cell executed).
- A screenshot lands in reports/jupyterlab/01_build_a_bot.png under the project folder (the
  default ``settings.reports_dir``; tests/conftest.py points ``BOTKIT_REPORTS_DIR`` at a folder
  it deletes, which would lose the picture). JupyterLab is always shut down.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from botkit.serving.serve import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_build_a_bot.ipynb"
SCREENSHOT = ROOT / "reports" / "jupyterlab" / "01_build_a_bot.png"
FAILED_SCREENSHOT = SCREENSHOT.with_name("01_build_a_bot-failed.png")
CHROMIUM = Path("/usr/bin/chromium")
# The network is closed: no background fetches, no component updates, no sync, no first-run UI.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 60
IDLE = '.jp-Notebook-ExecutionIndicator[data-status="idle"]'  # the notebook toolbar's kernel status
RUN_TIMEOUT_S = 240
# Front-end settings for the throw-away profile: render every cell (no virtual scrolling, so all
# prompts and outputs are in the page), and no "receive Jupyter news?" toast over the notebook.
USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path


def _wait_status(lab: Lab, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{lab.log.read_text()[-3000:]}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError, OSError), \
                urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"jupyter lab did not answer /api/status within {START_TIMEOUT_S} s:\n{lab.log.read_text()[-3000:]}")


def _shutdown(lab: Lab, proc: subprocess.Popen) -> None:
    """Ask the server to stop (it shuts its kernels down), then make sure its process group is gone."""
    if proc.poll() is None:
        req = urllib.request.Request(f"{lab.url}/api/shutdown", method="POST",
                                     headers={"Authorization": f"token {lab.token}"})
        with contextlib.suppress(OSError):
            urllib.request.urlopen(req, timeout=10).close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK.relative_to(ROOT)} is missing")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy2(NOTEBOOK, root / NOTEBOOK.name)
    settings_dir, config_dir = tmp_path / "user-settings", tmp_path / "config"
    for name, values in USER_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    config_dir.mkdir()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "IPYTHONDIR": str(tmp_path / "ipython"),
           # the notebook's private home: never the one a papermill or nbval run of 01 uses at the same time
           "BOTKIT_NB_HOME": str(tmp_path / "nb-home")}
    env.pop("MPLBACKEND", None)  # tests/conftest.py sets Agg for the test process; a kernel picks its own
    port, token = free_port(), secrets.token_hex(16)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, tmp_path / "jupyterlab.log")
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={settings_dir}", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with lab.log.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        _wait_status(lab, proc)
        yield lab
    finally:
        _shutdown(lab, proc)


def _menu(page, menu: str, item: str) -> None:
    """Click a menu bar entry, then one of its items, by their visible labels."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(".lm-Menu .lm-Menu-item:not(.lm-mod-disabled)",
                 has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{item}$"))).click()


def _prompts(page) -> list[str]:
    return page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


def test_run_all_cells_of_notebook_01_in_jupyterlab(lab: Lab) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make sysdeps` installs Debian's chromium (the browser this test drives)")
    from playwright.sync_api import sync_playwright

    n_code = sum(c.cell_type == "code" for c in nbformat.read(lab.root / NOTEBOOK.name, as_version=4).cells)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?reset&token={lab.token}")
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=START_TIMEOUT_S * 1000)
            page.locator(IDLE).wait_for(timeout=START_TIMEOUT_S * 1000)
            page.wait_for_function(f"document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt').length == {n_code}",
                                   timeout=START_TIMEOUT_S * 1000)  # every code cell rendered (no windowing)

            _menu(page, "Edit", "Clear Outputs of All Cells")
            assert page.locator(".jp-Notebook .jp-OutputArea-output").count() == 0, "outputs were not cleared"
            _menu(page, "Run", "Run All Cells")
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while True:
                prompts = [p.strip() for p in _prompts(page)]
                done = all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
                if done and page.locator(IDLE).count():
                    break
                assert time.monotonic() < deadline, f"cells still running after {RUN_TIMEOUT_S} s: {prompts}"
                page.wait_for_timeout(500)

            stderr = page.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
            errors = [t for t in stderr.all_inner_texts() if "Traceback" in t or re.search(r"^\w+Error\b", t, re.M)]
            assert not errors, "error output in the notebook:\n" + "\n---\n".join(errors)
            assert page.locator(".jp-Notebook .jp-OutputArea-output").count() > 0, "no output appeared"
            assert page.locator(".jp-Notebook .jp-RenderedImage img").count() > 0, "no figure appeared"

            _menu(page, "File", "Save Notebook")
            page.locator(".lm-TabBar-tab.jp-mod-dirty").wait_for(state="detached", timeout=30_000)
            figure = page.locator(".jp-Notebook .jp-RenderedImage").first
            figure.scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        except Exception:
            with contextlib.suppress(Exception):  # what the page showed when it failed, for the report
                SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(FAILED_SCREENSHOT))
                print(f"failure screenshot: {FAILED_SCREENSHOT}")
            raise
        finally:
            browser.close()

    saved = nbformat.read(lab.root / NOTEBOOK.name, as_version=4)
    code_cells = [c for c in saved.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells), "a code cell was not executed"
    failed = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not failed, f"error outputs in the saved notebook: {[(o.ename, o.evalue) for o in failed]}"
    assert SCREENSHOT.stat().st_size > 10_000, "the screenshot is suspiciously small (blank?)"
    print(f"screenshot: {SCREENSHOT}")
