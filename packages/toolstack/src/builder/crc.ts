/**
 * CRC32 (IEEE 802.3, reflected polynomial 0xEDB88320) and CRC64 (ECMA-182,
 * reflected polynomial 0xC96C5795D7870F42), the integrity checks of the .xz
 * format (xz-file-format.txt 3.4 and 7). CRC64 is kept as two 32-bit
 * halves so that it needs no BigInt.
 */

let crc32Table: Uint32Array | undefined;
let crc64TableLow: Uint32Array | undefined;
let crc64TableHigh: Uint32Array | undefined;

function makeCrc32Table(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC32 of `bytes[start, end)`. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  crc32Table ??= makeCrc32Table();
  const table = crc32Table;
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function makeCrc64Tables(): void {
  const low = new Uint32Array(256);
  const high = new Uint32Array(256);
  const polyLow = 0xd7870f42;
  const polyHigh = 0xc96c5795;
  for (let n = 0; n < 256; n++) {
    let cLow = n;
    let cHigh = 0;
    for (let k = 0; k < 8; k++) {
      const bit = cLow & 1;
      cLow = ((cLow >>> 1) | ((cHigh & 1) << 31)) >>> 0;
      cHigh >>>= 1;
      if (bit) {
        cLow = (cLow ^ polyLow) >>> 0;
        cHigh = (cHigh ^ polyHigh) >>> 0;
      }
    }
    low[n] = cLow;
    high[n] = cHigh;
  }
  crc64TableLow = low;
  crc64TableHigh = high;
}

/** CRC64 of `bytes[start, end)` as [low, high] 32-bit halves. */
export function crc64(bytes: Uint8Array, start = 0, end = bytes.length): [number, number] {
  if (crc64TableLow === undefined) makeCrc64Tables();
  const tableLow = crc64TableLow!;
  const tableHigh = crc64TableHigh!;
  let low = 0xffffffff;
  let high = 0xffffffff;
  for (let i = start; i < end; i++) {
    const index = (low ^ bytes[i]) & 0xff;
    // crc = table[index] ^ (crc >> 8)
    const shiftedLow = ((low >>> 8) | (high << 24)) >>> 0;
    const shiftedHigh = high >>> 8;
    low = (tableLow[index] ^ shiftedLow) >>> 0;
    high = (tableHigh[index] ^ shiftedHigh) >>> 0;
  }
  return [(low ^ 0xffffffff) >>> 0, (high ^ 0xffffffff) >>> 0];
}
