# The two commands of the README: `make demo` and `make test`. Each sets up what it needs
# (Debian packages, a venv in .venv with the CPU torch first) when missing, then runs;
# `make test` runs ruff (check and format) before pytest.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch goes in first and pinned, so no dependency can pull a multi-GB CUDA build by
# accident; 2.13.0 is the CPU wheel on this kind of machine. Override for a GPU box.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-all lint system-deps setup

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: system-deps $(STAMP)

# The style checks run before the tests: CI runs `make test` and fails on either.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-all: lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(PY) scripts/demo.py
