# Two commands on a fresh machine:
#   make book   set everything up, execute every notebook in full mode, build the website
#   make test   set everything up, run the library tests and every notebook in fast mode
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := _vendor/.installed
PORT ?= 8000
export PYTHONHASHSEED := 0
# Offline unless the reader turns on the online switch (PTUTILS_ONLINE=1, as ptutils.config reads it):
# then the Hugging Face libraries may reach the hub, e.g. PTUTILS_ONLINE=1 make lab.
HF_OFF := $(if $(filter 1 true yes on,$(shell echo '$(PTUTILS_ONLINE)' | tr A-Z a-z)),0,1)
export HF_HUB_OFFLINE := $(HF_OFF)
export TRANSFORMERS_OFFLINE := $(HF_OFF)
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: help setup bwrap vendor test test-lib test-notebooks test-student book site-fast book-clean serve clean check-site check-site-fast student lab wheel check-doors chromium

help:
	@echo "make book   - set up, execute all notebooks (full mode), build the site into _build/html"
	@echo "make test   - set up, run library tests and all notebooks under nbval (fast mode)"
	@echo "make serve  - serve the built site on http://127.0.0.1:$(PORT)"
	@echo "make test-student - every student notebook under nbval (fast mode); not in make test"
	@echo "make student - student notebooks, hidden tests, nbgrader source notebooks and a solutions-free site in student/"
	@echo "make lab    - set up, open the chapters in JupyterLab (PTUTILS_FAST=1 make lab: fast mode)"
	@echo "make wheel  - build dist/ptutils-*.whl (to pip install on Colab or elsewhere)"
	@echo "make check-doors - JupyterLab driven in Chromium, and a clean pip install from pyproject.toml alone"

setup: $(STAMP) bwrap

# bubblewrap (Debian's package): the sandbox the classroom grader runs each submission in.
bwrap:
	@test -x /usr/bin/bwrap || (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null)

# The virtual environment: pinned requirements (torch==2.13.0 is the CPU build), ptutils
# itself in editable mode, and a `python3` kernel that points at this environment.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (ptutils)" >/dev/null
	touch $@

# MathJax and mermaid, from the npm registry, served by the site itself (no CDN).
vendor: $(VENDOR)
$(VENDOR): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf _vendor/site && mkdir -p _vendor/site/_static/mathjax _vendor/site/_static/mermaid/chunks
	cp -r node_modules/mathjax/es5/. _vendor/site/_static/mathjax/
	cp node_modules/mermaid/dist/mermaid.esm.min.mjs _vendor/site/_static/mermaid/
	cp -r node_modules/mermaid/dist/chunks/mermaid.esm.min _vendor/site/_static/mermaid/chunks/
	find _vendor/site -name '*.map' -delete
	touch $@

test: $(STAMP) bwrap
	$(BIN)/python -m ptutils.classroom notebooks student
	PTUTILS_FAST=1 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line $(BIN)/python -m pytest tests notebooks --ignore=tests/site --ignore=tests/doors \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider -q

# Every student copy under nbval in fast mode (about 6 minutes). Not part of `make test`, to keep CI
# under its limit: there the student copies of chapter 2 (the grader's tests, nbgrader's) and
# chapter 13 (the hand-out's fresh environment, make check-doors) run; this target runs all 16.
test-student: $(STAMP)
	$(BIN)/python -m ptutils.classroom notebooks student
	PTUTILS_FAST=1 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line $(BIN)/python -m pytest student/notebooks \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=900 -p no:cacheprovider -q

test-lib: $(STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/site --ignore=tests/doors -q

test-notebooks: $(STAMP)
	PTUTILS_FAST=1 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=900 -q

# The execution cache (jupyter-cache) is keyed on each notebook's cells only; build_cache.py
# clears it when the library (ptutils/, requirements, installed versions) changed since it was filled.
book: $(STAMP) $(VENDOR)
	$(BIN)/python tools/build_cache.py prepare _build
	PTUTILS_FAST=0 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line $(BIN)/jupyter-book build . --builder html -W --keep-going; status=$$?; \
		$(BIN)/python tools/build_cache.py finish _build && exit $$status
	@echo "The site is in _build/html; 'make serve' shows it at http://127.0.0.1:$(PORT)"

# The same website with every chapter in fast mode, in $(FAST_SITE)/_build/html, with its own execution
# cache (never mixed with make book's): what CI builds and opens in Chromium (make check-site-fast).
# The full-mode build takes about 55 minutes cold on 2 cores, more than CI's 45-minute budget, so CI
# executes each chapter twice in fast mode (nbval, this build) and never in full mode; make book does.
FAST_SITE := _build/fast
site-fast: $(STAMP) $(VENDOR)
	$(BIN)/python tools/build_cache.py prepare $(FAST_SITE)/_build
	PTUTILS_FAST=1 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line $(BIN)/jupyter-book build . --path-output $(FAST_SITE) --builder html -W --keep-going; status=$$?; \
		$(BIN)/python tools/build_cache.py finish $(FAST_SITE)/_build && exit $$status
	@echo "The fast-mode site is in $(FAST_SITE)/_build/html"

serve:
	@test -f _build/html/index.html || (echo "build the site first: make book" && exit 1)
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

book-clean:
	rm -rf _build

clean: book-clean
	rm -rf $(VENV) _vendor node_modules

# Open every page of the built site in headless Chromium (Debian's package) and check it.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

check-site: $(STAMP) chromium
	@test -f _build/html/index.html || (echo "build the site first: make book" && exit 1)
	CHECK_SITE=_build/html CHECK_SITE_MODE=full $(BIN)/python -m pytest tests/site -q -p no:cacheprovider

check-site-fast: $(STAMP) chromium
	@test -f $(FAST_SITE)/_build/html/index.html || (echo "build the fast-mode site first: make site-fast" && exit 1)
	CHECK_SITE=$(FAST_SITE)/_build/html CHECK_SITE_MODE=fast $(BIN)/python -m pytest tests/site -q -p no:cacheprovider

# Classroom: student notebooks (solutions stubbed), hidden tests for the grader, and a
# website built from the student notebooks. Fails if any solution text survives.
# student/notebooks (handed out) read in plain Jupyter: glued values are named placeholders;
# the site gets the same notebooks with their MyST (glue roles) kept, so it shows the values.
# student/nbgrader is an nbgrader course folder: source/NN_topic/NN_topic.ipynb for each chapter
# (for teachers who grade with nbgrader) and an nbgrader_config.py, written only if missing.
student: $(STAMP) $(VENDOR)
	rm -rf student/site student/nbgrader/source && mkdir -p student/site
	$(BIN)/python -m ptutils.classroom notebooks student --site student/site/notebooks --nbgrader student/nbgrader
	$(BIN)/python -m ptutils.classroom.handout student student/handout.zip --reference notebooks
	cp -r _config.yml _toc.yml book _vendor student/site/
	cd student/site && PTUTILS_FAST=0 PTUTILS_STRICT=1 PTUTILS_PROGRESS=line ../../$(BIN)/jupyter-book build . --builder html -W --keep-going \
		> build.log 2>&1 || (tail -30 build.log && echo "student site build failed" && exit 1)
	@! grep -rl 'class="solution\|BEGIN SOLUTION' student/site/_build/html --include=*.html \
		|| (echo "solution text found in the student site" && exit 1)
	@echo "student notebooks: student/notebooks; hidden tests: student/hidden; nbgrader course: student/nbgrader; hand-out: student/handout.zip; site: student/site/_build/html"

# Local Jupyter, the reader's second door: JupyterLab on 127.0.0.1 with the chapters open and the
# "Python 3 (ptutils)" kernel (the venv's). No update or news checks (the book works offline).
# PTUTILS_FAST=1 make lab runs every chapter in fast mode. LAB_DIR and LAB_ARGS are for the test.
# (As root, as in a container or CI, Jupyter refuses to start without --allow-root.)
LAB_DIR ?= notebooks
LAB_ARGS ?=
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir="$(LAB_DIR)" --ServerApp.ip=127.0.0.1 \
		--LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
		$$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

# The pip and Colab door: a wheel of ptutils (package data, the benchmark included), declaring
# pyproject.toml's dependencies with their lower bounds, not requirements.txt's pins.
wheel: $(STAMP)
	rm -rf dist build && $(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation . -w dist
	rm -rf build
	@ls dist/*.whl

# The two doors tested the way readers use them (CI runs this after check-site):
# tests/doors/test_lab.py drives `make lab` in Chromium; tests/doors/test_clean_env.py installs
# the wheel into a new environment with no pins (as on Colab) and runs a chapter there.
check-doors: $(STAMP) chromium
	$(BIN)/python -m pytest tests/doors -q -p no:cacheprovider
