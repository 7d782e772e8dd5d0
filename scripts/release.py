"""Build, check and test a release of ``aigc-course``: the commands the tests and the release workflow run.

    python scripts/release.py check-version [--tag v0.1.0]   # one version everywhere
    python scripts/release.py build [--outdir _build/dist]   # sdist + wheel, twine check, contents
    python scripts/release.py test-wheel [WHEEL] --venv DIR [--offline] [--pip-args ARGS]
    python scripts/release.py notes                          # the top CHANGELOG entry (release notes)

``check-version``: the version lives in ``aigc_course/__init__.py`` only (pyproject.toml reads it);
CHANGELOG.md's top entry names it; every notebook's install cell installs it; with ``--tag``, the
tag is ``v<version>`` and the entry is dated.

``build``: ``python -m build`` makes the sdist and, from the sdist, the wheel (so the sdist is
complete); ``twine check --strict`` checks both; then their contents: the wheel holds every
module of ``aigc_course/`` and exactly the checkpoint files the registry names, with the
registry's sha256, and nothing else over 1 MB; neither holds repository tooling (tests,
scripts, chapters, CI). It prints the sizes. The build backend comes from the environment
(``--no-isolation``, pinned by ``.ci/constraints.txt``), so a build needs no network.

``test-wheel``: a fresh virtual environment, the wheel installed into it with pip (no editable
install; this interpreter's pip, ``pip --python``), ``pip check``, then ``scripts/wheel_smoke.py`` run there in isolated mode from an
empty folder: every module imports, every checkpoint of ``pretrained.available()`` loads and
makes one tiny call. The release workflow installs the dependencies from the package index;
``--offline`` (the tests) instead gives the venv exactly the installed distributions the
wheel's requirements resolve to (:func:`expose_distributions`) and installs with ``--no-index``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import install_cell  # noqa: E402

DISTRIBUTION = install_cell.DISTRIBUTION
PACKAGE = "aigc_course"
CHANGELOG = "CHANGELOG.md"
LICENSE_FILES = ("LICENSE", "LICENSE-BOOK.md", "LICENSE-DATA.md")
MAX_OTHER_FILE = 1_000_000  # bytes: only checkpoints may be larger
ENTRY = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2}|unreleased)\s*$", re.MULTILINE)
#: what an sdist may hold besides the package (under ``aigc_course-<version>/``)
SDIST_TOP_LEVEL = {PACKAGE, f"{PACKAGE}.egg-info", "PKG-INFO", "pyproject.toml", "setup.cfg", "MANIFEST.in", "README.md", CHANGELOG,
                   *LICENSE_FILES}
SMOKE = ROOT / "scripts" / "wheel_smoke.py"
DIST = ROOT / "_build" / "dist"  # build output stays under _build/


def wheel_name(version: str) -> str:
    return f"{PACKAGE}-{version}-py3-none-any.whl"


class ReleaseError(RuntimeError):
    """A release check failed; the message lists every problem found."""


# --------------------------------------------------------------------------- one version


def changelog_entry(root: Path = ROOT) -> tuple[str, str, str]:
    """``(version, date or "unreleased", text)`` of CHANGELOG.md's top entry."""
    text = (Path(root) / CHANGELOG).read_text(encoding="utf-8")
    entries = list(ENTRY.finditer(text))
    if not entries:
        raise ReleaseError(f"{CHANGELOG} has no entry headed '## [<version>] - <YYYY-MM-DD or unreleased>'")
    top = entries[0]
    end = entries[1].start() if len(entries) > 1 else len(text)
    return top["version"], top["date"], text[top.end():end].strip()


def version_problems(root: Path = ROOT, tag: str | None = None) -> list[str]:
    """Everything that disagrees with the one version in ``aigc_course/__init__.py``."""
    root = Path(root)
    problems = []
    version = install_cell.package_version(root)
    try:
        Version(version)
    except InvalidVersion:
        problems.append(f"aigc_course/__init__.py: __version__ {version!r} is not a PEP 440 version")
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    if "version" in project["project"] or project["project"].get("dynamic") != ["version"]:
        problems.append("pyproject.toml: the version must be dynamic = [\"version\"], not written there")
    attr = project.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("version", {}).get("attr")
    if attr != f"{PACKAGE}.__version__":
        problems.append(f"pyproject.toml: [tool.setuptools.dynamic] version must be {{attr = \"{PACKAGE}.__version__\"}}")
    try:
        logged, date, _ = changelog_entry(root)
    except ReleaseError as err:
        problems.append(str(err))
    else:
        if logged != version:
            problems.append(f"{CHANGELOG}: the top entry is [{logged}], but the package version is {version}; "
                            "add an entry for this release")
        if tag is not None and date == "unreleased":
            problems.append(f"{CHANGELOG}: the entry [{logged}] is still 'unreleased'; give it the release date")
        if date != "unreleased":
            try:
                datetime.date.fromisoformat(date)
            except ValueError:
                problems.append(f"{CHANGELOG}: the entry [{logged}] has an invalid date {date!r}")
    if tag is not None and tag != f"v{version}":
        problems.append(f"the tag {tag!r} does not match the package version: expected 'v{version}'")
    for path in install_cell.notebooks(root):
        problem = install_cell.problem(json.loads(path.read_text(encoding="utf-8")), version)
        if problem:
            problems.append(f"{path.relative_to(root)}: {problem}; run: make chapters")
    return problems


# --------------------------------------------------------------------------- build and inspect


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+ " + shlex.join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], check=True, **kwargs)


def _check_build_backend(root: Path) -> None:
    """The installed build backend satisfies pyproject's build-system.requires (no isolation)."""
    requires = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    for spec in [*requires, "build", "twine"]:
        req = Requirement(spec)
        try:
            installed = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            raise ReleaseError(f"{req.name} is not installed in {sys.prefix}; it is in the `test` extra: "
                               "run make install") from None
        if not req.specifier.contains(installed, prereleases=True):
            raise ReleaseError(f"{req.name} {installed} does not satisfy {spec} (pyproject.toml); run make install")


def registry_hashes(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """``{checkpoint: {file: sha256}}`` from the registry of the source tree."""
    registry = json.loads((Path(root) / PACKAGE / "checkpoints" / "registry.json").read_text(encoding="utf-8"))
    return {name: entry["sha256"] for name, entry in registry.items()}


def checkpoint_problems(files: dict[str, bytes | None], hashes: dict[str, dict[str, str]]) -> list[str]:
    """The shipped checkpoint files (``checkpoints/...`` -> bytes) against the registry.

    Each checkpoint is one ``<name>/<version>/`` folder holding exactly its registry's files
    with the registry's sha256; nothing else is under ``checkpoints/`` but ``registry.json``.
    (``pretrained.load`` checks the version folder's name when the smoke test loads it.)
    """
    problems = []
    if "checkpoints/registry.json" not in files:
        problems.append("checkpoints/registry.json is missing")
    folders: dict[str, set[str]] = {}
    for path in files:
        parts = path.split("/")
        if path == "checkpoints/registry.json":
            continue
        if len(parts) != 4 or parts[1] not in hashes or parts[3] not in hashes[parts[1]]:
            problems.append(f"{path} is not a file of a checkpoint in the registry")
            continue
        folders.setdefault(parts[1], set()).add(parts[2])
        if hashlib.sha256(files[path] or b"").hexdigest() != hashes[parts[1]][parts[3]]:
            problems.append(f"{path} does not match the registry's sha256")
    for name, expected in hashes.items():
        versions = folders.get(name, set())
        if len(versions) != 1:
            problems.append(f"checkpoint {name!r} has {len(versions)} version folders ({sorted(versions)}); expected one")
            continue
        present = {f for f in expected if f"checkpoints/{name}/{next(iter(versions))}/{f}" in files}
        if present != set(expected):
            problems.append(f"checkpoint {name!r} lacks {sorted(set(expected) - present)}")
    return problems


def source_modules(root: Path = ROOT) -> set[str]:
    """Every ``.py`` file of the package in the source tree, as a path inside the package."""
    package = Path(root) / PACKAGE
    return {str(p.relative_to(package)) for p in package.rglob("*.py") if "__pycache__" not in p.parts}


def wheel_problems(wheel: Path, root: Path = ROOT) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the wheel's contents, and its sizes (bytes) by kind."""
    problems = []
    with zipfile.ZipFile(wheel) as archive:
        infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
        inside = {name.removeprefix(f"{PACKAGE}/"): info for name, info in infos.items()
                  if name.startswith(f"{PACKAGE}/")}
        dist_info = [name for name in infos if name.split("/")[0].endswith(".dist-info")]
        strays = sorted(set(infos) - {f"{PACKAGE}/{n}" for n in inside} - set(dist_info))
        if strays:
            problems.append(f"files outside the package: {strays[:10]}")
        shipped = {n for n in inside if n.startswith("checkpoints/")}
        problems += checkpoint_problems({n: archive.read(f"{PACKAGE}/{n}") for n in shipped}, registry_hashes(root))
        missing = source_modules(root) - set(inside)
        if missing:
            problems.append(f"modules missing from the wheel (a folder without __init__.py?): {sorted(missing)}")
        junk = sorted(n for n in inside if "__pycache__" in n or n.endswith((".pyc", ".tmp", ".lock")))
        if junk:
            problems.append(f"build debris in the wheel: {junk[:10]}")
        other = {n: info.file_size for n, info in inside.items() if n not in shipped}
        big = sorted(n for n, size in other.items() if size > MAX_OTHER_FILE)
        if big:
            problems.append(f"files over 1 MB that are not checkpoints: {big}")
        licenses = {Path(n).name for n in dist_info if "/licenses/" in n}
        if licenses != set(LICENSE_FILES):
            problems.append(f"licence files in the wheel: {sorted(licenses)}, expected {list(LICENSE_FILES)}")
        metadata = archive.read(next(n for n in dist_info if n.endswith("/METADATA"))).decode("utf-8")
        if f"Version: {install_cell.package_version(root)}\n" not in metadata or "License-Expression: MIT" not in metadata:
            problems.append("METADATA lacks the package version or License-Expression: MIT")
        sizes = {
            "wheel (compressed)": wheel.stat().st_size,
            "checkpoints": sum(inside[n].file_size for n in shipped),
            "code and data files": sum(other.values()),
            "largest non-checkpoint file": max(other.values(), default=0),
            "metadata and licences": sum(infos[n].file_size for n in dist_info),
        }
    return problems, sizes


def sdist_problems(sdist: Path) -> list[str]:
    """Repository tooling or other strays in the sdist."""
    with tarfile.open(sdist) as archive:
        names = [m.name for m in archive.getmembers()]
    top = {n.split("/")[1] for n in names if n.count("/") >= 1 and n.split("/")[1]}
    extra = sorted(top - SDIST_TOP_LEVEL)
    return [f"the sdist holds {extra}: repository tooling belongs in the repository only"] if extra else []


def build(outdir: Path, root: Path = ROOT) -> tuple[Path, Path]:
    """Build, ``twine check`` and inspect the sdist and wheel; returns their paths."""
    root, outdir = Path(root), Path(outdir).resolve()
    _check_build_backend(root)
    version = install_cell.package_version(root)
    egg_info = root / f"{PACKAGE}.egg-info"
    had_egg_info = egg_info.exists()
    outdir.mkdir(parents=True, exist_ok=True)
    for old in outdir.glob(f"{PACKAGE}-{version}*"):
        old.unlink()
    try:
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", outdir, root])
    finally:
        if not had_egg_info:  # setuptools leaves it in the source tree
            shutil.rmtree(egg_info, ignore_errors=True)
    sdist = outdir / f"{PACKAGE}-{version}.tar.gz"
    wheel = outdir / wheel_name(version)
    _run([sys.executable, "-m", "twine", "check", "--strict", sdist, wheel])
    problems, sizes = wheel_problems(wheel, root)
    problems += sdist_problems(sdist)
    if problems:
        raise ReleaseError("the release files are wrong:\n  " + "\n  ".join(problems))
    print(f"\n{'':<30} {'MB':>8}")
    for label, size in {"sdist (compressed)": sdist.stat().st_size, **sizes}.items():
        print(f"{label:<30} {size / 1e6:8.2f}")
    return sdist, wheel


# --------------------------------------------------------------------------- a fresh environment


def requirement_closure(requirements: list[str], extras: tuple[str, ...] = ()) -> dict[str, importlib.metadata.Distribution]:
    """The installed distributions that ``requirements`` resolve to, transitively (canonical name -> dist).

    Resolved against the distributions this interpreter sees (the first on ``sys.path`` wins,
    as for imports), with environment markers evaluated for this interpreter; ``aigc-course``
    itself is never included. A requirement that no installed distribution satisfies is a
    :class:`ReleaseError` naming who needs it.
    """
    installed: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        installed.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    found: dict[str, importlib.metadata.Distribution] = {}
    extras_of: dict[str, set[str]] = {}
    todo = [(Requirement(r), set(extras), "the package") for r in requirements]
    while todo:
        req, active, wanted_by = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in active | {""}):
            continue
        name = canonicalize_name(req.name)
        if name == canonicalize_name(DISTRIBUTION):
            continue
        dist = installed.get(name)
        if dist is None or not req.specifier.contains(dist.version, prereleases=True):
            have = f"{dist.version} is installed" if dist else "it is not installed"
            raise ReleaseError(f"{wanted_by} needs {req}, but {have} in {sys.prefix}; run make install")
        if name in found and set(req.extras) <= extras_of[name]:
            continue
        extras_of[name] = extras_of.get(name, set()) | set(req.extras)
        found[name] = dist
        todo += [(Requirement(r), extras_of[name], f"{dist.metadata['Name']} {dist.version}")
                 for r in dist.requires or []]
    return found


def _link(source: Path, target: Path) -> None:
    """Symlink ``source`` at ``target``; two folders of one name (a namespace package) are merged."""
    if not target.exists() and not target.is_symlink():
        target.symlink_to(source)
    elif target.is_symlink() and target.resolve() != source.resolve() and source.is_dir() and target.is_dir():
        first = target.resolve()
        target.unlink()
        target.mkdir()
        for child in first.iterdir():
            _link(child, target / child.name)
        for child in source.iterdir():
            _link(child, target / child.name)
    elif target.is_dir() and not target.is_symlink() and source.is_dir():
        for child in source.iterdir():
            _link(child, target / child.name)


def expose_distributions(venv: Path, dists: dict[str, importlib.metadata.Distribution]) -> Path:
    """Give ``venv`` these installed distributions, and nothing else, without copying or downloading.

    Each distribution's top-level files and folders (from its RECORD) are linked into
    ``<venv>/deps``, which a ``.pth`` file adds as a site folder; pip in the venv sees them as
    installed. The editable install of this repository is never among them.
    """
    deps = Path(venv) / "deps"
    deps.mkdir(exist_ok=True)
    for dist in dists.values():
        base = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")} - {"__pycache__"}
        if not tops:
            raise ReleaseError(f"{dist.metadata['Name']} lists no files (no RECORD); cannot expose it")
        for top in tops:
            if (base / top).exists():
                _link(base / top, deps / top)
    site = subprocess.run([venv / "bin" / "python", "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "_aigc_release_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    return deps


def clean_env(offline: bool) -> dict[str, str]:
    """The environment for commands in the fresh venv: no PYTHONPATH; offline, no index and no pip config."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    if offline:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def wheel_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA")))
    return [line.split(":", 1)[1].strip() for line in metadata.decode("utf-8").splitlines()
            if line.startswith("Requires-Dist:")]


def test_wheel(wheel: Path, venv: Path, offline: bool = False, pip_args: str = "") -> None:
    """Install ``wheel`` into a fresh venv and run the smoke test there (see the module docstring).

    The venv is made without pip (and without Python 3.11's bundled setuptools); this
    interpreter's pip installs into it (``pip --python``).
    """
    wheel, venv = Path(wheel).resolve(), Path(venv).resolve()
    env = clean_env(offline)
    _run([sys.executable, "-m", "venv", "--clear", "--without-pip", venv], env=env)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", python]
    if offline:
        dists = requirement_closure(wheel_requirements(wheel))
        expose_distributions(venv, dists)
        print(f"offline: {len(dists)} installed distributions exposed to {venv}")
    _run([*pip, "install", *shlex.split(pip_args), wheel], env=env)
    _run([*pip, "check"], env=env)
    with tempfile.TemporaryDirectory() as empty:  # no repository, no script folder on the path
        _run([python, "-I", SMOKE], env=env, cwd=empty)


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-version", help="one version: __init__, pyproject, CHANGELOG, notebooks, tag")
    check.add_argument("--tag", help="the git tag being released, e.g. v0.1.0")
    make = sub.add_parser("build", help="build and check the sdist and wheel")
    make.add_argument("--outdir", type=Path, default=DIST)
    test = sub.add_parser("test-wheel", help="install the wheel into a fresh venv and smoke-test it")
    test.add_argument("wheel", type=Path, nargs="?", help="default: this version's wheel in _build/dist")
    test.add_argument("--venv", type=Path, required=True)
    test.add_argument("--offline", action="store_true",
                      help="give the venv the installed dependencies instead of using a package index")
    test.add_argument("--pip-args", default="", help="extra arguments for pip install (index, constraints)")
    sub.add_parser("notes", help="print the top CHANGELOG entry")
    args = parser.parse_args(argv)
    try:
        if args.command == "check-version":
            problems = version_problems(ROOT, args.tag)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if problems:
                return 1
            print(f"{DISTRIBUTION} {install_cell.package_version()}: version, {CHANGELOG} and notebooks agree"
                  + (f", tag {args.tag}" if args.tag else ""))
        elif args.command == "build":
            build(args.outdir)
        elif args.command == "test-wheel":
            test_wheel(args.wheel or DIST / wheel_name(install_cell.package_version()), args.venv, offline=args.offline,
                       pip_args=args.pip_args + (" --no-index" if args.offline else ""))
        else:
            version, date, text = changelog_entry()
            print(f"{DISTRIBUTION} {version} ({date})\n\n{text}")
    except (ReleaseError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
