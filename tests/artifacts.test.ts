// target/ artifacts: manifest.json is written piece by piece (artifacts.ts,
// writeManifest) and must be byte for byte what JSON.stringify gives.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readManifestJson, writeJsonStreamed } from '../core/compiler/artifacts.js';
import type { Manifest } from '../core/compiler/manifest.js';
import { compile } from '../core/api.js';
import { freshnessTime, manifestJson } from '../core/artifacts/manifest-json.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-artifacts-'));
  dirs.push(d);
  return d;
};

describe('writeJsonStreamed (writeManifest)', () => {
  it('writes exactly JSON.stringify(manifest), across many pieces and multi-byte characters', async () => {
    const nodes: Record<string, unknown> = {};
    // ~18 MB: more 2 MB pieces than the writer has buffers (so it waits and reuses them), with multi-byte text on every entry.
    for (let i = 0; i < 60_000; i++) {
      nodes[`model.p.m${i}`] = { name: `m${i}`, raw_code: `select 'é ✓ 😀 "q" \\\\ \n' as x -- ${'x'.repeat(200)}`, tags: ['a', i], config: { enabled: i % 2 === 0, meta: {} }, skipped: undefined };
    }
    nodes['2'] = { integer_like_key: true }; // ordered first by JSON.stringify, as by Object.entries
    nodes['model.p.huge'] = { raw_code: 'é'.repeat(800_000) }; // longer than a piece: written on its own
    nodes['model.p.gone'] = undefined;
    const manifest = { metadata: { dbt_schema_version: 'x', generated_at: '2026-01-01' }, nodes, sources: {}, list: [1, 'two', null], nothing: null, n: 3, skipped: undefined, parent_map: { a: ['b', 'c'] } } as unknown as Manifest;
    const dir = tempDir();
    await writeJsonStreamed(dir, 'manifest.json', Object.entries(manifest) as Array<[string, unknown]>);
    const written = fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8');
    expect(written.length).toBeGreaterThan(15_000_000);
    expect(written).toBe(JSON.stringify(manifest));
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });

  it('a failed write rejects and leaves the previous manifest.json as it was, with no temporary file', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'manifest.json'), '{"old":true}');
    // A value JSON.stringify cannot serialise, in the middle of the nodes.
    const manifest = { metadata: {}, nodes: { a: { ok: 1 }, b: { n: 10n } } };
    await expect(writeJsonStreamed(dir, 'manifest.json', Object.entries(manifest) as Array<[string, unknown]>)).rejects.toThrow(/BigInt/);
    expect(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).toBe('{"old":true}');
    expect(fs.readdirSync(dir)).toEqual(['manifest.json']);
  });
});

describe('manifest.json in dbt\'s shape, read back', () => {
  it('reads back exactly the manifest the compiler made (every kind of node), and is what manifestJson gives', async () => {
    const dir = path.join(tempDir(), 'everything');
    fs.cpSync(path.join(import.meta.dirname, 'fixtures/everything'), dir, { recursive: true });
    const { manifest } = await compile({ projectDir: dir, noCache: true });
    const text = fs.readFileSync(path.join(dir, 'target/manifest.json'), 'utf8');
    expect(text).toBe(JSON.stringify(manifestJson(manifest)));
    const json = JSON.parse(text);
    expect(Object.keys(json.unit_tests)).toEqual(['unit_test.everything.customer_totals.totals_per_customer']);
    expect(Object.values(json.nodes).some((n: any) => n.resource_type === 'unit_test' || n.config?.materialized === 'unit_test')).toBe(false);
    // Every macro a node depends on is a complete entry.
    for (const n of Object.values(json.nodes) as any[]) for (const m of n.depends_on.macros) expect(json.macros[m], m).toMatchObject({ unique_id: m, resource_type: 'macro', macro_sql: expect.any(String) });
    expect(json.nodes['model.everything.stg_orders'].depends_on.macros).toEqual(['macro.everything.cents_to_dollars']);
    // Read back: the compiler's own object, key for key.
    const back = readManifestJson(path.join(dir, 'target/manifest.json'))!;
    expect(JSON.parse(JSON.stringify(back))).toEqual(JSON.parse(JSON.stringify(manifest)));
  });

  it('refuses a manifest.json of an older etl, naming the version it needs', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ metadata: { etl_version: '0.1.0', dbt_schema_version: 'x' }, nodes: {} }));
    expect(() => readManifestJson(path.join(dir, 'manifest.json'))).toThrow(/written by etl 0\.1\.0 in manifest layout 1; this etl reads layout 2 \(etl 0\.2 or later\)/);
  });

  it('a yml freshness may be written as dbt writes it, {count, period}, or as "12h"; a period dbt lacks is an error', async () => {
    const dir = tempDir();
    const write = (freshness: string) => {
      fs.mkdirSync(path.join(dir, 'models'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'etl.yml'), 'name: fr\nversion: 1\ntarget: dev\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, schema: main }\n');
      fs.writeFileSync(path.join(dir, 'models/sources.yml'), `sources:\n  - name: raw\n    loaded_at_field: at\n    freshness: ${freshness}\n    tables: [{ name: t }]\n`);
      fs.writeFileSync(path.join(dir, 'models/m.sql'), 'select * from {{source "raw" "t"}}\n');
    };
    write('{ warn_after: { count: 12, period: hour }, error_after: 2d }');
    const { manifest } = await compile({ projectDir: dir, noCache: true });
    expect(manifest.sources['source.fr.raw.t']!.freshness).toEqual({ warn_after: '12h', error_after: '2d' });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'target/manifest.json'), 'utf8'));
    expect(json.sources['source.fr.raw.t'].freshness).toEqual({ warn_after: { count: 12, period: 'hour' }, error_after: { count: 2, period: 'day' }, filter: null });
    write('{ warn_after: { count: 2, period: week } }');
    await expect(compile({ projectDir: dir, noCache: true })).rejects.toThrow(/models\/sources\.yml:\d+/);
  });

  it('source freshness durations become dbt\'s {count, period}', () => {
    expect(freshnessTime('12h')).toEqual({ count: 12, period: 'hour' });
    expect(freshnessTime('1d')).toEqual({ count: 1, period: 'day' });
    expect(freshnessTime('48h')).toEqual({ count: 2, period: 'day' });
    expect(freshnessTime('30m')).toEqual({ count: 30, period: 'minute' });
    expect(freshnessTime('1.5h')).toEqual({ count: 90, period: 'minute' });
    expect(freshnessTime('90s')).toEqual({ count: 2, period: 'minute' });
    expect(freshnessTime(undefined)).toBeNull();
  });
});
