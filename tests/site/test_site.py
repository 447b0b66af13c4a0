"""The built website, opened page by page in a real browser (headless Chromium).

Run with ``make check-site`` after ``make book``. The site is served on 127.0.0.1;
every request a page makes is recorded, and any request that leaves the machine
or fails is an error. Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
# make check-site: the full-mode site of make book; make check-site-fast: make site-fast's (CI's).
SITE = ROOT / os.environ.get("CHECK_SITE", "_build/html")
MODE = os.environ.get("CHECK_SITE_MODE", "full")
if MODE not in ("full", "fast"):
    raise RuntimeError(f"CHECK_SITE_MODE must be full or fast, not {MODE!r}")
SHOTS = SITE.parent / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def site_pages() -> list[str]:
    if not (SITE / "index.html").exists():
        raise RuntimeError(f"no built site in {SITE}: run `make book` first")
    pages = [p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
             if not p.relative_to(SITE).as_posix().startswith(("_", "genindex", "search", "py-modindex"))
             and p.name != "index.html"]
    return sorted(pages)


PAGES = site_pages() if (SITE / "index.html").exists() else []


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(_Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make check-site` installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_site_was_built():
    assert PAGES, f"no pages found in {SITE}; run `make book` first"
    assert any(p.startswith("notebooks/") for p in PAGES)


# A progress bar frozen into a page: tqdm's text ("3/3 [00:12<00:00, 4.1it/s]"), its carriage
# returns, or a Jupyter widget view (ptutils.progress prints one final line instead in the build).
BAR = re.compile(r"\|[^|\n]*\| *\d+/\d+ \[\d\d:\d\d<|\d+(\.\d+)?(it|s)/(s|it)\]|application/vnd\.jupyter\.widget-view")


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("notebooks/")])
def test_no_progress_bar_in_a_built_chapter(page):
    html = (SITE / page).read_text(encoding="utf-8")
    found = BAR.search(html)
    assert found is None, f"{page} holds a progress bar: {found.group(0)!r}"


def test_the_bar_pattern_finds_a_bar():
    assert BAR.search("grading:  67%|######6   | 2/3 [00:04<00:02,  2.10s/submission]")
    assert BAR.search("100%|##########| 30/30 [00:01<00:00, 25.3it/s]")
    assert BAR.search('<script type="application/vnd.jupyter.widget-view+json">')
    assert not BAR.search("fine-tuning: 3/3 epochs, 96 steps")


@pytest.mark.parametrize("page", PAGES)
def test_page(page, server, browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    requests, failed, errors = [], [], []
    pg.on("request", lambda r: requests.append(r.url))
    pg.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    pg.on("response", lambda r: r.status >= 400 and failed.append(f"{r.url} (HTTP {r.status})"))
    pg.on("pageerror", lambda e: errors.append(str(e)))
    url = urljoin(server, page)
    pg.goto(url, wait_until="networkidle")
    html = (SITE / page).read_text(encoding="utf-8")

    outside = [u for u in requests if urlparse(u).hostname not in ("127.0.0.1", None)
               and not u.startswith(("data:", "blob:", "about:"))]
    assert not outside, f"{page}: requests left the machine: {outside}"
    assert not failed, f"{page}: failed requests: {failed}"
    assert not errors, f"{page}: JavaScript errors: {errors}"

    if 'class="math' in html:
        pg.wait_for_selector("mjx-container", state="attached", timeout=15000)  # math in a closed dropdown is rendered but hidden
        assert pg.locator("mjx-container").count() > 0, f"{page}: math not rendered by MathJax"
        assert pg.locator("mjx-merror").count() == 0, f"{page}: MathJax reported a TeX error"
    n_mermaid = pg.locator("pre.mermaid").count()
    if n_mermaid:
        pg.wait_for_selector("pre.mermaid svg", timeout=15000)
        assert pg.locator("pre.mermaid svg").count() == n_mermaid, f"{page}: a mermaid diagram did not render"

    text = pg.inner_text("body")
    for bad in ("Traceback (most recent call last)", "NameError", "ModuleNotFoundError"):
        assert bad not in text, f"{page}: page shows {bad!r}"
    assert pg.locator(".output.traceback, .output.stderr").count() == 0, f"{page}: error output on the page"

    if page.startswith("notebooks/"):
        assert pg.locator(".cell_output").count() > 0, f"{page}: no executed output"
        figures = pg.locator("figure img, .cell_output img")
        n = figures.count()
        nb_figs = len(re.findall(r'"figure"\s*:', (ROOT / page.replace(".html", ".ipynb")).read_text()))
        assert n >= nb_figs, f"{page}: {n} images shown, notebook declares {nb_figs} figures"
        for i in range(n):
            ok = figures.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
            assert ok, f"{page}: figure {i} did not load"
        assert pg.locator(f"text=ptutils: {MODE} mode").count() > 0, f"{page}: not executed in {MODE} mode"

    # internal links point at pages and anchors that exist
    for href in pg.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        target, frag = urldefrag(href)
        if not target.startswith(server):
            continue
        rel = target[len(server):] or "index.html"
        path = SITE / rel
        assert path.exists(), f"{page}: broken link to {rel}"
        if frag and path.suffix == ".html":
            assert f'id="{frag}"' in path.read_text(encoding="utf-8"), f"{page}: broken anchor {rel}#{frag}"

    if page in ("book/intro.html", "notebooks/02_core_concepts.html"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / (Path(page).stem + ".png")), full_page=True)
    ctx.close()
