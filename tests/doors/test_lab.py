"""The local-Jupyter door, used the way a reader uses it: `make lab`, a browser, "Run All Cells".

Run by ``make check-doors`` (CI's `.ci/run`), not by ``make test``: it needs Debian's Chromium.
The test starts the documented command, ``make lab``, on 127.0.0.1 with a token and on a copy
of one chapter (running cells in the UI writes their outputs into the notebook; the committed
chapters stay clean), opens the chapter in headless Chromium with Playwright, picks
Run > Run All Cells from JupyterLab's menu, waits for every cell, saves, and checks what the
reader sees and what the saved notebook holds: every code cell ran, on the book's kernel, with
its outputs shown and no error. The kernel runs in fast mode (``PTUTILS_FAST=1``).
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
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHAPTERS = ["02_core_concepts.ipynb"]
STARTUP_S = 90
RUN_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab` on a copy of the chapters, serving on a free port with a token; stopped afterwards."""
    work = tmp_path_factory.mktemp("lab")
    chapters = work / "chapters"
    chapters.mkdir()
    for name in CHAPTERS:
        shutil.copy(ROOT / "notebooks" / name, chapters / name)
    settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell (JupyterLab 4 otherwise draws only the cells in view), so all outputs are in the page.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    lab_args = " ".join([
        "--no-browser", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
        f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
    ])
    env = {**os.environ, "PTUTILS_FAST": "1", "JUPYTER_RUNTIME_DIR": str(work / "runtime")}
    log = (work / "lab.log").open("w")
    proc = subprocess.Popen(["make", "--no-print-directory", "-o", ".venv/.installed", "lab",
                             f"LAB_DIR={chapters}", f"LAB_ARGS={lab_args}"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"`make lab` exited with {proc.returncode}:\n{(work / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer in {STARTUP_S} s:\n{(work / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"base": base, "token": token, "dir": chapters, "log": work / "lab.log"}
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)  # make and the server it started (its own session)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                pass
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make check-doors` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_the_server_refuses_a_request_without_the_token(lab):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{lab['base']}/api/contents", timeout=5)
    assert err.value.code == 403


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_runs_all_cells_in_jupyterlab(lab, browser, chapter):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{lab['base']}/lab/tree/{chapter}?token={lab['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    status = page.locator(".jp-StatusBar-Widget", has_text="Idle")  # the kernel has started
    status.first.wait_for(timeout=60_000)
    assert page.get_by_text("Python 3 (ptutils)").count() >= 1, "the chapter did not open on the book's kernel"

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

    code_cells = page.locator(".jp-CodeCell")
    n = code_cells.count()
    assert n >= 5
    deadline = time.monotonic() + RUN_S
    while True:  # every prompt reads [k]: with a number; [*] while running, [ ] before
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        done = [p for p in prompts if re.fullmatch(r"\[\d+\]:", p.strip())]
        if len(done) == n and page.locator(".jp-StatusBar-Widget", has_text="Idle").count():
            break
        if time.monotonic() > deadline:
            page.screenshot(path=str(lab["dir"] / "timeout.png"))
            raise AssertionError(f"{len(done)} of {n} cells ran in {RUN_S} s")
        time.sleep(1)

    shown = page.locator(".jp-OutputArea-output")
    assert shown.count() >= 5, "no outputs appeared in the page"
    tracebacks = [t for t in page.locator(".jp-OutputArea-output").all_inner_texts() if "Traceback" in t]
    assert not tracebacks, tracebacks[0][:2000]
    assert "fast" in page.locator(".jp-OutputArea-output").first.inner_text().lower() or \
        any("fast" in t.lower() for t in shown.all_inner_texts()[:3]), "setup_notebook did not report fast mode"

    page.keyboard.press("Control+s")
    saved = lab["dir"] / chapter
    deadline = time.monotonic() + 30
    while True:
        nb = json.loads(saved.read_text())
        cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if all(c.get("execution_count") for c in cells):
            break
        if time.monotonic() > deadline:
            raise AssertionError("the notebook was not saved with every cell executed")
        time.sleep(0.5)
    assert len(cells) == n
    errors_saved = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors_saved, errors_saved[0]
    assert sum(bool(c.get("outputs")) for c in cells) >= 5
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert not errors, f"JavaScript errors in the page: {errors}"
    page.screenshot(path=str(lab["dir"] / "ran.png"))
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    shutil.copy(lab["dir"] / "ran.png", shots / f"lab-{Path(chapter).stem}.png")
    page.close()
