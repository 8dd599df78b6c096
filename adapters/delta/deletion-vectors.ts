// Deletion vectors (PROTOCOL.md "Deletion Vectors", "Deletion Vector
// Descriptor Schema", "Deletion Vector Format"): the rows of a data file that
// are deleted without rewriting it, as a set of row positions.
//
// - A descriptor names where the set is: storageType 'u' (a file
//   `<prefix>/deletion_vector_<uuid>.bin` under the table, the UUID z85-encoded
//   in pathOrInlineDv after the prefix), 'p' (an absolute path) or 'i' (inline:
//   pathOrInlineDv is the z85-encoded set itself), with the offset of the set
//   in the file, its size and its cardinality.
// - A DV file is a version byte (1), then per set: its size (int32 big-endian),
//   the set, and the CRC-32 of the set (int32 big-endian); `offset` points at
//   the size.
// - A set is a RoaringBitmapArray in the portable format: the magic number
//   1681511377, the number of 32-bit bitmaps (int64), then per bitmap its key
//   (the high 32 bits of its positions, int32) and a 32-bit Roaring bitmap in
//   the portable serialization of the Roaring format spec (array, bitmap and
//   run containers; all little-endian).
//
// Written here by hand (two hundred lines): the npm "roaring" package is a
// native addon, and only the portable (de)serialization is needed.

import { randomUUID } from 'node:crypto';
import { endianness } from 'node:os';
import { crc32 } from 'node:zlib';
import type { DeletionVector } from './actions.js';
import { DeltaTableError } from './errors.js';
import type { DeltaStorage } from './storage.js';

const MAGIC = 1681511377;
const SERIAL_COOKIE_NO_RUNCONTAINER = 12346;
const SERIAL_COOKIE = 12347;
const NO_OFFSET_THRESHOLD = 4;
const ARRAY_MAX = 4096;

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Map([...Z85].map((c, i) => [c, i]));

/** Z85 (ZeroMQ base85): each 4 bytes, big-endian, as 5 characters; the input is zero-padded to a multiple of 4. */
export function z85Encode(data: Uint8Array): string {
  const padded = new Uint8Array(Math.ceil(data.length / 4) * 4);
  padded.set(data);
  let out = '';
  for (let i = 0; i < padded.length; i += 4) {
    let v = ((padded[i]! << 24) >>> 0) + (padded[i + 1]! << 16) + (padded[i + 2]! << 8) + padded[i + 3]!;
    const chunk = new Array<string>(5);
    for (let j = 4; j >= 0; j--) {
      chunk[j] = Z85[v % 85]!;
      v = Math.floor(v / 85);
    }
    out += chunk.join('');
  }
  return out;
}

export function z85Decode(text: string, what: string): Buffer {
  if (text.length % 5 !== 0) throw new DeltaTableError(`${what}: not Z85 (length ${text.length} is not a multiple of 5)`);
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85_INDEX.get(text[i + j]!);
      if (d === undefined) throw new DeltaTableError(`${what}: not Z85 (character ${JSON.stringify(text[i + j])})`);
      v = v * 85 + d;
    }
    out.writeUInt32BE(v >>> 0, (i / 5) * 4);
  }
  return out;
}

/** The positions of a serialized RoaringBitmapArray, ascending. */
export function parseRoaringArray(data: Buffer, what: string): number[] {
  const fail = (why: string): never => {
    throw new DeltaTableError(`corrupt deletion vector (${what}): ${why}`);
  };
  if (data.length < 12) fail('too short');
  if (data.readInt32LE(0) !== MAGIC) fail(`magic number ${data.readInt32LE(0)} is not ${MAGIC}`);
  const bitmaps = Number(data.readBigInt64LE(4));
  let at = 12;
  const out: number[] = [];
  for (let b = 0; b < bitmaps; b++) {
    if (at + 4 > data.length) fail('truncated');
    const high = data.readUInt32LE(at) * 2 ** 32;
    at += 4;
    at = parseRoaring32(data, at, high, out, fail);
  }
  return out;
}

/** One 32-bit Roaring bitmap (portable format) at `at`, its positions plus `high` pushed to `out`; returns where it ends. */
function parseRoaring32(data: Buffer, start: number, high: number, out: number[], fail: (why: string) => never): number {
  let at = start;
  const cookie = data.readUInt32LE(at);
  at += 4;
  let size: number;
  let runs: Uint8Array | undefined;
  if ((cookie & 0xffff) === SERIAL_COOKIE) {
    size = (cookie >>> 16) + 1;
    runs = data.subarray(at, at + Math.ceil(size / 8));
    at += Math.ceil(size / 8);
  } else if (cookie === SERIAL_COOKIE_NO_RUNCONTAINER) {
    size = data.readUInt32LE(at);
    at += 4;
  } else return fail(`unknown Roaring cookie ${cookie}`);
  const keys: number[] = [];
  const cards: number[] = [];
  for (let i = 0; i < size; i++) {
    keys.push(data.readUInt16LE(at));
    cards.push(data.readUInt16LE(at + 2) + 1);
    at += 4;
  }
  if (!runs || size >= NO_OFFSET_THRESHOLD) at += 4 * size; // offsets: the containers follow in order anyway
  for (let i = 0; i < size; i++) {
    const base = high + keys[i]! * 65536;
    const isRun = runs ? (runs[i >> 3]! >> (i & 7)) & 1 : 0;
    if (isRun) {
      const n = data.readUInt16LE(at);
      at += 2;
      for (let r = 0; r < n; r++) {
        const from = data.readUInt16LE(at);
        const length = data.readUInt16LE(at + 2);
        at += 4;
        for (let v = from; v <= from + length; v++) out.push(base + v);
      }
    } else if (cards[i]! <= ARRAY_MAX) {
      for (let j = 0; j < cards[i]!; j++) out.push(base + data.readUInt16LE(at + 2 * j));
      at += 2 * cards[i]!;
    } else {
      for (let w = 0; w < 1024; w++) {
        let word = data.readBigUInt64LE(at + 8 * w);
        let bit = 0;
        while (word !== 0n) {
          if (word & 1n) out.push(base + w * 64 + bit);
          word >>= 1n;
          bit++;
        }
      }
      at += 8192;
    }
    if (at > data.length) fail('truncated');
  }
  return at;
}

/**
 * A RoaringBitmapArray (portable format) of ascending, distinct positions;
 * array and bitmap containers. The positions are walked twice (container
 * boundaries, then the bytes) into one buffer of the exact size: a merge
 * serializes a vector for every file it touches.
 */
export function serializeRoaringArray(positions: number[]): Buffer {
  if (positions.length && positions[positions.length - 1]! < 2 ** 32 && LITTLE_ENDIAN) return serializeBelow32(positions);
  // Containers in order: ascending positions make each (32-bit bitmap, 16-bit key) one run of them.
  const highs: number[] = [];
  const keys: number[] = [];
  const starts: number[] = [];
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    const high = Math.floor(p / 2 ** 32);
    const key = (p - high * 2 ** 32) >>> 16;
    const n = keys.length;
    if (n === 0 || highs[n - 1] !== high || keys[n - 1] !== key) {
      highs.push(high);
      keys.push(key);
      starts.push(i);
    }
  }
  starts.push(positions.length);
  const bodySize = (c: number) => (starts[c + 1]! - starts[c]! <= ARRAY_MAX ? 2 * (starts[c + 1]! - starts[c]!) : 8192);
  let bitmaps = 0;
  let size = 12;
  for (let c = 0; c < keys.length; c++) {
    // A new 32-bit bitmap: its key, cookie and container count.
    if (c === 0 || highs[c] !== highs[c - 1]) {
      bitmaps++;
      size += 12;
    }
    size += 8 + bodySize(c); // key + cardinality, offset, body
  }
  const out = Buffer.alloc(size);
  out.writeInt32LE(MAGIC, 0);
  out.writeBigInt64LE(BigInt(bitmaps), 4);
  let at = 12;
  for (let first = 0; first < keys.length; ) {
    let last = first;
    while (last + 1 < keys.length && highs[last + 1] === highs[first]) last++;
    const count = last - first + 1;
    out.writeUInt32LE(highs[first]!, at);
    out.writeUInt32LE(SERIAL_COOKIE_NO_RUNCONTAINER, at + 4);
    out.writeUInt32LE(count, at + 8);
    const descriptive = at + 12;
    const offsets = descriptive + 4 * count;
    let body = offsets + 4 * count;
    for (let c = first; c <= last; c++) {
      const j = c - first;
      const from = starts[c]!;
      const to = starts[c + 1]!;
      out.writeUInt16LE(keys[c]!, descriptive + 4 * j);
      out.writeUInt16LE(to - from - 1, descriptive + 4 * j + 2);
      // Offsets count from the start of the 32-bit bitmap (its cookie).
      out.writeUInt32LE(body - (at + 4), offsets + 4 * j);
      if (to - from <= ARRAY_MAX) {
        for (let i = from; i < to; i++) {
          const v = positions[i]! & 0xffff;
          out[body++] = v & 0xff;
          out[body++] = v >>> 8;
        }
      } else {
        for (let i = from; i < to; i++) {
          const v = positions[i]! & 0xffff;
          out[body + (v >> 3)]! |= 1 << (v & 7);
        }
        body += 8192;
      }
    }
    at = body;
    first = last + 1;
  }
  return out;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * serializeRoaringArray of positions all below 2^32 (a file of fewer than
 * 4 billion rows: every vector etl writes): one 32-bit bitmap, containers by
 * the high 16 bits, an array container's values written as one Uint16Array
 * (the format is little-endian). The same bytes as the general walk, in a
 * few simple loops: the first merge of a process runs them before the JIT
 * has warmed up.
 */
function serializeBelow32(positions: number[]): Buffer {
  const n = positions.length;
  const keys: number[] = [];
  const starts: number[] = [];
  let last = -1;
  for (let i = 0; i < n; i++) {
    const key = positions[i]! >>> 16;
    if (key !== last) {
      keys.push(key);
      starts.push(i);
      last = key;
    }
  }
  starts.push(n);
  const count = keys.length;
  let size = 12 + 12 + 8 * count;
  for (let c = 0; c < count; c++) {
    const cardinality = starts[c + 1]! - starts[c]!;
    size += cardinality <= ARRAY_MAX ? 2 * cardinality : 8192;
  }
  const out = Buffer.alloc(size);
  out.writeInt32LE(MAGIC, 0);
  out.writeBigInt64LE(1n, 4);
  // The 32-bit bitmap of high word 0: key, cookie, container count, then each container's key and cardinality - 1, offsets, bodies.
  out.writeUInt32LE(0, 12);
  out.writeUInt32LE(SERIAL_COOKIE_NO_RUNCONTAINER, 16);
  out.writeUInt32LE(count, 20);
  const descriptive = 24;
  const offsets = descriptive + 4 * count;
  let body = offsets + 4 * count;
  for (let c = 0; c < count; c++) {
    const from = starts[c]!;
    const to = starts[c + 1]!;
    out.writeUInt16LE(keys[c]!, descriptive + 4 * c);
    out.writeUInt16LE(to - from - 1, descriptive + 4 * c + 2);
    // Offsets count from the bitmap's cookie (byte 16).
    out.writeUInt32LE(body - 16, offsets + 4 * c);
    if (to - from <= ARRAY_MAX) {
      if ((out.byteOffset + body) % 2 === 0) {
        const values = new Uint16Array(out.buffer, out.byteOffset + body, to - from);
        for (let i = from, j = 0; i < to; i++, j++) values[j] = positions[i]! & 0xffff;
      } else {
        for (let i = from, at = body; i < to; i++, at += 2) out.writeUInt16LE(positions[i]! & 0xffff, at);
      }
      body += 2 * (to - from);
    } else {
      for (let i = from; i < to; i++) {
        const v = positions[i]! & 0xffff;
        out[body + (v >> 3)]! |= 1 << (v & 7);
      }
      body += 8192;
    }
  }
  return out;
}

/** Where a 'u' or 'p' deletion vector's file is, relative to the table root or absolute. */
export function deletionVectorFile(dv: DeletionVector, what: string): { relative?: string; absolute?: string } {
  if (dv.storageType === 'p') return { absolute: dv.pathOrInlineDv.replace(/^file:(\/\/)?/, '') };
  if (dv.storageType !== 'u') throw new DeltaTableError(`${what}: unknown deletion vector storage type ${JSON.stringify(dv.storageType)}`);
  const encoded = dv.pathOrInlineDv;
  const prefix = encoded.slice(0, -20);
  const uuid = z85Decode(encoded.slice(-20), what).toString('hex');
  const name = `deletion_vector_${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20)}.bin`;
  return { relative: prefix ? `${prefix}/${name}` : name };
}

/** The deleted row positions of a descriptor, checked against its size, checksum and cardinality. */
export async function readDeletionVector(storage: Pick<DeltaStorage, 'read'>, dv: DeletionVector, readAbsolute: (file: string) => Promise<Buffer>, what: string): Promise<number[]> {
  let data: Buffer;
  if (dv.storageType === 'i') {
    data = z85Decode(dv.pathOrInlineDv, what).subarray(0, dv.sizeInBytes);
  } else {
    const file = deletionVectorFile(dv, what);
    let bytes: Buffer;
    try {
      bytes = file.relative ? await storage.read(file.relative) : await readAbsolute(file.absolute!);
    } catch (err) {
      throw new DeltaTableError(`${what}: cannot read its deletion vector ${file.relative ?? file.absolute}: ${(err as Error).message}`);
    }
    const offset = dv.offset ?? 1;
    const where = `${file.relative ?? file.absolute} at offset ${offset}`;
    if (bytes[0] !== 1) throw new DeltaTableError(`corrupt deletion vector ${where} (${what}): format version ${bytes[0]} is not 1`);
    if (offset + 4 + dv.sizeInBytes + 4 > bytes.length) throw new DeltaTableError(`corrupt deletion vector ${where} (${what}): the file is shorter than the descriptor says`);
    const size = bytes.readInt32BE(offset);
    if (size !== dv.sizeInBytes) throw new DeltaTableError(`corrupt deletion vector ${where} (${what}): size ${size}, the descriptor says ${dv.sizeInBytes}`);
    data = bytes.subarray(offset + 4, offset + 4 + size);
    const checksum = bytes.readUInt32BE(offset + 4 + size);
    if (crc32(data) !== checksum) throw new DeltaTableError(`corrupt deletion vector ${where} (${what}): checksum mismatch`);
  }
  const positions = parseRoaringArray(data, what);
  if (positions.length !== dv.cardinality) throw new DeltaTableError(`corrupt deletion vector (${what}): ${positions.length} positions, the descriptor says ${dv.cardinality}`);
  return positions;
}

/**
 * Writes sets of deleted positions into one new DV file under the table root
 * (storage type 'u', no prefix) and returns their descriptors, in order.
 */
export async function writeDeletionVectors(storage: DeltaStorage, sets: number[][]): Promise<DeletionVector[]> {
  const uuid = randomUUID();
  const parts: Buffer[] = [Buffer.from([1])];
  const descriptors: DeletionVector[] = [];
  let offset = 1;
  const encoded = z85Encode(Buffer.from(uuid.replace(/-/g, ''), 'hex'));
  for (const positions of sets) {
    const data = serializeRoaringArray(positions);
    const size = Buffer.alloc(4);
    size.writeInt32BE(data.length);
    const checksum = Buffer.alloc(4);
    checksum.writeUInt32BE(crc32(data));
    parts.push(size, data, checksum);
    descriptors.push({ storageType: 'u', pathOrInlineDv: encoded, offset, sizeInBytes: data.length, cardinality: positions.length });
    offset += 8 + data.length;
  }
  await storage.write(`deletion_vector_${uuid}.bin`, Buffer.concat(parts));
  return descriptors;
}
