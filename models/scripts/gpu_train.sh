#!/usr/bin/env bash
# One call on a lent GPU machine (the device tool): trains the variable-rate MLIC codec and the
# WaLLoC-16x image codec side by side for MINUTES each, from the photo pack, and leaves their
# checkpoints (each file under 16 MB) in $OUT. Validation and export run afterwards on CPU:
#
#   train_mlic_vr.py --data PACK --out DIR/mlic --export-only
#   train_walloc.py --data PACK --width 160 --blocks 8 --out DIR/walloc --export-only
#
# Needs in the working tree: .data/images.zip (models/scripts/image_data/build_pack.py) and, since
# the machine has no PyWavelets, its cp312 wheel in .whl/ (see models/scripts/README.md).
set -u
out=${OUT:-/tmp/gpu-train}
minutes=${MINUTES:-8}
mkdir -p "$out/mlic" "$out/walloc"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
nvidia-smi -L
export PYTHONUNBUFFERED=1
python3 models/scripts/walloc/train_walloc.py --data .data/images.zip --device cuda --minutes "$minutes" \
  --latent-dim 12 --levels 3 --bits 8 --width 160 --blocks 8 --batch 32 --crop 256 --lr 1e-3 \
  --out "$out/walloc" > "$out/walloc.log" 2>&1 &
python3 models/scripts/mlic/train_mlic_vr.py --data .data/images.zip --device cuda --minutes "$minutes" \
  --out "$out/mlic" 2>&1 | tee "$out/mlic.log"
wait
tail -5 "$out/walloc.log"
ls -la "$out" "$out/mlic" "$out/walloc"
