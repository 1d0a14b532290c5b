# Every target works on a fresh clone with only Python 3.11 and the package index:
# the virtual environment is created and the package installed on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME := $(CURDIR)/.dagster

.PHONY: install test test-slow test-reliability demo dev bench check clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

test: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest -q

test-slow: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest -q -m slow

test-reliability: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/pytest -q -m reliability

check: $(INSTALLED)
	$(BIN)/dg check defs

demo: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/passport-pipeline demo

dev: $(INSTALLED) $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev --host 127.0.0.1 --port 3000

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.extraction
	$(BIN)/python -m benchmarks.csv_import
	$(BIN)/python -m benchmarks.transform

clean:
	rm -rf data .dagster .pytest_cache
