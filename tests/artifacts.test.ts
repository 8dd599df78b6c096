// target/ artifacts: manifest.json is written piece by piece (artifacts.ts,
// writeManifest) and must be byte for byte what JSON.stringify gives.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeManifest } from '../core/compiler/artifacts.js';
import type { Manifest } from '../core/compiler/manifest.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-artifacts-'));
  dirs.push(d);
  return d;
};

describe('writeManifest', () => {
  it('writes exactly JSON.stringify(manifest), across many pieces and multi-byte characters', async () => {
    const nodes: Record<string, unknown> = {};
    // ~6 MB: several 2M-character pieces, with multi-byte text on every entry.
    for (let i = 0; i < 20_000; i++) {
      nodes[`model.p.m${i}`] = { name: `m${i}`, raw_code: `select 'é ✓ 😀 "q" \\\\ \n' as x -- ${'x'.repeat(200)}`, tags: ['a', i], config: { enabled: i % 2 === 0, meta: {} }, skipped: undefined };
    }
    nodes['2'] = { integer_like_key: true }; // ordered first by JSON.stringify, as by Object.entries
    nodes['model.p.gone'] = undefined;
    const manifest = { metadata: { dbt_schema_version: 'x', generated_at: '2026-01-01' }, nodes, sources: {}, list: [1, 'two', null], nothing: null, n: 3, skipped: undefined, parent_map: { a: ['b', 'c'] } } as unknown as Manifest;
    const dir = tempDir();
    await writeManifest(dir, manifest);
    const written = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    expect(written.length).toBeGreaterThan(5_000_000);
    expect(written).toBe(JSON.stringify(manifest));
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });

  it('a failed write rejects and leaves the previous manifest.json as it was, with no temporary file', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'manifest.json'), '{"old":true}');
    // A value JSON.stringify cannot serialise, in the middle of the nodes.
    const manifest = { metadata: {}, nodes: { a: { ok: 1 }, b: { n: 10n } } } as unknown as Manifest;
    await expect(writeManifest(dir, manifest)).rejects.toThrow(/BigInt/);
    expect(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe('{"old":true}');
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });
});
