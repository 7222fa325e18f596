#!/usr/bin/env bash
# The GPU half of keras-lrn (issue 13), in one script: install what the lent
# GPU machine lacks from carried wheels, run the GPU tests, the benchmark's
# --device gpu mode, the optimized HLO of our layer and the AlexNet
# train-step comparison, writing everything under $OUT.
#
#   bash benchmarks/gpu_check.sh                 # on the GPU machine
#   OUT=/tmp/gpucheck bash benchmarks/gpu_check.sh --cpu
#                                                # anywhere: JAX's CPU device,
#                                                # small sizes, GPU-only parts
#                                                # skipped with a note
#   bash benchmarks/gpu_check.sh --download-wheels   # here, before the GPU run
#
# The lent machines (see the device tool's README and KINDS.md) have Python
# 3.12, JAX and PyTorch with CUDA, pytest, numpy, ml-dtypes, h5py, rich,
# absl-py; no TensorFlow, no Keras, and no network. So, first, here, in the
# repository root:
#
#   echo /.whl/ >> "$(git rev-parse --git-common-dir)/info/exclude"
#   bash benchmarks/gpu_check.sh --download-wheels   # keras, namex, optree
#
# then call the device tool's `run` with
#
#   command: bash benchmarks/gpu_check.sh
#   carry:   [".whl"]
#   timeout_s: 600   (the parts are capped at 90 + 240 + 30 + 180 s below;
#                     a full run is expected to take 5-8 minutes)
#
# and read what comes back from $OUT (at most 8 files, all at its top):
# gpu_check.log (everything), env.txt, test_gpu.log, lrn_bench.md,
# lrn_bench.log, hlo.txt, train_step.md, train_step.log. Environment:
# OUT (default: a new temporary folder), PYTHON (default python3), WHEELS
# (default .whl), GPU_CHECK_CPU=1 (the same as --cpu).

set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-.whl}
CPU=${GPU_CHECK_CPU:-0}

for arg in "$@"; do
    case "$arg" in
        --cpu) CPU=1 ;;
        --download-wheels)
            # the versions installed here, for the device's Python 3.12
            mkdir -p "$WHEELS"
            versions=$("$PYTHON" -c 'from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in ("keras", "namex", "optree")))')
            exec "$PYTHON" -m pip download --no-deps --only-binary=:all: \
                --python-version 3.12 --implementation cp \
                --platform manylinux_2_28_x86_64 \
                --platform manylinux_2_27_x86_64 \
                --platform manylinux_2_17_x86_64 \
                --platform manylinux2014_x86_64 \
                --platform manylinux1_x86_64 -d "$WHEELS" $versions ;;
        *) echo "gpu_check.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

OUT=${OUT:-$(mktemp -d -t gpucheck.XXXXXX)}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
exec 3>&1  # the main log, also where a part's own output goes to a file
SECONDS=0
status=0
note() { echo "== [${SECONDS}s] $*" >&3; }
# run NAME LIMIT_S COMMAND...: one part, capped, its exit status recorded
run() {
    local name=$1 limit=$2
    shift 2
    note "$name (at most ${limit}s): $*"
    timeout "$limit" "$@"
    local rc=$?
    [ $rc -eq 0 ] || { note "$name FAILED (exit $rc)"; status=1; }
    return 0
}

note "keras-lrn gpu_check, $([ "$CPU" = 1 ] && echo CPU mode || echo GPU mode), OUT=$OUT"

# 1. what the machine lacks, from the carried wheels
if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
    site=$(mktemp -d -t gpucheck-site.XXXXXX)
    note "installing $(ls "$WHEELS"/*.whl | xargs -n1 basename | tr '\n' ' ')into $site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$site" "$WHEELS"/*.whl || {
        note "wheel install FAILED"; exit 1; }
    export PYTHONPATH="$site:$ROOT"
else
    note "no wheels in $WHEELS: using the installed keras"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1
# JAX takes 75% of the GPU's memory at start by default; leave PyTorch, timed
# in the same process, room of its own
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}
if [ "$CPU" = 1 ]; then
    export JAX_PLATFORMS=cpu KERAS_LRN_TEST_DEVICE=cpu
    device=cpu
else
    device=gpu
fi

# the machine and the versions measured
{
    date -u
    git -C "$ROOT" log -1 --format='keras-lrn commit %h %s' 2>/dev/null \
        || echo "keras-lrn: no git history here"
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
            --format=csv
    else
        echo "nvidia-smi: not found (no NVIDIA GPU driver)"
    fi
    "$PYTHON" - <<'PY'
import platform, sys
print("python", platform.python_version(), sys.executable)
for name in ("jax", "jaxlib", "keras", "numpy", "torch", "optree",
             "ml_dtypes", "keras_lrn"):
    try:
        module = __import__(name)
        print(name, getattr(module, "__version__", "?"),
              getattr(module, "__file__", ""))
    except Exception as e:  # noqa: BLE001
        print(name, "not importable:", type(e).__name__, e)
try:
    import jax
    print("jax devices:", jax.devices())
except Exception as e:  # noqa: BLE001
    print("jax devices: none:", e)
try:
    import torch
    print("torch cuda:", torch.cuda.is_available(),
          torch.version.cuda, torch.cuda.get_device_name(0)
          if torch.cuda.is_available() else "")
except Exception as e:  # noqa: BLE001
    print("torch: not importable:", e)
PY
} 2>&1 | tee "$OUT/env.txt"

# 2. the GPU tests (on the CPU: the same bodies on JAX's CPU device)
run "tests/test_gpu.py" 90 "$PYTHON" -m pytest -p no:cacheprovider -q -rs \
    -m gpu tests/test_gpu.py > "$OUT/test_gpu.log" 2>&1
tail -n 15 "$OUT/test_gpu.log"

# 3. the benchmark: JAX jit of our layer vs the copy floor (across, and
# within-channel at size 5), PyTorch eager and torch.compile on CUDA,
# forward and forward+backward, half-precision exactness
if [ "$CPU" = 1 ]; then
    note "CPU mode: small shape, few repetitions; torch.compile and CUDA" \
        "rows skipped"
    bench_args=(--device cpu --shape 4x13x13x32 --reps 3 --calls-per-rep 2)
else
    bench_args=(--device gpu)  # 128x55x55x96 float32, 21 reps x 20 calls
fi
run "lrn_bench ${bench_args[*]}" 240 "$PYTHON" -m benchmarks.lrn_bench \
    --backend jax "${bench_args[@]}" --output "$OUT/lrn_bench.md" \
    > "$OUT/lrn_bench.log" 2>&1
tail -n 30 "$OUT/lrn_bench.log"

# 4. the optimized HLO of our layer (to read where a target misses)
hlo_shape=$([ "$CPU" = 1 ] && echo "4,13,13,32" || echo "128,55,55,96")
run "optimized HLO" 30 "$PYTHON" - "$hlo_shape" "$device" \
    > "$OUT/hlo.txt" 2>&1 <<'PY'
import sys
import jax
import jax.numpy as jnp
import keras_lrn

shape = tuple(int(v) for v in sys.argv[1].split(","))
x = jax.device_put(jnp.zeros(shape, jnp.float32), jax.devices(sys.argv[2])[0])
for mode in ("across_channels", "within_channel"):
    layer = keras_lrn.LocalResponseNormalization(mode=mode)
    for name, f in (("forward", jax.jit(layer)),
                    ("forward+backward", jax.jit(jax.grad(
                        lambda t: jnp.sum(layer(t)))))):
        print(f"===== {mode} {name} {shape} float32 =====")
        print(f.lower(x).compile().as_text())
PY
grep -c "fusion" "$OUT/hlo.txt" | xargs -I{} echo "hlo.txt: {} lines naming a fusion"

# 5. AlexNet train step: LRN vs none vs BatchNorm, float32 and mixed_bfloat16
if [ "$CPU" = 1 ]; then
    step_args=(--device cpu --batch 2 --image-size 67 --classes 10
               --steps 2 --reps 2)
else
    step_args=(--device gpu)  # batch 128, 227x227x3, 1000 classes
fi
run "AlexNet train step ${step_args[*]}" 180 "$PYTHON" \
    -m benchmarks.gpu_train_step "${step_args[@]}" \
    --output "$OUT/train_step.md" > "$OUT/train_step.log" 2>&1
cat "$OUT/train_step.md" 2>/dev/null

note "done in ${SECONDS}s, $([ $status = 0 ] && echo "every part passed" || echo "some part FAILED"); files in $OUT:"
ls -la "$OUT"
exit $status
