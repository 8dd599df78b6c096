// Turns the `tests:` entries of models/*.yml (on columns, models, seeds and
// source tables) into test nodes of the manifest: built-in generic tests,
// custom generic tests from macros/tests/*.sql, each with its config
// (severity, thresholds, where, limit, store_failures, tags) checked here,
// at compile time, with the yml file:line of the entry.

import { hash } from 'node:crypto';
import path from 'node:path';
import type { Dialect } from '../../adapters/dialect.js';
import { selectBody } from '../../adapters/sql-text.js';
import { didYouMean, type Diagnostic } from '../errors.js';
import type { Project, ResourceProperties, SourceDefinition } from '../project/load.js';
import type { YamlFile, YamlPath } from '../project/yaml.js';
import type { ManifestNode, ManifestSource, NodeConfig } from '../compiler/manifest.js';
import { BUILTIN_TESTS, TEST_CONFIG_KEYS, type GenericTestInput } from './generic.js';
import { parseThreshold } from './threshold.js';
import { synthesizeTestNames, testIdHash, testModelKwarg } from './test-names.js';

export interface CustomGenericTest {
  name: string;
  path: string;
  /** Renders the test template with {model, column_name, ...args}; throws on template errors. */
  render(context: Record<string, unknown>): string;
  /** Models the template itself refs. */
  dependsOn: string[];
}

export interface DataTestCompileInput {
  project: Project;
  dialect: Dialect;
  nodesByName: ReadonlyMap<string, ManifestNode>;
  sources: Record<string, ManifestSource>;
  customTests: ReadonlyMap<string, CustomGenericTest>;
  errors: Diagnostic[];
}

interface Subject {
  kind: 'model' | 'seed' | 'snapshot' | 'source';
  uniqueId: string;
  /** Name used in test names: the model name, or source_table. */
  label: string;
  /** Sources: the source's name (label is <source>_<table>); the table is `name`. */
  source?: string;
  name: string;
  /** The model's tags (tests inherit them, as in dbt). */
  tags: string[];
  relation: string;
  declaredColumns: Set<string>;
  yaml: YamlFile;
  yamlPath: YamlPath;
  ymlFile: string;
  folder: string[];
}

const REF_ARG = /^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$/;
const SOURCE_ARG = /^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$/;

export function compileGenericTests(input: DataTestCompileInput): ManifestNode[] {
  const { project, errors } = input;
  const out: ManifestNode[] = [];
  const names = new Map<string, { yaml: YamlFile; at: YamlPath }>();
  const subjects: Array<{ subject: Subject; props: ResourceProperties | SourceDefinition['tables'][number] }> = [];

  for (const kind of ['model', 'seed', 'snapshot'] as const) {
    for (const [name, props] of project.properties[kind]) {
      const node = input.nodesByName.get(name);
      if (!node || node.resource_type !== kind || !node.relation_name) continue;
      subjects.push({
        subject: {
          kind,
          uniqueId: node.unique_id,
          label: name,
          name,
          tags: node.config.tags,
          relation: node.relation_name,
          declaredColumns: new Set((props.columns ?? []).map((c) => c.name)),
          yaml: props.yaml,
          yamlPath: props.yamlPath,
          ymlFile: props.declaredIn.file,
          folder: node.fqn.slice(1, -1),
        },
        props,
      });
    }
  }
  for (const source of project.sources) {
    source.tables.forEach((table, ti) => {
      const src = Object.values(input.sources).find((s) => s.source_name === source.name && s.name === table.name);
      if (!src) return;
      subjects.push({
        subject: {
          kind: 'source',
          uniqueId: src.unique_id,
          label: `${source.name}_${table.name}`,
          source: source.name,
          name: table.name,
          tags: src.tags,
          relation: src.relation_name,
          declaredColumns: new Set((table.columns ?? []).map((c) => c.name)),
          yaml: source.yaml,
          yamlPath: [...source.yamlPath, 'tables', ti],
          ymlFile: source.declaredIn.file,
          folder: [],
        },
        props: table,
      });
    });
  }

  for (const { subject, props } of subjects) {
    const entries: Array<{ entry: unknown; at: YamlPath; column?: string; columnTags?: string[] }> = [];
    const modelTests = props.data_tests ?? props.tests ?? [];
    const modelKey = props.data_tests ? 'data_tests' : 'tests';
    modelTests.forEach((entry, i) => entries.push({ entry, at: [...subject.yamlPath, modelKey, i] }));
    (props.columns ?? []).forEach((c, ci) => {
      const list = c.data_tests ?? c.tests ?? [];
      const key = c.data_tests ? 'data_tests' : 'tests';
      const columnTags = c.tags === undefined ? [] : Array.isArray(c.tags) ? c.tags : [c.tags];
      list.forEach((entry, i) => entries.push({ entry, at: [...subject.yamlPath, 'columns', ci, key, i], column: c.name, columnTags }));
    });
    for (const { entry, at, column, columnTags } of entries) {
      const node = compileOne(input, subject, entry, at, column, columnTags ?? []);
      if (!node) continue;
      const other = names.get(node.name);
      if (other) {
        errors.push(subject.yaml.diagnostic(at, `two tests are named "${node.name}"`, `the other is declared at ${other.yaml.file}:${other.yaml.locate(other.at).line}; give one a distinct name: with name: my_test_name`));
        continue;
      }
      names.set(node.name, { yaml: subject.yaml, at });
      out.push(node);
    }
  }
  return out;
}

function compileOne(input: DataTestCompileInput, subject: Subject, entry: unknown, at: YamlPath, column: string | undefined, columnTags: string[]): ManifestNode | undefined {
  const { errors, dialect, project } = input;
  const fail = (message: string, hint?: string, sub: YamlPath = []) => {
    errors.push(subject.yaml.diagnostic([...at, ...sub], message, hint));
    return undefined;
  };
  let testName: string;
  let raw: Record<string, unknown>;
  if (typeof entry === 'string') {
    testName = entry;
    raw = {};
  } else if (entry && typeof entry === 'object' && Object.keys(entry).length === 1) {
    testName = Object.keys(entry)[0]!;
    const value = (entry as Record<string, unknown>)[testName];
    if (value !== null && value !== undefined && (typeof value !== 'object' || Array.isArray(value))) {
      return fail(`arguments of test "${testName}" must be a mapping`, `write - ${testName}: { ... }`);
    }
    raw = (value as Record<string, unknown>) ?? {};
  } else {
    return fail('a test entry is a test name, or a mapping with one test name', 'e.g. - not_null, or - accepted_values: { values: [a, b] }');
  }

  const builtin = BUILTIN_TESTS[testName];
  const custom = input.customTests.get(testName);
  if (!builtin && !custom) {
    const known = [...Object.keys(BUILTIN_TESTS), ...input.customTests.keys()];
    return fail(`unknown test "${testName}"`, didYouMean(testName, known) ?? `built-in tests: ${Object.keys(BUILTIN_TESTS).join(', ')}; custom generic tests are macros/tests/<name>.sql`);
  }

  // Config keys may sit beside the arguments or under config:; arguments may sit under arguments:.
  const config: Record<string, unknown> = {};
  let args: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'config' && v && typeof v === 'object') Object.assign(config, v);
    else if (k === 'arguments' && v && typeof v === 'object') Object.assign(args, v);
    else if ((TEST_CONFIG_KEYS as readonly string[]).includes(k)) config[k] = v;
    else args[k] = v;
  }
  for (const k of Object.keys(config)) {
    if (!(TEST_CONFIG_KEYS as readonly string[]).includes(k)) return fail(`unknown test config key "${k}"`, didYouMean(k, TEST_CONFIG_KEYS) ?? `test config keys: ${TEST_CONFIG_KEYS.join(', ')}`, [testName]);
  }
  if (config.severity !== undefined && config.severity !== 'error' && config.severity !== 'warn') {
    return fail(`severity must be error or warn, got ${JSON.stringify(config.severity)}`, undefined, [testName]);
  }
  for (const key of ['warn_if', 'error_if'] as const) {
    if (config[key] !== undefined && !parseThreshold(String(config[key]))) {
      return fail(`malformed threshold ${key}: ${JSON.stringify(config[key])}`, 'write a comparison with a number, e.g. ">10", ">=5", "!=0"', [testName]);
    }
  }
  if (config.limit !== undefined && (!Number.isInteger(config.limit) || (config.limit as number) < 0)) {
    return fail(`limit must be a non-negative integer`, undefined, [testName]);
  }
  if (config.enabled === false) return undefined;

  const dependsOn = new Set<string>([subject.uniqueId]);
  const resolveRelation = (expr: string): string => {
    const ref = REF_ARG.exec(expr);
    if (ref) {
      const target = input.nodesByName.get(ref[1]!);
      if (!target || !target.relation_name) throw new Error(`unknown ref "${ref[1]}"${didYouMean(ref[1]!, input.nodesByName.keys()) ? ` (${didYouMean(ref[1]!, input.nodesByName.keys())})` : ''}`);
      dependsOn.add(target.unique_id);
      return target.relation_name;
    }
    const src = SOURCE_ARG.exec(expr);
    if (src) {
      const s = Object.values(input.sources).find((x) => x.source_name === src[1] && x.name === src[2]);
      if (!s) throw new Error(`unknown source "${src[1]}.${src[2]}"`);
      dependsOn.add(s.unique_id);
      return s.relation_name;
    }
    throw new Error(`"${expr}" is not ref('model') or source('source', 'table')`);
  };

  const model = config.where ? `(select * from ${subject.relation} where ${config.where}) as etl_subquery` : subject.relation;
  let sql: string;
  let failingRow: string | undefined;
  if (builtin) {
    if (builtin.column === 'required' && !column) return fail(`test "${testName}" belongs under a column`, `move it to columns: - name: <column> / tests: [${testName}]`);
    if (builtin.column === 'none' && column) return fail(`test "${testName}" applies to the whole ${subject.kind}, not a column`, `move it to the ${subject.kind}'s tests:`);
    if (testName === 'unique' && !column && !args.columns) return fail('unique at model level needs columns: [a, b]', 'or put unique under a column');
    const parsed = builtin.args.safeParse(args);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const key = String(issue.path[0] ?? (issue as { keys?: string[] }).keys?.[0] ?? '');
      const known = Object.keys((builtin.args as unknown as { shape?: Record<string, unknown> }).shape ?? {});
      if (issue.code === 'unrecognized_keys') return fail(`unknown argument "${key}" for test ${testName}`, didYouMean(key, [...known, ...TEST_CONFIG_KEYS]) ?? undefined, [testName]);
      if (issue.code === 'invalid_type' && args[key] === undefined) return fail(`test ${testName} needs the argument "${key}"`, undefined, [testName]);
      return fail(`test ${testName}: ${key ? `${key}: ` : ''}${issue.message}`, undefined, [testName]);
    }
    const referencedColumns = [...((args.columns as string[] | undefined) ?? [])];
    if (subject.declaredColumns.size) {
      for (const c of referencedColumns) {
        if (!subject.declaredColumns.has(c)) return fail(`test ${testName} names column "${c}", which ${subject.label} does not declare`, didYouMean(c, subject.declaredColumns) ?? `declared columns: ${[...subject.declaredColumns].join(', ')}`, [testName]);
      }
    }
    const testInput: GenericTestInput = { model, relation: subject.relation, column, args, dialect, resolveRelation };
    try {
      sql = builtin.sql(testInput);
      failingRow = builtin.failingRow?.(testInput);
      if (failingRow && config.where) failingRow = `(${config.where}) and (${failingRow})`;
    } catch (err) {
      return fail(`test ${testName}: ${(err as Error).message}`, undefined, [testName]);
    }
  } else {
    try {
      sql = custom!.render({ model, column_name: column, ...args });
    } catch (err) {
      return fail(`test ${testName} (${custom!.path}): ${(err as Error).message}`);
    }
    for (const dep of custom!.dependsOn) dependsOn.add(dep);
  }
  if (config.limit !== undefined) sql = `select * from (\n${selectBody(sql)}\n) as etl_limited limit ${Number(config.limit)}`;

  // dbt's names (core/data-tests/test-names.ts): the full name, a hashed alias when it is long, an id with a hash.
  const namingArgs = { ...args, ...(column ? { column_name: column } : {}) };
  const synthesized = synthesizeTestNames(subject.kind === 'source' ? `source_${testName}` : testName, subject.label, namingArgs);
  const custom_name = typeof config.name === 'string' ? config.name : undefined;
  const name = custom_name ?? synthesized.name;
  const alias = custom_name ?? synthesized.alias;
  const kwargs: Record<string, unknown> = { ...namingArgs, model: testModelKwarg({ kind: subject.kind, name: subject.name, source: subject.source }) };
  const testMetadata = { name: testName, kwargs, namespace: null };
  // The names etl gave before it followed dbt's, still accepted by --select.
  const otherNames = [...new Set([alias, testNodeName(testName, subject.label, column, args)])].filter((n) => n !== name);
  const auditSchema = `${project.target.schema}_etl_test__audit`;
  // As in dbt, a test carries its model's tags and its column's tags besides its own.
  const ownTags = config.tags === undefined ? [] : Array.isArray(config.tags) ? config.tags.map(String) : [String(config.tags)];
  const tags = [...new Set([...subject.tags, ...columnTags, ...ownTags])].sort();
  const nodeConfig: NodeConfig = {
    materialized: 'test',
    enabled: true,
    tags,
    pre_hook: [],
    post_hook: [],
    retries: 0,
    meta: (config.meta as Record<string, unknown>) ?? {},
    severity: (config.severity as 'error' | 'warn' | undefined) ?? 'error',
    warn_if: config.warn_if !== undefined ? String(config.warn_if) : '!=0',
    error_if: config.error_if !== undefined ? String(config.error_if) : '!=0',
    where: config.where as string | undefined,
    limit: config.limit as number | undefined,
    store_failures: (config.store_failures as boolean | undefined) ?? false,
  };
  return {
    unique_id: `test.${project.name}.${name}.${testIdHash(name, testMetadata)}`,
    resource_type: 'test',
    package_name: project.name,
    name,
    path: subject.ymlFile,
    original_file_path: subject.ymlFile,
    fqn: [project.name, ...subject.folder, name],
    database: null,
    schema: auditSchema,
    alias,
    relation_name: nodeConfig.store_failures ? dialect.relation(auditSchema, alias) : null,
    raw_code: `{{ test_${testName}(**${JSON.stringify(args)}) }}`,
    compiled_code: sql,
    compiled_path: path.posix.join(project.compiledDir, subject.ymlFile, `${alias}.sql`),
    language: 'sql',
    depends_on: { nodes: [...dependsOn], macros: custom ? [`macro.${project.name}.test_${testName}`] : [] },
    refs: [],
    sources: [],
    config: nodeConfig,
    tags,
    description: '',
    columns: {},
    meta: nodeConfig.meta,
    checksum: { name: 'sha256', checksum: hash('sha256', JSON.stringify([testName, subject.uniqueId, column ?? null, args, config]), 'hex') },
    patch_path: null,
    test_metadata: testMetadata,
    ...(otherNames.length ? { other_names: otherNames } : {}),
    attached_node: subject.uniqueId,
    column_name: column ?? null,
    row_condition: failingRow,
  };
}

/** etl's names before it followed dbt's: kept so that selectors written for them still work. */
function testNodeName(test: string, label: string, column: string | undefined, args: Record<string, unknown>): string {
  const flat: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    else if (v !== undefined && v !== null) flat.push(String(v));
  };
  walk(args);
  const full = [test, label, column, ...flat]
    .filter((p): p is string => !!p)
    .join('_')
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .replace(/_+$/, '');
  if (full.length <= 63) return full;
  return `${full.slice(0, 52)}_${hash('md5', full, 'hex').slice(0, 10)}`;
}
