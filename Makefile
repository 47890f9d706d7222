# Two entry points for a fresh clone: `make run` and `make test`.
# The venv is (re)installed only when pyproject.toml changes: the stamp file records it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# Stage commands in dvc.yaml call `python`: the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run test bench install install-dev clean-venv

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/dvc repro

# Two workers, one test file each at a time (module fixtures stay in one process): 12.5 min
# instead of ~17.5 on a 2-core machine. PYTEST_ARGS adds or overrides (-n 0: one process).
test: install-dev
	$(BIN)/python -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/cooccur.py

clean-venv:
	rm -rf $(VENV)
