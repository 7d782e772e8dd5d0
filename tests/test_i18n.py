"""The Chinese edition's catalogs (scripts/i18n.py) and its Sphinx extension (_ext/translations.py).

The strict Chinese build (`make book`, run by `make test`) fails on any message of the English
pages without a translation; these tests check the catalogs themselves, fast: every page has one,
every message is translated and not fuzzy, and every translation keeps its math, code, links and
roles.
"""

from __future__ import annotations

import sys

import polib
import pytest

from tests.test_repository import ROOT, toc_files

sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "_ext"))
import i18n  # noqa: E402
import translations  # noqa: E402


def test_every_page_of_the_book_has_a_catalog_and_no_other_catalog_exists():
    pages = {f"{doc}.po" for doc in toc_files()}
    catalogs = {p.relative_to(i18n.CATALOGS).as_posix() for p in i18n.CATALOGS.rglob("*.po")}
    assert pages - catalogs == set(), "pages without a catalog: run `make translations`"
    assert catalogs - pages == set(), "catalogs of pages no longer in the book: run `make translations`"


def test_every_message_is_translated_and_none_is_fuzzy():
    counts = i18n.coverage()
    incomplete = {name: c for name, c in counts.items() if c[1] or c[2]}
    assert not incomplete, f"(translated, fuzzy, untranslated) per catalog: {incomplete}"
    assert sum(c[0] for c in counts.values()) > 2000  # the whole book, not a stub


def test_every_translation_keeps_its_math_code_links_and_roles():
    found = [p for path in sorted(i18n.CATALOGS.rglob("*.po")) for p in i18n.problems(path)]
    assert not found, "\n".join(found[:10])


def test_the_orientation_lines_and_titles_are_translated_the_same_way_everywhere():
    for path in sorted(i18n.CATALOGS.rglob("*.po")):
        for entry in polib.pofile(str(path)):
            if entry.msgid.startswith("**What you will learn:**"):
                assert entry.msgstr.startswith("**你将学到：**"), (path.name, entry.msgstr[:40])
            if entry.msgid.startswith("**Run this chapter:**"):
                assert entry.msgstr.startswith("**运行本章：**"), (path.name, entry.msgstr[:40])


@pytest.mark.parametrize(("english", "chinese", "kinds"), [
    ("Divide by $\\sqrt{d_k}$ in `attention`.", "除以 $\\sqrt{d_k}$，见 `attention`。", set()),
    ("Divide by $\\sqrt{d_k}$.", "除以 $d_k$。", {"math"}),
    ("Run `make lab`.", "运行 make lab。", {"code"}),
    ("See {doc}`the page <3_1_1_self_attention>`.", "见{doc}`这一页 <3_1_1_self_attention>`。", set()),
    ("See {doc}`the page <3_1_1_self_attention>`.", "见{doc}`这一页 <3_1_2_why_sqrt_dk>`。", {"roles"}),
    ("As {cite}`vaswani2017attention` shows.", "如{cite}`vaswani2017attention`所示。", set()),
    ("[The docs](https://pytorch.org/docs).", "[文档](https://pytorch.org/docs)。", set()),
    ("[The docs](https://pytorch.org/docs).", "[文档](https://pytorch.org/)。", {"links"}),
    # code that names a directive is code, not a role
    ("The `{exercise}` directive and its `{solution}`.", "`{exercise}` 指令及其 `{solution}`。", set()),
])
def test_protected_parts_must_survive_translation(english, chinese, kinds):
    got, want = i18n.protected(english), i18n.protected(chinese)
    assert {kind for kind in got if got[kind] != want[kind]} == kinds


def test_merge_keeps_unchanged_translations_and_empties_changed_ones():
    old = i18n.merge(["Keep me.", "Old wording.", "Gone."], None)
    po = polib.pofile(old)
    for entry in po:
        entry.msgstr = "译：" + entry.msgid
    merged = polib.pofile(i18n.merge(["New first.", "Keep me.", "New wording.", "Keep me."], po.__unicode__()))
    assert [(e.msgid, e.msgstr) for e in merged] == [
        ("New first.", ""), ("Keep me.", "译：Keep me."), ("New wording.", "")]
    assert not any("fuzzy" in e.flags for e in merged)  # an old translation never stands in for new English


def test_exercise_titles_are_messages_of_their_page():
    """sphinx-exercise's titles are not extracted by Sphinx's gettext builder; i18n adds them."""
    titles = i18n.exercise_titles(ROOT.joinpath("chapters", "01_background", "exercises").relative_to(ROOT))
    assert titles[0] == "1.1 Add-k smoothed n-gram probability"
    catalog = polib.pofile(str(i18n.CATALOGS / "chapters" / "01_background" / "exercises.po"))
    assert all(catalog.find(title) for title in titles)


def test_language_switch_links_the_same_page_in_the_other_edition():
    assert translations._switch("chapters/03_1_transformer/3_1_1_self_attention", "en")["href"] == (
        "../../zh/chapters/03_1_transformer/3_1_1_self_attention.html")
    assert translations._switch("chapters/03_1_transformer/3_1_1_self_attention", "zh_CN")["href"] == (
        "../../../chapters/03_1_transformer/3_1_1_self_attention.html")
    assert translations._switch("search", "zh_CN")["href"] == "../search.html"
    assert translations._switch("index", "fr") is None


def test_glossary_terms_feed_the_chinese_search():
    terms = translations.glossary_terms()
    assert {"自注意力", "生成对抗网络", "变分自编码器", "扩散模型", "指令精调", "无分类器引导"} <= set(terms)
    assert all(len(t) >= 2 for t in terms)


def test_term_list_tests_membership_like_a_set_and_extends_like_a_list():
    terms = translations._TermList()
    terms.extend(iter(["GPT", "ELBO"]))
    terms.extend(["GPT"])
    assert "ELBO" in terms and "VAE" not in terms
    assert list(terms) == ["GPT", "ELBO", "GPT"]


def test_pages_publishes_both_editions_english_at_the_root_chinese_under_zh():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    steps = "\n".join(step.get("run", "") for step in workflow["jobs"]["build"]["steps"])
    assert "make book" in steps and "make test-browser" in steps  # built, then read as a reader would
    assert "cp -r _build/zh/html _build/site/zh" in steps
    uses = [step.get("uses", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert any(u.startswith("actions/deploy-pages@") for u in uses)


def test_a_translated_build_warns_about_each_untranslated_message_and_translates_the_rest(tmp_path):
    """A two-message page with one translation: the Chinese build renders that one and names the other."""
    import io

    from sphinx.application import Sphinx

    source = tmp_path / "src"
    source.mkdir()
    (source / "conf.py").write_text("", encoding="utf-8")
    (source / "index.md").write_text("# Attention\n\nThe scores are divided by $\\sqrt{d_k}$.\n\nA new paragraph.\n",
                                     encoding="utf-8")
    catalogs = source / "locales" / "zh_CN" / "LC_MESSAGES"
    catalogs.mkdir(parents=True)
    po = polib.pofile(i18n.merge(["Attention", "The scores are divided by $\\sqrt{d_k}$."], None))
    po[0].msgstr, po[1].msgstr = "注意力", "分数除以 $\\sqrt{d_k}$。"
    po.save(str(catalogs / "index.po"))
    warnings = io.StringIO()
    app = Sphinx(str(source), str(source), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                 confoverrides={"extensions": ["myst_parser", "translations"], "language": "zh_CN",
                                "locale_dirs": ["locales"], "gettext_compact": False,
                                "myst_enable_extensions": ["dollarmath"]},
                 status=None, warning=warnings, freshenv=True)
    app.build()
    html = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "分数除以" in html and "注意力" in html
    assert "A new paragraph." in html  # untranslated messages stay English, and are named:
    assert warnings.getvalue().count("untranslated message") == 1
    assert "'A new paragraph.'" in warnings.getvalue()
    assert 'hreflang="en"' in html  # the switch back to the English edition
