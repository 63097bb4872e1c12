#!/usr/bin/env bash
# tools/bench_side_by_side.sh — the notebook's fine-tune step on this CPU, one after the
# other in one run: wastenet (float32, and --precision bf16 when `wastenet bench --help`
# offers it), TensorFlow/Keras (tf_keras, float32 and the mixed_bfloat16 policy;
# tools/bench_keras_step.py) and PyTorch on the CPU (timm inception_resnet_v2, the same
# boundary, channels-last, float32 and torch.autocast(bfloat16); tools/bench_torch.py).
#
#   tools/bench_side_by_side.sh [--build DIR] [--python PY] [--torch-venv DIR]
#                               [--batch 64] [--image-size 320] [--fine-tune-at 500]
#                               [--steps 3] [--warmup 1] [--out DIR] [--skip LIST]
#
# --build: the wastenet build folder (default build). --python: the Python with
# tensorflow and tf_keras (default .venv/bin/python, as tools/setup.sh --test makes it).
# --torch-venv: where torch and timm live; created from PyPI on first use (python3 -m
# venv, pip install torch timm: a download of several GB, the CUDA wheels included,
# since PyPI has no CPU-only torch for Linux); not part of the test setup.
# --skip: comma-separated rows to leave out (wastenet-fp32, wastenet-bf16, keras-fp32,
# keras-bf16, torch-fp32, torch-bf16).
#
# Each row runs in its own process (so its peak RSS is its own) after `wastenet
# bench-peak` measured this CPU's peaks. Printed: a Markdown table with the median
# wall seconds per step (of --steps after --warmup), images/s, the median CPU seconds
# per step (all threads), peak RSS, and GFLOP/s against the measured peak, the step's
# work being wastenet's count of the model's FLOPs (the same model in every
# framework). Outputs of every command under --out (default runs/side_by_side_<date>).
# A benchmark, not a test: on a shared machine wall times measure the share of the
# cores each process got; the load average before each row is printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build python=.venv/bin/python torch_venv=.venv-bench
batch=64 size=320 fine_tune_at=500 steps=3 warmup=1 out="" skip=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --torch-venv) torch_venv="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --image-size) size="$2"; shift 2 ;;
    --fine-tune-at) fine_tune_at="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --skip) skip=",$2,"; shift 2 ;;
    -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_side_by_side.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
wastenet="$build/wastenet"
if [[ ! -x "$wastenet" ]]; then
  echo "bench_side_by_side.sh: $wastenet is missing: build first (tools/build.sh or cmake --build $build)" >&2
  exit 2
fi
out="${out:-runs/side_by_side_$(date +%Y%m%d_%H%M%S)}"
mkdir -p "$out"
export OMP_WAIT_POLICY=passive TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
skipped() { [[ "$skip" == *",$1,"* ]]; }

# --- the machine
model=$(lscpu | sed -n 's/^Model name: *//p')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
        grep -xE 'fma|avx2|avx512f|avx512_bf16|avx512_fp16|avx512_vnni|avx_vnni|amx_bf16|amx_tile' |
        tr '\n' ' ' || true)
echo "# Side by side: $model, $(nproc) CPUs, vector flags: ${flags:-none}"
echo "# wastenet commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), oneDNN" \
     "$(sed -n 's/^WN_DNNL_VERSION:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)," \
     "$(date -u +%Y-%m-%dT%H:%MZ); IRv2 ${size}x${size}, batch $batch, fine-tune-at $fine_tune_at," \
     "median of $steps steps after $warmup warm-up"

"$wastenet" bench-peak > "$out/peak.txt"
# the float32 row: 1-core rate per CPU-second, and all cores (per CPU-second x threads)
read -r peak_core peak_all < <(awk -F'|' '/float32 FMA, AVX2/ {print $4+0, $7+0}' "$out/peak.txt")
if grep -q "float32 FMA, AVX-512 | VFMADD231PS zmm | [0-9]" "$out/peak.txt"; then
  read -r peak_core peak_all < <(awk -F'|' '/float32 FMA, AVX-512/ {print $4+0, $7+0}' "$out/peak.txt")
fi
# the fastest bf16 row: AMX tiles where the CPU has them, else AVX-512 BF16
bf16_peak=$(awk -F'|' '/^\| bf16 / && $4 ~ /[0-9]/ && $7+0 > m {m = $7+0} END {if (m) print m}' "$out/peak.txt")
echo "# measured float32 FMA peak: ${peak_core} GFLOP/s per core, ${peak_all} GFLOP/s all cores;" \
     "bf16 (fastest of VDPBF16PS and AMX TDPBF16PS): ${bf16_peak:-not on this CPU}${bf16_peak:+ GFLOP/s all cores} (wastenet bench-peak)"
echo

gflop_step="" ref=""
print_header() {
  echo "| engine | precision | median s/step (min – max) | images/s | CPU s/step | peak RSS GiB | GFLOP/s (wall) | % of float32 peak, all cores | GFLOP per CPU-s | % of float32 peak per core | vs wastenet fp32 (wall) | load avg before |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
}
# One table row, printed as soon as its run ends (a long run can be stopped and still
# leave the rows before it): engine precision median min max cpu rss load.
add_row() {
  local engine=$1 precision=$2 med=$3 lo=$4 hi=$5 cpu=$6 rss=$7 load=$8
  [[ -z "$ref" && "$engine" == wastenet* && "$precision" == fp32 ]] && ref=$med
  awk -v e="$engine" -v p="$precision" -v m="$med" -v lo="$lo" -v hi="$hi" -v c="$cpu" \
      -v rss="$rss" -v load="$load" -v b="$batch" -v g="$gflop_step" -v pa="$peak_all" \
      -v pc="$peak_core" -v ref="$ref" 'BEGIN {
    gw = g / m; gc = (c + 0 > 0) ? g / c : 0;
    printf "| %s | %s | %.2f (%.2f – %.2f) | %.2f | %s | %s | %.1f | %.0f%% | %s | %s | %s | %s |\n",
      e, p, m, lo, hi, b / m, c, rss, gw, 100 * gw / pa,
      (gc > 0 ? sprintf("%.1f", gc) : "?"), (gc > 0 ? sprintf("%.0f%%", 100 * gc / pc) : "?"),
      (ref != "" ? sprintf("%.2fx", ref / m) : "—"), load }'
}

run_wastenet() { # precision
  local p=$1 tag="wastenet-$1" extra=()
  [[ "$p" == bf16 ]] && extra=(--precision bf16)
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%M" -o "$out/$tag.rss" "$wastenet" bench --backend cpu --model irv2 \
    --image-size "$size" --batch "$batch" --fine-tune-at "$fine_tune_at" --steps "$steps" \
    --warmup "$warmup" "${extra[@]}" > "$out/$tag.txt" 2>&1 || { echo "  $tag failed: see $out/$tag.txt" >&2; return; }
  local med lo hi cpu rss
  read -r med lo hi < <(sed -n 's/.*median step *\([0-9.]*\) s over .*(min \([0-9.]*\), max \([0-9.]*\)).*/\1 \2 \3/p' "$out/$tag.txt")
  cpu=$(sed -n 's/.*median step CPU *\([0-9.]*\) s.*/\1/p' "$out/$tag.txt")
  rss=$(awk '{printf "%.2f", $1 / 1048576}' "$out/$tag.rss")
  add_row "wastenet $(sed -n 's/^WN_DNNL_VERSION:INTERNAL=/(oneDNN /p' "$build/CMakeCache.txt"))" "$p" "$med" "$lo" "$hi" "${cpu:-?}" "$rss" "$load"
}

run_result_script() { # tag engine precision command...
  local tag=$1 engine=$2 precision=$3; shift 3
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%M" -o "$out/$tag.rss" "$@" > "$out/$tag.txt" 2>&1 || { echo "  $tag failed: see $out/$tag.txt" >&2; return; }
  local r; r=$(grep '^RESULT ' "$out/$tag.txt" | tail -1)
  [[ -n "$r" ]] || { echo "  $tag printed no RESULT line: see $out/$tag.txt" >&2; return; }
  local _ mode med lo hi cpu
  read -r _ mode med lo hi cpu _ <<< "$r"
  add_row "$engine" "$precision" "$med" "$lo" "$hi" "$cpu" "$(awk '{printf "%.2f", $1 / 1048576}' "$out/$tag.rss")" "$load"
}

# The step's work, from one step at batch 1 (it scales with the batch): the same model in
# every row, so one count serves all of them.
g1=$("$wastenet" bench --backend cpu --model irv2 --image-size "$size" --batch 1 \
     --fine-tune-at "$fine_tune_at" --steps 1 --warmup 0 2>/dev/null |
     sed -n 's/.*compute *\([0-9.]*\) GFLOP\/step.*/\1/p')
gflop_step=$(awk -v g="$g1" -v b="$batch" 'BEGIN {printf "%.1f", g * b}')

print_header

# --- wastenet
skipped wastenet-fp32 || run_wastenet fp32
if ! skipped wastenet-bf16; then
  if "$wastenet" bench --help 2>&1 | grep -q bf16; then
    run_wastenet bf16
  else
    echo "  (wastenet bench offers no --precision bf16 in this build: row left out)" >&2
  fi
fi
# --- TensorFlow / Keras
if ! skipped keras-fp32 || ! skipped keras-bf16; then
  if "$python" -c "import tensorflow, tf_keras" 2>/dev/null; then
    kv=$("$python" -c "import tensorflow as tf; print(tf.__version__)" 2>/dev/null)
    for policy in float32 mixed_bfloat16; do
      tag=keras-fp32 prec=fp32
      [[ $policy == mixed_bfloat16 ]] && tag=keras-bf16 prec="mixed_bfloat16"
      skipped "$tag" && continue
      run_result_script "$tag" "tf-keras (TF $kv)" "$prec" "$python" tools/bench_keras_step.py \
        --image-size "$size" --batch "$batch" --fine-tune-at "$fine_tune_at" --steps "$steps" \
        --warmup "$warmup" --policy "$policy"
    done
  else
    echo "  ($python has no tensorflow/tf_keras: Keras rows left out; tools/setup.sh --test makes it)" >&2
  fi
fi

# --- PyTorch (its own virtual environment, from PyPI)
if ! skipped torch-fp32 || ! skipped torch-bf16; then
  if [[ ! -x "$torch_venv/bin/python" ]] || ! "$torch_venv/bin/python" -c "import torch, timm" 2>/dev/null; then
    echo "  creating $torch_venv with torch and timm from PyPI (several GB, once)..." >&2
    python3 -m venv "$torch_venv"
    "$torch_venv/bin/pip" install -q torch timm > "$out/torch_venv_install.txt" 2>&1 ||
      { echo "bench_side_by_side.sh: pip install torch timm failed: see $out/torch_venv_install.txt" >&2; exit 1; }
  fi
  tv=$("$torch_venv/bin/python" -c "import torch; print(torch.__version__)")
  for mode in fp32 bf16-amp; do
    tag=torch-fp32 prec=fp32
    [[ $mode == bf16-amp ]] && tag=torch-bf16 prec="autocast(bfloat16)"
    skipped "$tag" && continue
    run_result_script "$tag" "PyTorch $tv (timm, channels-last)" "$prec" "$torch_venv/bin/python" \
      tools/bench_torch.py --device cpu --modes "$mode" --image-size "$size" --batch "$batch" \
      --fine-tune-at "$fine_tune_at" --steps "$steps" --warmup "$warmup"
  done
fi

echo
echo "Work per step: ${gflop_step} GFLOP (wastenet's count for the model; the same model in every row)."
echo "GFLOP per CPU-s: the work divided by the process's CPU time per step, i.e. the rate one"
echo "core delivers while it runs; compared with bench-peak's per-core float32 FMA rate"
echo "(${peak_core} GFLOP/s). 'vs wastenet fp32' > 1 means faster than wastenet float32 (wall)."
echo "Outputs: $out"
