"""Copies a trained MLIC-style codec (train_mlic.py output) into the model repository as two
models, so each stage runs as its own ONNX Runtime session:

  models/repository/<name>/<version>/           task "mlic-image": synthesis g_s (model.onnx) with the
                                                integer entropy model (entropy.json, entropy.bin),
                                                the z prior (prior.json) and training.json as assets
  models/repository/<name>-analysis/<version>/  task "mlic-analysis": g_a + h_a (model.onnx)

    python models/scripts/mlic/package.py /tmp/mlic/q3 mlic-q3
    python models/scripts/mlic/package.py DIR mlic        (a variable-rate model of train_mlic_vr.py)

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


def manifest(dst, name, version, task, description, source, inputs, outputs, assets, license="Apache-2.0"):
    lines = [
        "# Model manifest: read by the terse model runtime. sha256 is verified before the model is loaded.",
        f'name = "{name}"',
        f'version = "{version}"',
        f'task = "{task}"',
        f"description = {json.dumps(description)}",
        'file = "model.onnx"',
        f'sha256 = "{sha256(dst / "model.onnx")}"',
        f"license = {json.dumps(license)}",
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


def package_synthesis(src, name, version, m, description, source, license="Apache-2.0"):
    """models/repository/<name>/<version>: g_s as model.onnx, the entropy model, prior and
    training log as assets."""
    dst = REPOSITORY / name / version
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "synthesis.onnx", dst / "model.onnx")
    assets = ["entropy.json", "entropy.bin", "prior.json", "training.json"]
    for asset in assets:
        shutil.copyfile(src / asset, dst / asset)
    manifest(
        dst, name, version, "mlic-image", description, source,
        [("y_hat", f"[1, {m}, -1, -1]", None)], [("image", "[1, 3, -1, -1]", None)], assets, license,
    )


def package_variable_rate(src, name, version, training, entropy):
    """A train_mlic_vr.py model: one synthesis model serving every rate point; the analysis takes
    the rate point's gains as a second input."""
    m, z = entropy["latent_channels"], entropy["hyper_channels"]
    def command(run):
        args = run["args"]
        return (
            f"python models/scripts/mlic/train_mlic_vr.py --data PACK --device cuda --minutes {args['minutes']} "
            f"--batch {args['batch']} --crop {args['crop']} --lr {args['lr']} --n {args['n']} --m {args['m']} "
            f"--z {args['z']} --slices {args['slices']} --ep-hidden {' '.join(map(str, args['ep_hidden']))}"
            + (" --init" if args.get("init") else "") + " --out DIR"
        )

    runs = training.get("previous_stages", []) + [training]
    trained = "; then ".join(
        f"`{command(run)}` on {run['device']} ({run['steps']} steps, {run['seconds']:.0f} s"
        + (f", pack {Path(run['args']['data']).name}" if run["args"].get("data") else "") + ")"
        for run in runs
    )
    sources = "; ".join(f"{repo}@{commit} ({licence})" for repo, commit, licence in training["data"]["sources"])
    source = (
        f"Trained by terse with {trained}, then exported with --export-only on CPU; packaged by "
        f"models/scripts/mlic/package.py. Data: {training['data']['images']} photos packed by "
        f"models/scripts/image_data/build_pack.py from {sources} (images-gpu.zip: its smallest files, to fit "
        "the GPU call's 64 MiB cap); Kodak, McMaster and CBSD68 excluded. "
        "training.json holds the loss curves and per-rate validation."
    )
    license = ("Apache-2.0 for terse's code; these weights were trained on research/non-commercial data "
               "(ImageNet sample photos, BSDS500): research and non-commercial use")
    points = ", ".join(f"q{v['rate'] + 1}: {v['bpp_estimate']:.3f} bpp / {v['psnr']:.2f} dB"
                       for v in training["validation_mcmaster"])
    quality = f"Validation (McMaster, 18 photos, integer entropy path): {points}."
    rates = len(entropy["rates"])
    package_synthesis(
        src, name, version, m,
        f"Variable-rate MLIC-style learned image codec ({rates} rate points, served as {name}-q1 ... {name}-q{rates}, "
        f"gain units): synthesis g_s maps y_hat [1,{m},H/16,W/16] (after the rate point's inverse gains) to the "
        f"image; entropy.json/entropy.bin hold the integer hyper-synthesis, channel/checkerboard context and "
        f"entropy-parameter networks ({entropy['slices']} slices) and the per-rate gains, prior.json the factorized "
        f"prior of z. Pairs with {name}-analysis. {quality}",
        source, license,
    )
    dst = REPOSITORY / f"{name}-analysis" / version
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "analysis.onnx", dst / "model.onnx")
    manifest(
        dst, f"{name}-analysis", version, "mlic-analysis",
        f"Analysis of the variable-rate MLIC-style codec {name}: g_a, the rate point's gains, then h_a: image "
        f"[1,3,H,W] (H, W multiples of 64, values in [0,1]) and gain [1,{m},1,1] -> y' [1,{m},H/16,W/16] and "
        f"z [1,{z},H/64,W/64].",
        source,
        [("image", "[1, 3, -1, -1]", "[1, 1, 64, 64]"), ("gain", f"[1, {m}, 1, 1]", None)],
        [("y", f"[1, {m}, -1, -1]", None), ("z", f"[1, {z}, -1, -1]", None)], [], license,
    )
    print(f"packaged {name} and {name}-analysis into {REPOSITORY}")


def main():
    src, name = Path(sys.argv[1]), sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1"
    training = json.loads((src / "training.json").read_text())
    if "rates" in json.loads((src / "entropy.json").read_text()):
        package_variable_rate(src, name, version, training, json.loads((src / "entropy.json").read_text()))
        return
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

    package_synthesis(
        src, name, version, m,
        f"MLIC-style learned image codec, lambda {training['lmbda']} ({training['context']} context): synthesis g_s "
        f"maps y_hat [1,{m},H/16,W/16] to the image; entropy.json/entropy.bin hold the integer hyper-synthesis, "
        f"channel/checkerboard context and entropy-parameter networks ({entropy['slices']} slices), prior.json the "
        f"factorized prior of z. Pairs with {name}-analysis. {quality}",
        source,
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
