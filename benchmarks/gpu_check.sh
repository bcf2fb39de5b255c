#!/bin/bash
# The GPU check, one script for a lent GPU machine (the `device` tool), under 8 minutes on an H200:
#   bash benchmarks/gpu_check.sh            # on the GPU machine: installs from the registries, then measures
#   bash benchmarks/gpu_check.sh --cpu      # a dry run of every part for a few steps on CPU (tested)
# 1. kit vs a hand-written loop and the loader rate (automatic workers), fp32 and bf16, for every experiment
#    (benchmarks/overhead.py; targets: kit/plain >= 0.97, loader >= 2x step);
# 2. one training run to its target: the attention captioner to test BLEU-4 >= 0.98 (bf16 on the GPU).
# Figures go to $OUT (default benchmarks/out/gpu_check): overhead.json, the captioner's test metrics, and
# summary.md with the date and the device.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-gpu}
OUT=${OUT:-benchmarks/out/gpu_check}
mkdir -p "$OUT"
make install > "$OUT/install.log" 2>&1
PY=.venv/bin/python
export WANDB_MODE=offline
if [ "$MODE" = "--cpu" ]; then
  OVERHEAD=(--quick --experiments ${GPU_CHECK_EXPERIMENTS:-seq2seq_image_caption})
  FIT=(--trainer.accelerator cpu --trainer.max_epochs 1 --trainer.limit_train_batches 2
       --trainer.limit_val_batches 1 --trainer.limit_test_batches 1
       --data.init_args.embedded_options '{"num_train": 64, "num_validation": 16, "num_test": 16}')
  DEVICE=cpu
else
  OVERHEAD=(--steps 60)
  FIT=(--trainer.accelerator gpu --trainer.devices 1 --trainer.precision bf16-mixed)
  DEVICE=$($PY -c "import torch; print(torch.cuda.get_device_name())")
fi
START=$(date +%s)
$PY benchmarks/overhead.py "${OVERHEAD[@]}" --out "$OUT/overhead" | tee "$OUT/overhead.log"
RUN="$OUT/attention_captioner"
rm -rf "$RUN"
$PY -m multimodal_kit fit -c experiments/attention_image_caption.yaml --run_dir "$RUN" \
  --trainer.enable_progress_bar false "${FIT[@]}" > "$OUT/fit.log" 2>&1
BEST=$(ls "$RUN"/checkpoints/epoch*.ckpt | head -1)
$PY -m multimodal_kit test --ckpt_path "$BEST" --results_path "$OUT/captioner_test.json" \
  --trainer.enable_progress_bar false "${FIT[@]:0:2}" > "$OUT/test.log" 2>&1
BLEU=$($PY -c "import json; print(round(json.load(open('$OUT/captioner_test.json'))['test/bleu4'], 3))")
{
  echo "GPU check, $(date +%F), device: $DEVICE, mode: $MODE, $(( $(date +%s) - START )) s"
  echo
  echo "Overhead (benchmarks/overhead.py; kit/plain target >= 0.97, loader >= 2x step):"
  grep '^{' "$OUT/overhead.log" | $PY -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(f\"- {r['experiment']} {r['precision']}: kit/plain {r['ratio']:.2f}, loader/step {r['loader_over_step']:.1f}\")"
  echo
  echo "Attention captioner, test BLEU-4 $BLEU (target >= 0.98 for the full GPU run)"
} | tee "$OUT/summary.md"
