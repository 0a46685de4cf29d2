#!/usr/bin/env bash
# Every check that needs a GPU, in one run on the device machine, from the repo root:
#   run(command="bash scripts/gpu_check.sh", carry=[".whl", ".gl"])  after scripts/gpu_carry.sh here.
# Builds the fused CUDA ops, runs the tests marked gpu, then `lyriscope bench` at 1024²
# (with the per-frame profile) and at 256² (the training comparison there). Results go to
# $OUT (default out/gpu). STEPS picks a subset, one per call where a call has 10 minutes:
# STEPS=tests, then STEPS=bench, then STEPS=train.
set -uo pipefail
OUT=${OUT:-out/gpu}
STEPS=${STEPS:-"tests bench train"}
mkdir -p "$OUT"
# Built kernels live in the (ignored) tree, so later calls on the same machine reuse them.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.build/torch_extensions}
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ls .gl/*.deb >/dev/null 2>&1; then  # the GL loaders (EGL through the NVIDIA driver)
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  if [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
fi
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
# Our package itself (no dependencies: the machine's torch must stay).
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
  --target /tmp/site . >"$OUT/install.txt" 2>&1 || { cat "$OUT/install.txt"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
git rev-parse --short HEAD 2>/dev/null | tee "$OUT/commit.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"

status=0
for step in $STEPS; do
  case $step in
    tests)
      # The fused kernels build on first use (a minute or two); the tests fail if they cannot.
      # Modules whose imports the machine lacks (audio devices, ...) must not stop the rest.
      python3 -m pytest -q -m gpu -p no:cacheprovider -o addopts="" --timeout 900 \
        --continue-on-collection-errors tests \
        >"$OUT/pytest-gpu.txt" 2>&1 || status=1
      tail -25 "$OUT/pytest-gpu.txt";;
    bench)
      python3 -m lyriscope bench --size 1024 --device cuda --train-batch 4 --train-steps 10 \
        --json "$OUT/bench-1024.json" --profile "$OUT/profile-1024.json" \
        >"$OUT/bench-1024.txt" 2>&1 || status=1
      cat "$OUT/bench-1024.txt" | tail -40;;
    train)
      python3 -m lyriscope bench --size 256 --device cuda --train-batch 16 --train-steps 10 \
        --json "$OUT/bench-256.json" \
        >"$OUT/bench-256.txt" 2>&1 || status=1
      grep -A4 -i "training" "$OUT/bench-256.txt";;
    *) echo "unknown step $step (tests, bench, train)"; status=2;;
  esac
done
exit $status
