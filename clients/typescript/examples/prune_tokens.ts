/**
 * Prune 576 visual tokens to 64 with DivPrune.
 *
 *     node dist/examples/prune_tokens.js 127.0.0.1:50051
 */

import { TerseClient } from "../src/index";

async function main(): Promise<void> {
  const client = new TerseClient(process.argv[2] ?? "127.0.0.1:50051");
  try {
    const [n, d] = [576, 64];
    const data = Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 0.37) + Math.cos(i * 0.011));
    const [image] = await client.vision.pruneTokens({ data, shape: [n, d] }, "divprune", 64);
    console.log(`kept ${image.tokens.shape[0]} of ${n} tokens: ${image.keptIndices.slice(0, 8).join(", ")}, ...`);
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
