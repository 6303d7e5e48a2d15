# skhier developer commands. Every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-test
export MPLBACKEND := Agg

.PHONY: demo test test-slow test-all lint bench clean

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

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check skhier tests examples benchmarks

bench: $(STAMP)
	$(PY) benchmarks/line_mixture.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache skhier_output
