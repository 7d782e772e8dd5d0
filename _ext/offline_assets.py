"""Sphinx extension: serve MathJax and the Jupyter widget scripts from the book itself.

By default Sphinx loads MathJax, and myst-nb loads require.js and the widget HTML manager,
from CDNs, so the book shows raw TeX and no widgets without a network. This extension takes
those scripts from pinned npm registry packages (``npm pack``, checked against the sha512
below), keeps them in ``_build/vendor/`` and copies the files the book uses into the
built site's ``_static/offline/``. ``_config.yml`` points ``mathjax_path`` and
``nb_ipywidgets_js`` at those copies, and loads ``static/widgets-offline.js`` before the
widget manager (it tells the manager where its fonts are and lets ipywidgets 8, which calls
MathJax 2's API, typeset with MathJax 3). The browser test (``tests/browser``) blocks every
request that leaves the local server, which proves the book needs no network. axe-core
(``TEST_ASSETS``) is fetched the same way for the browser test's accessibility audit, and
stays out of the site.

It also drops repeated identical inline scripts from each page: sphinx-thebe and
sphinx-togglebutton register theirs twice under jupyter-book, and a repeated
``const THEBE_JS_URL`` is a JavaScript error on every page.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Asset:
    """One npm package: which files of its tarball go where under ``_static/offline``."""

    name: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512) for this exact tarball
    files: tuple[str, ...]  # globs relative to the tarball's package/ folder
    strip: str  # leading folder dropped when copying
    target: str  # folder under _static/vendor

    @property
    def tarball(self) -> str:
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


ASSETS = (
    Asset(
        name="mathjax",
        version="3.2.2",
        integrity="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        # The combined TeX/MathML -> CommonHTML bundle and what it loads on demand:
        # TeX extensions (autoload), the CHTML fonts, the menu and its accessibility tools.
        files=("es5/tex-mml-chtml.js", "es5/input/*", "es5/output/chtml.js", "es5/output/chtml/*",
               "es5/ui/*", "es5/a11y/*", "es5/adaptors/*", "es5/sre/*", "LICENSE"),
        strip="es5/",
        target="mathjax",
    ),
    Asset(
        name="@jupyter-widgets/html-manager",
        version="1.0.15",
        integrity="sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        # embed-amd.js renders saved widget state; the font files are its Font Awesome icons.
        files=("dist/embed-amd.js", "dist/*.woff2", "dist/*.woff", "dist/*.ttf", "dist/*.eot",
               "dist/*.svg"),
        strip="dist/",
        target="html-manager",
    ),
    Asset(
        name="requirejs",
        version="2.3.8",
        integrity="sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        files=("require.js",),
        strip="",
        target="requirejs",
    ),
)

# Fetched with the book's assets but not copied into the site: the browser test
# (tests/browser) injects axe-core into each built page to audit its accessibility offline.
TEST_ASSETS = (
    Asset(
        name="axe-core",
        version="4.10.3",
        integrity="sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==",
        files=("axe.min.js", "LICENSE"),
        strip="",
        target="axe-core",
    ),
)

INSTALL_HINT = (
    "The book serves MathJax and the widget scripts itself and takes them from the npm "
    "registry with `npm pack`. Install Node.js and npm (Debian/Ubuntu: `sudo apt-get install "
    "npm`), or put the tarballs {names} into {cache}."
)


def _sha512(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def _stamp() -> str:
    return json.dumps([(a.name, a.version, a.integrity, a.files) for a in ASSETS])


def fetch(cache: Path, assets: tuple[Asset, ...] = ASSETS) -> None:
    """Make sure every pinned tarball is in ``cache`` and matches its integrity hash."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [a for a in assets if not (cache / a.tarball).exists()]
    if missing:
        npm = shutil.which("npm")
        if npm is None:
            names = ", ".join(a.tarball for a in missing)
            raise ExtensionError("npm not found. " + INSTALL_HINT.format(names=names, cache=cache))
        specs = [f"{a.name}@{a.version}" for a in missing]
        logger.info("offline_assets: npm pack %s", " ".join(specs))
        result = subprocess.run(
            [npm, "pack", "--silent", "--prefer-offline", "--pack-destination", str(cache), *specs],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise ExtensionError(f"npm pack {' '.join(specs)} failed:\n{result.stderr.strip()}")
    for asset in assets:
        got = _sha512(cache / asset.tarball)
        if got != asset.integrity:
            (cache / asset.tarball).unlink()
            raise ExtensionError(
                f"{asset.tarball}: integrity {got} does not match the pinned {asset.integrity}; "
                "the file was removed, build again to fetch it afresh"
            )


def unpack(cache: Path, dest: Path, assets: tuple[Asset, ...] = ASSETS) -> int:
    """Copy each asset's files from its tarball to ``dest/<target>``; returns the file count."""
    count = 0
    for asset in assets:
        with tarfile.open(cache / asset.tarball) as tar:
            for member in tar.getmembers():
                rel = member.name.removeprefix("package/")
                if not member.isfile() or not any(fnmatch.fnmatch(rel, g) for g in asset.files):
                    continue
                out = dest / asset.target / rel.removeprefix(asset.strip)
                out.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has data
                out.write_bytes(source.read())
                count += 1
    return count


def _cache_dir(app: Sphinx) -> Path:
    return Path(app.confdir) / "_build" / "vendor"


def _on_builder_inited(app: Sphinx) -> None:
    if app.builder.format == "html":
        fetch(_cache_dir(app), ASSETS + TEST_ASSETS)


def _on_build_finished(app: Sphinx, exception: BaseException | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "offline"
    stamp = dest / ".assets.json"
    if stamp.exists() and stamp.read_text(encoding="utf-8") == _stamp():
        return  # already copied by an earlier build into this output folder
    if dest.exists():
        shutil.rmtree(dest)
    count = unpack(_cache_dir(app), dest)
    stamp.write_text(_stamp(), encoding="utf-8")
    logger.info("offline_assets: copied %d files into %s", count, dest)


def _on_config_inited(app: Sphinx, config) -> None:
    config.html_static_path.append(str(Path(__file__).parent / "static"))


def _drop_repeated_scripts(app: Sphinx, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
        key = (filename, tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # the builder restores its own list after each page


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _on_config_inited)
    app.connect("builder-inited", _on_builder_inited)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
