# skhier developer commands. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
export MPLBACKEND := Agg

.PHONY: demo test test-slow test-seeds test-all lint bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m skhier demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

# Every statistical test (those taking the stat_seed fixture) over 50 seeds,
# with a table of failure rates against each test's false-failure budget.
# Not run by CI (about 50 times the statistical tests' run time).
SEEDS ?= 50
test-seeds: $(STAMP)
	$(PY) -m pytest -q -m statistical --seeds $(SEEDS) tests

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check skhier tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/line_mixture.py

$(DOCS_STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# HTML in docs/_build/html; runs every examples/plot_*.py for the gallery.
# Warnings are errors; -E rereads every page, so a warning is never hidden by
# an up-to-date page. SKHIER_DOCS_GALLERY=REGEX runs only matching examples.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -E -b html -W --keep-going docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache skhier_output
	rm -rf docs/_build docs/auto_examples docs/gen_modules docs/generated docs/sg_execution_times.rst
