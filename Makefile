# Reproducible build of the book and its library. Needs python3 (venv, pip), npm and make;
# `make test-browser` also needs Debian's chromium (installed with apt-get when run as root).
#   make book   - environment, data, every notebook executed, HTML site in _build/html
#   make pdf    - the whole book as one PDF (after make book): _build/html/w2s-book.pdf
#   make test   - ruff, then the test suite (everything but the browser test)
SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := book

PYTHON_SYS ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.w2s-installed
PRESET     ?= ci
BOOK_ARGS  ?=
MATHJAX_VERSION := 3.2.2
NPM_PREFIX := .cache/npm
MATHJAX    := book/_extra/mathjax/tex-chtml.js
CHROMIUM   := /usr/bin/chromium
DOWNLOADS  := book/_extra/downloads

.PHONY: book env mathjax data downloads pdf test test-fast test-browser chromium lab lock clean distclean help

help:
	@echo "make book          environment + data + execute every chapter + HTML (_build/html)"
	@echo "make pdf           the whole book as one PDF, linked from the site (after make book)"
	@echo "make test-fast     the quick tests (about a minute): start here"
	@echo "make test          test suite (not the browser test)"
	@echo "make test-browser  headless Chromium over the built site (run make book first)"
	@echo "make lab           JupyterLab in the project's environment"
	@echo "make lock          rewrite requirements.lock from the current environment"
	@echo "make clean         remove _build/; make distclean also removes .venv and bundles"
	@echo "variables: PRESET=ci|paper  BOOK_ARGS='--only 01_pipeline --keep-going'"

# The environment is created once; it is redone when the lock or pyproject.toml change.
env: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	@start=$$(date +%s); \
	if [ ! -x $(PY) ]; then $(PYTHON_SYS) -m venv $(VENV); fi; \
	$(PY) -m pip install --quiet -r requirements.lock 2>&1 | sed '/is ignored: it is neither a file nor a directory/d' && \
	$(PY) -m pip install --quiet --no-deps -e . 2>&1 | sed '/is ignored: it is neither a file nor a directory/d' && \
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (w2s-utils)" >/dev/null && \
	echo "environment ready in $$(( $$(date +%s) - start )) s: $(VENV)"
	@touch $@

# MathJax 3, bundled so the site renders maths offline; copied outside _static on purpose.
mathjax: $(MATHJAX)
$(MATHJAX):
	npm install --prefix $(NPM_PREFIX) --no-save --no-package-lock --no-audit --no-fund mathjax@$(MATHJAX_VERSION)
	rm -rf book/_extra/mathjax
	mkdir -p book/_extra
	cp -r $(NPM_PREFIX)/node_modules/mathjax/es5 book/_extra/mathjax
	@test -f $@ || { echo "MathJax bundle incomplete: $@ missing" >&2; exit 1; }

# Data sets (fetched once into the cache; see w2s_utils.engine.data).
data: $(STAMP)
	$(PY) -m w2s_utils data fetch

# What the site offers for download: the wheel of w2s_utils (what a downloaded chapter imports)
# and the environment files. Built here, offline, from this checkout; listed by {w2s-downloads}.
downloads: $(STAMP)
	rm -rf $(DOWNLOADS) && mkdir -p $(DOWNLOADS)
	$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DOWNLOADS) .
	cp environment.yml requirements.lock $(DOWNLOADS)/

book: $(STAMP) $(MATHJAX) data downloads
	$(PY) -m w2s_utils book --preset $(PRESET) $(BOOK_ARGS)
	@if [ -x $(CHROMIUM) ] && command -v pdftotext >/dev/null; then \
		$(MAKE) --no-print-directory pdf; \
	else echo "no Chromium/poppler here: the site links a PDF that 'make pdf' builds (it installs them as root)"; fi
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# The PDF: the one-page HTML of the last `make book`, printed by Debian's Chromium (offline).
pdf: $(STAMP) $(MATHJAX) chromium
	@test -f _build/html/index.html || { echo "no site in _build/html: run 'make book' first" >&2; exit 1; }
	$(PY) -m w2s_utils.book.pdf

# a newcomer's first command: everything but the slow, executor and browser tests, on both cores
# (under a minute on an idle 2-core box)
test-fast: $(STAMP)
	$(PY) -m ruff check w2s_utils tests benchmarks notebooks book/_ext
	HYPOTHESIS_PROFILE=fast $(PY) -m pytest -q -n 2 -m "not browser and not slow and not executor" --ignore=tests/browser

test: $(STAMP)
	$(PY) -m ruff check w2s_utils tests benchmarks notebooks book/_ext
	$(PY) -m pytest -m "not browser" --ignore=tests/browser

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "Debian's chromium is missing: run 'sudo apt-get install chromium'" >&2; exit 1; fi; \
	fi
	@if ! command -v pdftotext >/dev/null || ! command -v pdfimages >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; \
		else echo "poppler-utils (pdftotext) is missing: run 'sudo apt-get install poppler-utils'" >&2; exit 1; fi; \
	fi

# the site (make book) and its PDF (make pdf) in headless Chromium; the PDF read back by poppler
test-browser: $(STAMP) chromium
	@test -f _build/html/index.html || { echo "no site in _build/html: run 'make book' first" >&2; exit 1; }
	@test -f _build/html/w2s-book.pdf || { echo "no PDF in _build/html: run 'make pdf' first" >&2; exit 1; }
	$(PY) -m pytest -m browser tests/browser

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# requirements.lock = the environment's pip freeze, without the editable package; torch is
# pinned to the CPU wheel's version (2.13.0) without its local "+cpu" tag.
lock:
	@$(PY) -m pip freeze --exclude-editable | grep -v -i '^w2s-utils' \
		| sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' > requirements.lock.tmp
	@mv requirements.lock.tmp requirements.lock
	@echo "wrote requirements.lock ($$(wc -l < requirements.lock) packages)"

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) $(NPM_PREFIX) book/_extra
