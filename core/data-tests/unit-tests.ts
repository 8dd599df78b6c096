// Unit tests (`unit_tests:` in models/*.yml): a model's SQL run on fixed
// input rows, compared with expected rows. The model is re-rendered with each
// ref/source pointing at a fixture table in a scratch schema of its own, so a
// unit test reads no real relation and needs nothing built upstream.

import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Dialect } from '../../adapters/dialect.js';
import { didYouMean, type Diagnostic } from '../errors.js';
import type { Project, UnitTestDefinition } from '../project/load.js';
import type { ManifestNode, ManifestSource } from '../compiler/manifest.js';

export interface UnitTestPlan {
  /** Scratch schema, created for the test and dropped after it. */
  schema: string;
  /**
   * Fixture tables. `like` is the real relation the fixture stands for: when it
   * exists at run time its column types are used, so a column that is null in
   * every given row still gets the type the model expects.
   */
  fixtures: Array<{ name: string; sql: string; columns: string[]; like?: { schema: string; name: string } }>;
  expectedSql: string;
  /** Columns compared: those the expected rows name. */
  columns: string[];
  /** The yml entry as written, for manifest.json's unit_tests (dbt's UnitTestDefinition). */
  definition: {
    model: string;
    given: Array<{ input: string; rows?: unknown; format?: 'dict' | 'csv'; fixture?: string }>;
    expect: { rows?: unknown; format?: 'dict' | 'csv'; fixture?: string };
    overrides?: { vars?: Record<string, unknown> };
  };
}

export interface UnitTestCompileInput {
  project: Project;
  dialect: Dialect;
  nodesByName: ReadonlyMap<string, ManifestNode>;
  sources: Record<string, ManifestSource>;
  /** Renders a model with refs and sources resolved by the given functions. */
  renderModel(model: ManifestNode, resolveRef: (name: string) => string, resolveSource: (source: string, table: string) => string, options: { isIncremental: boolean; vars: Record<string, unknown> }): string;
  errors: Diagnostic[];
}

const REF_INPUT = /^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$/;
const SOURCE_INPUT = /^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$/;

/** Fixture files the unit tests read: inputs of the compile, like the project's own files. */
export function unitTestFixtureFiles(project: Project): string[] {
  const out = new Set<string>();
  for (const t of project.unitTests) {
    for (const f of [...(t.given ?? []).map((g) => g.fixture), t.expect.fixture]) if (f) out.add(path.resolve(project.root, f));
  }
  return [...out].sort();
}

export function compileUnitTests(input: UnitTestCompileInput): ManifestNode[] {
  const out: ManifestNode[] = [];
  const seen = new Map<string, UnitTestDefinition>();
  for (const def of input.project.unitTests) {
    const node = compileOne(input, def);
    if (!node) continue;
    const other = seen.get(node.name);
    if (other) {
      input.errors.push(def.yaml.diagnostic([...def.yamlPath, 'name'], `two unit tests are named "${node.name}"`, `the other is at ${other.declaredIn.file}:${other.declaredIn.line}`));
      continue;
    }
    seen.set(node.name, def);
    out.push(node);
  }
  return out;
}

function compileOne(input: UnitTestCompileInput, def: UnitTestDefinition): ManifestNode | undefined {
  const { project, dialect, errors } = input;
  const fail = (sub: Array<string | number>, message: string, hint?: string) => {
    errors.push(def.yaml.diagnostic([...def.yamlPath, ...sub], message, hint));
    return undefined;
  };
  if (def.config?.enabled === false) return undefined;
  const model = input.nodesByName.get(def.model);
  if (!model || model.resource_type !== 'model') {
    return fail(['model'], `unit test ${def.name}: unknown model "${def.model}"`, didYouMean(def.model, [...input.nodesByName.values()].filter((n) => n.resource_type === 'model').map((n) => n.name)));
  }
  // Per target schema, so runs into two schemas of one database never share a scratch schema.
  const schema = scratchSchema(`${project.target.schema}__${def.name}`);
  const fixtures: UnitTestPlan['fixtures'] = [];
  const refTables = new Map<string, string>();
  const sourceTables = new Map<string, string>();
  let thisTable: string | undefined;
  let ok = true;
  (def.given ?? []).forEach((given, i) => {
    const rows = readRows(project.root, given.rows, given.format, given.fixture);
    if ('error' in rows) {
      fail(['given', i], `unit test ${def.name}: ${rows.error}`);
      ok = false;
      return;
    }
    const name = `given_${i}`;
    const relation = dialect.relation(schema, name);
    const ref = REF_INPUT.exec(given.input);
    const src = SOURCE_INPUT.exec(given.input);
    let like: { schema: string; name: string } | undefined;
    if (ref) {
      refTables.set(ref[1]!, relation);
      const target = input.nodesByName.get(ref[1]!);
      if (target?.relation_name) like = { schema: target.schema, name: target.alias };
    } else if (src) {
      sourceTables.set(`${src[1]}.${src[2]}`, relation);
      const s2 = Object.values(input.sources).find((x) => x.source_name === src[1] && x.name === src[2]);
      if (s2) like = { schema: s2.schema, name: s2.identifier };
    } else if (given.input.trim() === 'this') {
      thisTable = relation;
      like = { schema: model.schema, name: model.alias };
    }
    else {
      fail(['given', i, 'input'], `unit test ${def.name}: input "${given.input}" is not ref('model'), source('source', 'table') or this`);
      ok = false;
      return;
    }
    fixtures.push({ name, sql: rowsToSelect(rows.rows, rows.columns, dialect), columns: rows.columns, like });
  });
  if (!ok) return undefined;

  // Every input of the model needs a fixture, and every fixture an input.
  const missing = [
    ...model.refs.filter((r) => !refTables.has(r.name)).map((r) => `ref('${r.name}')`),
    ...model.sources.filter(([s, t]) => !sourceTables.has(`${s}.${t}`)).map(([s, t]) => `source('${s}', '${t}')`),
  ];
  if (missing.length) {
    return fail(['given'], `unit test ${def.name}: no given rows for ${missing.join(', ')}`, `add - input: ${missing[0]} with rows: for each input of ${model.name}`);
  }
  for (const name of refTables.keys()) {
    if (!model.refs.some((r) => r.name === name)) return fail(['given'], `unit test ${def.name}: ${model.name} does not ref "${name}"`, `inputs of ${model.name}: ${[...model.refs.map((r) => r.name), ...model.sources.map(([s, t]) => `${s}.${t}`)].join(', ')}`);
  }

  const expectRows = readRows(project.root, def.expect.rows, def.expect.format, def.expect.fixture);
  if ('error' in expectRows) return fail(['expect'], `unit test ${def.name}: ${expectRows.error}`);
  let sql: string;
  try {
    sql = input.renderModel(
      model,
      (name) => refTables.get(name)!,
      (s, t) => sourceTables.get(`${s}.${t}`)!,
      { isIncremental: def.overrides?.is_incremental ?? false, vars: def.overrides?.vars ?? {} },
    );
  } catch (err) {
    return fail([], `unit test ${def.name}: rendering ${model.name} failed: ${(err as Error).message}`);
  }
  if (thisTable) sql = sql.split(model.relation_name ?? '\u0000').join(thisTable);

  const tags = def.config?.tags === undefined ? [] : Array.isArray(def.config.tags) ? def.config.tags : [def.config.tags];
  const definition: UnitTestPlan['definition'] = { model: def.model, given: def.given ?? [], expect: def.expect };
  if (def.overrides?.vars) definition.overrides = { vars: def.overrides.vars };
  const plan: UnitTestPlan = { schema, fixtures, expectedSql: rowsToSelect(expectRows.rows, expectRows.columns, dialect), columns: expectRows.columns, definition };
  return {
    // dbt's id: unit_test.<project>.<model>.<name>
    unique_id: `unit_test.${project.name}.${model.name}.${def.name}`,
    resource_type: 'test',
    package_name: project.name,
    name: def.name,
    path: def.declaredIn.file,
    original_file_path: def.declaredIn.file,
    fqn: [project.name, model.name, def.name],
    database: null,
    schema,
    alias: def.name,
    relation_name: null,
    raw_code: '',
    compiled_code: sql,
    compiled_path: path.posix.join(project.compiledDir, def.declaredIn.file, `${def.name}.sql`),
    language: 'sql',
    depends_on: { nodes: [model.unique_id], macros: [] },
    refs: [],
    sources: [],
    config: { materialized: 'unit_test', enabled: true, tags, pre_hook: [], post_hook: [], retries: 0, meta: def.config?.meta ?? {}, severity: 'error' },
    tags,
    description: def.description ?? '',
    columns: {},
    meta: def.config?.meta ?? {},
    checksum: { name: 'sha256', checksum: createHash('sha256').update(JSON.stringify([def.name, def.model, def.given, def.expect, def.overrides, model.checksum.checksum])).digest('hex') },
    patch_path: def.declaredIn.file,
    attached_node: model.unique_id,
    unit_test: plan,
  };
}

/** A schema name of letters, digits and _; a name that had to be changed (`a-b`) or cut keeps a hash of the original, so `a-b` and `a_b` get two. */
export function scratchSchema(name: string): string {
  const raw = `etl_unit__${name}`;
  const base = raw.replace(/[^A-Za-z0-9_]/g, '_');
  if (base === raw && base.length <= 50) return base;
  return `${base.slice(0, 38)}_${createHash('md5').update(raw).digest('hex').slice(0, 10)}`;
}

type Rows = { rows: Array<Record<string, unknown>>; columns: string[] };

function readRows(root: string, rows: unknown, format: 'dict' | 'csv' | undefined, fixture: string | undefined): Rows | { error: string } {
  if (fixture) {
    const file = path.resolve(root, fixture);
    if (!existsSync(file)) return { error: `fixture file ${fixture} does not exist` };
    return parseCsv(readFileSync(file, 'utf8'));
  }
  if (typeof rows === 'string' || format === 'csv') {
    if (typeof rows !== 'string') return { error: 'format: csv needs rows: as a CSV text block' };
    return parseCsv(rows);
  }
  if (!Array.isArray(rows) || rows.length === 0) return { error: 'rows must be a non-empty list of mappings (or a CSV block with format: csv)' };
  const columns: string[] = [];
  for (const r of rows as Array<Record<string, unknown>>) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  return { rows: rows as Array<Record<string, unknown>>, columns };
}

/**
 * A CSV fixture (csv-parse; "" escapes a quote, CRLF and a BOM are fine): the
 * header, then one row per non-blank record, each value typed by fixtureValue.
 */
export function parseCsv(text: string): Rows | { error: string } {
  let records: Array<Array<{ value: string; quoted: boolean }>>;
  try {
    records = csvParse()(text, { bom: true, skip_empty_lines: true, cast: (value, context) => ({ value, quoted: context.quoting }) }) as never;
  } catch (err) {
    return { error: `the CSV does not parse: ${(err as Error).message}` };
  }
  records = records.filter((r) => r.some((f) => f.quoted || f.value.trim() !== ''));
  if (records.length < 2) return { error: 'a CSV fixture needs a header row and at least one data row' };
  const columns = records[0]!.map((c) => c.value.trim());
  const rows = records.slice(1).map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ? fixtureValue(r[i]!.value, r[i]!.quoted) : null])));
  return { rows, columns };
}

/** csv-parse, loaded on first use: every command loads this module, few read a CSV fixture. */
let csvParseSync: typeof import('csv-parse/sync').parse | undefined;
function csvParse(): typeof import('csv-parse/sync').parse {
  csvParseSync ??= (createRequire(import.meta.url)('csv-parse/sync') as typeof import('csv-parse/sync')).parse;
  return csvParseSync;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$/;
const BOOLEAN = /^(?:true|false)$/i;

/**
 * A fixture value, by the seed reader's rules (adapters/postgres/csv-types.ts,
 * classifyValue): a quoted value is text as written, an unquoted empty one is
 * null, an integer with a leading zero stays text (ids, zip codes), other
 * numbers and true/false are typed. Integers past 2^53 stay exact, as text.
 */
export function fixtureValue(v: string, quoted: boolean): unknown {
  if (quoted) return v;
  if (v === '') return null;
  if (INTEGER.test(v)) {
    const digits = v.replace(/^[+-]/, '');
    if (digits.length > 1 && digits.startsWith('0')) return v;
    return Number.isSafeInteger(Number(v)) ? Number(v) : v;
  }
  if (BOOLEAN.test(v)) return v.toLowerCase() === 'true';
  if (DECIMAL.test(v)) return Number(v);
  return v;
}

function literal(v: unknown, dialect: Dialect): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  const s = v instanceof Date ? v.toISOString() : String(v);
  // Dates and timestamps become typed literals so date arithmetic in the model works.
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return `date ${dialect.quoteString(s)}`;
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) return `timestamp ${dialect.quoteString(s.replace('T', ' '))}`;
  return dialect.quoteString(s);
}

/** `select * from (values ...) as t(cols)`: fixture rows as a query. */
export function rowsToSelect(rows: Array<Record<string, unknown>>, columns: string[], dialect: Dialect): string {
  const values = rows.map((r) => `(${columns.map((c) => literal(r[c], dialect)).join(', ')})`).join(',\n  ');
  return `select * from (values\n  ${values}\n) as etl_fixture(${columns.map((c) => dialect.quoteIdentifier(c)).join(', ')})`;
}
