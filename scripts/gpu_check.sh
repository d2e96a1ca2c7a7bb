#!/usr/bin/env bash
# The GPU checks, as one script for a CUDA machine (under 10 minutes on an H100/H200):
# CUDA-marked tests, the model benchmark (vit-p12s8, bf16, MFU), the augmentation benchmark on
# CUDA, and a short `run --preset gpu`. Figures land in docs/*_cuda.json, docs/gpu_check_run.json
# and the GPU-check section of docs/RESULTS.md (benchmarks.gpu_report).
# Every step runs even when an earlier one fails (a lease is too short to rerun); the exit status
# is the number of failed steps. With $OUT set (a device lease), the logs and figures are copied there.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
# Nothing below means anything without a GPU, and the committed CUDA figures must stay.
"$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit('error: no CUDA device; this script needs one'); \
print(torch.__version__, torch.cuda.get_device_name())" || exit 1
# This run's outputs only: a step that fails must show as "not run", not as an earlier run's figures.
rm -rf docs/bench_model_cuda.json docs/bench_augment_cuda.json docs/gpu_check_run.json runs/gpu-check
failed=0
step() {  # step NAME CMD...: run one check, log it, count a failure
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@" || { echo "!!! $name failed (rc $?)"; failed=$((failed + 1)); }
  echo "=== $name took $((SECONDS - t0)) s"
}
step cuda-tests "$PY" -m pytest -q -m cuda -p no:cacheprovider
step bench-model "$PY" -m benchmarks.bench_model --out docs/bench_model_cuda.json
step bench-augment "$PY" -m benchmarks.bench_augment --device cuda --out docs/bench_augment_cuda.json
step run-gpu "$PY" -m adaptive_de.run --agent ppo --preset gpu --env rounds=2 exploit_every=1 --compare none \
  --name gpu-check --logdir runs
step copy-run cp runs/gpu-check/results.json docs/gpu_check_run.json
step report "$PY" -m benchmarks.gpu_report
if [ -n "${OUT:-}" ]; then
  cp docs/bench_model_cuda.json docs/bench_augment_cuda.json docs/gpu_check_run.json docs/RESULTS.md "$OUT"/ \
    2>/dev/null
fi
echo "=== $failed step(s) failed"
exit "$failed"
