"""The built website, checked in a real browser (headless Debian Chromium driven by Playwright).

For every lesson page in ``book/``: it loads without console errors or failed/external requests,
shows no error output, renders its figures, its PyTorch | TensorFlow tabs switch code and outputs
of every step at once (mouse and keyboard), and the chosen framework persists to the next page.
Every page passes axe-core without a serious or critical violation and has one search box and a
title that does not repeat itself. Every lesson's figures have alt text that says what they show
(not a file path), are never drawn larger than their pixels, read at ``MIN_TEXT_PT`` or more as
displayed, zoom when they are shown scaled down, and weigh less than ``MAX_IMAGE_BYTES`` per
page; its code lines fit the column; its executed notebook (with outputs) can be downloaded.

The site is built first when ``_build/html`` is missing or older than its sources
(``tests/_site.py``). Nothing is downloaded: the browser is Debian's ``chromium`` (``make browser``).
Without it the tests are skipped, except under CI (``CI=true``), where they fail.
Set ``WEBSITE_SCREENSHOTS=DIR`` to save a full-page screenshot of every lesson.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import json
import os
import re
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from _site import EXERCISES, HTML, LESSONS, ROOT, build_site, executed_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FRAMEWORKS = ("pytorch", "tensorflow")
# Text in an output area that means something went wrong while the notebook ran.
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|\b\w+(Error|Exception): |"
                        r"<Figure size \d+")
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
MAX_IMAGE_BYTES = 700_000   # images per lesson page, both framework tabs together
MIN_TEXT_PT = 9.0           # smallest text in a figure, in points as the reader sees it
SERIOUS = {"serious", "critical"}   # axe-core impacts that fail the test
IMAGE_FILE = re.compile(r"(^|/)[^/\s]+\.(png|jpe?g|gif|svg|webp)$|_images/", re.I)
FIGURE_METADATA_KEY = "cnn-course"  # coursekit.notebooks records the smallest text of a figure


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


def expected_figures(notebook: Path) -> int:
    """Image outputs of the lesson as the book build executed it (``_build/jupyter_execute``);
    0 when that copy is missing (the page must still show at least one figure)."""
    nb = executed_notebook(notebook)
    if nb is None:
        return 0
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
               if any(kind.startswith("image/") for kind in out.get("data", {})))


def figure_text_sizes(notebook: Path) -> dict[str, float]:
    """``{image file stem: smallest text in image pixels}`` for the lesson's executed figures.

    myst-nb names each image file by the SHA-256 of its bytes, so the page's ``<img src>`` finds
    its entry; the book build's kernels record the size (``coursekit.notebooks``)."""
    sizes = {}
    nb = executed_notebook(notebook)
    if nb is None:
        return sizes
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for mime, data in out.get("data", {}).items():
                if not mime.startswith("image/") or mime == "image/svg+xml":
                    continue
                smallest = out.get("metadata", {}).get(mime, {}).get(FIGURE_METADATA_KEY, {})
                if smallest.get("smallest_text_px"):
                    stem = hashlib.sha256(base64.b64decode(data)).hexdigest()
                    sizes[stem] = smallest["smallest_text_px"]
    return sizes


# --------------------------------------------------------------------------------------------
# Fixtures: a fresh build, a local server, a browser
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site() -> Path:
    return build_site()


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
    # Every lesson draws figures; the executed notebook says how many the page must show.
    assert len(images) >= max(1, expected_figures(notebook)), \
        f"{len(images)} figure(s) on the page, expected {expected_figures(notebook)}"
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


# --------------------------------------------------------------------------------------------
# Accessibility, figures, page weight, downloads (issue 12)
# --------------------------------------------------------------------------------------------

PAGES = [ROOT / "intro.md", *LESSONS, *EXERCISES]


def _any_page_url(base: str, source: Path) -> str:
    return f"{base}/{source.relative_to(ROOT).with_suffix('.html').as_posix()}"


def _frameworks(page):
    """Show each framework in turn (pages without tabs: once); yields the framework's name."""
    groups = page.locator(".fw-tabs")
    if groups.count() == 0:
        yield None
        return
    for framework, name in (("pytorch", "PyTorch"), ("tensorflow", "TensorFlow")):
        groups.first.get_by_role("tab", name=name).click()
        _assert_showing(page, framework)
        yield framework


def _axe_serious(page) -> list[str]:
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        pytest.fail("axe-playwright-python is not installed; it bundles axe-core for this test "
                    "(requirements.txt lists it: rebuild the environment with `make env`)")
    violations = Axe().run(page).response["violations"]
    return [f"{v['impact']}: {v['id']}: {v['help']} -> "
            + ", ".join(str(n["target"]) for n in v["nodes"][:4])
            for v in violations if v.get("impact") in SERIOUS]


@pytest.mark.parametrize("source", PAGES, ids=[p.stem for p in PAGES])
def test_page_has_no_serious_accessibility_violation(visit, base_url, source):
    page = visit.open(_any_page_url(base_url, source))
    found = []
    for framework in _frameworks(page):
        found += [f"[{framework or 'page'}] {v}" for v in _axe_serious(page)]
    assert not found, "axe-core:\n" + "\n".join(found)


@pytest.mark.parametrize("source", PAGES, ids=[p.stem for p in PAGES])
def test_page_has_one_search_box_and_a_plain_title(visit, base_url, source):
    page = visit.open(_any_page_url(base_url, source))
    boxes = page.eval_on_selector_all(".search-button-field, form.bd-search, input[type=search]",
                                      "els => els.filter(e => e.checkVisibility()).length")
    assert boxes == 1, f"{boxes} search boxes visible"
    parts = [p.strip() for p in page.title().split("\u2014")]
    assert len(parts) == len(set(parts)), f"page title repeats itself: {page.title()!r}"


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_figures_are_described_sharp_legible_and_light(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    images = page.eval_on_selector_all(
        ".cell_output img", "els => els.map(e => ({src: e.getAttribute('src'), "
                            "alt: (e.getAttribute('alt') || '').trim()}))")
    assert images, "no figures"
    undescribed = [img["src"] for img in images if len(img["alt"]) < 15 or IMAGE_FILE.search(img["alt"])]
    assert not undescribed, f"figures without a description (alt text or caption): {undescribed}"

    files = {(HTML / "book" / img["src"]).resolve() for img in images}
    weight = sum(f.stat().st_size for f in files)
    assert weight < MAX_IMAGE_BYTES, (f"{weight / 1000:.0f} KB of figures on the page "
                                      f"(limit {MAX_IMAGE_BYTES / 1000:.0f} KB)")

    text_px = figure_text_sizes(notebook)
    assert text_px, "no text sizes recorded for the figures (rebuild with coursekit.build_book)"
    problems = []
    for framework in _frameworks(page):
        shown = page.eval_on_selector_all(
            ".cell_output img", "els => els.filter(e => e.checkVisibility()).map(e => ({"
            "src: e.getAttribute('src'), natural: e.naturalWidth, "
            "width: e.getBoundingClientRect().width, zoom: e.classList.contains('fig-zoomable')}))")
        for img in shown:
            where = f"[{framework}] {img['src']}"
            if img["width"] > img["natural"] + 0.5:
                problems.append(f"{where}: drawn {img['width']:.0f} px wide from "
                                f"{img['natural']} px")
            scale = img["width"] / img["natural"]
            if scale < 0.99 and not img["zoom"]:
                problems.append(f"{where}: shown at {scale:.0%} but cannot be enlarged")
            px = text_px.get(Path(img["src"]).stem)
            if px is not None and px * scale * 0.75 < MIN_TEXT_PT - 0.05:
                problems.append(f"{where}: smallest text reads {px * scale * 0.75:.1f} pt "
                                f"(at least {MIN_TEXT_PT:g})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_code_fits_the_column(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    wide = []
    for _framework in _frameworks(page):
        wide += page.eval_on_selector_all(
            ".cell_input pre", "els => els.filter(e => e.checkVisibility())"
            ".filter(e => e.scrollWidth > e.clientWidth + 1)"
            ".map(e => e.textContent.split('\\n')[0].slice(0, 80))")
    assert not wide, f"{len(wide)} code block(s) scroll sideways: {wide[:5]}"


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_offers_its_executed_notebook(visit, base_url, notebook):
    page = visit.open(_page_url(base_url, notebook))
    source = page.locator("a.btn-download-source-button")
    assert source.count() == 1, "no source notebook to download"
    link = page.locator("a.btn-download-executed-button")
    assert link.count() == 1, "no executed notebook to download"
    url = link.evaluate("a => a.href")
    response = visit.context.request.get(url)
    assert response.ok, f"{url}: HTTP {response.status}"
    nb = nbformat.reads(response.text(), as_version=4)
    sources = [c.source for c in nbformat.read(notebook, as_version=4).cells]
    assert [c.source for c in nb.cells] == sources, "the download is not this lesson"
    figures = sum(1 for c in nb.cells if c.cell_type == "code" for out in c.get("outputs", [])
                  if any(k.startswith("image/") for k in out.get("data", {})))
    assert figures >= 1 and figures == expected_figures(notebook), \
        f"{figures} figures in the download, {expected_figures(notebook)} on the page"
    assert json.loads(response.text())["cells"], "empty notebook"
    for cell in nb.cells:  # each printed line once (myst-nb's stream merging can leave copies)
        streams = [o.text for o in cell.get("outputs", []) if o.output_type == "stream"]
        assert not any(b.strip() and a.endswith(b) for a, b in zip(streams, streams[1:])), \
            f"a cell's output is repeated in the download:\n{''.join(streams)[:500]}"


def test_figures_enlarge_on_click_and_fit_a_phone(browser, base_url):
    notebook = next(nb for nb in LESSONS if nb.name.startswith("02_"))
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(_page_url(base_url, notebook), wait_until="load")
        page.wait_for_function("!document.documentElement.classList.contains('fw-tabs-pending')")
        sizes = page.eval_on_selector_all(
            ".cell_output img", "els => els.filter(e => e.checkVisibility()).map(e => ({"
            "width: e.getBoundingClientRect().width, natural: e.naturalWidth, "
            "zoom: e.classList.contains('fig-zoomable')}))")
        assert sizes and all(s["width"] <= 390 for s in sizes), sizes
        assert all(s["zoom"] for s in sizes if s["natural"] > s["width"] + 1), sizes
        figure = page.locator(".cell_output img.fig-zoomable").first
        natural = figure.evaluate("e => e.naturalWidth")
        figure.click()
        big = page.locator(".fig-zoom img")
        big.wait_for()
        assert big.evaluate("e => e.getBoundingClientRect().width") == pytest.approx(natural, abs=1)
        page.keyboard.press("Escape")
        assert page.locator(".fig-zoom").count() == 0
        assert page.evaluate("document.activeElement.tagName") == "IMG"
        page.keyboard.press("Enter")  # the figure keeps the focus and opens from the keyboard too
        big.wait_for()
        page.locator(".fig-zoom__close").click()
        assert page.locator(".fig-zoom").count() == 0
    finally:
        context.close()
