"""Fixtures for the browser test: the built book served on 127.0.0.1 and a headless Chromium.

The browser is the system's Chromium (Debian's ``chromium`` package) driven by Playwright for
Python through ``executable_path``; nothing downloads a browser. Every request that does not go
to the local server is aborted and recorded, so a page that needs the network fails the test.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = Path(os.environ.get("AIGC_BOOK_HTML", ROOT / "_build" / "html"))
REVIEW = BOOK.parent / "browser"  # screenshots and the summary, for review: _build/browser

INSTALL_CHROMIUM = (
    "Chromium not found, so the browser test is skipped. Install the system package -- "
    "Debian: `sudo apt-get install chromium`, Ubuntu: `sudo apt-get install chromium-browser` "
    "(or the chromium snap) -- or point CHROMIUM=/path/to/chromium at a Chromium or Chrome binary. "
    "The test never downloads a browser."
)
# Headless flags for CI containers (often root, so no sandbox) and for reading offline:
# no background services that would try to reach the network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


def find_chromium() -> str | None:
    candidates = [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    for name in filter(None, candidates):
        found = shutil.which(name)
        if found:
            return found
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def end_headers(self):
        # The theme's and MathJax's files are the same on every page: let Chromium keep them for
        # the run instead of asking again on each of the ~190 pages (as a web host's caching would).
        if "/_static/" in self.path:
            self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()


class Summary:
    """Counts gathered page by page and printed at the end of the run.

    Under pytest-xdist (``make test`` reads the pages two at a time) each worker keeps its own
    counts and writes them to ``_build/browser/summary.<worker>.json`` when it finishes; the
    controller adds them up for the line it prints and for ``summary.json``.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.pages: dict[str, dict] = {}
        self.blocked: list[str] = []
        self.extra: dict[str, object] = {}

    def as_dict(self) -> dict:
        return {"pages": self.pages, "blocked": self.blocked, "extra": self.extra}

    def merge(self, other: dict) -> None:
        self.pages.update(other["pages"])
        self.blocked += other["blocked"]
        for key, value in other["extra"].items():
            if key == "axe_page_only":  # per-rule counts: add them up
                mine = self.extra.setdefault(key, {})
                for rule, entry in value.items():
                    if rule in mine:
                        mine[rule]["pages"] += entry["pages"]
                        mine[rule]["nodes"] += entry["nodes"]
                    else:
                        mine[rule] = dict(entry)
            else:
                self.extra[key] = value

    def line(self) -> str:
        pages = self.pages.values()
        equations = sum(p["equations"] for p in pages)
        math = sum(p["math"] for p in pages)
        widgets = sum(p["widgets"] for p in pages)
        images = sum(p["images"] for p in pages)
        seconds = time.perf_counter() - self.started
        return (
            f"{len(self.pages)} pages, {equations} equations typeset ({math} math nodes), "
            f"{widgets} widgets rendered, {images} images, "
            f"{len(self.blocked)} requests outside 127.0.0.1, {seconds:.1f} s"
        )


_SUMMARY = Summary()
WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # None in the controller or without xdist


@pytest.fixture(scope="session")
def summary() -> Summary:
    return _SUMMARY


@pytest.fixture(scope="session")
def review() -> Path:
    REVIEW.mkdir(parents=True, exist_ok=True)
    return REVIEW


def pytest_configure(config):
    if WORKER is None:  # the controller runs first: no worker's counts from an earlier run
        for stale in REVIEW.glob("summary.gw*.json"):
            stale.unlink()


def pytest_sessionfinish(session):
    if WORKER is not None and (_SUMMARY.pages or _SUMMARY.extra):
        REVIEW.mkdir(parents=True, exist_ok=True)
        (REVIEW / f"summary.{WORKER}.json").write_text(json.dumps(_SUMMARY.as_dict()), encoding="utf-8")


def pytest_terminal_summary(terminalreporter):
    if WORKER is not None:
        return
    for part in sorted(REVIEW.glob("summary.gw*.json")):
        _SUMMARY.merge(json.loads(part.read_text(encoding="utf-8")))
        part.unlink()
    if not _SUMMARY.pages:
        return
    terminalreporter.section("browser test")
    terminalreporter.write_line(_SUMMARY.line())
    REVIEW.mkdir(parents=True, exist_ok=True)
    terminalreporter.write_line(f"screenshots and summary.json in {REVIEW}/")
    pages = dict(sorted(_SUMMARY.pages.items()))
    (REVIEW / "summary.json").write_text(
        json.dumps({"summary": _SUMMARY.line(), "pages": pages, **_SUMMARY.extra},
                   indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="session")
def book() -> Path:
    if not (BOOK / "index.html").exists():
        pytest.skip(f"no built book in {BOOK}: run `make book` first (`make test-browser` does)")
    return BOOK


@pytest.fixture(scope="session")
def origin(book):
    handler = functools.partial(_QuietHandler, directory=str(book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is missing: `make install` installs it"
    )
    executable = find_chromium()
    if executable is None:
        if os.environ.get("AIGC_BROWSER_REQUIRED"):  # set by .ci/run: in CI a skip would hide it
            pytest.fail(INSTALL_CHROMIUM.replace("so the browser test is skipped", "and CI requires it"))
        pytest.skip(INSTALL_CHROMIUM)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def context(browser, origin, summary):
    """A browser context whose only network is the local server."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def only_local(route):
        url = route.request.url
        if url.startswith(origin + "/") or url == origin:
            route.continue_()
        else:
            summary.blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", only_local)
    yield context
    context.close()
