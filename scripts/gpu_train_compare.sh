#!/usr/bin/env bash
# Issue 18's side-by-side on one GPU: lyriscope train vs NVlabs' train.py at 256², NVlabs'
# 'auto' configuration (batch 16, channel_base 16384, mapping 2), no augmentation, the
# same 200-image zip; then `lyriscope bench` training rows at the same sizes. On the device
# machine, from the repo root, after scripts/gpu_carry.sh here and with an NVlabs
# stylegan2-ada-pytorch checkout in .nvlabs/ (never committed: its licence is not ours),
# made here with
#   mkdir -p .nvlabs && echo /.nvlabs/ >> .git/info/exclude
#   git --git-dir=PATH/TO/stylegan2-ada-pytorch.git archive HEAD | tar -x -C .nvlabs
# (its train.py also imports click and psutil: wheels for them belong in .whl/), then
#   run(command="STEPS=ours bash scripts/gpu_train_compare.sh", carry=[".whl", ".nvlabs"])
# STEPS: ours, nvlabs, bench (one or two per 10-minute call). KIMG (default 20) per run.
# Results in $OUT (default out/gpu): each run's log, stats.jsonl and a summary line.
set -uo pipefail
OUT=${OUT:-out/gpu}
STEPS=${STEPS:-"ours nvlabs bench"}
KIMG=${KIMG:-20}
mkdir -p "$OUT"
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.build/torch_extensions}
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ls .whl/*.whl >/dev/null 2>&1 && [ ! -d /tmp/site/lyriscope ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
if [ ! -d /tmp/site/lyriscope ]; then
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --target /tmp/site . >"$OUT/install.txt" 2>&1 || { cat "$OUT/install.txt"; exit 1; }
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
git rev-parse --short HEAD 2>/dev/null | tee "$OUT/commit.txt"
ZIP=$OUT/shapes256.zip
[ -f "$ZIP" ] || python3 -c "
import sys; sys.path.insert(0, 'tests/trainers')
from pathlib import Path
from dataset_zips import shapes_zip
shapes_zip(Path('$ZIP'), count=200, res=256)"

status=0
for step in $STEPS; do
  case $step in
    ours)
      rm -rf "$OUT/ly"
      python3 -m lyriscope train sets/demo --line 1 --data "$ZIP" --cfg auto --aug none \
        --metrics none --kimg "$KIMG" --tick-kimg 4 --snap 1000 --outdir "$OUT/ly" \
        --output "$OUT/ly/line-01.safetensors" >"$OUT/ours.txt" 2>&1 || status=1
      # Steady ticks: every row after the first (start-up is in the first row only).
      python3 -c "
import json
rows = [json.loads(l) for l in open('$OUT/ly/line-01/stats.jsonl')]
steady = [r for r in rows[1:] if r.get('sec_per_kimg')]
print('lyriscope: start-up %.1f s; steady %.2f s/kimg (mean of %d ticks); peak %.0f MiB' % (
    rows[0].get('startup_s', float('nan')),
    sum(r['sec_per_kimg'] for r in steady) / max(len(steady), 1), len(steady),
    max((r['peak_memory_mb'] for r in steady), default=float('nan'))))
" | tee "$OUT/ours-summary.txt";;
    nvlabs)
      [ -f .nvlabs/train.py ] || { echo "no NVlabs checkout in .nvlabs/"; status=2; continue; }
      rm -rf "$OUT/nv"
      (cd .nvlabs && python3 train.py --outdir "$OLDPWD/$OUT/nv" --data "$OLDPWD/$ZIP" \
        --gpus 1 --cfg auto --aug noaug --metrics none --kimg "$KIMG" --snap 1000 --seed 0) \
        >"$OUT/nvlabs.txt" 2>&1 || status=1
      grep -i "falling back\|error" "$OUT/nvlabs.txt" | head -5  # its ops must have built
      grep "^tick" "$OUT/nvlabs.txt" | tee "$OUT/nvlabs-ticks.txt";;
    bench)
      python3 -m lyriscope bench --size 256 --device cuda --channel-base 16384 \
        --channel-max 512 --mapping-layers 2 --train-batch 16 --train-steps 32 \
        --json "$OUT/bench-train-256.json" >"$OUT/bench-train-256.txt" 2>&1 || status=1
      grep -A9 "^training" "$OUT/bench-train-256.txt";;
    *) echo "unknown step $step (ours, nvlabs, bench)"; status=2;;
  esac
done
exit $status
