/**
 * Encode an image, decode it back to PNG, print what it cost.
 *
 *     node dist/examples/roundtrip_image.js 127.0.0.1:50051 photo.png out.png
 */

import { writeFileSync } from "node:fs";

import { TerseClient } from "../src/index";

async function main(): Promise<void> {
  const [address, source, target] = process.argv.slice(2);
  const client = new TerseClient(address);
  try {
    const encoded = await client.image.encode(source);
    const decoded = await client.image.decode(encoded.bitstream, "png");
    writeFileSync(target, decoded.image);
    const rd = encoded.rateDistortion!;
    console.log(
      `${encoded.width}x${encoded.height}: ${rd.originalBytes} -> ${rd.compressedBytes} bytes, ` +
        `${rd.bitsPerPixel!.toFixed(3)} bpp, PSNR ${rd.psnrDb!.toFixed(2)} dB`,
    );
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
