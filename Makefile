# medclass: the README's two commands are `make demo` and `make test`; both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Real data: $MEDCLASS_DATA if set, else ../shared/data when it holds MedMNIST files, else the user cache
# (files are then downloaded on first use).
SHARED_DATA := $(abspath ../shared/data)
export MEDCLASS_DATA ?= $(if $(wildcard $(SHARED_DATA)/*.npz),$(SHARED_DATA),)
DEMO_DATASET ?= pneumoniamnist
DEMO_OUT ?= runs/demo-$(DEMO_DATASET)
PYTEST_ARGS ?=

.PHONY: setup test test-all demo bench clean

setup: $(VENV)/.installed

# Pinned dependencies (requirements/constraints.txt); torch is pinned so no multi-GB download happens by accident.
# `source .venv/bin/activate` then puts medclass on the PATH and, when ../shared/data holds the MedMNIST files,
# points MEDCLASS_DATA at them, so the README's commands run as written.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
	$(if $(MEDCLASS_DATA),grep -q MEDCLASS_DATA $(BIN)/activate || echo 'export MEDCLASS_DATA="$${MEDCLASS_DATA:-$(MEDCLASS_DATA)}"' >> $(BIN)/activate,)
	touch $@

# the fast tier: unit tests on synthetic data (about 3 minutes on 2 cores)
test: setup
	$(BIN)/python -m pytest -m "not slow and not integration and not faults and not network and not gpu" $(PYTEST_ARGS)

# every tier CI runs: the fast tier, then integration (real MedMNIST training, the CLI in subprocesses, the parity
# matrix, Chromium) and fault injection (kill -9, full disks, damaged files, concurrent writers)
test-all: setup
	$(BIN)/python -m pytest -m "not network and not gpu" $(PYTEST_ARGS)

demo: setup
	$(BIN)/medclass train --dataset $(DEMO_DATASET) --recipe default --seed 0 --out $(DEMO_OUT) --overwrite
	$(BIN)/medclass evaluate $(DEMO_OUT) --split test
	$(BIN)/medclass report $(DEMO_OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache
