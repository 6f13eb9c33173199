#!/usr/bin/env bash
# GPU throughput of `acgan train` against the reference script on the same GPU, then 10-epoch
# runs on a 60,000-image MNIST-format set. One prepared script, under 8 minutes on an H100/H200.
#
#   bench/gpu.sh            # on a CUDA machine
#   bench/gpu.sh cpu        # a quick rehearsal of the same script here (few steps; no GPU-only parts)
#
# The device machine has no internet and no ../shared: copy the reference script into
# bench/.shared/ (git-ignored) and carry it:  cp ../shared/reference/acgan_reference.py bench/.shared/
# With the tool library's device tool: run(command="bash bench/gpu.sh", carry=["bench/.shared"],
# timeout_s=540). Do not carry .venv: the device's own python3 runs `-m acgan_cli` from this tree
# (its torch is the device's, 2.11 on 2026-12-04, not this machine's). Where $OUT is set, the
# whole log is also written to $OUT/gpu.log. The script always exits 0: read the log.
# To compare with an earlier commit, carry its tree too (bench/.shared is git-ignored):
#   mkdir -p bench/.shared/baseline && git archive COMMIT acgan_cli | tar -x -C bench/.shared/baseline
#
# In order of what matters most if time runs out: the GPU tests (pytest -m gpu: CUDA graphs and more,
# skipped on machines without CUDA), an fp16 run resumed halfway against the same run
# uninterrupted (bench/fp16_resume.py: the loss scalers must match), the reference, the steady
# step against a carried baseline checkout (if any), 600-step throughput of eager bf16, captured
# bf16 and eager fp32, then 10 epochs of 60,000 images with the defaults (the step captured as
# one CUDA graph), where a run's time goes, step by step and kernel by kernel (bench/gpu_step.py:
# kernels.txt comes back in $OUT), evaluate and sample on the GPU and an ONNX export of the
# GPU-trained checkpoint (export runs on the CPU), --compile (inside the graph) from a cold and
# then a warm compile cache, and last --compile --no-cuda-graph (torch.compile's own graphs per
# module). Each run has its own time limit, and
# none starts past the whole script's budget (BUDGET seconds): a variant that fails, hangs or
# would not fit is reported and the script goes on, so the device call always ends with its log.
# A run stopped by its limit says so in its figure's place (`TIMED OUT after N s`; a failed one
# `FAILED (exit N)` and its last line), and a 10-epoch run stopped there is still reported from
# the windows it logged, marked partial (`partial: stopped at step N of M by its time limit`).
# Each limit leaves room for the 20 s between a stop request and KILL, so the script ends within
# BUDGET (give or take the seconds of its few untimed lines, such as removing its scratch folder).
#
# Settings, from the environment (a relative path is taken from the folder gpu.sh is run in):
#   OUT        a folder for gpu.log (the whole log), graph-tests.log and the sample grid
#   PYTHON     the interpreter that runs everything (python3)
#   REFERENCE  the reference script (bench/.shared/acgan_reference.py, else ../shared/reference/
#              acgan_reference.py beside the checkout)
#   BASELINE   a checkout whose acgan_cli is timed against this one's (bench/.shared/baseline)
#   BUDGET     seconds for the whole script (480 on a GPU, 300 for the `cpu` rehearsal)
#   STEPS      steps of the reference and of each throughput run (600 on a GPU, 20 with `cpu`)
set -uo pipefail
START_DIR=$PWD
from_start() { case $1 in /*) echo "$1" ;; *) echo "$START_DIR/$1" ;; esac; }  # a user's path, absolute
[ -n "${OUT:-}" ] && OUT=$(from_start "$OUT")
[ -n "${BASELINE:-}" ] && BASELINE=$(from_start "$BASELINE")
[ -n "${REFERENCE:-}" ] && REFERENCE=$(from_start "$REFERENCE")
case ${PYTHON:-} in */*) PYTHON=$(from_start "$PYTHON") ;; esac  # a path, not a command's name
cd "$(dirname "$0")/.."
# The log's tee is waited for at exit (finish, below): the shell does not wait for a process
# substitution, and the log's last lines would be lost when the device call ends first.
TEE=
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && exec > >(tee "$OUT/gpu.log") 2>&1 && TEE=$!; fi
DEVICE=${1:-cuda}
PY=$(command -v "${PYTHON:-python3}")
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute: the reference runs in its own folder
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ -z "${REFERENCE:-}" ]; then
  REFERENCE=$PWD/bench/.shared/acgan_reference.py
  [ -f "$REFERENCE" ] || REFERENCE=$(cd .. && pwd)/shared/reference/acgan_reference.py
fi
if [ "$DEVICE" = cpu ]; then STEPS=${STEPS:-20}; LOG=5; EPOCH_ARGS="--max-steps 40 --log-every 10"; LIMIT=600
else STEPS=${STEPS:-600}; LOG=50; EPOCH_ARGS="--epochs 10 --log-every 500"; LIMIT=150; fi
BUDGET=${BUDGET:-$([ "$DEVICE" = cpu ] && echo 300 || echo 480)}
# A stop request (SIGTERM) ends `acgan train` only after its step, and a compiling step lasts minutes:
# KILL follows GRACE s after. Every limit below leaves room for it within the budget.
GRACE=20
T="timeout -k $GRACE"
limit() {  # seconds the next run may take: its own limit ($1, else LIMIT) or what the budget leaves
  local cap=${1:-$LIMIT} left=$((BUDGET - SECONDS - GRACE))  # after a KILL's grace; at least 1:
  left=$((left < cap ? left : cap))  # `timeout 0` would mean no limit at all
  echo $((left < 1 ? 1 : left))
}
fits() {  # true when at least $1 seconds of the budget are left after the grace; else says what is skipped
  [ $((BUDGET - SECONDS - GRACE)) -ge "$1" ] && return 0
  echo "skipped: $2 (only $((BUDGET - SECONDS)) s of the ${BUDGET} s budget left)"
  return 1
}
WORK=$(mktemp -d)
# shellcheck disable=SC2317  # run by the EXIT trap
finish() {  # at exit: the scratch folder goes; the log's tee gets end of file and is waited for
  rm -rf "$WORK"
  [ -n "$TEE" ] || return 0
  exec >&- 2>&-  # tee's input closes once no process holds it: the shell's copies are the last
  local tenths=0  # at most 10 s, in case a stray child still holds it (tee logs on without us):
  # a plain `wait` would last as long as that child. Bash reaps tee as it ends, ending the loop.
  while kill -0 "$TEE" 2>/dev/null && [ "$tenths" -lt 100 ]; do sleep 0.1; tenths=$((tenths + 1)); done
  kill -0 "$TEE" 2>/dev/null || wait "$TEE" 2>/dev/null
  return 0
}
trap finish EXIT
ACGAN="$PY -m acgan_cli"
ended() {  # NAME STATUS SECONDS: how a run that did not exit 0 ended, in one line (no newline)
  case $2 in
    124) printf '%s' "$1: TIMED OUT after $3 s (its time limit)" ;;
    137) printf '%s' "$1: KILLED after $3 s (by its time limit's KILL $GRACE s after the stop request, or for memory)" ;;
    *) printf '%s' "$1: FAILED (exit $2) after $3 s" ;;
  esac
}
tailed() {  # NAME LINES CAP LOG CMD...: CMD under its limit (CAP s at most), the last LINES lines
  # of its output (all of it kept in LOG), and, where it did not exit 0, how it ended
  local name=$1 lines=$2 cap=$3 log=$4 start=$SECONDS status
  shift 4
  $T "$(limit "$cap")" "$@" >"$log" 2>&1
  status=$?
  tail -"$lines" "$log"
  [ $status -eq 0 ] || echo "$(ended "$name" $status $((SECONDS - start)))"
  return $status
}
export ACGAN_CACHE_DIR="$WORK/cache"  # the evaluator is trained here, as on a bare machine

echo "== machine"
$PY - <<'PY'
import importlib.metadata as md, sys, torch
print("python", sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "missing"
print(" ".join(f"{name} {version(name)}" for name in
               ("typer", "click", "rich", "safetensors", "numpy", "onnx", "onnxruntime", "onnxscript", "triton")))
PY
# The command line itself, before anything long: every later stage needs it.
$T "$(limit 60)" $ACGAN train --dataset mnist-5k --device "$DEVICE" --dry-run >/dev/null \
  && echo "acgan train --dry-run: ok" || echo "acgan train --dry-run FAILED: the CLI stages below will fail too"

if [ "$DEVICE" != cpu ] && fits 30 "the GPU tests"; then
  echo "== GPU tests (pytest -m gpu: CUDA graphs, checkpoints from the device)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
  # The whole pytest output goes to $OUT/graph-tests.log (a failed capture names its op there).
  tailed "the GPU tests" 15 180 "${OUT:-$WORK}/graph-tests.log" "$PY" -m pytest -q -p no:cacheprovider -m gpu tests
fi

if [ "$DEVICE" != cpu ] && fits 40 "the fp16 resume check"; then
  echo "== fp16: a run resumed halfway against the same run uninterrupted (bench/fp16_resume.py)"
  tailed "the fp16 resume check" 8 90 "$WORK/fp16.log" "$PY" bench/fp16_resume.py --device "$DEVICE"
fi

echo "== data: 60,000 training images = the shipped 5,000 repeated 12 times (timing only)"
$PY bench/make_idx.py --copies 12 --out "$WORK/mnist-60k"

ref_line=
if [ ! -f "$REFERENCE" ]; then
  echo "== reference script: not at $REFERENCE (set REFERENCE, or copy it into bench/.shared/: see the header)"
elif fits 30 "the reference script"; then
  echo "== reference script ($REFERENCE), $STEPS batches of 64"
  mkdir -p "$WORK/ref"
  data=$PWD/acgan_cli/assets/mnist-5k.npz
  ref_line=$(cd "$WORK/ref" && $T "$(limit)" $PY "$REFERENCE" --data_npz "$data" --max_batches "$STEPS" | grep '^TIMING')
  echo "${ref_line:-the reference script gave no TIMING line}"
fi
ref=$(echo "$ref_line" | sed -nE 's/.*images\/s=([0-9.]+).*/\1/p')
ref=${ref:-0}

BASELINE=${BASELINE:-bench/.shared/baseline}
if [ -d "$BASELINE/acgan_cli" ] && fits 60 "the A/B against $BASELINE"; then
  # Another checkout's acgan_cli, carried along (see the header): its captured step against this
  # one's, in alternation so that both see the same machine, 3 rounds of $((STEPS / 2)) steps.
  echo "== steady step: this checkout (A) against $BASELINE (B), alternating"
  for round in 1 2 3; do
    fits 20 "A/B round $round" || break
    for side in A B; do
      tree=$([ $side = A ] && echo . || echo "$BASELINE")
      start=$SECONDS
      $T "$(limit)" $PY bench/steady_step.py --data "$WORK/mnist-60k" --device "$DEVICE" \
        --steps $((STEPS / 2)) --root "$tree" --workdir "$WORK/steady" >"$WORK/steady.log" 2>&1
      status=$?  # a run stopped by its limit prints nothing: say so in its figure's place
      if [ $status -eq 0 ]; then tail -1 "$WORK/steady.log"
      else last=$(tail -1 "$WORK/steady.log"); echo "$(ended $side $status $((SECONDS - start)))${last:+: $last}"; fi
    done
  done
fi

steady() {  # steady-state images/s from a run's metrics.jsonl: every window after the first (none: n/a)
  # (A line that a KILL cut short is left out.)
  $PY -c 'import json,sys; w=[l for l in open(sys.argv[1]) if l.endswith("}\n")][1:]; w=[json.loads(l) for l in w]; print(round(sum(x["images_per_s"]*x["seconds"] for x in w)/sum(x["seconds"] for x in w),1) if w else "n/a")' "$1"
}

report() {  # NAME RUN_DIR: steady images/s and the ratio to the reference (n/a without either)
  local ips
  ips=$(steady "$2/metrics.jsonl")
  echo "acgan $1: ${ips:-n/a} images/s; reference: $([ "$ref" = 0 ] && echo n/a || echo "$ref") images/s;" \
    "ratio $($PY -c "print(f'{round(float(\"$ips\") / $ref, 2)}x' if $ref and '$ips' not in ('', 'n/a') else 'n/a')")"
}

partial() {  # NAME RUN_DIR LOG: report() of a run its time limit stopped, from the windows it logged
  local stopped total logged
  stopped=$(sed -nE 's/^stopped at step ([0-9]+);.*/\1/p' "$3" | tail -1)  # SIGTERM: it saved there
  total=$(sed -nE 's/^train: .* steps=([0-9]+).*/\1/p' "$3" | head -1)
  logged=$($PY -c 'import json,sys; w=[l for l in open(sys.argv[1]) if l.endswith("}\n")]; print(json.loads(w[-1])["step"] if w else 0)' "$2/metrics.jsonl" 2>/dev/null)
  if [ -n "$stopped" ]; then
    report "$1 (partial: stopped at step $stopped of ${total:-?} by its time limit)" "$2"
  elif [ "${logged:-0}" -gt 0 ]; then  # KILLed: its last window, and maybe a few steps more
    report "$1 (partial: killed by its time limit, logged to step $logged of ${total:-?})" "$2"
  else
    echo "$1 (partial): nothing logged before its time limit"
  fi
}

# The first window holds the warm-up, the capture and any compiling; steady() leaves it out.
# One checkpoint, at the end: mnist-5k's epochs are 78 steps, and a checkpoint each (~0.1 s on
# the H200) had halved the captured run's steady figure (15,752 against 30,011 images/s).
for variant in "bf16 --no-cuda-graph" "bf16 --cuda-graph" "fp32 --no-cuda-graph"; do
  [ "$DEVICE" = cpu ] && [[ $variant == *" --cuda-graph"* ]] && continue
  fits 30 "$variant, $STEPS steps" || continue
  name=${variant// --/-}
  echo "== acgan train, $variant, $STEPS steps of 64"
  # shellcheck disable=SC2086  # the variant is a precision and an optional flag
  start=$SECONDS
  if $T "$(limit)" $ACGAN -q train --dataset mnist-5k --max-steps "$STEPS" --device "$DEVICE" --precision $variant \
    --log-every "$LOG" --sample-every 0 --ckpt-every 1000000 --seed 0 --out "$WORK/acgan-$name" >/dev/null; then
    report "$variant" "$WORK/acgan-$name"
  else
    status=$?
    echo "$(ended "acgan $variant" $status $((SECONDS - start)))"
    if { [ $status = 124 ] || [ $status = 137 ]; } && [ -s "$WORK/acgan-$name/metrics.jsonl" ]; then
      report "$variant (partial: stopped by its time limit)" "$WORK/acgan-$name"
    fi
  fi
done

# --compile twice: the first run fills torch's compile cache (this script's own, so it starts
# cold), the second starts from it, as a user's next run of the same model does. (The eager
# --no-cuda-graph run is left to the 600-step figures above: 10 epochs of it took 145 s.)
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor-cache"
epochs() {  # FLAGS: 10 epochs of 60,000 images with the defaults and FLAGS, timed and reported
  local flags=$1 name label start end status took
  name=epochs${flags// /} label=${flags:-no flags}
  if [ -d "$WORK/$name" ]; then name=$name-again label="$label again (compile cache warm)"; fi
  fits 40 "10 epochs $label" || return
  echo "== 10 epochs on 60,000 images ($EPOCH_ARGS), auto precision, $label"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  $T "$(limit)" $ACGAN -v train --dataset "$WORK/mnist-60k" $EPOCH_ARGS --device "$DEVICE" \
    --sample-every 0 --seed 0 $flags --out "$WORK/$name" >"$WORK/$name.log" 2>&1
  status=$?
  end=$(date +%s.%N)
  grep -E '^(train:|done:|error:|hint:)' "$WORK/$name.log"
  took=$($PY -c "print(round($end - $start, 1))")
  echo "whole command: $took s (the 'done:' line gives the training loop's time)"
  if [ "$status" -ne 0 ]; then  # why, then what it logged before its limit (a partial figure)
    echo "$(ended "10 epochs $label" "$status" "$took"); the end of its log:"
    tail -30 "$WORK/$name.log"
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
      partial "10 epochs $label" "$WORK/$name" "$WORK/$name.log"
    fi
  elif [ -s "$WORK/$name/metrics.jsonl" ]; then
    report "10 epochs $label" "$WORK/$name"
  fi
}
epochs ""
# Where the default run's step spends its time now: phases, eager and captured ms a step, and
# the kernels of 5 steps (kernels.txt goes to $OUT).
if fits 90 "the step's profile (bench/gpu_step.py)"; then
  # The CPU rehearses it on one copy of the digits, for one epoch and 10 steps a variant.
  if [ "$DEVICE" = cpu ]; then $PY bench/make_idx.py --copies 1 --out "$WORK/mnist-5k-idx" >/dev/null
    profile_args="--data $WORK/mnist-5k-idx --epochs 1 --steps 10"
  else profile_args="--data $WORK/mnist-60k --steps 300"; fi
  echo "== where the time goes (bench/gpu_step.py $profile_args)"
  # shellcheck disable=SC2086  # the arguments above
  tailed "bench/gpu_step.py" 60 120 "$WORK/gpu_step.log" "$PY" bench/gpu_step.py $profile_args --device "$DEVICE" \
    ${OUT:+--out "$OUT"}
fi
# The other commands on the GPU, from the first 10-epoch run's checkpoint; its sample grid comes
# back in $OUT. (The evaluator is trained first, on the repeated set: its figures are not quality.)
# Before the --compile runs: these are the only GPU runs of these commands, and what comes last
# is what the budget skips first.
run=$WORK/epochs
if [ -d "$run/checkpoints" ] && fits 60 "evaluate, sample and export"; then
  echo "== acgan evaluate, sample and export on $DEVICE ($(basename "$run"))"
  start=$SECONDS
  n=$([ "$DEVICE" = cpu ] && echo 1000 || echo 10000)
  tailed "evaluate" 40 "$LIMIT" "$WORK/evaluate.log" $ACGAN evaluate "$run" --device "$DEVICE" \
    --dataset "$WORK/mnist-60k" --n-samples "$n"
  echo "evaluate, evaluator training included: $((SECONDS - start)) s"
  fits 10 "sample" && tailed "sample" 3 "$LIMIT" "$WORK/sample.log" $ACGAN sample --grid --ckpt "$run" \
    --device "$DEVICE" --seed 0 --out "${OUT:-$WORK}/grid-$DEVICE.png"
  fits 20 "export" && tailed "export" 3 "$LIMIT" "$WORK/export.log" $ACGAN export "$run" --format onnx \
    --out "$WORK/g.onnx"
fi
[ "$DEVICE" = cpu ] || { epochs "--compile"; epochs "--compile"; }  # on the CPU: as --compile --no-cuda-graph
epochs "--compile --no-cuda-graph"  # last: the slowest, and measured before (102.5 s on the H200)
echo "== finished in $SECONDS s"
exit 0
