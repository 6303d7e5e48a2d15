# skhier developer commands. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
export MPLBACKEND := Agg

.PHONY: demo test test-slow test-seeds test-all test-arviz1 python312 lint bench docs clean

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

# ArviZ 1.x (arviz-base, arviz-stats, arviz-plots on xarray's DataTree) needs
# Python >= 3.12; `make test` runs whichever ArviZ pip picks for $(PYTHON)
# (0.x on Python 3.11). This target runs the tests that use ArviZ again
# against ArviZ >= 1 in a second venv. PYTHON312: a Python >= 3.12 (found on
# PATH or under pyenv when not given).
ARVIZ1_VENV := .venv-arviz1
PYTHON312 ?= $(shell for p in python3.12 python3.13 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	$$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)
ARVIZ_TESTS := tests/test_model_comparison.py tests/test_posterior_predictive.py \
	tests/test_ecosystem.py tests/test_line.py tests/test_gmm.py skhier/_base.py
ARVIZ_SELECT := inference_data or loo or compare or predictive or replicat or arviz

python312:
	@echo $(PYTHON312)

test-arviz1:
	@test -n "$(PYTHON312)" || { echo "test-arviz1: no Python >= 3.12 found (ArviZ 1.x needs one); set PYTHON312" >&2; exit 1; }
	test -x $(ARVIZ1_VENV)/bin/python || $(PYTHON312) -m venv $(ARVIZ1_VENV)
	$(ARVIZ1_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ARVIZ1_VENV)/bin/python -m pip install --quiet -e ".[test]" "arviz>=1"
	$(ARVIZ1_VENV)/bin/python -c "import arviz; assert int(arviz.__version__.split('.')[0]) >= 1, arviz.__version__"
	$(ARVIZ1_VENV)/bin/python -m pytest -q -k "$(ARVIZ_SELECT)" $(ARVIZ_TESTS)

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
	rm -rf $(VENV) $(ARVIZ1_VENV) build *.egg-info .pytest_cache skhier_output
	rm -rf docs/_build docs/auto_examples docs/gen_modules docs/generated docs/sg_execution_times.rst
