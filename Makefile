# AIGC from Zero to Practice -- every command a reader, student or instructor needs.
#   make book     create .venv, install, build the HTML book: English into _build/html,
#                 Chinese into _build/zh/html (also at _build/html/zh, as published)
#   make book-zh  only the Chinese edition
#   make translations  update locales/zh_CN/LC_MESSAGES from the English pages (then translate)
#   make test     create .venv if missing, install, run every check
#   make test-browser  build the book, then read every page in headless Chromium, offline
#   make install  only create .venv and install
#   make lab      JupyterLab on the student exercises
#   make chapters      regenerate _toc.yml, the course map, exercise pages and student notebooks
#                      from _data/chapters.yml and exercises/solutions (make exercises: the same)
#   make book-student  the book with solutions hidden, into _build/student/_build/html
#   make notebooks     nbval over every notebook (what an instructor's notebook CI runs)
#   make grade SUBMISSIONS=... [OUT=...]  grade a class's exercise notebooks (report in OUT)
#   make wheel         build the sdist and wheel into _build/dist, check them, install the wheel
#                      into a fresh venv and load every checkpoint (what the release workflow runs)
# GPU: prefix any target with AIGC_DEVICE=cuda (see README).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := .ci/constraints.txt
STAMP := $(VENV)/.installed-stamp
BOOK_FLAGS := -W -n --keep-going
NOTEBOOK_DIRS := chapters exercises
# The browser test needs the built book, so `unit` leaves it out and `test` runs it last. It reads
# the pages in two Chromium sessions at once (pytest-xdist), one per core of a CI machine.
BROWSER_WORKERS ?= 2
BROWSER_TEST := $(BIN)/python -m pytest tests/browser -q -p no:cacheprovider -n $(BROWSER_WORKERS)

.PHONY: install execute book book-zh translations book-strict book-student chapters exercises test test-browser lint unit notebooks lab grade constraints benchmarks wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[book,test,lab]'
	touch $(STAMP)

install: $(STAMP)

# The book executes every notebook once and caches the outputs in _build/.jupyter_cache,
# so a second build only re-runs notebooks whose code changed. Both that cache and Sphinx's
# incremental build look only at the notebooks themselves, so a change to the package or a
# retrained checkpoint would leave stale outputs: any file under aigc_course/ newer than the
# stamp empties the cache and Sphinx's saved environment, and every page is executed again.
CACHE_STAMP := _build/.cache-package-stamp
$(CACHE_STAMP): $(shell find aigc_course -type f -not -path '*/__pycache__/*')
	rm -rf _build/.jupyter_cache _build/.doctrees _build/jupyter_execute
	mkdir -p _build && touch $@

# Every notebook runs once, one per CPU core at a time, longest first; the chapters' executed
# copies go into the book's execution cache, so the build below runs none of them again.
execute: install $(CACHE_STAMP)
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOK_DIRS)

# Both editions from one execution: the Chinese build (scripts/i18n.py) reads the same cache and
# runs no notebook. The two builds run at once, one per core.
book: install $(CACHE_STAMP)
	$(BIN)/python scripts/execute_notebooks.py chapters
	$(BIN)/python scripts/i18n.py book

book-zh: install $(CACHE_STAMP)
	$(BIN)/python scripts/execute_notebooks.py chapters
	$(BIN)/python scripts/i18n.py build

# New or changed English prose becomes untranslated messages in the catalogs; the strict Chinese
# build fails until each has its translation.
translations: install
	$(BIN)/python scripts/i18n.py update

book-strict: book

lint: install
	$(BIN)/ruff check aigc_course tests scripts benchmarks chapters exercises _ext
	$(BIN)/python -m tests.check_notebooks_stripped $(NOTEBOOK_DIRS)
	$(BIN)/python scripts/build_chapters.py --check
	$(BIN)/python scripts/build_classroom.py --check
	$(BIN)/python scripts/i18n.py check

# One pytest worker per core (pytest-xdist), one CPU thread each; a test file stays on one worker,
# so module-level fixtures (a loaded checkpoint, a built wheel) are made once.
unit: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(BIN)/python -m pytest tests -q --ignore=tests/browser \
		-n auto --dist loadfile

notebooks: install
	PYTHONPATH=tests $(BIN)/python -m pytest -p nbtiming --nbval-lax --nbval-current-env \
		-p no:cacheprovider -q $(NOTEBOOK_DIRS)

# Each notebook (chapters and exercises) is executed once, one CPU thread per notebook and one
# notebook per core (small models gain little from a second thread), so the times printed are
# one-core times. The strict book build then reads every chapter from the execution cache, and
# the browser test reads the book just built.
test: lint unit
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(MAKE) --no-print-directory execute book-strict
	$(BROWSER_TEST)

# Every page of the built book in headless Chromium (the system's chromium, driven by
# Playwright) with all network outside 127.0.0.1 blocked: console errors, math, images,
# widgets, search, launch buttons, downloads, navigation. Screenshots go to _build/browser/.
# Skips, saying how to install it, when there is no Chromium.
test-browser: book
	$(BROWSER_TEST)

lab: install
	$(BIN)/jupyter lab exercises/student

# One chapter list, _data/chapters.yml, drives _toc.yml, the course map in chapters/intro.md and
# the chapters' exercises.md pages; those and the student notebooks are generated from it and from
# exercises/solutions (scripts/build_chapters.py), and so are the GitHub Classroom autograding
# workflows in .github/classroom/ (scripts/build_classroom.py); `make lint` checks they are current.
chapters exercises: install
	$(BIN)/python scripts/build_chapters.py
	$(BIN)/python scripts/build_classroom.py

# Grade students' exercise notebooks: each runs in a fresh sandboxed kernel (no network, a time
# limit), and every exercise is re-checked by the course's checker on a fresh seed; saved outputs
# never count. SUBMISSIONS: notebooks or folders (one per student); the report (grades.csv,
# results.csv, report.json, report.html) goes to OUT. More options: scripts/grade.py --help.
OUT ?= _build/grade
grade: install
	$(if $(SUBMISSIONS),,$(error set SUBMISSIONS to the students' notebooks or folders, e.g. make grade SUBMISSIONS=submissions/))
	$(BIN)/python scripts/grade.py $(SUBMISSIONS) --out $(OUT)

# The student edition of the book: sphinx-exercise's hide_solutions, sharing the main build's cache.
book-student: install $(CACHE_STAMP)
	$(BIN)/python scripts/build_exercises.py book-config _build/student_config.yml
	$(BIN)/jupyter-book build . --config _build/student_config.yml --path-output _build/student $(BOOK_FLAGS)
	@echo "Open _build/student/_build/html/index.html"

# The release as .github/workflows/release.yml makes it, offline: the wheel's venv gets the
# installed dependencies instead of downloading them (scripts/release.py).
wheel: install
	$(BIN)/python scripts/release.py check-version
	$(BIN)/python scripts/release.py build --outdir _build/dist
	$(BIN)/python scripts/release.py test-wheel --venv _build/wheel-venv --offline

benchmarks: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Re-pin the tested set from .venv, keeping the header; torch's local tag (+cpu) is dropped so
# the same pin also admits CUDA builds of that release. setuptools and wheel are pinned too (the
# release builds with them, without isolation); pip is not.
constraints: install
	grep '^#' $(CONSTRAINTS) > $(CONSTRAINTS).new
	$(BIN)/python -m pip freeze --all --exclude pip --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' >> $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf _build
