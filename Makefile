# Two commands on a fresh machine (each sets up what it needs first, and does nothing twice):
#   make report   the virtual environment, the pinned torch and the project, then the report
#                 rebuilt from the committed paper-protocol results (no training): build/report/
#   make test     the same set-up, then the whole test suite (what CI runs)
# and, for the everyday loop, `make quick-test` (the suite without the slow real-data tests).
# The data folder is $LTH_DATA (tests need MNIST and CIFAR-10 there; missing files are
# downloaded into it), by default ./data. README.md, "Set up by hand", gives the steps one by one.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
LTH_DATA ?= $(CURDIR)/data
export LTH_DATA

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup report test quick-test clean-venv

setup: $(STAMP)

# Reinstalled only when pyproject.toml changes. torch first and pinned, so that pip never
# resolves an unpinned torch (the CUDA build is gigabytes).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test,notebooks]'
	touch $@

report: $(STAMP)
	$(BIN)/python build.py all --preset paper

# Test files run side by side, one per CPU core (pytest-xdist); a file's tests stay together on
# one worker, so each module's fixtures are built once.
PYTEST := $(BIN)/python -m pytest -q -n auto --dist loadfile

test: $(STAMP)
	$(PYTEST)

quick-test: $(STAMP)
	$(PYTEST) -m "not slow"

clean-venv:
	rm -rf $(VENV)
