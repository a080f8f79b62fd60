#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md, each output kept in bench/results/NAME.txt.
# One torch thread (see bench/harness.py); each line runs in under 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/setup.sh
py="bench/.venv/bin/python -u"
mkdir -p bench/results
run() { name=$1; shift; echo "== $name: $*"; OMP_NUM_THREADS=1 $py "$@" 2>&1 | grep -v -e Warning -e "warnings.warn" \
  -e "^{'" -e "^  from trl" -e "Writing model shards" | tee "bench/results/$name.txt" | tail -1; }
run generation-base      bench/generation.py
run generation-smollm2   bench/generation.py --model smollm2-135m --batches 16 64 --modes sampled --max-new-tokens 32 --repeats 2
run rm                   bench/rm.py
run sft                  bench/sft.py
run ppo-tiny-gpt2        bench/ppo.py --model tiny-gpt2
run ppo-smollm2          bench/ppo.py --model smollm2-135m --steps 1 --warm-steps 0 --repeats 1
