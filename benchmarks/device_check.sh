#!/usr/bin/env bash
# One-shot check on a GPU machine, from a checkout, with only preinstalled packages
# (numpy, cupy, opencv-python-headless, tifffile, rich, pytest) and no network:
#
#   PYTHONPATH=. bash benchmarks/device_check.sh [LOG_DIR]
#
# Prints the GPU and versions, runs the GPU tests with SUPERRES_REQUIRE_GPU=1,
# then the GPU benchmark, and prints a short table last.  Full logs go to
# LOG_DIR (default: $SUPERRES_LOG_DIR, else $OUT/device_check, else ./device_check_logs).
# Budget: under 8 minutes (tests ~1-2 min, benchmark ~3-5 min).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:-.}"
export PYTHONUNBUFFERED=1
LOG="${1:-${SUPERRES_LOG_DIR:-${OUT:+$OUT/device_check}}}"
LOG="${LOG:-device_check_logs}"
mkdir -p "$LOG"
FRAMES="${SUPERRES_BENCH_FRAMES:-100}"

echo "== environment" | tee "$LOG/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG/env.txt"
python3 - <<'PY' 2>&1 | tee -a "$LOG/env.txt"
import platform, numpy, cv2
print("python", platform.python_version(), "numpy", numpy.__version__, "opencv", cv2.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
    from superres_gpu.backends import get_backend
    print(get_backend("cupy").describe())
except Exception as e:
    print("cupy unusable:", type(e).__name__, e)
PY

echo "== GPU tests (SUPERRES_REQUIRE_GPU=1)"
SUPERRES_REQUIRE_GPU=1 timeout 300 python3 -m pytest tests -m gpu -q -p no:cacheprovider \
    --junitxml="$LOG/gpu_tests.xml" >"$LOG/gpu_tests.log" 2>&1
TEST_RC=$?
tail -n 25 "$LOG/gpu_tests.log"

echo "== CPU test suite quick pass (host-compiled kernel math, twins)"
timeout 120 python3 -m pytest tests/test_numpy_backend.py tests/test_kernels_host.py tests/test_cuda_modules.py \
    -q -p no:cacheprovider >"$LOG/cpu_tests.log" 2>&1
CPU_RC=$?
tail -n 3 "$LOG/cpu_tests.log"

echo "== GPU benchmark ($FRAMES frames)"
timeout 330 python3 -m benchmarks.bench_gpu --frames "$FRAMES" --json "$LOG/bench_gpu.json" \
    --markdown "$LOG/bench_gpu.md" >"$LOG/bench_gpu.log" 2>&1
BENCH_RC=$?
tail -n 8 "$LOG/bench_gpu.log"

echo
echo "== summary"
summ() { grep -Eo '[0-9]+ (passed|failed|skipped|errors?)' "$1" | tr '\n' ' '; }
printf '%-28s rc=%-4s %s\n' "GPU tests" "$TEST_RC" "$(summ "$LOG/gpu_tests.log")"
printf '%-28s rc=%-4s %s\n' "CPU twin/host tests" "$CPU_RC" "$(summ "$LOG/cpu_tests.log")"
printf '%-28s rc=%-4s\n' "GPU benchmark" "$BENCH_RC"
if [ -f "$LOG/bench_gpu.md" ]; then cat "$LOG/bench_gpu.md"; fi
echo "logs: $LOG"
[ "$TEST_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ]
