"""Builds the packed training set of terse's learned image codecs from public photo snapshots.

Given the folder the GitHub snapshots were extracted to (one sub-folder per repository, named
`owner+name`, as the `fetch` tool lays them out), this writes ONE zip that is small enough to travel
to a GPU machine with the working tree (default budget 50 MiB):

  pack.zip
    index.json        every image: file, source repo, commit, path, sha256 of the source bytes,
                      licence, original and stored size
    img/NNNNN.jpg     the photo downscaled by >= 1.25x (washes out the source's JPEG artefacts),
                      short side 256..320, re-encoded as 4:4:4 JPEG (quality --quality)

Sources (all public GitHub repositories; licences as their owners state them):
  - EliSchwartz/imagenet-sample-images: 1,000 ImageNet photos, one per class (ImageNet terms:
    research / non-commercial use);
  - BIDS/BSDS500 `BSDS500/data/images/{train,test}` (400 photos, research use). `val` is left
    out: it holds the 68 photos of CBSD68, an evaluation set.
Evaluation photos are never packed: Kodak (the 24 full-size PNGs of Zelex/images `kodak/`, and the
500x500 crops of cszn/FFDNet testsets/Kodak24), McMaster and CBSD68.
Any source image whose 16x16 grey thumbnail matches one of theirs is dropped as a duplicate.

  python models/scripts/image_data/build_pack.py SNAPSHOTS_DIR OUT.zip
"""

import argparse
import hashlib
import io
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SOURCES = [
    {
        "repo": "BIDS/BSDS500",
        "glob": "BSDS500/data/images/train/*.jpg",
        "licence": "BSDS500: research use (Berkeley Segmentation Data Set)",
    },
    {
        "repo": "BIDS/BSDS500",
        "glob": "BSDS500/data/images/test/*.jpg",
        "licence": "BSDS500: research use (Berkeley Segmentation Data Set)",
    },
    {
        "repo": "EliSchwartz/imagenet-sample-images",
        "glob": "*.JPEG",
        "licence": "ImageNet terms of access: research and non-commercial use only",
    },
]
EVAL_SETS = ["Zelex/images:kodak", "cszn/FFDNet:testsets/Kodak24", "cszn/FFDNet:testsets/McMaster", "cszn/FFDNet:testsets/CBSD68"]


def folder(snapshots, repo):
    return snapshots / repo.replace("/", "+")


def commit_of(repo):
    """The snapshot's commit, read from the fetch tool's mirror when it is there."""
    mirror = Path("/work/.mirror") / repo.replace("/", "+") / "repo"
    try:
        return subprocess.run(["git", "-C", str(mirror), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def thumbnail(img):
    """A 16x16 grey thumbnail, normalised: the duplicate key."""
    t = np.asarray(img.convert("L").resize((16, 16), Image.BILINEAR), dtype=np.float32)
    return (t - t.mean()) / (t.std() + 1e-6)


def eval_thumbnails(snapshots):
    thumbs = []
    for spec in EVAL_SETS:
        repo, sub = spec.split(":")
        for path in sorted((folder(snapshots, repo) / sub).glob("*")):
            if path.suffix.lower() in (".png", ".tif", ".jpg", ".bmp"):
                img = Image.open(path).convert("RGB")
                thumbs.append(thumbnail(img))
                thumbs.append(thumbnail(img.transpose(Image.ROTATE_90)))
    return np.stack(thumbs) if thumbs else np.zeros((0, 16, 16), np.float32)


def downscale(img, min_short=256, max_short=320, max_factor=0.8):
    """Downscale by at least 1/max_factor, to a short side in [min_short, max_short]; None when
    the photo is too small for that."""
    w, h = img.size
    short = min(w, h)
    factor = min(max_factor, max_short / short)
    if short * factor < min_short:
        factor = min_short / short
        if factor > max_factor:
            return None
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return img.resize(size, Image.LANCZOS)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshots", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--budget-mib", type=float, default=50.0)
    args = parser.parse_args()

    evals = eval_thumbnails(args.snapshots)
    print(f"{len(evals) // 2} evaluation photos guard against duplicates")
    entries, dropped = [], {"small": 0, "duplicate": 0, "grey": 0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    with zipfile.ZipFile(args.out, "w", zipfile.ZIP_STORED) as pack:
        for source in SOURCES:
            root = folder(args.snapshots, source["repo"])
            commit = commit_of(source["repo"])
            for path in sorted(root.glob(source["glob"])):
                raw = path.read_bytes()
                img = Image.open(io.BytesIO(raw))
                if img.mode != "RGB":
                    dropped["grey"] += 1
                    continue
                if len(evals) and np.min(np.mean((evals - thumbnail(img)) ** 2, axis=(1, 2))) < 0.02:
                    dropped["duplicate"] += 1
                    continue
                small = downscale(img)
                if small is None:
                    dropped["small"] += 1
                    continue
                buffer = io.BytesIO()
                small.save(buffer, "JPEG", quality=args.quality, subsampling=0)
                data = buffer.getvalue()
                if (total + len(data)) / 2**20 > args.budget_mib:
                    print("budget reached")
                    break
                name = f"img/{len(entries):05d}.jpg"
                pack.writestr(name, data)
                total += len(data)
                entries.append({
                    "file": name, "repo": source["repo"], "commit": commit,
                    "path": str(path.relative_to(root)), "sha256": hashlib.sha256(raw).hexdigest(),
                    "licence": source["licence"], "source_size": list(img.size), "size": list(small.size),
                })
        pack.writestr("index.json", json.dumps({
            "format": "terse-image-pack/1", "quality": args.quality, "dropped": dropped,
            "evaluation_sets_excluded": EVAL_SETS, "images": entries,
        }, indent=1))
    print(f"{len(entries)} photos, {total / 2**20:.1f} MiB; dropped {dropped}")


if __name__ == "__main__":
    main()
