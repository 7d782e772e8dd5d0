"""Small fixes to the HTML that Sphinx writes, for readers using assistive technology.

A bibliography is written as ``<div role="list">`` holding ``<div role="doc-biblioentry">``
entries. ARIA 1.2 deprecates ``doc-biblioentry`` and a list's children must be list items, so
screen readers (and axe-core, in the browser test) see a list without items: each entry
becomes ``role="listitem"``, which is what it is.
"""

from __future__ import annotations

BIBLIOENTRY = 'role="doc-biblioentry"'


def fix_bibliography_roles(body: str) -> str:
    """The page body with every bibliography entry a list item."""
    return body.replace(BIBLIOENTRY, 'role="listitem"')


def _on_page(app, pagename, templatename, context, doctree):
    if BIBLIOENTRY in context.get("body", ""):
        context["body"] = fix_bibliography_roles(context["body"])


def setup(app):
    app.connect("html-page-context", _on_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
