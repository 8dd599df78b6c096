// Deletion vectors (adapters/delta/deletion-vectors.ts): the portable
// RoaringBitmapArray format (array, bitmap and run containers, 64-bit
// positions), Z85, the DV file format with its checksum, and Spark's DV files
// in the golden tables read back position for position.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../adapters/delta/index.js';
import { deletionVectorFile, parseRoaringArray, readDeletionVector, serializeRoaringArray, writeDeletionVectors, z85Decode, z85Encode } from '../../adapters/delta/deletion-vectors.js';
import { setBits } from '../../adapters/delta/changes.js';
import { extractGolden, openDuckDb, tempDir, type TestDb } from './helpers.js';

let db: TestDb;
let tmp: ReturnType<typeof tempDir>;
beforeAll(async () => {
  db = await openDuckDb();
  tmp = tempDir('etl-delta-dv-');
});
afterAll(() => {
  db?.close();
  tmp?.remove();
});

const readAbsolute = async (f: string) => readFileSync(f);

describe('the RoaringBitmapArray format', () => {
  it('round-trips array and bitmap containers and positions above 2^32', () => {
    const positions = [0, 5, 7, 70_000, ...Array.from({ length: 5000 }, (_, i) => 200_000 + 2 * i), 2 ** 32 + 3, 3 * 2 ** 32 + 65_535].sort((a, b) => a - b);
    const data = serializeRoaringArray(positions);
    // The magic number, then three 32-bit bitmaps (high words 0, 1 and 3).
    expect(data.readInt32LE(0)).toBe(1681511377);
    expect(Number(data.readBigInt64LE(4))).toBe(3);
    expect(parseRoaringArray(data, 'test')).toEqual(positions);
  });

  it('round-trips positions below 2^32 (every vector etl writes): array and bitmap containers of one 32-bit bitmap, the last key included', () => {
    const positions = [...Array.from({ length: 5000 }, (_, i) => i), ...Array.from({ length: 100 }, (_, i) => 70_000 + 3 * i), 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1];
    const data = serializeRoaringArray(positions);
    expect(Number(data.readBigInt64LE(4))).toBe(1);
    // Key 0 is a bitmap container (5,000 values), the others arrays: 12 + 12 + 4 containers * 8 + 8192 + 2 * (100 + 1 + 2).
    expect(data.length).toBe(12 + 12 + 4 * 8 + 8192 + 2 * 103);
    expect(parseRoaringArray(data, 'test')).toEqual(positions);
    for (const set of [[0], [65_535, 65_536], Array.from({ length: 4096 }, (_, i) => 2 * i), Array.from({ length: 4097 }, (_, i) => 2 * i)]) expect(parseRoaringArray(serializeRoaringArray(set), 'test')).toEqual(set);
  });

  it('reads run containers (as Spark writes for ranges of deleted rows)', () => {
    // One bitmap (key 0) holding one run container: 100..109, and an array container: 70000.
    const b = Buffer.alloc(64);
    let at = 0;
    b.writeInt32LE(1681511377, at);
    b.writeBigInt64LE(1n, (at += 4));
    b.writeUInt32LE(0, (at += 8)); // key of the 32-bit bitmap
    b.writeUInt32LE(12347 | ((2 - 1) << 16), (at += 4)); // SERIAL_COOKIE, 2 containers
    b.writeUInt8(0b01, (at += 4)); // container 0 is a run container
    at += 1;
    b.writeUInt16LE(0, at); // container 0: key 0, cardinality 10
    b.writeUInt16LE(9, at + 2);
    b.writeUInt16LE(1, at + 4); // container 1: key 1, cardinality 1
    b.writeUInt16LE(0, at + 6);
    at += 8; // fewer than 4 containers: no offsets
    b.writeUInt16LE(1, at); // one run
    b.writeUInt16LE(100, at + 2);
    b.writeUInt16LE(9, at + 4);
    b.writeUInt16LE(70_000 - 65_536, at + 6);
    at += 8;
    expect(parseRoaringArray(b.subarray(0, at), 'test')).toEqual([...Array.from({ length: 10 }, (_, i) => 100 + i), 70_000]);
  });

  it('refuses a wrong magic number', () => {
    const data = serializeRoaringArray([1, 2]);
    data.writeInt32LE(7, 0);
    expect(() => parseRoaringArray(data, 'file x')).toThrow('corrupt deletion vector (file x): magic number 7 is not 1681511377');
  });

  it('Z85 round-trips and decodes Spark\'s DV names to the files they name', () => {
    const bytes = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    expect(z85Decode(z85Encode(bytes), 'x')).toEqual(bytes);
    expect(deletionVectorFile({ storageType: 'u', pathOrInlineDv: 'ab^-h{&8fAg]=QYJvl-}c!yH', offset: 1, sizeInBytes: 34, cardinality: 1 }, 'x')).toEqual({ relative: 'ab^-/deletion_vector_37d10da3-70a1-4730-bc58-3b44f9617505.bin' });
  });
});

describe('DV files', () => {
  it('reads Spark\'s DV files in a golden table: positions, sizes and checksums', async () => {
    const root = path.join(extractGolden('log-replay-dv-key-cases', tmp.dir), 'delta');
    const storage = new LocalStorage(root);
    const log = readdirSync(path.join(root, '_delta_log')).filter((f) => f.endsWith('.json')).sort();
    const dvs = log.flatMap((f) =>
      readFileSync(path.join(root, '_delta_log', f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { add?: { deletionVector?: Parameters<typeof readDeletionVector>[1] } })
        .flatMap((a) => (a.add?.deletionVector ? [a.add.deletionVector] : [])),
    );
    expect(await Promise.all(dvs.map((dv) => readDeletionVector(storage, dv, readAbsolute, 'golden')))).toEqual([[0], [0, 7], [0, 7, 14]]);
  });

  it('writes several vectors into one file (version byte, big-endian sizes, CRC-32) and reads each back; a flipped byte is a checksum error', async () => {
    const storage = new LocalStorage(path.join(tmp.dir, 'written'));
    const sets = [[1, 2, 3], Array.from({ length: 6000 }, (_, i) => i * 3), [2 ** 33]];
    const descriptors = await writeDeletionVectors(storage, sets);
    expect(descriptors.map((d) => [d.storageType, d.cardinality, d.pathOrInlineDv.length])).toEqual([
      ['u', 3, 20],
      ['u', 6000, 20],
      ['u', 1, 20],
    ]);
    expect(descriptors[0]!.offset).toBe(1);
    expect(descriptors[1]!.offset).toBe(1 + 4 + descriptors[0]!.sizeInBytes + 4);
    for (const [i, d] of descriptors.entries()) expect(await readDeletionVector(storage, d, readAbsolute, 'x')).toEqual(sets[i]);
    const file = storage.locate(deletionVectorFile(descriptors[0]!, 'x').relative!);
    const bytes = readFileSync(file);
    bytes[descriptors[0]!.offset! + 4 + 2]! ^= 0xff;
    writeFileSync(file, bytes);
    await expect(readDeletionVector(storage, descriptors[0]!, readAbsolute, 'file a.parquet')).rejects.toThrow(/corrupt deletion vector deletion_vector_.*\.bin at offset 1 \(file a\.parquet\): checksum mismatch/);
  });

  it('reads an inline vector', async () => {
    const data = serializeRoaringArray([4, 9]);
    const dv = { storageType: 'i', pathOrInlineDv: z85Encode(data), sizeInBytes: data.length, cardinality: 2 };
    expect(await readDeletionVector(new LocalStorage(tmp.dir), dv, readAbsolute, 'x')).toEqual([4, 9]);
  });
});

describe('row positions from DuckDB bitmaps (a merge\'s replaced rows)', () => {
  it('setBits reads back the positions bitstring_agg sets, for lengths that leave every padding from 0 to 7 bits, united with earlier ones', async () => {
    for (const length of [1, 7, 8, 9, 15, 16, 17, 100, 1001, 65_537]) {
      const sets = [[0], [length - 1], Array.from({ length: Math.ceil(length / 3) }, (_, i) => 3 * i), [...new Set([0, 1, 2, Math.floor(length / 2), length - 2, length - 1].filter((p) => p >= 0 && p < length))].sort((a, b) => a - b)];
      for (const positions of sets) {
        const r = await db.session.query(`select bitstring_agg(p, 0, ${length - 1}), cast(bitstring_agg(p, 0, ${length - 1}) as varchar) from unnest([${positions.join(', ')}]) as t(p)`);
        const [bytes, text] = r.rows[0]!;
        expect(setBits(bytes), `length ${length}`).toEqual(positions);
        expect(setBits(text), `length ${length} as text`).toEqual(positions);
        // United with earlier positions (a vector's): some the same, some new, some past the string (stats that understate a file's rows).
        const earlier = [...new Set([positions[0]!, Math.floor(length / 3), length - 1])].sort((a, b) => a - b);
        const union = [...new Set([...positions, ...earlier])].sort((a, b) => a - b);
        expect(setBits(bytes, earlier), `length ${length} with ${earlier.join(',')}`).toEqual(union);
        expect(setBits(text, earlier)).toEqual(union);
        expect(setBits(bytes, [...earlier, length + 5])).toEqual([...union, length + 5]);
        // The bytes are left as they were.
        expect(setBits(bytes)).toEqual(positions);
      }
    }
  });
});
