#!/usr/bin/env bash
# Every check that needs a GPU, in one call of at most 8 minutes on the device machine:
#   bash scripts/gpu_carry.sh                         # here, once: wheels and GL loaders
#   run(command="bash scripts/gpu_check.sh", carry=[".whl", ".gl"], timeout_s=480)
# Steps: build the fused CUDA ops, `pytest -m gpu`, `lyriscope bench` at 1024² (batch 1,
# with the per-frame profile) and at 512² (batch 8), a 20 s offline render at 1024².
# STEPS picks a subset (STEPS="build tests"); each step has its own time limit, cut to
# what is left of BUDGET_S, so one hang cannot eat the call. At most 6 files go to $OUT:
# check.log (everything), summary.txt, pytest.txt, bench-1024.json, profile-1024.json,
# bench-512.json.
#
# The tree's lyriscope/ holds only the core (pyproject maps engine/, trainers/, ... into
# lyriscope.* at install), so nothing runs from the repo root, where `python -m` would
# import that folder: the tree is installed into $SITE and every command runs from a
# scratch folder.
#
# DEVICE=cpu runs the same script here with tiny sizes (the install, imports and test
# collection are what it checks):
#   DEVICE=cpu PYTHON=.venv/bin/python OUT=/tmp/gpu-dry bash scripts/gpu_check.sh
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY");; esac  # the steps cd away
OUT=${OUT:-$REPO/out/gpu}
SITE=${SITE:-/tmp/site}
BUDGET_S=${BUDGET_S:-440}  # the whole script; the device call's timeout_s leaves a margin
STEPS=${STEPS:-"build tests bench-1024 render bench-512"}
DEADLINE=$(($(date +%s) + BUDGET_S))
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/lyriscope-check.XXXXXX)  # scratch: the source copy, render set, MP4
trap 'rm -rf "$WORK"' EXIT
LOG=$OUT/check.log
SUMMARY=$OUT/summary.txt
: >"$LOG"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TQDM_DISABLE=1  # no progress bars in the log
# Built kernels live in the (ignored) tree copy, so a second call on a warm machine reuses them.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$REPO/.build/torch_extensions}

if [ "$DEVICE" = cpu ]; then  # tiny sizes: seconds per step on a 2-core machine
  NET=(--channel-base 512 --channel-max 32 --mapping-layers 2)
  BENCH_BIG=(--size 32 --frames 3 --warmup 1 --train-batch 2 --train-steps 1 --models 1)
  BENCH_SMALL=(--size 16 --batch 2 --frames 2 --warmup 1 --train-batch 2 --train-steps 1 --models 1)
  RENDER_SIZE=32 RENDER_S=2 RENDER_FPS=10
else
  NET=()
  BENCH_BIG=(--size 1024 --train-batch 4 --train-steps 5)
  BENCH_SMALL=(--size 512 --batch 8 --train-batch 8 --train-steps 5)
  RENDER_SIZE=1024 RENDER_S=20 RENDER_FPS=60
fi

# step NAME LIMIT_S LOGFILE COMMAND...: run from the scratch folder under at most LIMIT_S
# seconds (less when the budget is nearly spent), output to LOGFILE ("-": the log); the
# step's outcome and time go to summary.txt.
status=0
step() {
  local name=$1 limit=$2 into=$3
  shift 3
  local left=$((DEADLINE - $(date +%s) - 5))
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    echo "== $name: not run, the budget of ${BUDGET_S} s is spent" | tee -a "$SUMMARY"
    status=1
    return
  fi
  echo "== $name (at most ${limit} s): $*"
  local began rc what=ok
  began=$(date +%s)
  if [ "$into" = - ]; then
    (cd "$WORK" && timeout -k 10 "$limit" "$@")
  else
    (cd "$WORK" && timeout -k 10 "$limit" "$@" >"$into" 2>&1)
  fi
  rc=$?
  ((rc == 124 || rc == 137)) && what="timed out"
  ((rc != 0)) && [ "$what" = ok ] && what="failed (exit $rc)"
  ((rc != 0)) && status=1
  echo "== $name: $what in $(($(date +%s) - began)) s" | tee -a "$SUMMARY"
}

main() {
# --- set-up: GL loaders, carried wheels, the tree itself ----------------------------------
if [ "$DEVICE" != cpu ] && ls "$REPO"/.gl/*.deb >/dev/null 2>&1; then
  for f in "$REPO"/.gl/*.deb; do dpkg -x "$f" /; done  # EGL through the NVIDIA driver
  ldconfig
  egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  [ -f "$egl" ] && export __EGL_VENDOR_LIBRARY_FILENAMES=$egl
fi
# setuptools (>= 77 reads pyproject's license) only for the build, never on the tests' path.
tools=$WORK/build-tools
for wheel in "$REPO"/.whl/setuptools-*.whl; do
  [ -f "$wheel" ] && "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$tools" "$wheel"
done
if [ "$DEVICE" != cpu ] && ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then  # cp312 wheels: there only
  find "$REPO"/.whl -name '*.whl' ! -name 'setuptools-*' -print0 |
    xargs -0 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$SITE" || return 1
fi
# Our package, built from a copy (the build's own folders stay out of the tree); no
# dependencies: the machine's torch must stay.
mkdir -p "$WORK/src"
tar -C "$REPO" --exclude=./.git --exclude=./.whl --exclude=./.gl --exclude=./.build \
  --exclude=./.venv --exclude=./out -cf - . | tar -C "$WORK/src" -xf - || return 1
PYTHONPATH=$tools${PYTHONPATH:+:$PYTHONPATH} "$PY" -m pip install -q --no-index --no-deps \
  --no-build-isolation --no-compile --upgrade --target "$SITE" "$WORK/src" || return 1
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
cd "$WORK" || return 1
git -C "$REPO" rev-parse --short HEAD 2>/dev/null | sed 's/^/commit /'
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
# The packages must come from $SITE, not the tree: say where each one was imported from.
"$PY" - "$SITE" <<'EOF' || return 1
import sys
import torch
import lyriscope, lyriscope.dataset_tools, lyriscope.engine, lyriscope.trainers
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
for module in (lyriscope, lyriscope.engine, lyriscope.trainers, lyriscope.dataset_tools):
    print(f"{module.__name__} from {module.__file__}")
    if not module.__file__.startswith(sys.argv[1]):
        sys.exit(f"{module.__name__} is not the one installed in {sys.argv[1]}")
EOF

# --- steps -----------------------------------------------------------------------------
lyriscope=("$PY" -m lyriscope)
# pytest in its default (prepend) import mode puts each test folder on sys.path, never the
# repo root (there is no conftest.py there), so from $WORK the tests import $SITE's
# lyriscope and their helpers (setfiles, ...) alike; afterwards it checks that they did.
cat >"$WORK/run_pytest.py" <<'EOF'
import sys

import pytest

site, args = sys.argv[1], sys.argv[2:]
code = pytest.main(args)
modules = [m for name, m in sys.modules.items() if name.partition(".")[0] == "lyriscope"]
stray = [m.__name__ for m in modules if not (getattr(m, "__file__", None) or site).startswith(site)]
print(f"{len(modules)} lyriscope modules imported, all from {site}: {not stray}", *stray)
sys.exit(code or (3 if stray else 0))
EOF
pytest_args=(-c "$REPO/pyproject.toml" --rootdir "$REPO" -p no:cacheprovider
  -o addopts="-ra --strict-markers" --timeout 120)
for name in $STEPS; do
  case $name in
    build)  # the first build takes a minute or two; later steps load it from the cache
      if [ "$DEVICE" = cpu ]; then
        echo "== build: no CUDA on a cpu dry run" | tee -a "$SUMMARY"
        continue
      fi
      step build 200 - "$PY" -c "
import sys, warnings
from lyriscope.trainers.ops import bias_act, upfirdn2d
with warnings.catch_warnings(record=True) as seen:  # a failed build or self-check says why
    warnings.simplefilter('always')
    built = [op.fused_plugin() is not None for op in (bias_act, upfirdn2d)]
for w in seen:
    print(f'{w.category.__name__}: {w.message}')
sys.exit(0 if all(built) else 'a fused op did not build or failed its self-check')";;
    tests)  # the gpu tests; on a cpu dry run they skip, and the collection is what is checked
      step tests 150 "$OUT/pytest.txt" "$PY" "$WORK/run_pytest.py" "$SITE" "${pytest_args[@]}" \
        -m gpu "$REPO/tests"
      tail -15 "$OUT/pytest.txt";;
    bench-1024 | bench-512)
      if [ "$name" = bench-1024 ]; then size=1024 args=("${BENCH_BIG[@]}"); else size=512 args=("${BENCH_SMALL[@]}"); fi
      profile=()
      [ "$size" = 1024 ] && profile=(--profile "$OUT/profile-$size.json")
      step "$name" 120 - "${lyriscope[@]}" bench --device "$DEVICE" "${args[@]}" "${NET[@]}" \
        --json "$OUT/bench-$size.json" "${profile[@]}";;
    render)  # a two-line set of random models; the MP4 stays here, its figures go to the log
      set_dir=$WORK/render-set
      mkdir -p "$set_dir/models"
      for i in 1 2; do
        "${lyriscope[@]}" init-model --size "$RENDER_SIZE" "${NET[@]}" --seed "$i" \
          -o "$set_dir/models/line-0$i.safetensors" >/dev/null || status=1
      done
      "$PY" - "$REPO/tests" "$set_dir" "$RENDER_S" "$RENDER_SIZE" "$RENDER_FPS" <<'EOF' || status=1
import sys
from pathlib import Path
sys.path.append(sys.argv[1])
from setfiles import write_set  # the tests' own set writer
seconds, size, fps = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
lines = [{"text": f"line {i}", "model": f"models/line-0{i}.safetensors"} for i in (1, 2)]
write_set(Path(sys.argv[2]), lines=lines, line_s=seconds / 2, audio="tone",
          seconds=seconds + 1, output={"size": size, "fps": fps})
EOF
      step render 120 - "${lyriscope[@]}" render "$set_dir" --end "$RENDER_S" --fast \
        --device "$DEVICE" --no-progress -o "$WORK/render.mp4";;
    *) echo "unknown step $name (build, tests, bench-1024, render, bench-512)"; status=2;;
  esac
done
echo "== summary"
cat "$SUMMARY"
return $status
}

main 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
