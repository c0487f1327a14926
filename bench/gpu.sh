#!/usr/bin/env bash
# mlfer on one GPU: fine-tuning images/s (ResNet50 + SVML-RGCN at 224 x 224, batch 32 and the
# largest batch that fits), feature extraction, predict faces/s, beside the GPU's bf16 matmul
# rate measured in the same run (under 5 minutes). See bench/gpu_bench.py.
#
#   bash bench/gpu.sh            # on a machine with a GPU; add --write for docs/benchmarks.md
#   bash bench/gpu.sh --smoke    # tiny sizes on the CPU, a few steps (CI)
#
# Uses the python on PATH (activate the project's virtual environment first) or $PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
exec "${PYTHON:-python}" bench/gpu_bench.py "$@"
