#!/usr/bin/env bash
# Every GPU check the CPU machines cannot make, in one command (one H100/H200):
#   the gpu-marked tests, then the engine/kernels benchmarks whose figures bench/RESULTS.md
#   records. Each step has its own time limit and writes its output to $OUT (or ./gpu_checks).
#
#   bash bench/gpu_checks.sh            # all steps (~8 min on an H100)
#   bash bench/gpu_checks.sh tests e2e  # only the named steps: tests e2e compile graphs overhead kernels
#
# On the device tool's machines (torch/triton preinstalled, no pydantic), carry the wheels
# folder (.whl, see /work/.library/device/README.md); this script installs them when present.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_checks}"
mkdir -p "$out"
if [ -d .whl ] && ! python3 -c "import pydantic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
if ! python3 -c "import caramba" 2>/dev/null; then  # the repo root is the package
  mkdir -p /tmp/p && ln -sfn "$PWD" /tmp/p/caramba && export PYTHONPATH="/tmp/p:${PYTHONPATH:-}"
fi
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(tests e2e compile graphs overhead kernels)
run() {  # name, limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "== $name: $*"
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  echo "   exit $? (output in $out/$name.txt)"; tail -n 6 "$out/$name.txt"
}
for s in "${steps[@]}"; do
  case $s in
    tests) run tests 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_*.py tests/test_model_gpu.py \
             tests/test_infer_quant_decode.py tests/test_library_ssm.py tests/test_rope_scaling.py tests/test_compile_mode.py ;;
    e2e) run e2e 240 python3 bench/engine_e2e.py --profile ;;
    compile) run compile 300 python3 bench/engine_e2e.py --compile ;;
    graphs) run graphs 300 python3 bench/engine_e2e.py --compile reduce-overhead ;;
    overhead) run overhead 240 python3 bench/engine_overhead.py --device cuda --steps 300 --warmup 50 \
                --d-model 512 --layers 8 --heads 8 --repeats 3 ;;
    kernels) run kernels 200 python3 bench/kernels_overhead.py ;;
    *) echo "unknown step '$s' (tests e2e compile graphs overhead kernels)"; exit 2 ;;
  esac
done
