"""Copies a trained MLIC-style codec (train_mlic.py output) into the model repository as two
models, so each stage runs as its own ONNX Runtime session:

  models/repository/<name>/<version>/           task "mlic-image": synthesis g_s (model.onnx) with the
                                                integer entropy model (entropy.json, entropy.bin),
                                                the z prior (prior.json) and training.json as assets
  models/repository/<name>-analysis/<version>/  task "mlic-analysis": g_a + h_a (model.onnx)

    python models/scripts/mlic/package.py /tmp/mlic/q3 mlic-q3

($TERSE_MODEL_REPOSITORY packages elsewhere, e.g. a scratch repository for experiments.)
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
REPOSITORY = Path(os.environ.get("TERSE_MODEL_REPOSITORY", ROOT / "models" / "repository"))


# Asset names the Rust host reads them by.
ASSET_NAMES = {
    "entropy.json": "entropy",
    "entropy.bin": "entropy-weights",
    "prior.json": "prior",
    "training.json": "training",
}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(dst, name, version, task, description, source, inputs, outputs, assets):
    lines = [
        "# Model manifest: read by the terse model runtime. sha256 is verified before the model is loaded.",
        f'name = "{name}"',
        f'version = "{version}"',
        f'task = "{task}"',
        f"description = {json.dumps(description)}",
        'file = "model.onnx"',
        f'sha256 = "{sha256(dst / "model.onnx")}"',
        'license = "Apache-2.0"',
        f"source = {json.dumps(source)}",
    ]
    for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
        for tensor_name, shape, multiple in tensors:
            lines += ["", f"[[{kind}]]", f'name = "{tensor_name}"', 'datatype = "fp32"', f"shape = {shape}"]
            if multiple:
                lines.append(f"multiple_of = {multiple}")
    for asset in assets:
        lines += ["", "[[assets]]", f'name = "{ASSET_NAMES[asset]}"', f'file = "{asset}"',
                  f'sha256 = "{sha256(dst / asset)}"']
    (dst / "manifest.toml").write_text("\n".join(lines) + "\n")


def main():
    src, name = Path(sys.argv[1]), sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1"
    training = json.loads((src / "training.json").read_text())
    entropy = json.loads((src / "entropy.json").read_text())
    m, z = entropy["latent_channels"], entropy["hyper_channels"]
    command = (
        f"python models/scripts/mlic/train_mlic.py --lmbda {training['lmbda']} --context {training['context']} "
        f"--steps {training['steps']} --batch {training['batch']} --crop {training['crop']} --lr {training['lr']}"
        + (f" --init <{Path(training['init']).parent.name} checkpoint.pt>" if training.get("init") else "")
        + " --out DIR"
    )
    source = (
        f"Trained by terse on CBSD68 + scikit-image photos (McMaster held out) with `{command}` "
        f"(models/scripts/walloc/requirements-train.txt, CPU); packaged by models/scripts/mlic/package.py. "
        "training.json holds the loss curve and validation figures."
    )
    quality = (
        f"Validation (McMaster, 18 photos, integer entropy path): {training['validation_psnr']:.2f} dB PSNR "
        f"at about {training['validation_bpp_estimate']:.3f} bpp."
    )

    dst = REPOSITORY / name / version
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "synthesis.onnx", dst / "model.onnx")
    assets = ["entropy.json", "entropy.bin", "prior.json", "training.json"]
    for asset in assets:
        shutil.copyfile(src / asset, dst / asset)
    manifest(
        dst, name, version, "mlic-image",
        f"MLIC-style learned image codec, lambda {training['lmbda']} ({training['context']} context): synthesis g_s "
        f"maps y_hat [1,{m},H/16,W/16] to the image; entropy.json/entropy.bin hold the integer hyper-synthesis, "
        f"channel/checkerboard context and entropy-parameter networks ({entropy['slices']} slices), prior.json the "
        f"factorized prior of z. Pairs with {name}-analysis. {quality}",
        source,
        [("y_hat", f"[1, {m}, -1, -1]", None)], [("image", "[1, 3, -1, -1]", None)], assets,
    )

    dst = REPOSITORY / f"{name}-analysis" / version
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "analysis.onnx", dst / "model.onnx")
    manifest(
        dst, f"{name}-analysis", version, "mlic-analysis",
        f"Analysis of the MLIC-style codec {name}: g_a then h_a, image [1,3,H,W] (H, W multiples of 64, values "
        f"in [0,1]) -> y [1,{m},H/16,W/16] and z [1,{z},H/64,W/64]. {quality}",
        source,
        [("image", "[1, 3, -1, -1]", "[1, 1, 64, 64]")],
        [("y", f"[1, {m}, -1, -1]", None), ("z", f"[1, {z}, -1, -1]", None)], [],
    )
    print(f"packaged {name} and {name}-analysis into {REPOSITORY}")


if __name__ == "__main__":
    main()
