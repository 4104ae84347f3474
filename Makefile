# Two commands set everything up on a fresh machine:
#   make lab    create .venv, install everything, register the kernel, open JupyterLab on notebooks/
#   make test   same install, then the whole test suite (lint first)
#   make test-fast   about 2 minutes: everything but notebooks, browser and training (-m "not slow")
# PyTorch is the CPU build (on Linux from PyTorch's CPU index, ~190 MB instead of ~2.7 GB of
# CUDA wheels; see scripts/install_torch.py); `make lab GPU=1` installs the CUDA build instead.
SHELL  := /bin/bash
PYTHON ?= python3
GPU    ?=
USE_GPU := $(filter 1 yes true,$(GPU))
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(if $(USE_GPU),gpu,cpu)
LAB_FLAGS := --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install system-deps lab lint test test-fast test-notebooks-defaults bench datasets clean

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): requirements.txt pyproject.toml setup.py scripts/install_torch.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) scripts/install_torch.py $(if $(USE_GPU),--gpu)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Composer Capsules)" >/dev/null
	rm -f $(VENV)/.installed*
	touch $(STAMP)

install: system-deps $(STAMP)

lab: install
	cd notebooks && ../$(VENV)/bin/jupyter lab $(LAB_FLAGS)

# ruff, configured in pyproject.toml: no lint finding, nothing the formatter would change.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(PY) -m pytest
	$(MAKE) --no-print-directory test-notebooks-defaults

test-fast: install
	$(PY) -m pytest -q -m "not slow" --ignore=tests/notebooks --ignore=tests/browser

# Every notebook at its default parameters, as a student runs it (nbval), with Jupyter's own
# plotting backend and a throwaway capsule home; nothing may be written into the repository.
test-notebooks-defaults: install
	@before="$$(git status --porcelain --untracked-files=all 2>/dev/null)"; \
	env -u MPLBACKEND CAPSULE_HOME="$$(mktemp -d)" $(PY) -m pytest -p no:cacheprovider --nbval-lax \
		--nbval-cell-timeout=900 notebooks/ || exit 1; \
	after="$$(git status --porcelain --untracked-files=all 2>/dev/null)"; \
	if [ "$$before" != "$$after" ]; then echo "the notebooks wrote into the repository:"; \
		diff <(echo "$$before") <(echo "$$after"); exit 1; fi

bench: install
	$(PY) bench/bench_import.py
	$(PY) bench/bench_render.py
	$(VENV)/bin/capsule data bach --quiet >/dev/null
	$(PY) bench/bench_enhance.py
	$(PY) bench/bench_extend.py

# Re-parse music21's corpora into data/datasets/ (after a parse rule changes; 10-20 minutes).
datasets: install
	$(PY) -m capsule_lib.datasets.shipped

clean:
	rm -rf $(VENV) .pytest_cache
