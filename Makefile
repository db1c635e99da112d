# Every target bootstraps .venv from nothing on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The same, at the lowest version of every dependency pyproject.toml declares.
MIN_VENV := .venv-min
MIN_STAMP := $(MIN_VENV)/.installed
# The layers run at the minimum versions (the whole suite runs at the current ones).
MIN_TESTS := tests/unit tests/config tests/engine tests/cli tests/render tests/test_minimum_versions.py

.PHONY: demo test test-min check fmt clean bench

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ctsync needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,emulator]'
	@touch $(STAMP)

$(MIN_STAMP): pyproject.toml constraints/minimum.txt
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet -c constraints/minimum.txt -e '.[dev,emulator]'
	@touch $(MIN_STAMP)

demo: $(STAMP)
	$(BIN)/ctsync demo

test: $(STAMP)
	-./scripts/ensure-chromium
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory test-min

test-min: $(MIN_STAMP)
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache .mypy_cache .ruff_cache
