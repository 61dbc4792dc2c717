"""Writes a smaller copy of a photo pack (from build_pack.py) for a device call whose working
tree is capped at 64 MiB: it keeps an evenly spaced subset of the photos (every source keeps
its share; no bias to small, smooth files) until the stored bytes fit the budget. The index
keeps every kept photo's record (repo, commit, path, sha256, licence) and names the pack it
came from.

  python models/scripts/image_data/subset_pack.py .data/images.zip .data/images-gpu.zip --budget-mib 38
"""

import argparse
import hashlib
import json
import zipfile
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pack", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--budget-mib", type=float, required=True)
    args = parser.parse_args()
    with zipfile.ZipFile(args.pack) as pack:
        index = json.loads(pack.read("index.json"))
        entries = index["images"]
        sizes = [pack.getinfo(e["file"]).file_size for e in entries]
        budget = args.budget_mib * 2**20
        total = sum(sizes)
        # The largest evenly spaced subset that fits: keep photo i when floor(i·f) advances.
        fraction = min(1.0, budget / total)
        while True:
            kept = [i for i in range(len(entries)) if int((i + 1) * fraction) > int(i * fraction)]
            if sum(sizes[i] for i in kept) <= budget:
                break
            fraction *= 0.99
        with zipfile.ZipFile(args.out, "w", zipfile.ZIP_STORED) as out:
            for i in kept:
                out.writestr(entries[i]["file"], pack.read(entries[i]["file"]))
            out.writestr("index.json", json.dumps({
                **index,
                "images": [entries[i] for i in kept],
                "subset_of": {"pack": args.pack.name, "sha256": hashlib.sha256(args.pack.read_bytes()).hexdigest(),
                              "images": len(entries)},
            }, indent=1))
    stored = sum(sizes[i] for i in kept) / 2**20
    print(f"{len(kept)} of {len(entries)} photos, {stored:.1f} MiB -> {args.out}")


if __name__ == "__main__":
    main()
