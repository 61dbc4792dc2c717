"""Encode an image, decode it back to PNG, print what it cost.

    python examples/roundtrip_image.py 127.0.0.1:50051 photo.png out.png
"""

import sys

from terse_client import Client

address, source, target = sys.argv[1:4]
with Client(address) as client:
    result = client.image.encode(source)
    png = client.image.decode(result.bitstream, format="png").image
    with open(target, "wb") as file:
        file.write(png)
    rd = result.rate_distortion
    print(
        f"{result.width}x{result.height}: {rd.original_bytes} -> {rd.compressed_bytes} bytes, "
        f"{rd.bits_per_pixel:.3f} bpp, PSNR {rd.psnr_db:.2f} dB"
    )
