"""A student's session in JupyterLab, in headless Chromium: the client students really use.

`make lab`'s server (JupyterLab on 127.0.0.1, no token, a scratch copy of one student notebook)
is driven the way a student drives it: open the notebook, *Run All Cells*, read every exercise's
"not attempted" message; type a correct answer into one exercise, run it and its check cell, read
"passed"; type a wrong one, read the specific message the checker gives. Every request that does
not go to the local server is aborted, as in the book's browser test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "ch4_2_gan_math.ipynb"  # three exercises, and its cells run in seconds
EXERCISES = ("4.2.1", "4.2.2", "4.2.3")
CORRECT = '''def best_discriminator(p_data, p_g):
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))
'''
WRONG = '''def best_discriminator(p_data, p_g):
    return p_data / (p_data + p_g)
'''
START_TIMEOUT_S = 60
RUN_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a scratch copy of one student notebook; yields its base URL."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is missing: `make install` installs it")
    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    shutil.copy(ROOT / "exercises" / "student" / NOTEBOOK, work / NOTEBOOK)
    # every cell in the DOM (JupyterLab 4 renders only the cells in view by default)
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}', encoding="utf-8")
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
               "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", f"--ServerApp.root_dir={work}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}", f"--LabApp.user_settings_dir={home / 'settings'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",  # no PyPI queries for extensions
               "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: to know the kernel is connected
               "--allow-root"]  # CI containers often run as root
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(home / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture()
def lab_page(browser, lab):
    base, _ = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    blocked = []

    def block(route):
        blocked.append(route.request.url)
        route.abort("blockedbyclient")

    # Only requests that leave 127.0.0.1 are intercepted: intercepting the server's own requests
    # too stalls the kernel's channels, and nothing would run.
    local = (base + "/", base.replace("http", "ws", 1) + "/")
    context.route(lambda url: not url.startswith(local), block)
    page = context.new_page()
    page.goto(f"{base}/lab/tree/{NOTEBOOK}?reset", wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=RUN_TIMEOUT_MS)
    wait_for_idle_kernel(page)
    yield page
    context.close()
    assert not blocked, f"JupyterLab asked for the network: {blocked[:5]}"


def wait_for_idle_kernel(page) -> None:
    """Until the notebook's kernel is connected and idle (the status bar says "Idle" a little
    before the kernel's channels accept requests, and a request sent then is lost)."""
    page.wait_for_function(
        """() => {
            const kernel = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;
            return kernel?.connectionStatus === "connected" && kernel.status === "idle";
        }""", timeout=RUN_TIMEOUT_MS)


def cells(page):
    return page.locator(".jp-Notebook .jp-Cell")


def code_cell_index(page, text: str) -> int:
    """Index of the first cell whose source contains ``text``."""
    sources = cells(page).evaluate_all("cs => cs.map(c => c.querySelector('.jp-InputArea-editor')?.innerText ?? '')")
    for i, source in enumerate(sources):
        if text in source:
            return i
    raise AssertionError(f"no cell contains {text!r}")


def output_of(page, index: int) -> str:
    return cells(page).nth(index).locator(".jp-OutputArea").inner_text()


def run_menu_command(page, menu: str, item: str) -> None:
    """Click ``menu`` > ``item`` in the menu bar, once the item is enabled (it is greyed out until
    the notebook is the current widget)."""
    cells(page).first.click()  # makes the notebook the current widget
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    entry = page.locator(".lm-Menu-item:not(.lm-mod-disabled)",
                         has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")))
    entry.first.click()


def replace_source(page, index: int, code: str) -> None:
    """Select the cell's whole source and type ``code`` over it, as a student pasting an answer."""
    editor = cells(page).nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)  # one input event: no auto-indent on top of the code's own


def run_cell_and_its_check(page, index: int) -> str:
    """Run the exercise cell and the check cell under it (Shift+Enter twice); the check's output."""
    cells(page).nth(index).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    check = cells(page).nth(index + 1)
    check.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=RUN_TIMEOUT_MS)
    wait_for_idle_kernel(page)
    return output_of(page, index + 1)


def test_a_student_runs_checks_and_reads_their_messages(lab_page, review):
    page = lab_page
    run_menu_command(page, "Run", "Run All Cells")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]"
        ".every(p => /\\[\\d+\\]/.test(p.innerText))", timeout=RUN_TIMEOUT_MS)
    wait_for_idle_kernel(page)
    page.screenshot(path=str(review / "lab-run-all.png"))
    text = page.locator(".jp-Notebook").inner_text()
    for exercise in EXERCISES:
        assert re.search(rf"Exercise {re.escape(exercise)} \(.*\): not attempted yet", text), (
            f"after Run All, exercise {exercise} does not say 'not attempted yet'")
    assert "Traceback" not in text, "a cell raised on a fresh notebook"

    index = code_cell_index(page, "def best_discriminator")
    replace_source(page, index, CORRECT)
    passed = run_cell_and_its_check(page, index)
    page.screenshot(path=str(review / "lab-exercise-passed.png"))
    assert re.search(r"✓ Exercise 4\.2\.1 \(.*\): all \d+ cases passed", passed), passed

    replace_source(page, index, WRONG)
    failed = run_cell_and_its_check(page, index)
    page.screenshot(path=str(review / "lab-exercise-failed.png"))
    assert "✗ Exercise 4.2.1" in failed and "failed on case" in failed, failed
    assert "Likely cause: NaN where both densities are 0" in failed, failed
