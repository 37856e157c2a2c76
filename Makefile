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

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed

# Pinned dependencies (requirements/constraints.txt); torch is pinned so no multi-GB download happens by accident.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e ".[test]"
	touch $@

test: setup
	$(BIN)/python -m pytest -m "not slow and not network and not gpu" $(PYTEST_ARGS)

demo: setup
	$(BIN)/medclass train --dataset $(DEMO_DATASET) --recipe default --seed 0 --out $(DEMO_OUT) --overwrite
	$(BIN)/medclass evaluate $(DEMO_OUT) --split test
	$(BIN)/medclass report $(DEMO_OUT)

clean:
	rm -rf $(VENV) runs .pytest_cache
