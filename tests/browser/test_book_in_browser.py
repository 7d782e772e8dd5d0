"""The rendered book as a reader sees it: every page in headless Chromium, with no network.

Run by ``make test-browser`` (which ``make test`` calls after the book build). For every page
of ``_toc.yml`` it checks: no console errors and no failed requests; every math node typeset
by MathJax, with no MathJax error nodes; no broken images; widgets rendered from their saved
state; the "What you will learn" and "Run this chapter" lines; prev/next links in reading
order; and, on notebook pages, launch buttons and a working ``.ipynb`` download. It also checks
the search and the home page's course map, moves the slider and presses play of every static frame
viewer (the kernel-free stand-in of a slider widget), audits every page with axe-core (no critical or
serious violation in the book's content), and saves screenshots under ``_build/browser/``.

Both editions are read: English at the site's root and Chinese under ``zh/`` (``make book`` builds
both). Every page of each gets the same checks, plus its language switch to the same page of the
other edition, and, in Chinese, a check that the title's characters are drawn by a font that has
them (no missing-glyph boxes).
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlparse

import pytest

from tests.test_repository import ROOT, resolve, toc_files

DOCS = toc_files()
# Each edition: where it lives in the site, its <html lang>, and its two orientation lines.
EDITIONS = {
    "en": {"prefix": "", "lang": "en", "learn": r"what you will learn", "run": r"run this chapter",
           "switch": ("zh-CN", "zh/{doc}.html")},
    "zh": {"prefix": "zh/", "lang": "zh-CN", "learn": r"你将学到", "run": r"运行本章",
           "switch": ("en", "{doc}.html")},
}
PAGES = [pytest.param(edition, doc, id=f"{edition}-{doc}") for edition in EDITIONS for doc in DOCS]
NOTEBOOKS = {doc for doc in DOCS if resolve(doc) is not None and resolve(doc).suffix == ".ipynb"}
WIDGET_TIMEOUT_MS = 20_000

# Waits for MathJax's first typeset (and the retries its TeX extensions need), capped at 20 s.
WAIT_FOR_MATHJAX = """async () => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return "none";
  const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), 20000));
  return Promise.race([mj.startup.promise.then(() => "done"), timeout]);
}"""

WAIT_FOR_IMAGES = """async () => {
  const pending = [...document.images].filter((img) => !img.complete);
  pending.forEach((img) => { img.loading = "eager"; });
  await Promise.all(pending.map((img) => new Promise((resolve) => {
    img.addEventListener("load", resolve); img.addEventListener("error", resolve);
    setTimeout(resolve, 10000);
  })));
}"""

WIDGETS_RENDERED = """() => {
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  const done = [...document.querySelectorAll(".widget-subarea")]
    .filter((area) => area.querySelector(".jupyter-widgets"));
  return done.length >= views.length;
}"""

# Everything the checks need, read from the page in one go.
FACTS = """() => {
  const article = document.querySelector("article") || document.body;
  const text = article.innerText;
  const math = [...document.querySelectorAll("span.math, div.math")];
  const views = [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')];
  const areas = [...document.querySelectorAll(".widget-subarea")];

  // Models shown on the page: the viewed ones and everything they contain.
  const state = {};
  for (const tag of document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]')) {
    Object.assign(state, JSON.parse(tag.textContent).state);
  }
  const shown = new Set();
  const visit = (id) => {
    if (shown.has(id) || !state[id]) return;
    shown.add(id);
    for (const value of Object.values(state[id].state)) {
      for (const ref of [].concat(value)) {
        if (typeof ref === "string" && ref.startsWith("IPY_MODEL_")) visit(ref.slice(10));
      }
    }
  };
  views.forEach((tag) => visit(JSON.parse(tag.textContent).model_id));
  const shownModels = [...shown].map((id) => state[id]);
  const count = (names) => shownModels.filter((m) => names.includes(m.model_name)).length;
  const imageOutputs = shownModels.filter((m) => m.model_name === "OutputModel")
    .reduce((n, m) => n + (m.state.outputs || [])
      .filter((o) => o.data && o.data["image/png"]).length, 0);
  const inWidgets = (selector) => areas.reduce((n, a) => n + a.querySelectorAll(selector).length, 0);

  const link = (selector) => { const a = document.querySelector(selector); return a ? a.href : null; };
  const language = document.querySelector("a.aigc-language-switch");
  return {
    text,
    lang: document.documentElement.lang,
    switchTo: language ? { href: language.href, hreflang: language.hreflang, label: language.textContent.trim() } : null,
    math: math.length,
    mathTypeset: math.filter((n) => n.querySelector("mjx-container")).length,
    untypeset: math.filter((n) => !n.querySelector("mjx-container")).map((n) => n.textContent.slice(0, 80)),
    equations: document.querySelectorAll("mjx-container").length,
    mathErrors: [...document.querySelectorAll("mjx-merror, [data-mjx-error]")]
      .map((n) => n.getAttribute("data-mjx-error") || n.textContent.slice(0, 80)),
    views: views.length,
    rendered: areas.filter((a) => a.querySelector(".jupyter-widgets")).length,
    widgetErrors: /Error displaying widget/.test(document.body.innerText),
    sliders: [count(["IntSliderModel", "FloatSliderModel"]), inWidgets(".widget-slider")],
    progress: [count(["FloatProgressModel", "IntProgressModel"]), inWidgets(".widget-hprogress, .widget-vprogress")],
    outputImages: [imageOutputs, inWidgets("img")],
    images: [...document.images].map((img) => ({
      src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0 })),
    svgImages: [...document.querySelectorAll("svg image")]
      .map((img) => img.href.baseVal || img.getAttribute("xlink:href") || ""),
    prev: link("a.left-prev"),
    next: link("a.right-next"),
    binder: link('a[href^="https://mybinder.org/"]'),
    colab: link('a[href^="https://colab.research.google.com/"]'),
    download: [...document.querySelectorAll('a[href$=".ipynb"]')].map((a) => a.href)
      .filter((href) => href.includes("/_sources/")),
  };
}"""


class PageLog:
    """Console errors, uncaught exceptions and failed requests of one page."""

    def __init__(self, page, origin: str) -> None:
        self.errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url} ({req.failure})"))
        page.on("response", lambda res: res.status >= 400
                and self.errors.append(f"HTTP {res.status}: {res.url}"))


def open_page(context, origin: str, path: str):
    page = context.new_page()
    log = PageLog(page, origin)
    page.goto(f"{origin}/{path}", wait_until="load", timeout=60_000)
    return page, log


def settle(page) -> list[str]:
    """Wait for MathJax, widgets and images; returns what did not finish."""
    problems = []
    if page.evaluate(WAIT_FOR_MATHJAX) == "timeout":
        problems.append("MathJax did not finish typesetting within 20 s")
    try:
        page.wait_for_function(WIDGETS_RENDERED, timeout=WIDGET_TIMEOUT_MS)
    except Exception:  # Playwright's TimeoutError; the counts below say which widgets are missing
        problems.append(f"widgets not rendered within {WIDGET_TIMEOUT_MS // 1000} s")
    page.evaluate(WAIT_FOR_IMAGES)
    return problems


def local_path(url: str | None) -> str | None:
    return urlparse(url).path.lstrip("/") if url else None


# axe-core over the page; each violation's nodes are split into those inside the page's <article>
# (what the book's sources make) and those outside it (the theme). An English page gets one audit,
# every rule, outside its code cells: code cells are the theme's markup and Pygments colours, the
# same on every page, and test_code_cells_pass_the_audit audits them in full, every rule, on a page
# whose code has keywords, strings, numbers and comments. A Chinese page has its English page's
# markup, classes and styles, only other words: it gets the rules whose outcome depends on a page's
# words (names, alt texts, titles, language).
TEXT_RULES = [
    "image-alt", "svg-img-alt", "role-img-alt", "object-alt", "input-image-alt", "link-name",
    "button-name", "input-button-name", "label", "select-name", "frame-title", "document-title",
    "empty-heading", "empty-table-header", "html-has-lang", "html-lang-valid", "valid-lang",
    "aria-command-name", "aria-input-field-name", "aria-toggle-field-name", "aria-meter-name",
    "aria-progressbar-name", "aria-tooltip-name", "aria-dialog-name",
]
AXE_RUN = """async ([english, textRules]) => {
  // preload: false -- axe would fetch the stylesheets' @import rules relative to the page, not
  // to the stylesheet (404s for the theme's basic.css); only its css-orientation-lock rule needs them
  const options = { resultTypes: ["violations"], preload: false };
  const known = new Set(axe.getRules().map((r) => r.ruleId));
  const result = english
    ? await axe.run({ exclude: [["div.highlight"]] }, options)
    : await axe.run(document, { ...options, runOnly: { type: "rule", values: textRules.filter((r) => known.has(r)) } });
  const inArticle = (node) => {
    // target[0] selects the element (or the frame or shadow host holding it) in this document
    const selector = node.target[0];
    const element = typeof selector === "string" ? document.querySelector(selector) : null;
    return Boolean(element && element.closest("article"));
  };
  return result.violations.filter((v) => v.impact === "critical" || v.impact === "serious")
    .map((v) => {
      const content = v.nodes.filter(inArticle);
      return { id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, content: content.length,
               targets: content.slice(0, 3).map((n) => n.target.join(" ")) };
    });
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's script, from the pinned npm tarball the book build fetched into _build/vendor."""
    import tarfile

    from tests.test_book_pages import offline_assets

    cache = ROOT / "_build" / "vendor"
    offline_assets.fetch(cache, offline_assets.TEST_ASSETS)  # checks the sha512; fetches only if absent
    (asset,) = offline_assets.TEST_ASSETS
    with tarfile.open(cache / asset.tarball) as tar:
        return tar.extractfile("package/axe.min.js").read().decode("utf-8")


def axe_problems(violations: list[dict], summary) -> list[str]:
    """axe-core's critical and serious violations inside the article (what the book's sources
    make) as problems; those outside it come from the theme and go to summary.json's
    "axe_page_only", not failed."""
    page_only = summary.extra.setdefault("axe_page_only", {})
    for v in violations:
        if v["nodes"] > v["content"]:
            entry = page_only.setdefault(v["id"], {"help": v["help"], "impact": v["impact"], "pages": 0, "nodes": 0})
            entry["pages"] += 1
            entry["nodes"] += v["nodes"] - v["content"]
    return [f"accessibility: {v['impact']} {v['id']} ({v['help']}): {v['content']} nodes, e.g. {v['targets']}"
            for v in violations if v["content"]]


def glyph_problems(page, context, cjk_families: set[str]) -> list[str]:
    """The page title's CJK characters must be drawn by a font that has them: Chromium reports
    which fonts drew a node's text (DevTools' CSS.getPlatformFontsForNode)."""
    title = page.eval_on_selector("article h1", "h => [...h.childNodes].filter(n => n.nodeType === 3)"
                                  ".map(n => n.textContent).join('')")
    wanted = sum(1 for ch in title if "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f"
                 or "\uff00" <= ch <= "\uffef")
    if not wanted:
        return [f"the Chinese page's title has no Chinese characters: {title!r}"]
    cdp = context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "article h1"})["nodeId"]
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    drawn = sum(f["glyphCount"] for f in fonts if f["familyName"] in cjk_families)
    if drawn < wanted:
        return [f"title {title!r}: {wanted} Chinese characters, {drawn} drawn by a CJK font ({fonts})"]
    return []


@pytest.fixture(scope="session")
def cjk_families() -> set[str]:
    """Font families that cover Chinese, as fontconfig (which Chromium uses on Linux) lists them."""
    import subprocess

    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {name.strip() for line in listed.stdout.splitlines() for name in line.split(",") if name.strip()}


@pytest.mark.parametrize(("edition", "doc"), PAGES)
def test_page_renders_offline(edition, doc, context, origin, book, summary, axe_source, cjk_families):
    spec = EDITIONS[edition]
    path = f"{spec['prefix']}{doc}.html"
    assert (book / path).exists(), f"{path} is not in the build: rebuild the book (`make book` builds both editions)"
    blocked_before = len(summary.blocked)
    started = time.perf_counter()
    page, log = open_page(context, origin, path)
    try:
        problems = settle(page)
        facts = page.evaluate(FACTS)
        if edition == "zh":
            problems += glyph_problems(page, context, cjk_families) if cjk_families else [
                "no font covers Chinese (fc-list :lang=zh is empty): install fonts-wqy-zenhei"]
        page.add_script_tag(content=axe_source)  # after FACTS: the audit must not count itself
        violations = page.evaluate(AXE_RUN, [edition == "en", TEXT_RULES])
    finally:
        page.close()
    problems += log.errors
    problems += axe_problems(violations, summary)
    problems += [f"tried to reach {url}" for url in summary.blocked[blocked_before:]]

    # Math: every node typeset, one rendered equation per node, no MathJax errors.
    if facts["untypeset"]:
        problems.append(f"math not typeset: {facts['untypeset'][:5]}")
    if facts["equations"] != facts["math"]:
        problems.append(f"{facts['equations']} rendered equations for {facts['math']} math nodes")
    if facts["mathErrors"]:
        problems.append(f"MathJax errors: {facts['mathErrors'][:5]}")

    # Images: all load, and all come from the build. A blob: URL of this origin is made in the page
    # from bytes it already holds (an Image widget's value), so it is part of the build too.
    for image in facts["images"]:
        if not image["src"].startswith((origin + "/", "data:", "blob:" + origin + "/")):
            problems.append(f"image outside the build: {image['src']}")
        elif not image["ok"]:
            problems.append(f"broken image: {image['src']}")
    problems += [f"SVG image outside the build: {s}" for s in facts["svgImages"] if "//" in s]

    # Widgets: each saved view rendered, showing the sliders, bars and figures of its saved state.
    if facts["rendered"] != facts["views"] or facts["widgetErrors"]:
        problems.append(f"{facts['rendered']} of {facts['views']} widgets rendered"
                        + (" (Error displaying widget)" if facts["widgetErrors"] else ""))
    for name in ("sliders", "progress"):
        saved, shown = facts[name]
        if shown != saved:
            problems.append(f"{name}: saved state has {saved}, page shows {shown}")
    saved, shown = facts["outputImages"]
    if shown < saved:
        problems.append(f"widget outputs: saved state has {saved} figures, page shows {shown}")

    # Language: the page's own, and a switch to the same page of the other edition.
    if facts["lang"] != spec["lang"]:
        problems.append(f"<html lang={facts['lang']!r}>, expected {spec['lang']!r}")
    hreflang, target = spec["switch"]
    if not facts["switchTo"]:
        problems.append("no language switch")
    elif facts["switchTo"]["hreflang"] != hreflang or local_path(facts["switchTo"]["href"]) != target.format(doc=doc):
        problems.append(f"language switch {facts['switchTo']} should lead to {target.format(doc=doc)}")
    elif not (book / target.format(doc=doc)).exists():
        problems.append(f"the language switch leads to {target.format(doc=doc)}, which is not in the build")

    # Navigation: the two orientation lines, prev/next in reading order.
    if not re.search(spec["learn"], facts["text"], re.IGNORECASE):
        problems.append(f"no orientation line matching {spec['learn']!r}")
    if not re.search(spec["run"], facts["text"], re.IGNORECASE):
        problems.append(f"no orientation line matching {spec['run']!r}")
    index = DOCS.index(doc)
    prefix = spec["prefix"]
    expected_prev = f"{prefix}{DOCS[index - 1]}.html" if index > 0 else None
    expected_next = f"{prefix}{DOCS[index + 1]}.html" if index + 1 < len(DOCS) else None
    if local_path(facts["prev"]) != expected_prev:
        problems.append(f"prev link {facts['prev']} should lead to {expected_prev}")
    if local_path(facts["next"]) != expected_next:
        problems.append(f"next link {facts['next']} should lead to {expected_next}")

    # Notebook pages: launch buttons for this notebook and a download of the .ipynb that works.
    if doc in NOTEBOOKS:
        source = f"{doc}.ipynb"
        if not (facts["binder"] or "").endswith(f"lab/tree/{source}"):
            problems.append(f"Binder launch button missing or not for {source}: {facts['binder']}")
        if not (facts["colab"] or "").endswith(f"/{source}"):
            problems.append(f"Colab launch button missing or not for {source}: {facts['colab']}")
        if not facts["download"]:
            problems.append("no .ipynb download link")
        for href in facts["download"]:
            response = context.request.get(href)
            if not response.ok:
                problems.append(f"download {href}: HTTP {response.status}")
                continue
            notebook = json.loads(response.body())
            first = "".join(notebook["cells"][0]["source"])
            if notebook.get("nbformat") != 4 or not first.startswith("# "):
                problems.append(f"download {href} is not this chapter's notebook")

    summary.pages[path.removesuffix(".html")] = {
        "math": facts["math"], "equations": facts["equations"], "widgets": facts["rendered"],
        "images": len(facts["images"]), "seconds": round(time.perf_counter() - started, 2),
    }
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)


def search(context, origin: str, path: str) -> tuple[set[str], list[str]]:
    """The pages a search results page lists (local paths, no anchors), and its page's errors."""
    page, log = open_page(context, origin, path)
    try:
        page.wait_for_function(
            "() => (document.querySelector('#search-results .search-summary') || {}).textContent",
            timeout=30_000,
        )
        hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    finally:
        page.close()
    return {local_path(h).split("#")[0] for h in hits}, log.errors


def test_search_finds_the_attention_chapters(context, origin, summary):
    pages, errors = search(context, origin, "search.html?q=attention")
    assert "chapters/04_1_attention_math/index.html" in pages, pages
    assert "chapters/03_1_transformer/3_1_1_self_attention.html" in pages, pages
    assert not errors, errors
    summary.extra["search_attention_hits"] = len(pages)


def test_chinese_search_finds_the_attention_chapters(context, origin, summary):
    """The Chinese edition's index is segmented into words (jieba), so a Chinese query finds pages."""
    pages, errors = search(context, origin, "zh/search.html?q=自注意力")
    assert "zh/chapters/03_1_transformer/3_1_1_self_attention.html" in pages, pages
    assert all(p.startswith("zh/") for p in pages), pages
    assert not errors, errors
    summary.extra["search_zh_hits"] = len(pages)


def test_chinese_search_cuts_a_phrase_typed_without_spaces_into_words(context, origin, summary):
    """Chinese is written without spaces: the query is cut into the index's words in the browser
    (_ext/static/search-chinese-query.js), so a phrase finds the pages that hold its words."""
    phrase = "变分自编码器的重参数化技巧"  # "the reparameterisation trick of the VAE"
    pages, errors = search(context, origin, f"zh/search.html?q={phrase}")
    assert "zh/chapters/03_4_vae/3_4_1_vae.html" in pages, pages
    assert all(p.startswith("zh/") for p in pages), pages
    assert not errors, errors
    summary.extra["search_zh_phrase_hits"] = len(pages)


def test_code_cells_pass_the_audit(context, origin, axe_source):
    """axe-core inside code cells, every rule (the per-page audit leaves them out: their markup and
    the theme's Pygments colours are the same on every page), on a page whose code has keywords,
    strings, numbers and comments."""
    page, log = open_page(context, origin, "chapters/03_1_transformer/3_1_1_self_attention.html")
    try:
        settle(page)
        page.add_script_tag(content=axe_source)
        violations = page.evaluate("""async () => (await axe.run({ include: [["div.highlight"]] },
            { resultTypes: ["violations"], preload: false })).violations
            .filter((v) => v.impact === "critical" || v.impact === "serious")
            .map((v) => ({ id: v.id, nodes: v.nodes.length, targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }))""")
        tokens = page.evaluate("() => new Set([...document.querySelectorAll('div.highlight span[class]')]"
                               ".map((s) => s.className)).size")
        cells = page.evaluate("() => document.querySelectorAll('div.highlight').length")
    finally:
        page.close()
    assert tokens >= 8, f"only {tokens} kinds of highlighted token: pick a page with more varied code"
    assert cells >= 5, f"only {cells} code cells on the page"
    assert not violations, violations
    assert not log.errors, log.errors


def test_home_page_shows_the_course_map_with_cpu_times(context, origin, review):
    page, log = open_page(context, origin, "index.html")  # redirects to the root page
    try:
        page.wait_for_url(re.compile(r"chapters/intro\.html"), timeout=10_000)
        settle(page)
        table = page.eval_on_selector_all(
            "table",
            """ts => ts.map(t => ({head: [...t.querySelectorAll('th')].map(c => c.innerText.trim()),
                 rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.innerText.trim()))}))""",
        )
        text = page.inner_text("article")
        page.screenshot(path=str(review / "home.png"), full_page=True)  # down to the course map
    finally:
        page.close()
    course_map = next((t for t in table if any("CPU" in h for h in t["head"])), None)
    assert course_map, "no course map table with a CPU time column on the home page"
    cpu = next(i for i, h in enumerate(course_map["head"]) if "CPU" in h)
    for row in course_map["rows"]:
        # the first column is the article's section number, and the chapter title repeats it
        assert re.fullmatch(r"\d+(\.\d+)*", row[0]), f"row without the article's section number: {row}"
        assert row[1].startswith(row[0] + " "), f"chapter title without its section number: {row}"
        assert re.search(r"\d+\s*(s|min)\b", row[cpu]), f"row without a measured CPU time: {row}"
    assert re.search(r"[Mm]easured on \d{4}-\d{2}-\d{2}", text), "the course map does not say when it was measured"
    assert not log.errors, log.errors


def test_screenshots_of_a_chapter_and_a_widget(context, origin, book, review):
    page, _ = open_page(context, origin, "chapters/03_1_transformer/3_1_1_self_attention.html")
    try:
        settle(page)
        page.screenshot(path=str(review / "chapter.png"))
    finally:
        page.close()
    with_slider = next(
        (doc for doc in DOCS if "SliderModel" in (book / f"{doc}.html").read_text(encoding="utf-8")),
        None,
    )
    assert with_slider, "no page of the book has a slider widget to show"
    page, _ = open_page(context, origin, f"{with_slider}.html")
    try:
        settle(page)
        widget = page.locator(".widget-subarea", has=page.locator(".widget-slider")).first
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(review / "widget.png"))
    finally:
        page.close()
    page, _ = open_page(context, origin, "zh/chapters/03_1_transformer/3_1_1_self_attention.html")
    try:
        settle(page)
        page.screenshot(path=str(review / "chapter-zh.png"))  # Chinese text drawn, no missing-glyph boxes
    finally:
        page.close()
    for name in ("chapter.png", "widget.png", "chapter-zh.png"):
        assert (review / name).stat().st_size > 5_000, f"{name} is suspiciously small"


# Pages whose notebook has a slider widget: in the static book the widget cannot redraw (no
# kernel), so each such page also carries a frame viewer (aigc_course.plotting.frame_viewer).
SLIDER_PAGES = [doc for doc in sorted(NOTEBOOKS) if "Slider(" in resolve(doc).read_text(encoding="utf-8")]

VIEWERS = """() => [...document.querySelectorAll(".aigc-frame-viewer")].map((root) => {
  const slider = root.querySelector("input.aigc-frame-slider");
  const img = root.querySelector("img.aigc-frame");
  return {
    id: root.id,
    frames: slider ? Number(slider.max) + 1 : 0,
    value: slider ? Number(slider.value) : null,
    name: slider && slider.labels.length ? slider.labels[0].textContent.trim() : "",
    alt: img ? img.alt : "",
    src: img ? img.src : "",
    label: (root.querySelector(".aigc-frame-label") || {}).textContent || "",
    ok: img ? img.complete && img.naturalWidth > 0 : false,
  };
})"""


@pytest.mark.parametrize("doc", SLIDER_PAGES)
def test_frame_viewers_work_without_a_kernel(doc, context, origin, book):
    """Each static viewer has a named slider and an alt text; moving the slider (with the keyboard,
    as a reader would) and pressing play both change the image, with no console errors."""
    assert (book / f"{doc}.html").exists(), f"{doc}.html is not in the build: rebuild the book"
    page, log = open_page(context, origin, f"{doc}.html")
    problems = []
    try:
        settle(page)
        viewers = page.evaluate(VIEWERS)
        if not viewers:
            problems.append("the page has a slider widget but no frame viewer: the static book cannot redraw it")
        for v in viewers:
            where = f"viewer {v['id']}"
            if v["frames"] < 2:
                problems.append(f"{where}: {v['frames']} frames")
                continue
            if not v["name"]:
                problems.append(f"{where}: its slider has no label (no accessible name)")
            if len(v["alt"].strip()) < 10:
                problems.append(f"{where}: image alt {v['alt']!r}")
            if not v["ok"]:
                problems.append(f"{where}: the first frame does not load")
            root = page.locator(f"#{v['id']}")
            slider = root.locator("input.aigc-frame-slider")
            slider.scroll_into_view_if_needed()
            slider.focus()
            page.keyboard.press("Home" if v["value"] > 0 else "End")
            moved = page.evaluate(VIEWERS)
            after = next(m for m in moved if m["id"] == v["id"])
            if after["value"] == v["value"] or after["src"] == v["src"]:
                problems.append(f"{where}: moving the slider from {v['value']} did not change the image")
            if after["label"] == v["label"] or after["alt"] == v["alt"]:
                problems.append(f"{where}: moving the slider did not update the label and alt text")
            root.locator("button.aigc-frame-play").click()
            interval = int(root.get_attribute("data-interval"))
            page.wait_for_timeout(2 * interval + 200)
            played = next(m for m in page.evaluate(VIEWERS) if m["id"] == v["id"])
            root.locator("button.aigc-frame-play").click()  # pause again
            if played["src"] == after["src"]:
                problems.append(f"{where}: play did not advance the frames")
    finally:
        page.close()
    problems += log.errors
    assert not problems, f"{doc}:\n  " + "\n  ".join(problems)


EXTERNAL_ASSET = re.compile(
    r"""<(?:img|script|source|image|iframe)\b[^>]*?\s(?:src|srcset|href|xlink:href)=["'](?:https?:)?//"""
    r"""|<link\b[^>]*rel=["']stylesheet["'][^>]*href=["'](?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//""",
    re.IGNORECASE,
)


def test_no_page_loads_images_scripts_or_styles_from_outside_the_build(book):
    """Static check of every HTML file, including pages the browser does not visit."""
    offenders = []
    for path in sorted(book.rglob("*.html")):
        for match in EXTERNAL_ASSET.finditer(path.read_text(encoding="utf-8", errors="replace")):
            offenders.append(f"{path.relative_to(book)}: {match.group(0)[:120]}")
    assert not offenders, "\n".join(offenders[:20])


def test_every_toc_page_was_built(book):
    missing = [doc for doc in DOCS if not (book / f"{doc}.html").exists()]
    assert not missing, f"pages in _toc.yml missing from {book}: {missing}"
