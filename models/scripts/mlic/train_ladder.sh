#!/usr/bin/env bash
# Trains and packages the shipped MLIC-style rate points and the ablation models, reproducibly
# (CPU: about 80 minutes on 2 cores; a GPU is not needed at this size). Steps whose output
# already exists are skipped, so an interrupted run resumes (train_mlic.py --resume continues a
# step itself).
#
#   models/scripts/mlic/train_ladder.sh [WORK_DIR]      (default /tmp/mlic)
#
# - mlic-q3 (lambda 0.013): trained from scratch, 5000 steps of 8 x 192^2 crops;
# - mlic-q1, q2, q4 (lambda 0.0035, 0.0067, 0.025): fine-tuned from q3, 1500 steps each;
# - models/ablation/mlic-q3-hyper, -channel and -full: q3 fine-tuned 1000 more steps with the
#   hyperprior-only, channel-context-only and full entropy models (the eval bench's ablation).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
work=${1:-/tmp/mlic}
python=${PYTHON:-.venv-train/bin/python}
train=models/scripts/mlic/train_mlic.py
package=models/scripts/mlic/package.py

run() {  # run NAME ARGS...: train into $work/NAME unless it is done
  local name=$1; shift
  if [ -f "$work/$name/synthesis.onnx" ]; then
    echo "[ladder] $name is trained"
  else
    echo "[ladder] training $name: $*"
    "$python" "$train" "$@" --out "$work/$name" --resume
  fi
}

run q3 --lmbda 0.013 --steps 5000 --crop 192 --fixture codecs/mlic/tests/fixtures/mlic-q3.json
for point in "q1 0.0035" "q2 0.0067" "q4 0.025"; do
  set -- $point
  run "$1" --lmbda "$2" --steps 1500 --crop 192 --lr 5e-4 --init "$work/q3/checkpoint.pt"
done
# The ablation: each entropy model fine-tuned the same 1000 steps from q3, full context included,
# so the comparison is not confounded by training length.
for context in hyper channel full; do
  run "q3-$context" --lmbda 0.013 --context "$context" --steps 1000 --crop 192 --lr 5e-4 \
    --init "$work/q3/checkpoint.pt"
done

for q in q1 q2 q3 q4; do
  "$python" "$package" "$work/$q" "mlic-$q"
done
for context in hyper channel full; do
  TERSE_MODEL_REPOSITORY=models/ablation "$python" "$package" "$work/q3-$context" "mlic-q3-$context"
done
