"""The release: one version everywhere, the wheel and sdist, the install cell, Binder, pre-commit.

The slow tests run exactly the commands of .github/workflows/release.yml (``scripts/release.py``):
they build the sdist and wheel and install the wheel into a fresh virtual environment, and
they run Binder's steps in another. Both environments are offline: instead of a package
index they get the installed distributions that their requirements resolve to, and nothing
else (``release.expose_distributions``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tomllib
import types
from fnmatch import fnmatch
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "_ext"))
import build_chapters  # noqa: E402
import install_cell  # noqa: E402
import release  # noqa: E402

from aigc_course import pretrained  # noqa: E402
from tests.check_notebooks_stripped import notebooks_under  # noqa: E402

VERSION = install_cell.package_version()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]


def _release(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python scripts/release.py ARGS`` as the release workflow runs it."""
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "release.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, **kwargs)


# --------------------------------------------------------------------------- one version


def test_the_version_lives_in_one_place_and_everything_agrees():
    import aigc_course

    assert aigc_course.__version__ == VERSION
    assert "version" not in PROJECT["project"] and PROJECT["project"]["dynamic"] == ["version"]
    assert release.version_problems(ROOT) == []
    assert release.changelog_entry(ROOT)[0] == VERSION


def _version_repo(tmp_path: Path, changelog_top: str) -> Path:
    repo = tmp_path / "repo"
    (repo / "aigc_course").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", repo)
    (repo / "aigc_course" / "__init__.py").write_text('__version__ = "1.2.0"\n')
    (repo / "CHANGELOG.md").write_text(f"# Changelog\n\n{changelog_top}\n\nText.\n\n## [1.1.0] - 2026-01-02\n\nOld.\n")
    return repo


@pytest.mark.parametrize(("top", "tag", "message"), [
    ("## [1.2.0] - unreleased", None, None),
    ("## [1.2.0] - 2026-03-04", "v1.2.0", None),
    ("## [1.1.0] - 2026-01-02", None, "the top entry is [1.1.0], but the package version is 1.2.0"),
    ("## [1.2.0] - unreleased", "v1.2.0", "is still 'unreleased'"),
    ("## [1.2.0] - 2026-03-04", "v1.2.1", "expected 'v1.2.0'"),
    ("## [1.2.0] - 2026-13-40", None, "invalid date"),
])
def test_check_version_names_what_disagrees(tmp_path, top, tag, message):
    problems = release.version_problems(_version_repo(tmp_path, top), tag)
    if message is None:
        assert problems == []
    else:
        assert any(message in p for p in problems), problems


def test_a_notebook_naming_another_release_fails_check_version(tmp_path):
    repo = _version_repo(tmp_path, "## [1.2.0] - unreleased")
    path = repo / "chapters" / "x" / "a.ipynb"
    path.parent.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("x = 1")])
    path.write_text(install_cell.with_install_cell(nbformat.writes(nb), "1.1.0"), encoding="utf-8")
    assert any("does not install aigc-course==1.2.0" in p for p in release.version_problems(repo))


def test_changelog_has_one_entry_per_release_newest_first():
    from packaging.version import Version

    versions = [m["version"] for m in release.ENTRY.finditer((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))]
    assert versions and len(versions) == len(set(versions))
    assert versions == sorted(versions, key=Version, reverse=True)


# --------------------------------------------------------------------------- the install cell


def _notebooks() -> list[Path]:
    return notebooks_under(ROOT / "chapters", ROOT / "exercises")


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_notebook_installs_this_release_in_its_first_code_cell(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert install_cell.problem(nb, VERSION) is None, f"{path}: {install_cell.problem(nb, VERSION)}; run make chapters"
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert f'"aigc-course=={VERSION}"' in "".join(first["source"])
    assert "remove-cell" in first["metadata"]["tags"]  # the rendered book hides it


def test_the_generator_covers_every_notebook_including_the_student_editions():
    covered = set(install_cell.notebooks(ROOT)) | set((ROOT / "exercises" / "student").glob("*.ipynb"))
    assert set(_notebooks()) == covered
    generated = build_chapters.generated(ROOT)
    assert set(_notebooks()) <= set(generated)


def _run_cell(monkeypatch, *, colab: bool, installed: bool) -> list:
    """Run the install cell's code where Colab is or is not detected and the package is or is not found."""
    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
        patch.delenv("COLAB_RELEASE_TAG", raising=False)
        patch.delitem(sys.modules, "google.colab", raising=False)
        if colab:
            patch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        if not installed:
            real = importlib.util.find_spec
            patch.setattr(importlib.util, "find_spec",
                          lambda name, *a: None if name == "aigc_course" else real(name, *a))
        exec(install_cell.cell_source(VERSION), {})
    return calls


def test_the_install_cell_does_nothing_locally_or_where_the_package_is_installed(monkeypatch):
    assert _run_cell(monkeypatch, colab=False, installed=True) == []
    assert _run_cell(monkeypatch, colab=False, installed=False) == []  # a local Python without it: no pip
    assert _run_cell(monkeypatch, colab=True, installed=True) == []  # Colab with the package already there


def test_the_install_cell_installs_the_exact_release_on_colab(monkeypatch):
    calls = _run_cell(monkeypatch, colab=True, installed=False)
    assert calls == [(([sys.executable, "-m", "pip", "install", "--quiet", f"aigc-course=={VERSION}"],),
                      {"check": True})]


def _nb(*cells: tuple[str, str], tags: dict[int, list[str]] | None = None) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == "md" else nbformat.v4.new_code_cell(s) for k, s in cells]
    for index, cell_tags in (tags or {}).items():
        nb.cells[index].metadata["tags"] = cell_tags
    return nbformat.writes(nb) + "\n"


def test_the_generator_inserts_moves_and_updates_the_install_cell():
    text = _nb(("md", "# Title"), ("md", "Intro"), ("code", "import torch"), ("code", "assert True"))
    once = install_cell.with_install_cell(text, "0.1.0")
    nb = nbformat.reads(once, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "code", "code", "code"]
    assert nb.cells[2].metadata.tags == ["remove-cell", "install-course"] and "==0.1.0" in nb.cells[2].source
    assert [c.id for c in nb.cells] == ["0", "1", "2", "3", "4"]  # as nbstripout writes them
    assert install_cell.with_install_cell(once, "0.1.0") == once  # idempotent, byte for byte
    bumped = nbformat.reads(install_cell.with_install_cell(once, "0.2.0"), as_version=4)
    assert len(bumped.cells) == 5 and "aigc-course==0.2.0" in bumped.cells[2].source
    # a cell written above it, and a stale copy further down, are put right
    nb.cells.insert(2, nbformat.v4.new_code_cell("x = 1"))
    nb.cells.append(nbformat.v4.new_code_cell("old", metadata={"tags": ["install-course"]}))
    fixed = nbformat.reads(install_cell.with_install_cell(nbformat.writes(nb), "0.1.0"), as_version=4)
    assert [c.source for c in fixed.cells if c.cell_type == "code"][:2] == [install_cell.cell_source("0.1.0"), "x = 1"]
    assert sum("install-course" in c.metadata.get("tags", []) for c in fixed.cells) == 1


def test_the_stored_cell_is_what_nbstripout_leaves_unchanged(tmp_path):
    path = tmp_path / "a.ipynb"
    path.write_text(install_cell.with_install_cell(_nb(("md", "# T"), ("code", "x = 1")), VERSION), encoding="utf-8")
    before = path.read_text(encoding="utf-8")
    subprocess.run([sys.executable, "-m", "nbstripout", str(path)], check=True)
    assert path.read_text(encoding="utf-8") == before


def test_a_new_notebook_gets_the_cell_from_make_chapters(tmp_path):
    repo = tmp_path / "repo"
    for name in ("_data", "chapters", "exercises/solutions"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copy(ROOT / "_toc.yml", repo / "_toc.yml")
    build_chapters.build(repo)
    new = repo / "chapters" / "01_background" / "1_3_new_page.ipynb"
    new.write_text(_nb(("md", "# 1.3 New (新)"), ("code", "assert 1 + 1 == 2")), encoding="utf-8")
    assert new in build_chapters.stale(repo)  # --check (make lint) fails until make chapters
    build_chapters.build(repo)
    assert install_cell.problem(json.loads(new.read_text(encoding="utf-8")), VERSION) is None
    assert new not in build_chapters.stale(repo)
    # a version bump reaches every notebook, the student editions and the course map
    assert build_chapters.stale(repo) == []
    bumped = build_chapters.generated(repo, version="9.9.9")
    assert all("aigc-course==9.9.9" in text for path, text in bumped.items() if path.suffix == ".ipynb")
    assert "release 9.9.9" in bumped[repo / "chapters" / "intro.md"]


def test_the_course_map_names_the_release_the_book_is_built_with():
    intro = (ROOT / "chapters" / "intro.md").read_text(encoding="utf-8")
    assert build_chapters.release_note(VERSION) in intro
    assert f"aigc-course=={VERSION}" in intro


# --------------------------------------------------------------------------- package metadata


def test_package_metadata_for_pypi():
    project = PROJECT["project"]
    assert project["name"] == "aigc-course" and project["readme"] == "README.md"
    assert project["license"] == "MIT"
    assert project["license-files"] == list(release.LICENSE_FILES)
    assert all((ROOT / name).is_file() for name in release.LICENSE_FILES)
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "CC BY 4.0" in (ROOT / "LICENSE-BOOK.md").read_text(encoding="utf-8")
    book = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert "CC BY 4.0" in book["html"]["extra_footer"]  # every page of the book states its licence
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: the expression says it
    python = PROJECT["project"]["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {python}" in project["classifiers"]
    assert project["urls"] and all(url.startswith(REPOSITORY) for url in project["urls"].values())


def test_the_package_depends_only_on_what_it_imports():
    names = sorted(re.split(r"[<>=!~ ;\[]", d)[0] for d in PROJECT["project"]["dependencies"])
    assert names == sorted(["torch", "numpy", "safetensors", "tqdm", "matplotlib", "scikit-learn", "ipywidgets", "librosa"])


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level names the package imports that are neither stdlib nor its own -> the files importing them."""
    import ast

    found: dict[str, set[str]] = {}
    for path in (ROOT / "aigc_course").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "aigc_course":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_package_is_a_declared_dependency():
    """Runtime dependencies cover what the package imports; anything else is a lazy, optional import."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    runtime = {canonicalize_name(Requirement(d).name) for d in PROJECT["project"]["dependencies"]}
    extras = {canonicalize_name(Requirement(d).name) for group in PROJECT["project"]["optional-dependencies"].values()
              for d in group}
    provided_by = importlib.metadata.packages_distributions()
    undeclared, optional = {}, {}
    for module, files in _third_party_imports().items():
        dists = {canonicalize_name(d) for d in provided_by.get(module, [module])}
        if not dists & runtime:
            (optional if dists & extras else undeclared)[module] = sorted(files)
    assert not undeclared, f"imported but not a dependency in pyproject.toml: {undeclared}"
    # the optional imports, each inside a function: Hugging Face conversion (GPT.to_huggingface,
    # aigc_course.interop) and ONNX export and inference (aigc_course.interop.onnx)
    assert set(optional) <= {"transformers", "diffusers", "onnx", "onnxruntime"}, optional


def test_importing_the_package_pulls_in_no_heavy_library():
    """matplotlib, scikit-learn, scipy, IPython and Hugging Face load only where they are used."""
    heavy = ["matplotlib", "sklearn", "scipy", "IPython", "transformers", "diffusers", "pandas"]
    code = ("import sys, aigc_course, aigc_course.pretrained, aigc_course.runtime; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]", out


def test_the_training_data_of_every_checkpoint_has_a_licence_line():
    text = (ROOT / "LICENSE-DATA.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("|") and "checkpoint" in line]
    patterns = [p for row in rows for p in re.findall(r"`([a-z0-9*-]+)`", row.split("|")[-2])]
    unlisted = [name for name in pretrained.available() if not any(fnmatch(name, p) for p in patterns)]
    assert not unlisted, f"LICENSE-DATA.md does not say what these checkpoints were trained on: {unlisted}"


# --------------------------------------------------------------------------- the release files


def test_checkpoint_problems_are_named():
    weights, config = b"weights", b"{}"
    hashes = {"tiny": {"model.safetensors": release.hashlib.sha256(weights).hexdigest(),
                       "config.json": release.hashlib.sha256(config).hexdigest()}}
    good = {"checkpoints/registry.json": b"{}", "checkpoints/tiny/abc/model.safetensors": weights,
            "checkpoints/tiny/abc/config.json": config}
    assert release.checkpoint_problems(good, hashes) == []
    stale = {**good, "checkpoints/tiny/old/model.safetensors": weights, "checkpoints/tiny/old/config.json": config}
    assert "2 version folders" in " ".join(release.checkpoint_problems(stale, hashes))
    corrupt = {**good, "checkpoints/tiny/abc/config.json": b"{ }"}
    assert "does not match the registry's sha256" in " ".join(release.checkpoint_problems(corrupt, hashes))
    stray = {**good, "checkpoints/other/v/model.pt": b"x"}
    assert "not a file of a checkpoint in the registry" in " ".join(release.checkpoint_problems(stray, hashes))
    missing = {k: v for k, v in good.items() if not k.endswith("config.json")}
    assert "lacks ['config.json']" in " ".join(release.checkpoint_problems(missing, hashes))


def test_an_sdist_with_repository_tooling_is_refused(tmp_path):
    sdist = tmp_path / "x.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in ("aigc_course-0/aigc_course/__init__.py", "aigc_course-0/tests/test_x.py", "aigc_course-0/README.md"):
            source = tmp_path / "f"
            source.write_text("x")
            archive.add(source, arcname=name)
    assert release.sdist_problems(sdist) == ["the sdist holds ['tests']: repository tooling belongs in the repository only"]


def test_the_wheel_builds_installs_into_a_fresh_venv_and_every_checkpoint_runs(tmp_path):
    """The release workflow's commands: build + twine check + contents, then the wheel in a fresh venv."""
    dist = tmp_path / "dist"
    egg_info = (ROOT / "aigc_course.egg-info").exists()
    built = _release("build", "--outdir", str(dist))
    assert (ROOT / "aigc_course.egg-info").exists() == egg_info  # the source tree is left as it was
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "wheel (compressed)" in built.stdout
    wheel = dist / release.wheel_name(VERSION)
    tested = _release("test-wheel", str(wheel), "--venv", str(tmp_path / "venv"), "--offline")
    out = tested.stdout + tested.stderr
    assert tested.returncode == 0, out[-5000:]
    assert f"aigc-course {VERSION} from {tmp_path / 'venv'}" in out  # the wheel, not the repository
    assert f"{len(pretrained.available())} checkpoints loaded and called" in out
    assert "No broken requirements found" in out


# --------------------------------------------------------------------------- the release workflow


def _workflow() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8"))


def _steps(job: dict) -> str:
    return "\n".join(step.get("run", "") + step.get("uses", "") for step in job["steps"])


def test_the_release_workflow_runs_the_tested_commands_on_a_version_tag():
    workflow = _workflow()
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as True
    assert trigger["push"]["tags"] == ["v*"]
    jobs = workflow["jobs"]
    build = _steps(jobs["build"])
    for command in ('scripts/release.py check-version --tag "$GITHUB_REF_NAME"',
                    "scripts/release.py build --outdir _build/dist",
                    "scripts/release.py test-wheel _build/dist/"):
        assert command in build, command
    assert "-c .ci/constraints.txt" in build
    publish = jobs["pypi"]
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}  # trusted publishing
    assert "pypa/gh-action-pypi-publish@release/v1" in _steps(publish)
    assert "password" not in json.dumps(publish)  # no API token: PyPI trusts the workflow
    github = jobs["github-release"]
    assert github["permissions"] == {"contents": "write"}
    assert "gh release create" in _steps(github) and ".whl" in _steps(github)
    assert "scripts/release.py notes" in _steps(github)


def test_ci_binder_and_the_release_use_one_python():
    python = PROJECT["project"]["requires-python"].removeprefix(">=")
    assert (ROOT / ".binder" / "runtime.txt").read_text().strip() == f"python-{python}"
    for name in ("release.yml", "notebooks-cpu.yml", "pages.yml"):
        text = (ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8")
        assert f'python-version: "{python}"' in text, name


# --------------------------------------------------------------------------- pre-commit = make lint


def _make_lint_commands() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^lint: install\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    dirs = re.search(r"^NOTEBOOK_DIRS := (.*)$", makefile, re.MULTILINE).group(1).strip()
    return [line.strip().replace("$(BIN)", ".venv/bin").replace("$(NOTEBOOK_DIRS)", dirs)
            for line in recipe.splitlines()]


def test_pre_commit_runs_the_same_checks_as_make_lint():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in config["repos"])  # nothing is downloaded
    assert sorted(hook["entry"] for hook in hooks) == sorted(_make_lint_commands())
    assert all(hook["language"] == "system" and hook["pass_filenames"] is False for hook in hooks)
    assert importlib.util.find_spec("pre_commit"), "pre-commit is in the `test` extra: run make install"
    subprocess.run([sys.executable, "-m", "pre_commit", "validate-config", str(ROOT / ".pre-commit-config.yaml")],
                   check=True)


def test_contributing_documents_pre_commit_and_the_release():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    contributing = readme[readme.index("## Contributing"):]
    assert "pre-commit install" in contributing and "make lint" in contributing
    assert "CHANGELOG.md" in contributing and "scripts/release.py" in contributing


# --------------------------------------------------------------------------- Binder = make install


def _install_command(text: str, marker: str) -> list[str]:
    line = next(line for line in text.splitlines() if marker in line and "-e" in line)
    return shlex.split(line.strip())


def test_binder_installs_what_make_install_installs():
    make = _install_command((ROOT / "Makefile").read_text(encoding="utf-8"), "pip install")
    binder = _install_command((ROOT / ".binder" / "postBuild").read_text(encoding="utf-8"), "pip install")
    constraints = ROOT / ".ci" / "constraints.txt"
    assert make[make.index("-c") + 1] == "$(CONSTRAINTS)" and binder[binder.index("-c") + 1] == ".ci/constraints.txt"
    assert make[make.index("-e") + 1] == binder[binder.index("-e") + 1] == ".[book,test,lab]"
    assert os.access(ROOT / ".binder" / "postBuild", os.X_OK)
    requirements = [line for line in (ROOT / ".binder" / "requirements.txt").read_text().splitlines()
                    if line and not line.startswith(("#", "-"))]
    pins = constraints.read_text().splitlines()
    assert requirements and all(req in pins for req in requirements), requirements  # torch pinned as in CI


def test_binders_steps_run_in_a_fresh_venv(tmp_path):
    """repo2docker's steps in a fresh venv, offline: `pip install -r .binder/requirements.txt`, then postBuild.

    The venv gets, instead of an index, exactly the installed distributions that the package, its
    three extras, the build backend and Binder's requirements resolve to; the steps must then
    install the repository with the same constraints and leave `pip check` clean. Not checked
    here: downloads from PyPI and the PyTorch index, and repo2docker's own base image.
    """
    repo = tmp_path / "repo"
    for name in ("aigc_course", ".binder", ".ci"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in", "CHANGELOG.md", *release.LICENSE_FILES):
        shutil.copy(ROOT / name, repo / name)
    venv = tmp_path / "venv"
    env = release.clean_env(offline=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, env=env)
    optional = PROJECT["project"]["optional-dependencies"]
    requirements = [*PROJECT["project"]["dependencies"], *optional["book"], *optional["test"], *optional["lab"],
                    *PROJECT["build-system"]["requires"],
                    *[r for r in (repo / ".binder" / "requirements.txt").read_text().splitlines()
                      if r and not r.startswith(("#", "-"))]]
    dists = release.requirement_closure(requirements)
    release.expose_distributions(venv, {**dists, "pip": release.importlib.metadata.distribution("pip")})
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv),
               PIP_NO_BUILD_ISOLATION="0")  # the backend is exposed; an isolated build would download it
    steps = "python -m pip install --no-cache-dir -r .binder/requirements.txt && .binder/postBuild"
    done = subprocess.run(["bash", "-c", steps], cwd=repo, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], check=True, env=env)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import aigc_course; print(aigc_course.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where.strip()).parent == repo / "aigc_course"  # the editable install Binder makes
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    from packaging.utils import canonicalize_name

    pinned = {canonicalize_name(k): v for k, v in pins.items()}
    unpinned = sorted(name for name in dists if name not in pinned)
    assert not unpinned, f"installed by make install but not pinned in .ci/constraints.txt: {unpinned}"
    off_pin = sorted(f"{name} {dist.version} (pin {pinned[name]})" for name, dist in dists.items()
                     if dist.version.split("+")[0] != pinned[name])
    assert not off_pin, off_pin
