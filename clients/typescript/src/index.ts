/**
 * TypeScript SDK for the terse compression services (Node, `@grpc/grpc-js`).
 *
 * The message types and service clients under `./gen` are generated from `proto/` by ts-proto
 * (`clients/generate`); {@link TerseClient} adds a Promise API with deadlines, bearer-token
 * auth, TLS, retries on `UNAVAILABLE` and automatic streaming of large uploads.
 *
 * ```ts
 * const client = new TerseClient("127.0.0.1:50051", { timeoutMs: 30_000 });
 * const encoded = await client.image.encode("photo.png");
 * const png = (await client.image.decode(encoded.bitstream)).image;
 * const short = (await client.context.compressPrompt(text, { rate: 0.5 })).compressedPrompt;
 * client.close();
 * ```
 */

import { readFile } from "node:fs/promises";
import {
  ChannelCredentials,
  type CallOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";

import * as audio from "./gen/compress/audio/v1/audio";
import * as common from "./gen/compress/common/v1/common";
import * as context from "./gen/compress/context/v1/context";
import * as image from "./gen/compress/image/v1/image";
import * as models from "./gen/compress/models/v1/models";
import * as splat from "./gen/compress/splat/v1/splat";
import * as tensor from "./gen/compress/tensor/v1/tensor";
import * as vision from "./gen/compress/vision/v1/vision";

export { audio, common, context, image, models, splat, tensor, vision };

/** A file path or the file's bytes. */
export type Source = string | Uint8Array;

/** Options of a {@link TerseClient}. */
export interface ClientOptions {
  /** Per-call deadline in milliseconds (default 60 000). */
  timeoutMs?: number;
  /** Retries after `UNAVAILABLE` (default 3), waiting `backoffMs`, doubling each time. */
  retries?: number;
  /** First back-off in milliseconds (default 100). */
  backoffMs?: number;
  /** Bearer token sent as `authorization: Bearer <token>` (default `$TERSE_TOKEN`). */
  token?: string;
  /** TLS with the system roots, or with `rootCerts` (PEM). */
  tls?: boolean;
  /** PEM of the CA that signed the server certificate (implies TLS). */
  rootCerts?: Buffer;
  /** Client key and certificate chain (PEM) for mutual TLS. */
  privateKey?: Buffer;
  /** Client certificate chain (PEM) for mutual TLS. */
  certChain?: Buffer;
  /** Largest message either way (default 256 MiB). */
  maxMessageBytes?: number;
  /** Uploads larger than this are streamed in chunks of this size (default 1 MiB). */
  chunkBytes?: number;
}

/** A float32 tensor: row-major values and their shape. */
export interface Float32Tensor {
  data: Float32Array;
  shape: number[];
}

/** One image's reduced visual tokens. */
export interface PrunedImage {
  /** Indices of the kept input tokens, ascending. */
  keptIndices: number[];
  /** Output tokens `[slots, D]`: kept tokens in index order, then merged tokens. */
  tokens: Float32Tensor;
  /** Per input token, its output slot or -1 when dropped. */
  slot: number[];
  /** Per output slot, how many input tokens it stands for. */
  sizes: number[];
  /** Tokens the reduced sequence counts as. */
  effectiveTokens: number;
  /** Per-token scores, when asked for. */
  scores: number[];
}

type Callback<T> = (error: ServiceError | null, response: T) => void;
type Unary<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => unknown;
type Upload<Req, Res> = (
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientWritableStream<Req>;

type Download<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>) => ClientReadableStream<Res>;

type Exchange<Req, Res> = (metadata: Metadata, options: Partial<CallOptions>) => ClientDuplexStream<Req, Res>;

/** A download read to its end: its first and last messages and the bytes its chunks carry. */
type Downloaded<Res> = { header: Res; last: Res; data: Buffer };

/** Converts a float32 tensor to its message (little-endian raw contents). */
export function toTensor(name: string, tensor: Float32Tensor): common.Tensor {
  const elements = tensor.shape.reduce((n, d) => n * d, 1);
  if (elements !== tensor.data.length) {
    throw new RangeError(`tensor ${name}: shape [${tensor.shape}] needs ${elements} values, got ${tensor.data.length}`);
  }
  const raw = Buffer.alloc(tensor.data.length * 4);
  tensor.data.forEach((value, i) => raw.writeFloatLE(value, i * 4));
  return { name, datatype: common.DataType.DATA_TYPE_FP32, shape: tensor.shape, rawContents: raw };
}

/** A `KvCache` message's values as float32 (fp16 and bf16 widened), shape `[layers, 2, kvHeads, tokens, headDim]`. */
export function kvFloat32(cache: tensor.KvCache): Float32Tensor {
  const shape = [cache.layers, 2, cache.kvHeads, cache.tokens, cache.headDim];
  const elements = shape.reduce((n, d) => n * d, 1);
  const raw = Buffer.from(cache.values);
  const width = cache.dtype === "fp32" ? 4 : 2;
  if (!["fp32", "fp16", "bf16"].includes(cache.dtype) || raw.length !== elements * width) {
    throw new RangeError(`KV cache: ${cache.dtype} values of shape [${shape}] do not match ${raw.length} bytes`);
  }
  const data = new Float32Array(elements);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < elements; i++) {
    if (cache.dtype === "fp32") {
      data[i] = raw.readFloatLE(i * 4);
    } else if (cache.dtype === "bf16") {
      scratch.setUint32(0, raw.readUInt16LE(i * 2) << 16);
      data[i] = scratch.getFloat32(0);
    } else {
      data[i] = halfToFloat(raw.readUInt16LE(i * 2));
    }
  }
  return { data, shape };
}

/** IEEE half-precision bits to a number. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Reads a float32 tensor message; other types and length mismatches are errors. */
export function fromTensor(tensor: common.Tensor): Float32Tensor {
  if (tensor.datatype !== common.DataType.DATA_TYPE_FP32) {
    throw new TypeError(`tensor ${tensor.name}: expected FP32, got ${common.dataTypeToJSON(tensor.datatype)}`);
  }
  const elements = tensor.shape.reduce((n, d) => n * d, 1);
  if (elements * 4 !== tensor.rawContents.length) {
    throw new RangeError(`tensor ${tensor.name}: shape [${tensor.shape}] needs ${elements * 4} bytes, got ${tensor.rawContents.length}`);
  }
  const data = new Float32Array(elements);
  const raw = Buffer.from(tensor.rawContents);
  for (let i = 0; i < elements; i++) data[i] = raw.readFloatLE(i * 4);
  return { data, shape: [...tensor.shape] };
}

async function read(source: Source): Promise<Buffer> {
  return typeof source === "string" ? readFile(source) : Buffer.from(source);
}

function enumValue<T extends Record<string, string | number>>(table: T, prefix: string, name: string): T[keyof T] {
  const key = `${prefix}${name.toUpperCase()}`;
  if (!(key in table) || key.endsWith("UNSPECIFIED")) {
    const known = Object.keys(table)
      .filter((k) => Number.isNaN(Number(k)) && !k.endsWith("UNSPECIFIED"))
      .map((k) => k.slice(prefix.length).toLowerCase());
    throw new RangeError(`unknown ${prefix.toLowerCase()}${name}: expected one of ${known.join(", ")}`);
  }
  return table[key as keyof T];
}

/** Performs calls: deadline, metadata, retries on UNAVAILABLE. */
class Invoker {
  constructor(
    private readonly metadata: () => Metadata,
    private readonly timeoutMs: number,
    private readonly retries: number,
    private readonly backoffMs: number,
  ) {}

  private options(): Partial<CallOptions> {
    return { deadline: new Date(Date.now() + this.timeoutMs) };
  }

  async call<Res>(once: (metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => void): Promise<Res> {
    let delay = this.backoffMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<Res>((resolve, reject) =>
          once(this.metadata(), this.options(), (error, response) => (error ? reject(error) : resolve(response))),
        );
      } catch (error) {
        if ((error as ServiceError).code !== status.UNAVAILABLE || attempt >= this.retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay *= 2;
      }
    }
  }

  unary<Req, Res>(method: Unary<Req, Res>, target: object, request: Req): Promise<Res> {
    return this.call<Res>((metadata, options, callback) => method.call(target, request, metadata, options, callback));
  }

  /**
   * A `DecodeStream` call read to its end: the first message (for its header fields) and the
   * file, each chunk's offset checked against the bytes before it. The output's size is not
   * bounded by the server's response-size limit.
   */
  download<Req, Res extends { chunk?: common.Chunk | undefined }>(
    method: Download<Req, Res>,
    target: object,
    request: Req,
  ): Promise<Downloaded<Res>> {
    return this.collect(() => method.call(target, request, this.metadata(), this.options()));
  }

  /** A bidirectional call: `parts` sent, then every answer read as by `download`. */
  exchange<Req, Res extends { chunk?: common.Chunk | undefined }>(
    method: Exchange<Req, Res>,
    target: object,
    parts: Req[],
  ): Promise<Downloaded<Res>> {
    return this.collect(() => {
      const stream = method.call(target, this.metadata(), this.options());
      for (const part of parts) stream.write(part);
      stream.end();
      return stream;
    });
  }

  private async collect<Res extends { chunk?: common.Chunk | undefined }>(
    start: () => ClientReadableStream<Res> | ClientDuplexStream<unknown, Res>,
  ): Promise<Downloaded<Res>> {
    let delay = this.backoffMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const pieces: Buffer[] = [];
        let size = 0;
        let header: Res | undefined;
        let last: Res | undefined;
        for await (const part of start() as AsyncIterable<Res>) {
          if (part.chunk) {
            if (part.chunk.offset !== size) {
              throw new Error(`DecodeStream chunk at offset ${part.chunk.offset} follows ${size} bytes`);
            }
            pieces.push(Buffer.from(part.chunk.data));
            size += part.chunk.data.length;
          }
          header ??= part;
          last = part;
        }
        if (!header || !last) throw new Error("DecodeStream ended without a message");
        return { header, last, data: Buffer.concat(pieces) };
      } catch (error) {
        if ((error as ServiceError).code !== status.UNAVAILABLE || attempt >= this.retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay *= 2;
      }
    }
  }

  upload<Req, Res>(method: Upload<Req, Res>, target: object, parts: Req[]): Promise<Res> {
    return this.call<Res>((metadata, options, callback) => {
      const stream = method.call(target, metadata, options, callback);
      for (const part of parts) stream.write(part);
      stream.end();
    });
  }
}

/** `data` in offset-stamped chunks of `size` bytes. */
function chunks(data: Buffer, size: number): common.Chunk[] {
  const out: common.Chunk[] = [];
  for (let offset = 0; offset < data.length; offset += size) {
    out.push({ data: data.subarray(offset, offset + size), offset });
  }
  return out;
}

/** Unary `Encode` for small inputs, else `EncodeStream` with the options first, then chunks. */
async function encodeUpload<Opts, Res>(
  chunkBytes: number,
  data: Buffer,
  options: Opts,
  unary: () => Promise<{ result?: Res | undefined }>,
  stream: (parts: { options?: Opts; chunk?: common.Chunk }[]) => Promise<{ result?: Res | undefined }>,
): Promise<Res> {
  let response: { result?: Res | undefined };
  if (data.length <= chunkBytes) {
    response = await unary();
  } else {
    response = await stream([{ options }, ...chunks(data, chunkBytes).map((chunk) => ({ chunk }))]);
  }
  if (!response.result) throw new Error("EncodeResponse without a result");
  return response.result;
}

/** A connection to a terse server with a Promise API per service. */
export class TerseClient {
  /** The generated clients, for calls the helpers do not cover. */
  readonly raw: {
    image: image.ImageServiceClient;
    audio: audio.AudioServiceClient;
    splat: splat.SplatServiceClient;
    tensor: tensor.TensorServiceClient;
    context: context.ContextServiceClient;
    vision: vision.VisionServiceClient;
    models: models.ModelRepositoryServiceClient;
  };
  private readonly invoker: Invoker;
  private readonly chunkBytes: number;

  constructor(address: string, options: ClientOptions = {}) {
    const target = address.replace(/^https?:\/\//, "");
    const secure = options.tls || options.rootCerts || options.privateKey || options.certChain;
    const credentials = secure
      ? ChannelCredentials.createSsl(options.rootCerts ?? null, options.privateKey ?? null, options.certChain ?? null)
      : ChannelCredentials.createInsecure();
    const max = options.maxMessageBytes ?? 256 * 1024 * 1024;
    const channelOptions = {
      "grpc.max_send_message_length": max,
      "grpc.max_receive_message_length": max,
      "grpc.keepalive_time_ms": 30_000,
      // Spread calls over every address the target resolves to (a headless Service's pods).
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    };
    this.raw = {
      image: new image.ImageServiceClient(target, credentials, channelOptions),
      audio: new audio.AudioServiceClient(target, credentials, channelOptions),
      splat: new splat.SplatServiceClient(target, credentials, channelOptions),
      tensor: new tensor.TensorServiceClient(target, credentials, channelOptions),
      context: new context.ContextServiceClient(target, credentials, channelOptions),
      vision: new vision.VisionServiceClient(target, credentials, channelOptions),
      models: new models.ModelRepositoryServiceClient(target, credentials, channelOptions),
    };
    const token = options.token ?? process.env.TERSE_TOKEN;
    const metadata = () => {
      const m = new Metadata();
      if (token) m.set("authorization", `Bearer ${token}`);
      return m;
    };
    this.invoker = new Invoker(metadata, options.timeoutMs ?? 60_000, options.retries ?? 3, options.backoffMs ?? 100);
    this.chunkBytes = Math.max(1, options.chunkBytes ?? 1024 * 1024);
  }

  /** Closes every channel. */
  close(): void {
    for (const client of Object.values(this.raw)) client.close();
  }

  /** `compress.image.v1`: learned image codecs. */
  readonly image = {
    /** The codecs the server hosts. */
    listCodecs: async (): Promise<image.CodecInfo[]> =>
      (await this.invoker.unary(this.raw.image.listCodecs, this.raw.image, {})).codecs,
    /**
     * Encodes a PNG/JPEG/WebP/BMP/TIFF file (path or bytes). `latentBits` (2..8, 0: the codec's
     * default) is the quality knob. Quality is measured unless `measureQuality: false`.
     */
    encode: async (source: Source, options: Partial<image.EncodeOptions> = {}): Promise<image.EncodeResult> => {
      const data = await read(source);
      const opts = image.EncodeOptions.fromPartial({ measureQuality: true, ...options });
      return encodeUpload(
        this.chunkBytes,
        data,
        opts,
        () => this.invoker.unary(this.raw.image.encode, this.raw.image, { image: data, options: opts }),
        (parts) => this.invoker.upload(this.raw.image.encodeStream, this.raw.image, parts),
      );
    },
    /** Decodes a bitstream to `png`, `webp` or `raw_rgb8` (through `DecodeStream`). */
    decode: (bitstream: Uint8Array, format = "png"): Promise<image.DecodeResponse> => {
      const code = enumValue(image.ImageFormat, "IMAGE_FORMAT_", format);
      return this.invoker
        .download(this.raw.image.decodeStream, this.raw.image, { bitstream: Buffer.from(bitstream), format: code })
        .then(({ header, data }) => ({
          image: data,
          format: code,
          width: header.width,
          height: header.height,
          channels: header.channels,
        }));
    },
  };

  /** `compress.audio.v1`: learned audio codecs. */
  readonly audio = {
    /** Encodes a WAV/FLAC/MP3/OGG file; other rates than the codec's need `resample: true`. */
    encode: async (source: Source, options: Partial<audio.EncodeOptions> = {}): Promise<audio.EncodeResult> => {
      const data = await read(source);
      const opts = audio.EncodeOptions.fromPartial({ measureQuality: true, ...options });
      return encodeUpload(
        this.chunkBytes,
        data,
        opts,
        () => this.invoker.unary(this.raw.audio.encode, this.raw.audio, { audio: data, options: opts }),
        (parts) => this.invoker.upload(this.raw.audio.encodeStream, this.raw.audio, parts),
      );
    },
    /** Decodes a bitstream to 16-bit WAV (`wav`), through `DecodeStream`. */
    decode: async (bitstream: Uint8Array): Promise<audio.DecodeResponse> => {
      const { header, data } = await this.invoker.download(this.raw.audio.decodeStream, this.raw.audio, {
        bitstream: Buffer.from(bitstream),
      });
      return { wav: data, sampleRate: header.sampleRate, channels: header.channels, frames: header.frames };
    },
  };

  /** `compress.splat.v1`: 3D Gaussian-splat scenes. */
  readonly splat = {
    /**
     * Encodes a 3DGS `.ply` or SPZ scene; `preset` is `high`, `balanced` (default), `small`
     * or `web`.
     */
    encode: async (
      source: Source,
      options: Partial<Omit<splat.EncodeOptions, "preset">> & { preset?: string } = {},
    ): Promise<splat.EncodeResult> => {
      const data = await read(source);
      const { preset, ...rest } = options;
      const opts = splat.EncodeOptions.fromPartial({
        ...rest,
        preset: enumValue(splat.Preset, "PRESET_", preset ?? "balanced"),
      });
      return encodeUpload(
        this.chunkBytes,
        data,
        opts,
        () => this.invoker.unary(this.raw.splat.encode, this.raw.splat, { scene: data, options: opts }),
        (parts) => this.invoker.upload(this.raw.splat.encodeStream, this.raw.splat, parts),
      );
    },
    /**
     * Decodes to `ply` or `spz` (`spzVersion` 0: the latest), through `DecodeStream`, so a scene
     * over the message-size limits still decodes.
     */
    decode: (bitstream: Uint8Array, format = "ply", spzVersion = 0): Promise<splat.DecodeResponse> => {
      const code = enumValue(splat.SplatFormat, "SPLAT_FORMAT_", format);
      return this.invoker
        .download(this.raw.splat.decodeStream, this.raw.splat, {
          bitstream: Buffer.from(bitstream),
          outputFormat: code,
          spzVersion,
        })
        .then(({ header, data }) => ({
          scene: data,
          format: code,
          splatCount: header.splatCount,
          shDegree: header.shDegree,
        }));
    },
  };

  /** `compress.tensor.v1`: lossless model weights (safetensors). */
  readonly tensor = {
    /**
     * Encodes a safetensors file (path or bytes); it decodes back byte for byte. A file over
     * `chunkBytes` goes up, and its bitstream comes back, through `EncodeStream` in chunks.
     */
    encode: async (source: Source, options: Partial<tensor.EncodeOptions> = {}): Promise<tensor.EncodeResult> => {
      const data = await read(source);
      const opts = tensor.EncodeOptions.fromPartial(options);
      return encodeUpload(
        this.chunkBytes,
        data,
        opts,
        () => this.invoker.unary(this.raw.tensor.encode, this.raw.tensor, { file: data, options: opts }),
        async (parts) => {
          const { last, data: bitstream } = await this.invoker.exchange(this.raw.tensor.encodeStream, this.raw.tensor, parts);
          return { result: last.result && { ...last.result, bitstream } };
        },
      );
    },
    /** The safetensors file a bitstream was made from; both go through `DecodeStream` in chunks. */
    decode: (bitstream: Uint8Array): Promise<Buffer> =>
      this.invoker
        .exchange(
          this.raw.tensor.decodeStream,
          this.raw.tensor,
          chunks(Buffer.from(bitstream), this.chunkBytes).map((chunk) => ({ chunk })),
        )
        .then(({ data }) => data),
    /** One tensor (summary and little-endian `data`) without decoding the rest. */
    readTensor: (bitstream: Uint8Array, name: string): Promise<tensor.ReadTensorResponse> =>
      this.invoker.unary(this.raw.tensor.readTensor, this.raw.tensor, { bitstream: Buffer.from(bitstream), name }),
    /** The tensors of a bitstream: names, dtypes, shapes, sizes raw and coded. */
    info: (bitstream: Uint8Array): Promise<tensor.InfoResponse> =>
      this.invoker.unary(this.raw.tensor.info, this.raw.tensor, { bitstream: Buffer.from(bitstream) }),
    /**
     * Encodes (lossy) the KV cache of the causal LM `model`: float32 values of shape
     * `[layers, 2 (key, value), kvHeads, tokens, headDim]`. `level` 1 (smallest) to 8 (closest),
     * 0 the server's default. The response carries the bitstream, its bits per element and the
     * SNR and largest error of the decode.
     */
    encodeKvCache: (
      model: string,
      cache: Float32Tensor,
      options: { level?: number; sinkTokens?: number } = {},
    ): Promise<tensor.EncodeKvCacheResponse> => {
      const [layers, kinds, kvHeads, tokens, headDim] = cache.shape;
      const elements = cache.shape.reduce((n, d) => n * d, 1);
      if (cache.shape.length !== 5 || kinds !== 2 || elements !== cache.data.length) {
        throw new RangeError(
          `a KV cache is [layers, 2, kvHeads, tokens, headDim] float32 values, got shape [${cache.shape}] and ${cache.data.length} values`,
        );
      }
      const values = Buffer.alloc(elements * 4);
      cache.data.forEach((value, i) => values.writeFloatLE(value, i * 4));
      return this.invoker.unary(this.raw.tensor.encodeKvCache, this.raw.tensor, {
        model,
        cache: { layers, kvHeads, tokens, headDim, dtype: "fp32", values },
        level: options.level ?? 0,
        sinkTokens: options.sinkTokens,
      });
    },
    /** Decodes a KV-cache bitstream; `kvFloat32(response.cache)` reads the values. */
    decodeKvCache: (bitstream: Uint8Array): Promise<tensor.DecodeKvCacheResponse> =>
      this.invoker.unary(this.raw.tensor.decodeKvCache, this.raw.tensor, { bitstream: Buffer.from(bitstream) }),
    /** The causal LMs whose KV caches the server codes, with their dimensions. */
    listKvModels: (): Promise<tensor.KvModel[]> =>
      this.invoker.unary(this.raw.tensor.listKvModels, this.raw.tensor, {}).then((r) => r.models),
  };

  /** `compress.context.v1`: prompt (LLMLingua-2) and RAG-context (RECOMP) compression. */
  readonly context = {
    /** Compresses one text or several contexts; `options` are `PromptOptions` fields. */
    compressPrompt: (
      text: string | string[],
      options: Partial<context.PromptOptions> = {},
    ): Promise<context.CompressPromptResponse> =>
      this.invoker.unary(this.raw.context.compressPrompt, this.raw.context, {
        context: typeof text === "string" ? [text] : text,
        options: context.PromptOptions.fromPartial(options),
      }),
    /**
     * LLMLingua-1 (`method: PERPLEXITY_METHOD_LLMLINGUA`, the default) or LongLLMLingua
     * (`PERPLEXITY_METHOD_LONGLLMLINGUA`, needs `question`) on the server's causal LM, as the
     * Python package `llmlingua` 0.2.2 runs them, or LongCodeZip
     * (`PERPLEXITY_METHOD_LONGCODEZIP`: one source file as `text`, `language`); `options` are
     * `PerplexityOptions` fields.
     */
    compressPromptLlmlingua: (
      text: string | string[],
      options: Partial<context.PerplexityOptions> = {},
    ): Promise<context.CompressPromptResponse> =>
      this.invoker.unary(this.raw.context.compressPrompt, this.raw.context, {
        context: typeof text === "string" ? [text] : text,
        perplexity: context.PerplexityOptions.fromPartial({
          method: context.PerplexityMethod.PERPLEXITY_METHOD_LLMLINGUA,
          ...options,
        }),
      }),
    /** Keeps the sentences of `documents` that answer `query` (strings or `Document`s). */
    compressContext: (
      query: string,
      documents: (string | Partial<context.Document>)[],
      options: Partial<Omit<context.CompressContextRequest, "query" | "documents">> = {},
    ): Promise<context.CompressContextResponse> =>
      this.invoker.unary(
        this.raw.context.compressContext,
        this.raw.context,
        context.CompressContextRequest.fromPartial({
          ...options,
          query,
          documents: documents.map((d, i) => (typeof d === "string" ? { id: String(i), text: d } : d)),
        }),
      ),
  };

  /** `compress.vision.v1`: training-free visual-token reduction. */
  readonly vision = {
    /**
     * Prunes patch tokens `[N, D]` or `[B, N, D]` with `method` (`fastervlm`, `visionzip`,
     * `divprune`, `prumerge`, `prumerge_plus`, `tome`, `idpruner`, `uniform`, `avg_pool`);
     * `keep` is a count (integer) or a ratio (fraction below 1).
     */
    pruneTokens: async (
      tokens: Float32Tensor,
      method: string,
      keep: number,
      inputs: { clsAttention?: Float32Tensor; keys?: Float32Tensor; query?: Float32Tensor; importance?: Float32Tensor; params?: Partial<vision.MethodParams>; returnScores?: boolean } = {},
    ): Promise<PrunedImage[]> => {
      const optional = (name: string, t?: Float32Tensor) => (t ? toTensor(name, t) : undefined);
      const response = await this.invoker.unary(this.raw.vision.pruneTokens, this.raw.vision, {
        tokens: toTensor("tokens", tokens),
        clsAttention: optional("cls_attention", inputs.clsAttention),
        keys: optional("keys", inputs.keys),
        query: optional("query", inputs.query),
        importance: optional("importance", inputs.importance),
        method: enumValue(vision.PruneMethod, "PRUNE_METHOD_", method),
        keep: Number.isInteger(keep) ? { count: keep } : { ratio: keep },
        params: inputs.params ? vision.MethodParams.fromPartial(inputs.params) : undefined,
        returnScores: inputs.returnScores ?? false,
      });
      return response.images.map((reduction) => {
        if (!reduction.tokens) throw new Error("reduction without tokens");
        return {
          keptIndices: reduction.keptIndices,
          tokens: fromTensor(reduction.tokens),
          slot: reduction.slot,
          sizes: reduction.sizes,
          effectiveTokens: reduction.effectiveTokens,
          scores: reduction.scores,
        };
      });
    },
  };

  /** `compress.models.v1`: the model repository. */
  readonly models = {
    /** Every model in the repository with its state. */
    list: async (): Promise<models.ModelInfo[]> =>
      (await this.invoker.unary(this.raw.models.listModels, this.raw.models, models.ListModelsRequest.fromPartial({}))).models,
  };
}
