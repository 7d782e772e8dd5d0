"""Sphinx extension: the book's two editions, English and Chinese, built from one source.

The Chinese edition (``python scripts/i18n.py build``, ``make book``) is the same Sphinx project
built with ``language = "zh_CN"``: Sphinx's Locale transform replaces every message of a page (a
paragraph, heading, list item, table cell, caption or alt text) by its translation from
``locales/zh_CN/LC_MESSAGES/<page>.po``. This extension adds:

- **No untranslated prose.** In a translated build, every message of a page's own text must have a
  translation, or the build warns (an error under ``-W``), naming the page and the message. Cell
  outputs are left out: code and its output are shared by both editions.
- **What Sphinx's Locale transform misses:** exercise titles (made by sphinx-exercise from its
  directive's argument) and the table of contents' part captions (inserted after it runs).
- **A language switch** in every page's header that leads to the same page in the other edition,
  and ``<link rel="alternate" hreflang>`` tags for both. The editions are laid out as they are
  published: English at the site's root, Chinese under ``zh/``.
- **Chinese search:** the glossary's terms go into the word segmenter's dictionary, and a query
  typed without spaces is cut into the index's words (``static/search-chinese-query.js``).
- **Speed:** two workarounds for slow paths of Sphinx in a translated build (below).
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain
from sphinx.util.nodes import extract_messages

logger = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"
EDITION_DIR = {"zh_CN": "zh"}  # where each translated edition lives under the English site
SWITCH = {  # the link each edition shows: to the other edition, written in that edition's language
    "en": {"label": "中文", "hreflang": "zh-CN", "title": "阅读本页的中文版"},
    "zh_CN": {"label": "English", "hreflang": "en", "title": "Read this page in English"},
}


def _inside_output(node: nodes.Node) -> bool:
    """True for a node of a code cell's output (myst-nb marks those containers ``nb_element``)."""
    parent = node
    while parent is not None:
        if isinstance(parent, nodes.Element) and str(parent.get("nb_element", "")).startswith("cell_code_output"):
            return True
        parent = parent.parent
    return False


def _is_exercise_subtitle(node: nodes.Node) -> bool:
    return type(node).__name__ == "exercise_subtitle"


def _is_exercise_heading(node: nodes.Node) -> bool:
    """An exercise's or solution's title: "Exercise" and "Solution" come translated from
    sphinx-exercise, and the exercise's own title is its subtitle (translated above)."""
    return type(node).__name__ in ("exercise_title", "solution_title")


def _page_catalog(transform: SphinxTransform) -> tuple[dict, str, bool] | None:
    """(this page's translations, its catalog's name, whether the catalog exists), or None when
    the build is not a translated edition."""
    language = transform.config.language
    if language in (None, "", SOURCE_LANGUAGE) or language not in EDITION_DIR:
        return None
    domain = docname_to_domain(transform.env.docname, transform.config.gettext_compact)
    dirs = [str(Path(transform.env.srcdir, directory)) for directory in transform.config.locale_dirs]
    catalog, has_catalog = init_locale(dirs, language, domain)
    return (getattr(catalog, "_catalog", {}) if has_catalog else {}), domain, has_catalog


def _untranslated(transform: SphinxTransform, what: str, domain: str, text: str, node) -> None:
    language = transform.config.language
    logger.warning("untranslated %s (add it to locales/%s/LC_MESSAGES/%s.po, see `make translations`): %r",
                   what, language, domain, text[:120], location=node, type="aigc", subtype="untranslated")


class UntranslatedMessages(SphinxTransform):
    """Warns about each message of a page that its catalog does not translate.

    Runs just before Sphinx's Locale transform (priority 20), on the same messages it will look up
    (``extract_messages``), so what it reports is exactly what would show in English. It also
    translates exercise titles, which Sphinx's gettext builder does not extract."""

    default_priority = 19

    def apply(self, **kwargs) -> None:
        found = _page_catalog(self)
        if found is None:
            return
        translated, domain, has_catalog = found
        if not has_catalog:
            _untranslated(self, "page (no catalog)", domain, self.env.docname, self.env.docname)
            return
        for node in list(self.document.findall(_is_exercise_subtitle)):
            # sphinx-exercise builds an exercise's title from its directive's argument, which Sphinx's
            # gettext builder does not extract; scripts/i18n.py adds those titles to the catalogs
            english = node.astext()
            if english in translated:
                node.children = []
                node += nodes.Text(translated[english])
            else:
                _untranslated(self, "exercise title", domain, english, node)
        for node, message in extract_messages(self.document):
            if message not in translated and not _inside_output(node) and not _is_exercise_heading(node):
                _untranslated(self, "message", domain, message, node)


class TranslatedTocCaptions(SphinxTransform):
    """The part captions of the table of contents ("Part 3 · Core algorithms (核心算法原理)").

    sphinx-external-toc inserts the root page's toctrees from ``_toc.yml`` at priority 100, after
    the Locale transform has run, so their captions are translated here, from the root page's
    catalog, where Sphinx's gettext builder puts them."""

    default_priority = 101

    def apply(self, **kwargs) -> None:
        found = _page_catalog(self)
        if found is None:
            return
        translated, domain, _ = found
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption and caption in translated:
                toctree["caption"] = translated[caption]
            elif caption:
                _untranslated(self, "table-of-contents caption", domain, caption, toctree)


def _switch(pagename: str, language: str) -> dict | None:
    """The link from this page to the same page in the other edition, relative to this page."""
    if language not in SWITCH:
        return None
    up = "../" * pagename.count("/")
    if language == SOURCE_LANGUAGE:
        (edition,) = EDITION_DIR.values()
        href = f"{up}{edition}/{pagename}.html"
    else:
        href = f"{up}../{pagename}.html"
    return {**SWITCH[language], "href": href}


def _add_switch(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    language = app.config.language or SOURCE_LANGUAGE
    switch = _switch(pagename, language)
    if switch is None:
        return
    context["aigc_language_switch"] = switch
    here = f"{pagename.rsplit('/', 1)[-1]}.html"
    own = "en" if language == SOURCE_LANGUAGE else SWITCH["en"]["hreflang"]
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{own}" href="{here}" />'
        f'\n<link rel="alternate" hreflang="{switch["hreflang"]}" href="{switch["href"]}" />'
    )


def _add_template(app: Sphinx, config) -> None:
    """The switch goes first among the article header's buttons (download, full screen, ...)."""
    config.templates_path.append(str(Path(__file__).parent / "templates"))
    options = config.html_theme_options
    buttons = options.get("article_header_end") or ["article-header-buttons.html"]
    if isinstance(buttons, str):
        buttons = [b.strip() for b in buttons.split(",")]
    if "language-switch.html" not in buttons:
        options["article_header_end"] = ["language-switch.html", *buttons]


class _TermList(list):
    """A list with set-speed membership tests. Sphinx's Chinese search indexer keeps every Latin
    word it has seen in a list and tests each new word against it, which is quadratic: over this
    book that was 45 s of a 2-minute build."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def extend(self, terms) -> None:
        terms = list(terms)
        super().extend(terms)
        self._seen.update(terms)

    def __contains__(self, term) -> bool:
        return term in self._seen


GLOSSARY = Path(__file__).resolve().parent.parent / "chapters" / "glossary.md"
_CJK_WORD = re.compile(r"[\u4e00-\u9fff][\u4e00-\u9fffA-Za-z0-9 ]*[\u4e00-\u9fff]")


def glossary_terms(glossary: Path = GLOSSARY) -> list[str]:
    """The Chinese terms of the glossary page's tables (its second column), split at 、 and
    parentheses: 自注意力, 生成对抗网络, 无分类器引导, ..."""
    terms = []
    for line in glossary.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and not set(cells[1]) <= set("-: "):
            terms += [t.strip() for t in _CJK_WORD.findall(cells[1])]
    return sorted(set(terms))


def _search_dictionary(app: Sphinx, config) -> None:
    """Chinese search: Sphinx segments each page's text into words with jieba; the glossary's terms
    go into jieba's dictionary, so a reader's search for a course term (自注意力) finds it whole."""
    if not config.language or not config.language.startswith("zh"):
        return
    words = Path(app.doctreedir) / "search-words.txt"
    words.parent.mkdir(parents=True, exist_ok=True)
    words.write_text("".join(f"{term} 100000\n" for term in glossary_terms()), encoding="utf-8")
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(words)}
    # ...and a query typed without spaces is cut into the index's words in the reader's browser
    app.add_js_file("search-chinese-query.js")  # in _ext/static, like the switch's CSS


def _speed_up_translated_builds(app: Sphinx, config) -> None:
    if (config.language or SOURCE_LANGUAGE) == SOURCE_LANGUAGE:
        return
    from sphinx.search import zh
    from sphinx.transforms import i18n

    zh.SearchChinese.latin_terms = _TermList()
    # A translated message is a paragraph or heading of MyST Markdown, whatever page it comes from.
    # Sphinx parses it with the page's parser, and for a notebook that is myst-nb's, which sets up
    # a whole notebook (and its execution) per message; MyST's own parser gives the same nodes.
    if getattr(i18n.get_filetype, "aigc_messages_as_markdown", False):
        return  # a second build in the same process: already in place
    filetype = i18n.get_filetype

    def message_filetype(source_suffix, filename):
        found = filetype(source_suffix, filename)
        return "markdown" if found == "myst-nb" else found

    message_filetype.aigc_messages_as_markdown = True
    i18n.get_filetype = message_filetype


def setup(app: Sphinx) -> dict:
    from myst_parser.parsers.sphinx_ import MystParser

    if "markdown" not in app.registry.get_source_parsers():  # myst-nb maps .md and .ipynb to its own
        app.add_source_parser(MystParser)  # used only for translated messages, see above
    app.add_transform(UntranslatedMessages)
    app.add_transform(TranslatedTocCaptions)
    app.connect("config-inited", _speed_up_translated_builds)
    app.connect("config-inited", _search_dictionary)
    app.connect("config-inited", _add_template)
    app.connect("html-page-context", _add_switch)
    app.add_css_file("language-switch.css")  # in _ext/static, which offline_assets adds to the site
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
