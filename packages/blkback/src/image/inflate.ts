/**
 * Raw deflate (RFC 1951) decompression for qcow2 compressed clusters (qcow2
 * spec: "compressed clusters use zlib deflate without the zlib header",
 * window bits -12). The input is an upper bound (whole 512-byte sectors) so
 * it may carry bytes after the end of the deflate stream.
 */
export type Inflate = (input: Uint8Array, outputSize: number) => Promise<Uint8Array | null>;

/**
 * The portable inflater: the web platform's DecompressionStream, read until
 * `outputSize` bytes came out. Returns null when the data is not a valid
 * deflate stream or is too short. The Node entry (`@kumo/blkback/node`)
 * uses zlib instead.
 */
export const streamInflate: Inflate = async (input, outputSize) => {
  const output = new Uint8Array(outputSize);
  let filled = 0;
  const stream = new DecompressionStream("deflate-raw");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  writer.write(input as Uint8Array<ArrayBuffer>).catch(() => undefined);
  writer.close().catch(() => undefined);
  try {
    while (filled < outputSize) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, outputSize - filled);
      output.set(value.subarray(0, take), filled);
      filled += take;
    }
  } catch {
    // Junk after the end of the stream errors the stream; what came out before counts.
  }
  reader.cancel().catch(() => undefined);
  return filled === outputSize ? output : null;
};
