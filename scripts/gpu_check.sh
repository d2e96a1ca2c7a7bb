#!/usr/bin/env bash
# The GPU checks, as one script for a CUDA machine (about 9 minutes on an H200):
# CUDA-marked tests, the model benchmark (vit-p12s8, bf16, MFU), the augmentation benchmark on
# CUDA, and a short `run --preset gpu`. Figures land in docs/*_cuda.json, docs/gpu_check_run.json
# and the GPU-check section of docs/RESULTS.md (benchmarks.gpu_report).
# Every step runs even when an earlier one fails (a lease is too short to rerun), each under its own
# time limit, the most telling first; the exit status is the number of failed steps. With $OUT set (a
# device lease), each step's figures are copied there as soon as it ends, so a lease that runs out
# still returns what finished. Python packages the machine lacks travel as wheels in .whl/ (see the
# device tool's notes) and are installed into /tmp/site first.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
# Nothing below means anything without a GPU, and the committed CUDA figures must stay.
"$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit('error: no CUDA device; this script needs one'); \
print(torch.__version__, torch.cuda.get_device_name())" || exit 1
# This run's outputs only: a step that fails must show as "not run", not as an earlier run's figures.
rm -rf docs/bench_model_cuda.json docs/bench_augment_cuda.json docs/gpu_check_run.json runs/gpu-check
failed=0
step() {  # step NAME LIMIT_S CMD...: run one check under a time limit, log it, count a failure
  local name=$1 limit=$2; shift 2
  echo "=== $name: $*"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" || { echo "!!! $name failed (rc $?)"; failed=$((failed + 1)); }
  echo "=== $name took $((SECONDS - t0)) s"
}
keep() {  # keep FILE...: copy figures to $OUT at once, where a lease collects them
  [ -n "${OUT:-}" ] && cp "$@" "$OUT"/ 2>/dev/null
  return 0
}
step bench-model 240 "$PY" -m benchmarks.bench_model --cuda-only --out docs/bench_model_cuda.json
keep docs/bench_model_cuda.json
step cuda-tests 150 "$PY" -m pytest -q -m cuda -p no:cacheprovider
step run-gpu 300 "$PY" -m adaptive_de.run --agent ppo --preset gpu --env rounds=2 exploit_every=1 pretrain_steps=1000 --compare none \
  --name gpu-check --logdir runs
step copy-run 10 cp runs/gpu-check/results.json docs/gpu_check_run.json
keep docs/gpu_check_run.json
step bench-augment 60 "$PY" -m benchmarks.bench_augment --device cuda --out docs/bench_augment_cuda.json
keep docs/bench_augment_cuda.json
step report 60 "$PY" -m benchmarks.gpu_report
keep docs/RESULTS.md
echo "=== $failed step(s) failed"
exit "$failed"
