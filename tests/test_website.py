"""The built website, checked in a real browser (headless Debian Chromium driven by Playwright).

For every lesson page in ``book/``: it loads without console errors or failed/external requests,
shows no error output, renders its figures, its PyTorch | TensorFlow tabs switch code and outputs
of every step at once (mouse and keyboard), and the chosen framework persists to the next page.

The site is built first (``python -m coursekit.build_book``) when ``_build/html`` is missing or older
than its sources. Nothing is downloaded: the browser is Debian's ``chromium`` (``make browser``).
Without it the tests are skipped, except under CI (``CI=true``), where they fail.
Set ``WEBSITE_SCREENSHOTS=DIR`` to save a full-page screenshot of every lesson.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
STAMP = ROOT / "_build" / ".inputs-hash"  # written by coursekit.build_book after a successful build
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LESSONS = sorted((ROOT / "book").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
FRAMEWORKS = ("pytorch", "tensorflow")
# Text in an output area that means something went wrong while the notebook ran.
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|\b\w+(Error|Exception): |"
                        r"<Figure size \d+")
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the website test must run in CI)")
    pytest.skip(reason)


def _page_url(base: str, notebook: Path) -> str:
    return f"{base}/{notebook.relative_to(ROOT).with_suffix('.html').as_posix()}"


def expected_groups(notebook: Path) -> int:
    """Number of tab groups the page should have: runs of pytorch cell(s) then tensorflow cell(s)."""
    nb = nbformat.read(notebook, as_version=4)
    groups, phase = 0, -1
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "remove-cell" in tags:
            continue
        idx = next((i for i, fw in enumerate(FRAMEWORKS) if fw in tags), -1)
        if idx < 0:
            phase = -1
        elif phase < 0 or idx < phase:
            groups, phase = groups + 1, idx
        else:
            phase = idx
    return groups


# --------------------------------------------------------------------------------------------
# Fixtures: a fresh build, a local server, a browser
# --------------------------------------------------------------------------------------------

def _site_is_stale() -> bool:
    from coursekit.build_book import inputs_hash

    if not (HTML / "index.html").is_file() or not STAMP.is_file():
        return True
    if STAMP.read_text().strip() != inputs_hash():
        return True
    sources = [*LESSONS, *EXERCISES, *(ROOT / "_static").rglob("*"),
               ROOT / "_config.yml", ROOT / "_toc.yml", ROOT / "intro.md"]
    built = STAMP.stat().st_mtime
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="module")
def site() -> Path:
    if _site_is_stale():
        proc = subprocess.run([sys.executable, "-m", "coursekit.build_book"], cwd=ROOT, check=False,
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.fail("the book build failed:\n" + (proc.stdout + proc.stderr)[-8000:])
    return HTML


@pytest.fixture(scope="module")
def base_url(site: Path):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):  # a browser cancelled a request
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    handler = functools.partial(QuietHandler, directory=str(site))
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found; install it with `make browser` "
                     "(apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed in this environment (see requirements.txt)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Visit:
    """A browser context (own localStorage) that records problems while pages load."""

    def __init__(self, browser, base_url: str):
        self.base_host = urlparse(base_url).netloc
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("request", self._on_request)
        self.page.on("response", lambda resp: resp.status >= 400 and self.problems.append(
            f"HTTP {resp.status}: {resp.url}"))

    def _on_console(self, msg):
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")

    def _on_request_failed(self, req):
        # ERR_ABORTED: cancelled because the page navigated on (index.html redirects at once);
        # a missing file shows up as an HTTP error response instead.
        if "ERR_ABORTED" not in (req.failure or ""):
            self.problems.append(f"request failed: {req.url} ({req.failure})")

    def _on_request(self, req):
        host = urlparse(req.url).netloc
        if req.url.startswith(("http:", "https:")) and host != self.base_host:
            self.problems.append(f"external request: {req.url}")

    def open(self, url: str):
        response = self.page.goto(url, wait_until="load")
        assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
        self.page.wait_for_function("!document.documentElement.classList.contains"
                                    "('fw-tabs-pending')")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, base_url):
    v = Visit(browser, base_url)
    yield v
    v.close()


def _shown(page, selector: str) -> list[bool]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.checkVisibility())")


def _selected(page) -> list[str]:
    """The selected framework of every tab group on the page."""
    return page.eval_on_selector_all(
        ".fw-tabs", "gs => gs.map(g => g.querySelector('[role=tab][aria-selected=true]')"
                    "?.dataset.framework)")


def _assert_showing(page, framework: str):
    other = next(fw for fw in FRAMEWORKS if fw != framework)
    n = page.locator(".fw-tabs").count()
    assert _selected(page) == [framework] * n
    for part in (".cell_input", ".cell_output"):
        shown = _shown(page, f".fw-tabs__panel .cell.tag_{framework} {part}")
        hidden = _shown(page, f".fw-tabs__panel .cell.tag_{other} {part}")
        assert all(shown), f"{framework} {part} hidden after choosing {framework}"
        assert not any(hidden), f"{other} {part} still visible after choosing {framework}"
    assert all(_shown(page, f".fw-tabs__panel[data-framework={framework}]"))


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------

def test_there_are_lessons():
    assert LESSONS, "no notebooks in book/"


def test_home_page_lists_every_lesson(visit, base_url):
    page = visit.open(f"{base_url}/index.html")
    # index.html is a meta-refresh redirect to the real home page: wait until the browser got
    # there, or the navigation is read from the redirect page (a race that a fast machine loses).
    page.wait_for_url("**/intro.html")
    page.wait_for_selector("nav.bd-links a")
    hrefs = page.eval_on_selector_all("nav.bd-links a", "as => as.map(a => a.href)")
    for nb in LESSONS:
        assert any(h.split("#")[0].endswith(_page_url("", nb)) for h in hrefs), \
            f"{nb.name} missing from the navigation"
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_page_loads_cleanly(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    assert page.locator("h1").count() >= 1, "page has no title"
    path = notebook.relative_to(ROOT).as_posix()
    for service, prefix in (("Colab", "https://colab.research.google.com/github/"),
                            ("Binder", "https://mybinder.org/v2/gh/")):
        links = page.eval_on_selector_all(f"a[href^='{prefix}']", "as => as.map(a => a.href)")
        assert any(path in link for link in links), f"no {service} launch button for {path}"
    assert page.locator(".dropdown-download-buttons").count() == 1, "no download button"
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("notebook", EXERCISES, ids=[nb.stem for nb in EXERCISES])
def test_exercise_page_loads_cleanly(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    assert page.locator("h1").count() >= 1, "page has no title"
    path = notebook.relative_to(ROOT).as_posix()
    links = page.eval_on_selector_all("a[href^='https://colab.research.google.com/github/']",
                                      "as => as.map(a => a.href)")
    assert any(path in link for link in links), f"no Colab launch button for {path}"
    assert page.locator(".cell_output").count() == 0, "exercises are shown unexecuted"
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_shows_no_errors(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    assert page.locator(".cell_output .output.stderr").count() == 0, \
        "stderr output on the page: " + " | ".join(
            page.locator(".cell_output .output.stderr").all_inner_texts())[:2000]
    assert page.locator(".cell_output .output.traceback, .cell_output .output.error").count() == 0
    # textContent: hidden tab panels count too.
    texts = page.eval_on_selector_all(".cell_output", "els => els.map(e => e.textContent)")
    bad = [t.strip()[:500] for t in texts if ERROR_TEXT.search(t)]
    assert not bad, "error text in outputs:\n" + "\n---\n".join(bad)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_figures_render(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    images = page.eval_on_selector_all(
        ".cell_output img",
        "els => els.map(e => ({src: e.getAttribute('src'), ok: e.complete && e.naturalWidth > 0}))")
    broken = [img["src"] for img in images if not img["ok"]]
    assert not broken, f"images that did not load: {broken}"
    if shots := os.environ.get("WEBSITE_SCREENSHOTS"):
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / f"{notebook.stem}.png"), full_page=True)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_tabs_switch_code_and_outputs(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    groups = page.locator(".fw-tabs")
    assert groups.count() == expected_groups(notebook) > 0
    # Every framework cell is inside a tab group; shared cells are not.
    assert page.locator(".cell.tag_pytorch, .cell.tag_tensorflow").count() == \
        page.locator(".fw-tabs__panel > .cell").count()
    assert page.locator(".fw-tabs .cell:not(.tag_pytorch):not(.tag_tensorflow)").count() == 0

    _assert_showing(page, "pytorch")  # default choice
    last = groups.nth(groups.count() - 1)
    last.get_by_role("tab", name="TensorFlow").click()  # one click switches every group
    _assert_showing(page, "tensorflow")
    groups.nth(0).get_by_role("tab", name="PyTorch").click()
    _assert_showing(page, "pytorch")

    # Keyboard: arrow keys move between tabs and select them.
    tab = groups.nth(0).get_by_role("tab", name="PyTorch")
    tab.focus()
    page.keyboard.press("ArrowRight")
    _assert_showing(page, "tensorflow")
    assert page.evaluate("document.activeElement.dataset.framework") == "tensorflow"
    page.keyboard.press("Home")
    _assert_showing(page, "pytorch")
    roles = page.eval_on_selector_all(".fw-tabs__list", "ls => ls.map(l => l.getAttribute('role'))")
    assert set(roles) == {"tablist"}
    assert not visit.problems, "\n".join(visit.problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_framework_choice_persists_to_next_page(visit, base_url, notebook):
    i = LESSONS.index(notebook)
    following = LESSONS[(i + 1) % len(LESSONS)]
    page = visit.open(_page_url(base_url, notebook))
    page.locator(".fw-tabs").first.get_by_role("tab", name="TensorFlow").click()
    _assert_showing(page, "tensorflow")

    if following == notebook:  # a single lesson: leave it and come back
        visit.open(f"{base_url}/index.html")
    page = visit.open(_page_url(base_url, following))
    _assert_showing(page, "tensorflow")
    page.locator(".fw-tabs").first.get_by_role("tab", name="PyTorch").click()
    page = visit.open(_page_url(base_url, notebook))
    _assert_showing(page, "pytorch")
    assert not visit.problems, "\n".join(visit.problems)
