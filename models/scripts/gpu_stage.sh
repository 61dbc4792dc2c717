#!/usr/bin/env bash
# Stages the checkout for a device call of models/scripts/gpu_train.sh: `stash` moves the
# tracked model folders and the fuzz corpus (about 107 MiB) out of the working tree, to
# ${STASH:-/tmp/terse-gpu-stash}, and checks that the pack, the MLIC starting point and the
# PyWavelets wheel are there; `restore` moves them back and checks that git sees no change.
# Before the first stash, build what the call carries (all ignored, about 52 MiB with the tree):
#   python3 models/scripts/image_data/subset_pack.py .data/images.zip .data/images-gpu.zip --budget-mib 38
#   python models/scripts/mlic/rebuild_checkpoint.py --model models/repository/mlic/2 \
#       --analysis models/repository/mlic-analysis/2 --out .data/mlic-init --half
# Between the two, call the device tool with
#   command: OUT=$OUT MINUTES=8 PACK=.data/images-gpu.zip MLIC_INIT=.data/mlic-init bash models/scripts/gpu_train.sh
#   carry:   .data/images-gpu.zip
#            .data/mlic-init
#            .whl/pywavelets-1.8.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#   timeout_s: 600
set -euo pipefail
cd "$(dirname "$0")/../.."
stash=${STASH:-/tmp/terse-gpu-stash}
folders=(models/repository models/ablation fuzz/corpus)
case "${1:-}" in
  stash)
    ls .data/images-gpu.zip .data/mlic-init/model-0.pt .data/mlic-init/run.json .whl/pywavelets-1.8.0-*.whl >/dev/null
    mkdir -p "$stash/models" "$stash/fuzz"
    for f in "${folders[@]}"; do mv "$f" "$stash/$f"; done
    echo "stashed in $stash; the tracked tree left: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1)"
    echo "carried: $(du -cb .data/images-gpu.zip .data/mlic-init .whl/pywavelets-1.8.0-*.whl | tail -1)"
    ;;
  restore)
    for f in "${folders[@]}"; do mv "$stash/$f" "$f"; done
    git diff --quiet -- "${folders[@]}" && echo "restored; git sees no change in ${folders[*]}"
    ;;
  *)
    echo "usage: models/scripts/gpu_stage.sh stash|restore" >&2
    exit 2
    ;;
esac
