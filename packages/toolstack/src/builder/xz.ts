/**
 * A .xz decoder in plain TypeScript, enough for Linux's compressed kernels:
 * the .xz container (The .xz File Format 1.1.0, Tukaani), LZMA2 chunks over
 * the LZMA algorithm (Igor Pavlov's LZMA SDK lzma-specification.txt), and
 * the x86 BCJ filter that Linux's scripts/xz_wrap.sh adds for x86 kernels.
 * Checks: none, CRC32, CRC64. Written from the specifications so that the
 * builder runs in a browser with no native or WebAssembly dependency.
 *
 * The whole output stays in one buffer, which is also the LZMA dictionary:
 * a kernel is decompressed once, in memory, and this keeps the inner loop a
 * plain typed-array copy.
 */
import { crc32, crc64 } from "./crc";
import { KernelImageError } from "./errors";

const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;

class XzError extends KernelImageError {}

function corrupt(detail: string): never {
  throw new XzError(`corrupt xz data: ${detail}`);
}

/** True when `bytes` starts with the .xz stream header magic FD 37 7A 58 5A 00. */
export function isXz(bytes: Uint8Array, offset = 0): boolean {
  return (
    bytes[offset] === 0xfd &&
    bytes[offset + 1] === 0x37 &&
    bytes[offset + 2] === 0x7a &&
    bytes[offset + 3] === 0x58 &&
    bytes[offset + 4] === 0x5a &&
    bytes[offset + 5] === 0x00
  );
}

/** The growable output, which doubles as the LZMA dictionary. */
class Output {
  buffer: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    this.buffer = new Uint8Array(Math.max(capacity, 4096));
  }
  reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }
}

// LZMA constants (lzma-specification.txt).
const STATES = 12;
const POS_STATES_MAX = 16;
const LEN_LOW_BITS = 3;
const LEN_MID_BITS = 3;
const LEN_HIGH_BITS = 8;
const LEN_TO_POS_STATES = 4;
const END_POS_MODEL_INDEX = 14;
const FULL_DISTANCES = 128;
const ALIGN_BITS = 4;
const MATCH_MIN_LEN = 2;

class LengthDecoder {
  readonly choice = new Uint16Array(2);
  readonly low = new Uint16Array(POS_STATES_MAX << LEN_LOW_BITS);
  readonly mid = new Uint16Array(POS_STATES_MAX << LEN_MID_BITS);
  readonly high = new Uint16Array(1 << LEN_HIGH_BITS);
  reset(): void {
    this.choice.fill(1024);
    this.low.fill(1024);
    this.mid.fill(1024);
    this.high.fill(1024);
  }
}

/** LZMA decoder state that persists across LZMA2 chunks. */
class LzmaDecoder {
  // Range decoder.
  input: Uint8Array = new Uint8Array(0);
  inputPosition = 0;
  inputEnd = 0;
  range = 0;
  code = 0;

  lc = 0;
  lp = 0;
  pb = 0;
  state = 0;
  rep0 = 0;
  rep1 = 0;
  rep2 = 0;
  rep3 = 0;
  literal = new Uint16Array(0x300);
  readonly isMatch = new Uint16Array(STATES << 4);
  readonly isRep = new Uint16Array(STATES);
  readonly isRepG0 = new Uint16Array(STATES);
  readonly isRepG1 = new Uint16Array(STATES);
  readonly isRepG2 = new Uint16Array(STATES);
  readonly isRep0Long = new Uint16Array(STATES << 4);
  readonly posSlot = new Uint16Array(LEN_TO_POS_STATES << 6);
  readonly posSpecial = new Uint16Array(1 + FULL_DISTANCES - END_POS_MODEL_INDEX);
  readonly align = new Uint16Array(1 << ALIGN_BITS);
  readonly length = new LengthDecoder();
  readonly repLength = new LengthDecoder();

  setProperties(properties: number): void {
    if (properties > (4 * 5 + 4) * 9 + 8)
      corrupt(`LZMA properties byte ${properties} out of range`);
    this.lc = properties % 9;
    properties = (properties / 9) | 0;
    this.lp = properties % 5;
    this.pb = (properties / 5) | 0;
    // LZMA2 restricts lc + lp to 4 (xz-file-format.txt 5.3.1).
    if (this.lc + this.lp > 4) corrupt("LZMA2 requires lc + lp <= 4");
    const size = 0x300 << (this.lc + this.lp);
    if (this.literal.length !== size) this.literal = new Uint16Array(size);
  }

  resetState(): void {
    this.state = 0;
    this.rep0 = this.rep1 = this.rep2 = this.rep3 = 0;
    this.literal.fill(1024);
    this.isMatch.fill(1024);
    this.isRep.fill(1024);
    this.isRepG0.fill(1024);
    this.isRepG1.fill(1024);
    this.isRepG2.fill(1024);
    this.isRep0Long.fill(1024);
    this.posSlot.fill(1024);
    this.posSpecial.fill(1024);
    this.align.fill(1024);
    this.length.reset();
    this.repLength.reset();
  }

  startRangeDecoder(input: Uint8Array, start: number, end: number): void {
    if (end - start < 5 || input[start] !== 0) corrupt("bad range coder start");
    this.input = input;
    this.inputEnd = end;
    this.code =
      ((input[start + 1] << 24) |
        (input[start + 2] << 16) |
        (input[start + 3] << 8) |
        input[start + 4]) >>>
      0;
    this.range = 0xffffffff;
    this.inputPosition = start + 5;
  }

  private nextByte(): number {
    if (this.inputPosition >= this.inputEnd) corrupt("LZMA chunk ends early");
    return this.input[this.inputPosition++];
  }

  bit(probabilities: Uint16Array, index: number): number {
    const probability = probabilities[index];
    const bound = (this.range >>> 11) * probability;
    let bit: number;
    if (this.code < bound) {
      this.range = bound;
      probabilities[index] = probability + ((2048 - probability) >>> 5);
      bit = 0;
    } else {
      this.range -= bound;
      this.code -= bound;
      probabilities[index] = probability - (probability >>> 5);
      bit = 1;
    }
    if (this.range < 0x1000000) {
      this.range = (this.range * 256) >>> 0;
      this.code = ((this.code * 256) | this.nextByte()) >>> 0;
    }
    return bit;
  }

  tree(probabilities: Uint16Array, base: number, bits: number): number {
    let symbol = 1;
    for (let i = 0; i < bits; i++) symbol = (symbol << 1) | this.bit(probabilities, base + symbol);
    return symbol - (1 << bits);
  }

  reverseTree(probabilities: Uint16Array, base: number, bits: number): number {
    let symbol = 1;
    let result = 0;
    for (let i = 0; i < bits; i++) {
      const bit = this.bit(probabilities, base + symbol);
      symbol = (symbol << 1) | bit;
      result |= bit << i;
    }
    return result;
  }

  directBits(count: number): number {
    let result = 0;
    for (let i = 0; i < count; i++) {
      this.range >>>= 1;
      let bit = 0;
      if (this.code >= this.range) {
        this.code -= this.range;
        bit = 1;
      }
      result = ((result << 1) | bit) >>> 0;
      if (this.range < 0x1000000) {
        this.range = (this.range * 256) >>> 0;
        this.code = ((this.code * 256) | this.nextByte()) >>> 0;
      }
    }
    return result;
  }

  decodeLength(decoder: LengthDecoder, posState: number): number {
    if (this.bit(decoder.choice, 0) === 0) {
      return MATCH_MIN_LEN + this.tree(decoder.low, posState << LEN_LOW_BITS, LEN_LOW_BITS);
    }
    if (this.bit(decoder.choice, 1) === 0) {
      return MATCH_MIN_LEN + 8 + this.tree(decoder.mid, posState << LEN_MID_BITS, LEN_MID_BITS);
    }
    return MATCH_MIN_LEN + 16 + this.tree(decoder.high, 0, LEN_HIGH_BITS);
  }

  decodeDistance(length: number): number {
    const lengthState = Math.min(length - MATCH_MIN_LEN, LEN_TO_POS_STATES - 1);
    const slot = this.tree(this.posSlot, lengthState << 6, 6);
    if (slot < 4) return slot;
    const directCount = (slot >>> 1) - 1;
    let distance = ((2 | (slot & 1)) << directCount) >>> 0;
    if (slot < END_POS_MODEL_INDEX) {
      // posSpecial is indexed from distance - slot, with the tree's 1-based symbol (LZMA SDK SpecPos).
      distance += this.reverseTree(this.posSpecial, distance - slot - 1, directCount);
    } else {
      distance += this.directBits(directCount - ALIGN_BITS) * (1 << ALIGN_BITS);
      distance += this.reverseTree(this.align, 0, ALIGN_BITS);
    }
    return distance >>> 0;
  }

  /**
   * Decodes one LZMA2 chunk of `size` bytes into `output` (which has room).
   * `dictionaryStart` is where the dictionary was last reset.
   */
  decodeChunk(output: Output, size: number, dictionaryStart: number): void {
    const out = output.buffer;
    let position = output.length;
    const end = position + size;
    const pbMask = (1 << this.pb) - 1;
    const lpMask = (1 << this.lp) - 1;
    const lc = this.lc;
    let state = this.state;
    while (position < end) {
      const posState = position & pbMask;
      if (this.bit(this.isMatch, (state << 4) | posState) === 0) {
        // Literal (lzma-specification.txt "The literal decoding").
        const previous = position > dictionaryStart ? out[position - 1] : 0;
        const base = 0x300 * (((position & lpMask) << lc) + (previous >>> (8 - lc)));
        let symbol = 1;
        if (state >= 7) {
          if (this.rep0 >= position - dictionaryStart)
            corrupt("match distance beyond the dictionary");
          let matchByte = out[position - this.rep0 - 1];
          do {
            const matchBit = (matchByte >>> 7) & 1;
            matchByte <<= 1;
            const bit = this.bit(this.literal, base + ((1 + matchBit) << 8) + symbol);
            symbol = (symbol << 1) | bit;
            if (matchBit !== bit) break;
          } while (symbol < 0x100);
        }
        while (symbol < 0x100) symbol = (symbol << 1) | this.bit(this.literal, base + symbol);
        out[position++] = symbol & 0xff;
        state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
        continue;
      }
      let length: number;
      if (this.bit(this.isRep, state) === 0) {
        length = this.decodeLength(this.length, posState);
        state = state < 7 ? 7 : 10;
        const distance = this.decodeDistance(length);
        if (distance === 0xffffffff) corrupt("end-of-stream marker inside LZMA2");
        this.rep3 = this.rep2;
        this.rep2 = this.rep1;
        this.rep1 = this.rep0;
        this.rep0 = distance;
      } else {
        if (position === dictionaryStart) corrupt("repeated match with an empty dictionary");
        if (this.bit(this.isRepG0, state) === 0) {
          if (this.bit(this.isRep0Long, (state << 4) | posState) === 0) {
            // Short rep: one byte at rep0.
            state = state < 7 ? 9 : 11;
            if (this.rep0 >= position - dictionaryStart)
              corrupt("match distance beyond the dictionary");
            out[position] = out[position - this.rep0 - 1];
            position++;
            continue;
          }
        } else {
          let distance: number;
          if (this.bit(this.isRepG1, state) === 0) {
            distance = this.rep1;
          } else {
            if (this.bit(this.isRepG2, state) === 0) {
              distance = this.rep2;
            } else {
              distance = this.rep3;
              this.rep3 = this.rep2;
            }
            this.rep2 = this.rep1;
          }
          this.rep1 = this.rep0;
          this.rep0 = distance;
        }
        length = this.decodeLength(this.repLength, posState);
        state = state < 7 ? 8 : 11;
      }
      const distance = this.rep0;
      if (distance >= position - dictionaryStart) corrupt("match distance beyond the dictionary");
      if (position + length > end) corrupt("match runs past the end of its LZMA2 chunk");
      // Overlapping copy (distance < length repeats a pattern), byte by byte as LZ77 requires.
      let from = position - distance - 1;
      for (let i = 0; i < length; i++) out[position++] = out[from++];
    }
    this.state = state;
    output.length = position;
  }
}

/** Reads an xz multibyte integer (xz-file-format.txt 1.2); returns [value, next offset]. */
function readVarint(bytes: Uint8Array, offset: number, end: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 9; i++) {
    if (offset >= end) corrupt("truncated integer");
    const byte = bytes[offset++];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) corrupt("non-minimal integer encoding");
      if (value > Number.MAX_SAFE_INTEGER) corrupt("integer too large");
      return [value, offset];
    }
    scale *= 128;
  }
  return corrupt("integer longer than 9 bytes");
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset] |
      (bytes[offset + 1] << 8) |
      (bytes[offset + 2] << 16) |
      (bytes[offset + 3] << 24)) >>>
    0
  );
}

/** Decodes an LZMA2 stream in `bytes[start, end)`, appending to `output`. Returns the offset after it. */
function decodeLzma2(
  bytes: Uint8Array,
  start: number,
  end: number,
  output: Output,
  lzma: LzmaDecoder,
): number {
  let offset = start;
  const blockStart = output.length;
  let dictionaryStart = output.length;
  let needDictionaryReset = true;
  let needProperties = true;
  for (;;) {
    if (offset >= end) corrupt("LZMA2 stream without its end marker");
    const control = bytes[offset++];
    if (control === 0x00) return offset;
    if (control === 0x01 || control === 0x02) {
      if (offset + 2 > end) corrupt("truncated LZMA2 chunk header");
      const size = ((bytes[offset] << 8) | bytes[offset + 1]) + 1;
      offset += 2;
      if (control === 0x01) {
        dictionaryStart = output.length;
        needDictionaryReset = false;
      } else if (needDictionaryReset) {
        corrupt("first LZMA2 chunk does not reset the dictionary");
      }
      if (offset + size > end) corrupt("uncompressed LZMA2 chunk runs past the input");
      output.reserve(size);
      output.buffer.set(bytes.subarray(offset, offset + size), output.length);
      output.length += size;
      offset += size;
      continue;
    }
    if (control < 0x80) corrupt(`invalid LZMA2 control byte 0x${control.toString(16)}`);
    if (offset + 4 > end) corrupt("truncated LZMA2 chunk header");
    const unpackedSize = ((control & 0x1f) << 16) + (bytes[offset] << 8) + bytes[offset + 1] + 1;
    const packedSize = (bytes[offset + 2] << 8) + bytes[offset + 3] + 1;
    offset += 4;
    const reset = (control >>> 5) & 3;
    if (reset === 3) {
      dictionaryStart = output.length;
      needDictionaryReset = false;
    } else if (needDictionaryReset) {
      corrupt("first LZMA2 chunk does not reset the dictionary");
    }
    if (reset >= 2) {
      if (offset >= end) corrupt("truncated LZMA2 properties");
      lzma.setProperties(bytes[offset++]);
      needProperties = false;
    } else if (needProperties) {
      corrupt("LZMA2 chunk without properties");
    }
    if (reset >= 1) lzma.resetState();
    if (offset + packedSize > end) corrupt("LZMA2 chunk runs past the input");
    lzma.startRangeDecoder(bytes, offset, offset + packedSize);
    output.reserve(unpackedSize);
    lzma.decodeChunk(output, unpackedSize, Math.max(dictionaryStart, blockStart));
    if (lzma.inputPosition !== offset + packedSize) {
      corrupt("LZMA2 chunk size does not match its contents");
    }
    offset += packedSize;
  }
}

/**
 * The x86 BCJ filter's decoder (xz-file-format.txt 5.3.3, "x86"): turns the
 * absolute addresses the encoder wrote into E8/E9 call and jump operands
 * back into relative ones. Runs over the whole block at once.
 */
function unfilterX86(buffer: Uint8Array, start: number, end: number, startOffset: number): void {
  const allowed = [true, true, true, false, true, false, false, false];
  const bitNumber = [0, 1, 2, 2, 3, 3, 3, 3];
  const isMsbyte = (b: number) => b === 0x00 || b === 0xff;
  let previousPosition = -1;
  let previousMask = 0;
  const limit = end - start - 4;
  for (let i = 0; i < limit; i++) {
    const at = start + i;
    if ((buffer[at] & 0xfe) !== 0xe8) continue;
    const gap = i - previousPosition;
    if (gap > 3) {
      previousMask = 0;
    } else {
      previousMask = (previousMask << (gap - 1)) & 7;
      if (previousMask !== 0) {
        const b = buffer[at + 4 - bitNumber[previousMask]];
        if (!allowed[previousMask] || isMsbyte(b)) {
          previousPosition = i;
          previousMask = (previousMask << 1) | 1;
          continue;
        }
      }
    }
    previousPosition = i;
    if (isMsbyte(buffer[at + 4])) {
      let source = readUint32(buffer, at + 1);
      let destination: number;
      for (;;) {
        destination = (source - (startOffset + i + 5)) >>> 0;
        if (previousMask === 0) break;
        const shift = bitNumber[previousMask] * 8;
        const b = (destination >>> (24 - shift)) & 0xff;
        if (!isMsbyte(b)) break;
        source = (destination ^ (2 ** (32 - shift) - 1)) >>> 0;
      }
      destination &= 0x01ffffff;
      destination = (destination | (destination & 0x01000000 ? 0xfe000000 : 0)) >>> 0;
      buffer[at + 1] = destination & 0xff;
      buffer[at + 2] = (destination >>> 8) & 0xff;
      buffer[at + 3] = (destination >>> 16) & 0xff;
      buffer[at + 4] = destination >>> 24;
      i += 4;
    } else {
      previousMask = (previousMask << 1) | 1;
    }
  }
}

const checkSizes = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

/**
 * Decodes the first .xz stream in `bytes` (trailing data, such as the size
 * Linux appends to a compressed kernel, is ignored). `sizeHint` presizes the
 * output. Throws `KernelImageError` on corrupt or unsupported data.
 */
export function decompressXz(bytes: Uint8Array, sizeHint = bytes.length * 4): Uint8Array {
  if (!isXz(bytes)) corrupt("no xz stream header magic");
  if (bytes.length < 24) corrupt("shorter than a stream header and footer");
  if (crc32(bytes, 6, 8) !== readUint32(bytes, 8)) corrupt("stream header CRC32 mismatch");
  if (bytes[6] !== 0 || bytes[7] > 0x0f) corrupt("unsupported stream flags");
  const checkType = bytes[7];
  if (checkType !== 0 && checkType !== 1 && checkType !== 4) {
    throw new XzError(
      `unsupported xz integrity check type ${checkType} (supported: none, CRC32, CRC64)`,
    );
  }
  const checkSize = checkSizes[checkType];
  const output = new Output(sizeHint);
  const lzma = new LzmaDecoder();
  // Unpadded and uncompressed size of each block, for the index check.
  const records: number[] = [];
  let offset = 12;
  for (;;) {
    if (offset >= bytes.length) corrupt("truncated before the index");
    const headerSizeByte = bytes[offset];
    if (headerSizeByte === 0) break; // index indicator
    const headerSize = (headerSizeByte + 1) * 4;
    const headerEnd = offset + headerSize;
    if (headerEnd > bytes.length) corrupt("truncated block header");
    if (crc32(bytes, offset, headerEnd - 4) !== readUint32(bytes, headerEnd - 4)) {
      corrupt("block header CRC32 mismatch");
    }
    const flags = bytes[offset + 1];
    if (flags & 0x3c) corrupt("reserved block flags set");
    const filterCount = (flags & 3) + 1;
    let cursor = offset + 2;
    let compressedSize = -1;
    let uncompressedSize = -1;
    if (flags & 0x40) [compressedSize, cursor] = readVarint(bytes, cursor, headerEnd - 4);
    if (flags & 0x80) [uncompressedSize, cursor] = readVarint(bytes, cursor, headerEnd - 4);
    const filters: { id: number; properties: Uint8Array }[] = [];
    for (let i = 0; i < filterCount; i++) {
      let id: number;
      let propertiesSize: number;
      [id, cursor] = readVarint(bytes, cursor, headerEnd - 4);
      [propertiesSize, cursor] = readVarint(bytes, cursor, headerEnd - 4);
      if (cursor + propertiesSize > headerEnd - 4)
        corrupt("filter properties run past the block header");
      filters.push({ id, properties: bytes.subarray(cursor, cursor + propertiesSize) });
      cursor += propertiesSize;
    }
    const last = filters[filters.length - 1];
    if (last.id !== FILTER_LZMA2 || last.properties.length !== 1) {
      throw new XzError(
        `unsupported xz filter chain (ids ${filters.map((f) => `0x${f.id.toString(16)}`).join(", ")}): expected LZMA2 last`,
      );
    }
    if (last.properties[0] > 40) corrupt("LZMA2 dictionary size out of range");
    for (const filter of filters.slice(0, -1)) {
      if (
        filter.id !== FILTER_X86 ||
        (filter.properties.length !== 0 && filter.properties.length !== 4)
      ) {
        throw new XzError(
          `unsupported xz filter 0x${filter.id.toString(16)} (supported: x86 BCJ 0x04 before LZMA2 0x21)`,
        );
      }
    }
    const blockOutputStart = output.length;
    const dataStart = headerEnd;
    const dataEnd = compressedSize >= 0 ? dataStart + compressedSize : bytes.length;
    if (dataEnd > bytes.length) corrupt("block runs past the input");
    const after = decodeLzma2(bytes, dataStart, dataEnd, output, lzma);
    if (compressedSize >= 0 && after !== dataEnd) corrupt("block compressed size mismatch");
    if (uncompressedSize >= 0 && output.length - blockOutputStart !== uncompressedSize) {
      corrupt("block uncompressed size mismatch");
    }
    // Filters other than the last run in reverse order on decode.
    for (let i = filters.length - 2; i >= 0; i--) {
      const properties = filters[i].properties;
      const startOffset = properties.length === 4 ? readUint32(properties, 0) : 0;
      unfilterX86(output.buffer, blockOutputStart, output.length, startOffset);
    }
    let next = after;
    while ((next - offset) % 4 !== 0) {
      if (bytes[next] !== 0) corrupt("non-zero block padding");
      next++;
    }
    if (next + checkSize > bytes.length) corrupt("truncated block check");
    if (checkType === 1) {
      if (crc32(output.buffer, blockOutputStart, output.length) !== readUint32(bytes, next)) {
        corrupt("block CRC32 mismatch");
      }
    } else if (checkType === 4) {
      const [low, high] = crc64(output.buffer, blockOutputStart, output.length);
      if (low !== readUint32(bytes, next) || high !== readUint32(bytes, next + 4)) {
        corrupt("block CRC64 mismatch");
      }
    }
    records.push(headerSize + (after - dataStart) + checkSize, output.length - blockOutputStart);
    offset = next + checkSize;
  }
  checkIndexAndFooter(bytes, offset, records, bytes[7]);
  return output.buffer.slice(0, output.length);
}

/**
 * The index and stream footer (.xz file format 1.0.4, sections 2.1.2 and 4):
 * the records must list exactly the blocks decoded, the index CRC32 and the
 * footer (CRC32, backward size, the header's flags, "YZ") must match. Without
 * this, damage that turns a block header's size byte into the index
 * indicator would end the stream early and look like a valid, shorter one.
 */
function checkIndexAndFooter(
  bytes: Uint8Array,
  start: number,
  records: number[],
  checkType: number,
): void {
  const [count, afterCount] = readVarint(bytes, start + 1, bytes.length);
  let cursor = afterCount;
  if (count * 2 !== records.length) corrupt("index record count does not match the blocks");
  for (let i = 0; i < records.length; i++) {
    let value: number;
    [value, cursor] = readVarint(bytes, cursor, bytes.length);
    if (value !== records[i]) corrupt("index record does not match its block");
  }
  while ((cursor - start) % 4 !== 0) {
    if (cursor >= bytes.length) corrupt("truncated index");
    if (bytes[cursor] !== 0) corrupt("non-zero index padding");
    cursor++;
  }
  if (cursor + 4 + 12 > bytes.length) corrupt("truncated index or stream footer");
  if (crc32(bytes, start, cursor) !== readUint32(bytes, cursor)) corrupt("index CRC32 mismatch");
  const footer = cursor + 4;
  if (crc32(bytes, footer + 4, footer + 10) !== readUint32(bytes, footer)) {
    corrupt("stream footer CRC32 mismatch");
  }
  if ((readUint32(bytes, footer + 4) + 1) * 4 !== cursor + 4 - start) {
    corrupt("stream footer backward size does not match the index");
  }
  if (bytes[footer + 8] !== 0 || bytes[footer + 9] !== checkType) {
    corrupt("stream footer flags differ from the header's");
  }
  if (bytes[footer + 10] !== 0x59 || bytes[footer + 11] !== 0x5a) corrupt("no stream footer magic");
}
