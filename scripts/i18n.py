"""The Chinese edition: message catalogs from the English sources, and the Chinese build.

The book has one source, in English; the Chinese edition translates its prose through gettext,
the way Sphinx projects translate their documentation. Notebooks and code stay single: Sphinx
reads each page (Markdown or notebook), splits its prose into messages (paragraphs, headings,
list items, table cells, admonitions), and the Chinese build replaces each message by its
translation from ``locales/zh_CN/LC_MESSAGES/<page>.po`` before rendering. Code cells and their
outputs are not messages, so they are shared by both editions, and so is the execution cache:
the Chinese build executes nothing.

    python scripts/i18n.py extract   # the English messages, one .pot per page, into _build/gettext
    python scripts/i18n.py update    # extract, then merge into the .po files (new messages empty)
    python scripts/i18n.py stats     # translated, fuzzy and untranslated messages per catalog
    python scripts/i18n.py check     # every translation keeps its message's math, code, links and roles
    python scripts/i18n.py build     # the Chinese edition, strictly, into _build/zh/html
    python scripts/i18n.py book      # both editions at once, strictly (what `make book` runs)

``update`` keeps every existing translation whose English text is unchanged; a changed paragraph
becomes a new, untranslated message (no fuzzy matching, so an old translation never stands in
for new English). The strict Chinese build fails on any message without a translation
(``_ext/translations.py``), so an English paragraph cannot land untranslated.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
LANGUAGE = "zh_CN"
CATALOGS = LOCALES / LANGUAGE / "LC_MESSAGES"
POT_DIR = ROOT / "_build" / "gettext"
ZH_OUT = ROOT / "_build" / "zh" / "html"
EN_OUT = ROOT / "_build" / "html"
CACHE = ROOT / "_build" / ".jupyter_cache"

# One catalog per page, no per-run noise (uuids, source line numbers) in the files under review.
GETTEXT = {"gettext_compact": False, "gettext_uuid": False, "gettext_location": False,
           "gettext_additional_targets": []}


def _build(outdir: Path, builder: str, overrides: dict, doctrees: Path, strict: bool) -> int:
    from jupyter_book.sphinx import build_sphinx

    confoverrides = {"external_toc_path": "_toc.yml", "latex_individualpages": False, **overrides}
    if strict:
        confoverrides["nitpicky"] = True
    result = build_sphinx(ROOT, outdir, noconfig=True, path_config=str(ROOT / "_config.yml"),
                          confoverrides=confoverrides, builder=builder, doctreedir=str(doctrees),
                          warningiserror=strict, keep_going=strict)
    if isinstance(result, Exception):
        raise result
    return int(result or 0)


def extract() -> int:
    """The English messages of every page, one .pot per page, into _build/gettext.

    Notebooks are read as stored (no outputs, nothing executed): only prose is extracted."""
    return _build(POT_DIR, "gettext", {**GETTEXT, "nb_execution_mode": "off"},
                  POT_DIR.parent / ".doctrees-gettext", strict=False)


_EXERCISE = re.compile(r"^:{3,}\{exercise\}[ \t]+(\S.*?)[ \t]*$", re.M)


def exercise_titles(docname: Path) -> list[str]:
    """The titles of a page's exercises (``:::{exercise} 1.1 Title``). sphinx-exercise makes them
    into headings that Sphinx's gettext builder does not extract, so they are added here, and
    _ext/translations.py translates them in the Chinese build."""
    source = ROOT / docname.with_suffix(".md")
    return _EXERCISE.findall(source.read_text(encoding="utf-8")) if source.exists() else []


def merge(messages: list[str], old_text: str | None) -> str:
    """A catalog with ``messages`` in order, each keeping its translation from the old catalog if
    its English is unchanged, and empty otherwise; messages no longer on the page are dropped."""
    import polib

    known = {}
    if old_text is not None:
        known = {e.msgid: e.msgstr for e in polib.pofile(old_text)
                 if e.translated() and not e.obsolete and not e.msgctxt}
    po = polib.POFile(wrapwidth=0)
    po.metadata = {"Project-Id-Version": "AIGC from Zero to Practice", "Language": LANGUAGE,
                   "MIME-Version": "1.0", "Content-Type": "text/plain; charset=UTF-8",
                   "Content-Transfer-Encoding": "8bit"}
    for message in dict.fromkeys(messages):
        po.append(polib.POEntry(msgid=message, msgstr=known.get(message, "")))
    return po.__unicode__()


def update() -> int:
    """Extract, then merge every .pot into its .po: new messages empty, vanished ones dropped."""
    import polib

    status = extract()
    if status:
        return status
    seen = set()
    for pot_path in sorted(POT_DIR.rglob("*.pot")):
        relative = pot_path.relative_to(POT_DIR).with_suffix(".po")
        po_path = CATALOGS / relative
        seen.add(po_path)
        messages = [entry.msgid for entry in polib.pofile(str(pot_path)) if entry.msgid]  # Sphinx adds an empty one
        messages += exercise_titles(relative.with_suffix(""))
        old = po_path.read_text(encoding="utf-8") if po_path.exists() else None
        text = merge(messages, old)
        if text != old:
            po_path.parent.mkdir(parents=True, exist_ok=True)
            po_path.write_text(text, encoding="utf-8")
    for stale in sorted(set(CATALOGS.rglob("*.po")) - seen):  # a page that left the book
        stale.unlink()
    return stats()


def coverage() -> dict[str, tuple[int, int, int]]:
    """{catalog: (translated, fuzzy, untranslated)} for every .po of the Chinese edition."""
    import polib

    counts = {}
    for po_path in sorted(CATALOGS.rglob("*.po")):
        po = polib.pofile(str(po_path))
        entries = [e for e in po if e.msgid and not e.obsolete]
        fuzzy = sum("fuzzy" in e.flags for e in entries)
        translated = sum(e.translated() for e in entries)
        counts[po_path.relative_to(CATALOGS).as_posix()] = (translated, fuzzy, len(entries) - translated - fuzzy)
    return counts


def stats() -> int:
    counts = coverage()
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    for name, (done, fuzzy, missing) in counts.items():
        if fuzzy or missing:
            print(f"{name}: {done} translated, {fuzzy} fuzzy, {missing} untranslated")
    messages = sum(total)
    share = 100.0 * total[0] / messages if messages else 0.0
    print(f"{len(counts)} catalogs, {messages} messages: {total[0]} translated ({share:.1f}%), "
          f"{total[1]} fuzzy, {total[2]} untranslated")
    return 0


# What a translation must carry over unchanged: math, inline code, link targets, roles' targets.
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
_ROLE = re.compile(r"(?<!`)\{([a-z:-]+)\}`([^`]*)`")  # not `{exercise}`, code naming a directive
_CODE = re.compile(r"(?<![}`])`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _role_target(text: str) -> str:
    explicit = re.search(r"<([^>]+)>\s*$", text)
    return explicit.group(1) if explicit else text


def protected(text: str) -> dict[str, list[str]]:
    """The parts of a message that its translation must keep: math, code, link targets, roles."""
    without_roles = _ROLE.sub(" ", text)
    return {
        "math": sorted(m.group(0) for m in _MATH.finditer(without_roles)),
        "roles": sorted(f"{{{r.group(1)}}}{_role_target(r.group(2))}" for r in _ROLE.finditer(text)),
        "code": sorted(c.group(1) for c in _CODE.finditer(_MATH.sub(" ", without_roles))),
        "links": sorted(link.group(1) for link in _LINK.finditer(text)),
    }


def problems(po_path: Path) -> list[str]:
    """Each translated message of one catalog whose math, code, links or roles differ from the English."""
    import polib

    found = []
    for entry in polib.pofile(str(po_path)):
        if not entry.msgid or not entry.msgstr:
            continue
        english, chinese = protected(entry.msgid), protected(entry.msgstr)
        for kind, parts in english.items():
            if parts != chinese[kind]:
                found.append(f"{po_path.relative_to(CATALOGS)}: {kind} differ in {entry.msgid[:70]!r}: "
                             f"{sorted(set(parts) ^ set(chinese[kind]))[:4]}")
    return found


def check(paths: list[str] | None = None) -> int:
    """Fails (status 1) when a translation loses or changes the English message's math, code, links
    or roles: those are the same in both editions."""
    catalogs = [Path(p).resolve() for p in paths] if paths else sorted(CATALOGS.rglob("*.po"))
    found = [problem for path in catalogs for problem in problems(path)]
    print("\n".join(found) if found else f"{len(catalogs)} catalogs: every translation keeps its math, "
          "code, links and roles")
    return 1 if found else 0


def build() -> int:
    """The Chinese edition into _build/zh/html, strictly, from the English build's execution cache.

    ``_build/html/zh`` links to it, so the local build has the published layout (English at the
    root, Chinese under zh/) and each page's language switch works from disk as well as online."""
    overrides = {"language": LANGUAGE, "locale_dirs": [str(LOCALES)], "gettext_compact": False,
                 "nb_execution_cache_path": str(CACHE)}
    status = _build(ZH_OUT, "html", overrides, ZH_OUT.parent / ".doctrees", strict=True)
    link = EN_OUT / "zh"
    EN_OUT.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        if link.exists():
            raise SystemExit(f"{link} exists and is not the link to the Chinese edition: remove it")
        link.symlink_to(os.path.relpath(ZH_OUT, EN_OUT), target_is_directory=True)
    print(f"Open {ZH_OUT / 'index.html'}")
    return status


def book() -> int:
    """Both editions, strictly, built at the same time: each Sphinx build is one process, and a
    CI machine has two cores. Each build's log is printed when it ends."""
    import subprocess

    sys.path.insert(0, str(ROOT / "_ext"))
    import offline_assets  # the two builds would otherwise both fetch the npm packages, at once

    offline_assets.fetch(ROOT / "_build" / "vendor", offline_assets.ASSETS + offline_assets.TEST_ASSETS)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    commands = {"English": [str(jupyter_book), "build", ".", "-W", "-n", "--keep-going"],
                "Chinese": [sys.executable, str(Path(__file__).resolve()), "build"]}
    runs = {name: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True) for name, command in commands.items()}
    status = 0
    for name, run in runs.items():
        log, _ = run.communicate()
        print(f"===== {name} edition " + "=" * 60 + "\n" + log, flush=True)
        status = status or run.returncode
    failed = [name for name, run in runs.items() if run.returncode]
    print(f"{' and '.join(failed)} edition build failed" if failed else
          f"Open {EN_OUT / 'index.html'} (English) and {ZH_OUT / 'index.html'} (Chinese)")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["extract", "update", "stats", "check", "build", "book"])
    parser.add_argument("catalogs", nargs="*", help="check: only these .po files")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.catalogs)
    os.chdir(ROOT)
    commands = {"extract": extract, "update": update, "stats": stats, "build": build, "book": book}
    return commands[args.command]()


if __name__ == "__main__":
    sys.exit(main())
