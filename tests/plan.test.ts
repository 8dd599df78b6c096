import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProject } from '../core/project/load.js';
import { compileProject } from '../core/compiler/compile.js';
import type { Manifest } from '../core/compiler/manifest.js';
import { ProjectError } from '../core/errors.js';
import { descendantsInPlan, planRun } from '../core/plan/plan.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** seed s -> a -> e (ephemeral) -> b -> c, and d off a. */
async function compiled(): Promise<Manifest> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-plan-test-'));
  dirs.push(root);
  const files: Record<string, string> = {
    'etl.yml': 'name: p\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, schema: main }\n',
    'seeds/s.csv': 'id\n1\n',
    'models/a.sql': 'select * from {{ref "s"}}',
    'models/e.sql': '{{config materialized="ephemeral"}}\nselect * from {{ref "a"}}',
    'models/b.sql': 'select * from {{ref "e"}}',
    'models/c.sql': 'select * from {{ref "b"}}',
    'models/d.sql': 'select * from {{ref "a"}}',
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return (await compileProject(loadProject(root, { env: {} }), {})).manifest;
}

const all = (m: Manifest) => new Set(Object.keys(m.nodes));
const TYPES = new Set(['seed', 'model', 'test'] as const);

describe('planRun', () => {
  it('orders the runnable nodes, with edges passing through an ephemeral model', async () => {
    const m = await compiled();
    const plan = planRun(m, all(m), TYPES);
    expect(plan.ids).toEqual(['seed.p.s', 'model.p.a', 'model.p.b', 'model.p.d', 'model.p.c']);
    expect(plan.parents.get('model.p.b')).toEqual(['model.p.a']);
    expect(descendantsInPlan(plan, 'model.p.a')).toEqual(['model.p.b', 'model.p.d', 'model.p.c']);
    // Unselected a: b and d no longer wait on anything.
    const some = planRun(m, new Set(['model.p.b', 'model.p.d']), TYPES);
    expect(some.ids).toEqual(['model.p.b', 'model.p.d']);
    expect(some.parents.get('model.p.b')).toEqual([]);
  });

  it('refuses a manifest whose edges loop, naming every member of the cycle in order', async () => {
    const m = await compiled();
    // A stale or hand-edited manifest: a now also depends on c (through the ephemeral e on the way back).
    m.parent_map['model.p.a']!.push('model.p.c');
    m.child_map['model.p.c']!.push('model.p.a');
    let error: unknown;
    try {
      planRun(m, all(m), TYPES);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProjectError);
    const message = (error as ProjectError).message;
    expect(message).toContain('dependency cycle a -> c -> b -> a (model.p.a, model.p.c, model.p.b)');
    // The nodes outside the cycle are not the problem and are not named.
    expect(message).not.toContain('model.p.d');
    expect((error as ProjectError).exitCode).toBe(2);
  });
});
