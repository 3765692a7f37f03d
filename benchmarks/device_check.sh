#!/usr/bin/env bash
# One-shot check on a GPU machine, from a checkout, with only preinstalled packages
# (numpy, cupy, opencv-python-headless, tifffile, rich, pytest) and no network:
#
#   PYTHONPATH=. bash benchmarks/device_check.sh [LOG_DIR]
#   bash benchmarks/device_check.sh --emulate [LOG_DIR]   # a dry run on a CPU, before the GPU time is spent
#
# 1. an environment probe (GPU, driver, CUDA, CuPy; one kernel family compiled, one cupy.fft call),
# 2. the GPU tests with SUPERRES_REQUIRE_GPU=1,
# 3. a quick pass of the CPU twin/kernel-math tests,
# 4. the GPU benchmark (100 frames of 12 MP, --repeat 1), which writes its JSON after every step,
# 5. the time per frame of each alignment option (--local, --tca, --refine) on 4 frames of 12 MP,
# each under its own timeout; the timeouts add up to 545 s (steps 4 and 5 write their JSON as they go,
# so a step cut off keeps what it measured).
# A short table comes last.  Full logs go to LOG_DIR (default: $SUPERRES_LOG_DIR, else
# $OUT/device_check, else ./device_check_logs).
#
# --emulate runs every step on the CUDA host emulator of the test suite (tests/cuda_emulator), on a
# machine without a GPU, with small bursts (3 frames of 320x240) and longer timeouts: it proves that
# the script, the tests and the benchmarks run through, not how fast anything is.
set -u
cd "$(dirname "$0")/.."
EMULATE=0
if [ "${1:-}" = "--emulate" ]; then
    EMULATE=1
    shift
fi
export PYTHONPATH="${PYTHONPATH:-.}"
export PYTHONUNBUFFERED=1
LOG="${1:-${SUPERRES_LOG_DIR:-${OUT:+$OUT/device_check}}}"
LOG="${LOG:-device_check_logs}"
mkdir -p "$LOG"
FRAMES="${SUPERRES_BENCH_FRAMES:-100}"
SIZE=(--width 4000 --height 3000)
GPU_BENCH=()
SLOW=1  # timeouts' multiplier
if [ "$EMULATE" = 1 ]; then
    export PYTHONPATH="tests/cuda_emulator:$PYTHONPATH" SUPERRES_EMULATOR_DEVICE=1
    FRAMES=3
    SIZE=(--width 320 --height 240)
    GPU_BENCH=(--device-frames 2 --passes 1 --cpu-frames 2)
    SLOW=4
    echo "== EMULATED: the CUDA host emulator, no GPU; the figures below are not a device's"
fi

echo "== environment (timeout $((40 * SLOW)) s)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$LOG/env.txt"
timeout $((40 * SLOW)) python3 - <<'PY' 2>&1 | tee -a "$LOG/env.txt"
import platform, time, numpy, cv2
print("python", platform.python_version(), "numpy", numpy.__version__, "opencv", cv2.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion())
    from superres_gpu.backends import get_backend
    from superres_gpu.cuda_modules import get_module
    G = get_backend("cupy")
    print(G.describe())
    t = time.perf_counter()
    get_module("pyramid", G.device.id)
    print(f"kernel family 'pyramid' compiled in {time.perf_counter() - t:.2f} s")
    x = cupy.random.default_rng(0).random((256, 256), dtype=cupy.float32)
    err = float(abs(cupy.fft.ifft2(cupy.fft.fft2(x)).real - x).max())
    print(f"cupy.fft round trip: max error {err:.2e}")
except Exception as e:
    print("cupy unusable:", type(e).__name__, e)
PY
ENV_RC=${PIPESTATUS[0]}

echo "== GPU tests (SUPERRES_REQUIRE_GPU=1, timeout $((185 * SLOW)) s)"
SUPERRES_REQUIRE_GPU=1 timeout $((185 * SLOW)) python3 -m pytest tests -m gpu -q -p no:cacheprovider \
    --junitxml="$LOG/gpu_tests.xml" >"$LOG/gpu_tests.log" 2>&1
TEST_RC=$?
tail -n 25 "$LOG/gpu_tests.log"

echo "== CPU twin and kernel-math tests (timeout $((30 * SLOW)) s)"
timeout $((30 * SLOW)) python3 -m pytest tests/test_numpy_backend.py tests/test_kernels_host.py tests/test_backends.py \
    -q -p no:cacheprovider >"$LOG/cpu_tests.log" 2>&1
CPU_RC=$?
tail -n 3 "$LOG/cpu_tests.log"

echo "== GPU benchmark ($FRAMES frames, timeout $((210 * SLOW)) s)"
timeout $((210 * SLOW)) python3 -m benchmarks.bench_gpu --frames "$FRAMES" "${SIZE[@]}" "${GPU_BENCH[@]}" --repeat 1 --json "$LOG/bench_gpu.json" \
    --markdown "$LOG/bench_gpu.md" >"$LOG/bench_gpu.log" 2>&1
BENCH_RC=$?
tail -n 8 "$LOG/bench_gpu.log"

echo "== options (4 frames of ${SIZE[1]}x${SIZE[3]}, timeout $((80 * SLOW)) s)"
timeout $((80 * SLOW)) python3 -m benchmarks.bench_options --backend cupy --frames 4 "${SIZE[@]}" \
    --json "$LOG/bench_options.json" --markdown "$LOG/bench_options.md" >"$LOG/bench_options.log" 2>&1
OPT_RC=$?
tail -n 4 "$LOG/bench_options.log"

echo
echo "== summary"
summ() { grep -Eo '[0-9]+ (passed|failed|skipped|errors?)' "$1" | tr '\n' ' '; }
printf '%-28s rc=%-4s\n' "environment probe" "$ENV_RC"
printf '%-28s rc=%-4s %s\n' "GPU tests" "$TEST_RC" "$(summ "$LOG/gpu_tests.log")"
printf '%-28s rc=%-4s %s\n' "CPU twin/host tests" "$CPU_RC" "$(summ "$LOG/cpu_tests.log")"
printf '%-28s rc=%-4s\n' "GPU benchmark" "$BENCH_RC"
printf '%-28s rc=%-4s\n' "options benchmark" "$OPT_RC"
if [ -f "$LOG/bench_gpu.md" ]; then
    cat "$LOG/bench_gpu.md"
elif [ -f "$LOG/bench_gpu.json" ]; then
    echo "benchmark cut off; measured so far:"; cat "$LOG/bench_gpu.json"
fi
if [ -f "$LOG/bench_options.md" ]; then
    cat "$LOG/bench_options.md"
elif [ -f "$LOG/bench_options.json" ]; then
    echo "options benchmark cut off; measured so far:"; cat "$LOG/bench_options.json"
fi
echo "logs: $LOG"
[ "$TEST_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] && [ "$OPT_RC" -eq 0 ]
