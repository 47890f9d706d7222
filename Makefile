# Two entry points for a fresh clone: `make run` and `make test`.
# Both install exactly requirements.lock (every package, pinned: what CI tested), then this project
# without resolving anything. The venv is reinstalled only when the lock or pyproject.toml changes.
# `make lock` re-resolves pyproject.toml's ranges today and rewrites the lock (see README: Upgrading).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
PIP := $(BIN)/python -m pip --quiet
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# Stage commands in dvc.yaml call `python`: the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: run sample test bench install lock check-lock clean-venv

$(VENV)/.installed: $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install "$$(grep -E '^pip==' $(LOCK))"
	$(PIP) install --no-deps -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/dvc repro

# A first look in minutes: every stage on a stratified sample of SAMPLE documents, as a DVC experiment
# (`dvc exp show` lists it). params.yaml is left as it was, so `make run` then runs the full corpus.
SAMPLE ?= 3000
sample: install
	cp params.yaml $(VENV)/params.yaml.before
	$(BIN)/dvc exp run -S data.max_docs=$(SAMPLE); status=$$?; \
	  mv $(VENV)/params.yaml.before params.yaml; exit $$status

# Two workers, one test file each at a time (module fixtures stay in one process).
# PYTEST_ARGS adds or overrides (-n 0: one process).
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=20 $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/cooccur.py

# A new lock from a throw-away venv: pyproject.toml's ranges resolved today (torch stays ==, the CPU
# wheel). Then `make test`, and commit the lock with the dvc.lock/metrics of a full run.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip --quiet install --upgrade pip
	.lock-venv/bin/python -m pip --quiet install -e '.[dev]'
	{ echo "# The whole environment make run / make test install (pip freeze of a fresh install of"; \
	  echo "# '.[dev]'). Regenerate with: make lock. Python $$(.lock-venv/bin/python -c 'import platform; print(platform.python_version())'), $$(date -u +%F)."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .lock-venv
	@echo "wrote $(LOCK): $$(grep -c '==' $(LOCK)) packages"

# The venv holds exactly the lock (CI runs this after make test).
check-lock: install
	diff <(grep -v '^#' $(LOCK)) <($(BIN)/python -m pip freeze --all --exclude-editable)

clean-venv:
	rm -rf $(VENV)
