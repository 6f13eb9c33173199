#!/usr/bin/env bash
# GPU throughput of `acgan train` against the reference script on the same GPU, then a
# 10-epoch run on a 60,000-image MNIST-format set. One prepared script, under 8 minutes.
#
#   bench/gpu.sh            # on a CUDA machine
#   bench/gpu.sh cpu        # a quick rehearsal of the same script here (few steps)
#
# The device machine has no internet and no ../shared: copy the reference script into
# bench/.shared/ (git-ignored) and carry it:  cp ../shared/reference/acgan_reference.py bench/.shared/
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${1:-cuda}
PY=$(command -v "${PYTHON:-python3}")
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute: the reference runs in its own folder
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
REFERENCE=${REFERENCE:-bench/.shared/acgan_reference.py}
[ -f "$REFERENCE" ] || REFERENCE=../shared/reference/acgan_reference.py
if [ "$DEVICE" = cpu ]; then STEPS=${STEPS:-20}; LOG=5; EPOCH_ARGS="--max-steps 40"
else STEPS=${STEPS:-600}; LOG=50; EPOCH_ARGS="--epochs 10"; fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ACGAN="$PY -m acgan_cli"

echo "== machine"
$PY - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY

echo "== data: 60,000 training images = the shipped 5,000 repeated 12 times (timing only)"
$PY bench/make_idx.py --copies 12 --out "$WORK/mnist-60k"

echo "== reference script, $STEPS batches of 64"
mkdir -p "$WORK/ref"
root=$PWD
ref_line=$(cd "$WORK/ref" && $PY "$root/$REFERENCE" --data_npz "$root/acgan_cli/assets/mnist-5k.npz" \
  --max_batches "$STEPS" | grep '^TIMING')
echo "$ref_line"
ref=$(echo "$ref_line" | sed -E 's/.*images\/s=([0-9.]+).*/\1/')

steady() {  # steady-state images/s from a run's metrics.jsonl: every window after the first
  $PY -c 'import json,sys; w=[json.loads(l) for l in open(sys.argv[1])][1:]; print(round(sum(x["images_per_s"]*x["seconds"] for x in w)/sum(x["seconds"] for x in w),1))' "$1"
}

# --compile's first window holds the compilation; steady() leaves it out. A variant that fails
# (a compiler missing on the machine) is reported and the script goes on.
for variant in "fp32" "bf16" "bf16 --compile"; do
  name=${variant// --/-}
  echo "== acgan train, $variant, $STEPS steps of 64"
  # shellcheck disable=SC2086  # the variant is a precision and an optional flag
  if $ACGAN -q train --dataset mnist-5k --max-steps "$STEPS" --device "$DEVICE" --precision $variant \
    --log-every "$LOG" --sample-every 0 --seed 0 --out "$WORK/acgan-$name" >/dev/null; then
    ips=$(steady "$WORK/acgan-$name/metrics.jsonl")
    echo "acgan $variant: $ips images/s; reference: $ref images/s; ratio $($PY -c "print(round($ips/$ref, 2))")x"
  else
    echo "acgan $variant: FAILED (exit $?)"
  fi
done

for flag in "" "--compile"; do
  echo "== 10 epochs on 60,000 images ($EPOCH_ARGS), auto precision ${flag:-without --compile}"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  $ACGAN train --dataset "$WORK/mnist-60k" $EPOCH_ARGS --device "$DEVICE" --log-every 1000 --sample-every 0 \
    --seed 0 $flag --out "$WORK/epochs${flag}" 2>&1 | grep -E '^(train:|done:|error:)' || true
  end=$(date +%s.%N)
  echo "whole command: $($PY -c "print(round($end - $start, 1))") s (the 'done:' line gives the training loop's time)"
done
