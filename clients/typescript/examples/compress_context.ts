/**
 * Compress the prompt on stdin to half its tokens with LLMLingua-2.
 *
 *     echo "a long prompt ..." | node dist/examples/compress_context.js 127.0.0.1:50051
 */

import { TerseClient } from "../src/index";

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const client = new TerseClient(process.argv[2] ?? "127.0.0.1:50051");
  try {
    const response = await client.context.compressPrompt(Buffer.concat(chunks).toString("utf8"), { rate: 0.5 });
    console.log(response.compressedPrompt);
    console.error(`${response.originTokens} -> ${response.compressedTokens} tokens`);
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
