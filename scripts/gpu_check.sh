#!/usr/bin/env bash
# The GPU checks, as one script for a CUDA machine (under 10 minutes on an H100):
# CUDA-marked tests, the model benchmark (vit-p12s8, bf16, MFU), the augmentation benchmark on
# CUDA, and a short `run --preset gpu`. Figures land in docs/ (and runs/gpu-check/).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
"$PY" -m pytest -q -m cuda
"$PY" -m benchmarks.bench_model --out docs/bench_model_cuda.json
"$PY" -m benchmarks.bench_augment --device cuda --out docs/bench_augment_cuda.json
"$PY" -m adaptive_de.run --agent ppo --preset gpu --timesteps 20 --compare none --name gpu-check --logdir runs
cat runs/gpu-check/results.md
