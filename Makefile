# `make test` and `make demo` work on a fresh clone: both install into .venv first if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch lies on this machine's disk; install it first so nothing pulls a CUDA build.
# On a GPU machine: make install TORCH="torch" (or your CUDA build).
TORCH  ?= torch==2.13.0

.PHONY: install test demo bench bench-poly clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/seqkit demo predict-song

$(VENV)/.bench: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[bench]"
	touch $@

bench: $(VENV)/.bench
	$(BIN)/python bench/bench.py $(if $(NANOGPT),--nanogpt $(NANOGPT))

bench-poly: install
	$(BIN)/python bench/bench_poly.py

clean:
	rm -rf $(VENV) data/cache .pytest_cache
