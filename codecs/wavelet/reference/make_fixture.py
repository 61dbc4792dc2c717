"""PyWavelets reference coefficients for terse-wavelet's tests.

    python codecs/wavelet/reference/make_fixture.py > codecs/wavelet/tests/fixtures/pywt.json

Uses pywt (PyWavelets 1.8) with mode="periodization" and packet nodes in natural order.
"""

import json
import sys

import numpy as np
import pywt

MODE = "periodization"


def main():
    rng = np.random.default_rng(7)
    image = rng.normal(size=(3, 16, 24)).astype(np.float32)
    signal = rng.normal(size=(2, 64)).astype(np.float32)
    cases = {"image": image.tolist(), "signal": signal.tolist()}
    a, d = pywt.dwt(signal[0].astype(np.float64), "bior4.4", mode=MODE)
    cases["dwt"] = {"a": a.tolist(), "d": d.tolist()}
    for levels in (1, 2, 3):
        bands = []
        for c in range(3):
            wp = pywt.WaveletPacket2D(image[c].astype(np.float64), "bior4.4", mode=MODE, maxlevel=levels)
            bands += [node.data.tolist() for node in wp.get_level(levels, order="natural")]
        cases[f"wpt2d_{levels}"] = bands
    for levels in (1, 3, 5):
        bands = []
        for c in range(2):
            wp = pywt.WaveletPacket(signal[c].astype(np.float64), "bior4.4", mode=MODE, maxlevel=levels)
            bands += [node.data.tolist() for node in wp.get_level(levels, order="natural")]
        cases[f"wpt1d_{levels}"] = bands
    json.dump({"pywt": pywt.__version__, **cases}, sys.stdout)


if __name__ == "__main__":
    main()
