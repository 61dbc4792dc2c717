"""Copies a trained WaLLoC model (train_walloc.py output) into the model repository with a
manifest: models/repository/<name>/<version>/{model.onnx, encoder.json, prior.json, training.json}.

    python models/scripts/walloc/package.py /tmp/walloc-rgb-16x walloc-rgb-16x
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    src, name = Path(sys.argv[1]), sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else "1"
    dst = ROOT / "models" / "repository" / name / version
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("model.onnx", "encoder.json", "prior.json", "training.json", "context.json"):
        if (src / f).exists():
            shutil.copyfile(src / f, dst / f)
    training = json.loads((src / "training.json").read_text())
    encoder = json.loads((src / "encoder.json").read_text())
    args = training["args"]
    latent, levels = encoder["latent_dim"], encoder["levels"]
    if encoder.get("signal") == "audio":
        audio(dst, name, version, training, encoder)
        return
    bands = 3 * 4 ** levels
    reduction = bands / latent
    description = (
        f"WaLLoC RGB decoder, {reduction:g}x dimension reduction: {levels}-level bior4.4 wavelet packet "
        f"({bands} bands at 1/{2 ** levels} resolution) -> linear encoder to {latent} channels of {encoder['bits']}-bit latents. "
        f"This ONNX graph maps normal-domain latents [N,{latent},h,w] to wavelet bands [N,{bands},h,w]; "
        f"encoder.json holds the linear encoder and the integer->normal table, prior.json the per-channel factorized prior. "
        f"Validation (McMaster, 18 photos): {training['validation_psnr_db']:.2f} dB PSNR at about {training['bpp_estimate']:.2f} bpp (latent entropy)."
    )
    command = (
        f"python models/scripts/walloc/train_walloc.py --latent-dim {latent} --levels {levels} --bits {encoder['bits']} "
        f"--scale {args['scale']} --width {args['width']} --blocks {args['blocks']} --steps {args['steps']} "
        f"--batch {args['batch']} --crop {args['crop']} --lr {args['lr']} --out DIR"
    )
    write_manifest(dst, name, version, "walloc-image", description, "CBSD68 + scikit-image photos (McMaster held out)",
                   command, training["seconds"], latent, bands, "[-1, {latent}, -1, -1]".format(latent=latent),
                   "[-1, {bands}, -1, -1]".format(bands=bands))


def audio(dst, name, version, training, encoder):
    args = training["args"]
    latent, levels = encoder["latent_dim"], encoder["levels"]
    bands = encoder["channels"] * 2 ** levels
    description = (
        f"WaLLoC stereo audio decoder, {bands / latent:.3g}x dimension reduction at {encoder['sample_rate']} Hz: {levels}-level bior4.4 "
        f"wavelet packet ({bands} bands at 1/{2 ** levels} of the rate) -> linear encoder to {latent} channels of {encoder['bits']}-bit latents. "
        f"This ONNX graph maps normal-domain latents [N,{latent},t] to wavelet bands [N,{bands},t]; encoder.json holds the linear encoder and "
        f"the integer->normal table, prior.json the per-channel factorized prior. Validation (2 held-out singularity-music tracks, "
        f"first {args['validation_seconds']:g} s): {training['validation_psnr_db']:.2f} dB PSNR (full scale), {training['validation_snr_db']:.2f} dB SNR "
        f"at about {training['kbps_estimate']:.1f} kbps (latent entropy)."
    )
    command = (
        f"python models/scripts/walloc/train_walloc_audio.py --latent-dim {latent} --levels {levels} --bits {encoder['bits']} "
        f"--scale {args['scale']} --width {args['width']} --blocks {args['blocks']} --steps {args['steps']} "
        f"--batch {args['batch']} --crop {args['crop']} --lr {args['lr']} --out DIR"
    )
    write_manifest(dst, name, version, "walloc-audio", description,
                   "Debian singularity-music (CC BY-SA; 'Through Space' and 'Awakening' held out)", command,
                   training["seconds"], latent, bands, f"[-1, {latent}, -1]", f"[-1, {bands}, -1]")


def write_manifest(dst, name, version, task, description, data, command, seconds, latent, bands, in_shape, out_shape):
    manifest = f'''# Model manifest: read by the terse model runtime. sha256 is verified before the model is loaded.
name = "{name}"
version = "{version}"
task = "{task}"
description = "{description}"
file = "model.onnx"
sha256 = "{sha256(dst / 'model.onnx')}"
license = "Apache-2.0"
source = "Trained by terse on {data} with `{command}` (models/scripts/walloc/requirements-train.txt, CPU, {seconds:.0f} s); packaged by models/scripts/walloc/package.py. training.json holds the loss curve and validation figures."

[[inputs]]
name = "normal_latent"
datatype = "fp32"
shape = {in_shape}

[[outputs]]
name = "bands"
datatype = "fp32"
shape = {out_shape}

[[assets]]
name = "encoder"
file = "encoder.json"
sha256 = "{sha256(dst / 'encoder.json')}"

[[assets]]
name = "prior"
file = "prior.json"
sha256 = "{sha256(dst / 'prior.json')}"

[[assets]]
name = "training"
file = "training.json"
sha256 = "{sha256(dst / 'training.json')}"
'''
    if (dst / "context.json").exists():
        manifest += f'''
[[assets]]
name = "context"
file = "context.json"
sha256 = "{sha256(dst / 'context.json')}"
'''
    (dst / "manifest.toml").write_text(manifest)
    print(f"packaged {dst}")


if __name__ == "__main__":
    main()
