# The README's commands. Each one sets up .venv on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch is pinned here so pip takes the CPU build; pyproject.toml allows a range.
TORCH  := torch==2.13.0
# MovieLens copies in a data directory beside the checkout are used when present
DATA_DIR := $(abspath ../shared/data)
ifneq ($(wildcard $(DATA_DIR)/ml-latest-small),)
export PALATE_DATA ?= $(DATA_DIR)
endif

.PHONY: demo test test-fast lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev,ann,plot,service,spark]'
	# compile the ALS kernel once now (numba caches it on disk) so the first fit is fast
	$(BIN)/python -c "from palate.models.ridge import compile_kernels; compile_kernels()"
	touch $(STAMP)

# MovieLens copies are also looked for in a data folder beside the checkout (../shared/data),
# after $$PALATE_DATA, so an offline machine that has one tours real films, not synthetic ones
DEMO_DATA := $(PALATE_DATA)$(if $(wildcard ../shared/data),$(if $(PALATE_DATA),:,)$(abspath ../shared/data))

demo: $(STAMP)
	PALATE_DATA="$(DEMO_DATA)" $(BIN)/palate demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the suite without the tests marked slow (real data), spark, server (a real palate serve
# process) or browser (headless Chromium)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not spark and not server and not browser"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(MAKE) -C bench all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
