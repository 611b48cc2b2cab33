# Two commands: `make book` builds the website, `make test` runs the tests.
# Both create .venv when it is missing and install the project into it.
#
# TORCH_SPEC picks the torch wheel installed before everything else. A plain
# `torch` pulls the default (CUDA) build; on a CPU-only machine pass a CPU build,
# e.g. `make test TORCH_SPEC=torch==2.13.0` or use PyTorch's CPU index.
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.dplearn-installed

.PHONY: install test book clean-book lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[book,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

# Executes every chapter in the `book` budget (cached in _build/.jupyter_cache)
# and writes the site to _build/html; any Sphinx warning fails the build.
book: $(STAMP)
	DPLEARN_BUDGET=$${DPLEARN_BUDGET:-book} PATH="$(abspath $(BIN)):$$PATH" \
		$(BIN)/jupyter-book build . --builder html -W --keep-going

clean-book:
	rm -rf _build

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
