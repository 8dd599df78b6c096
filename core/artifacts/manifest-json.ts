// manifest.json as dbt's manifest v12 schema has it, and back. The compiler's
// Manifest (core/compiler/manifest.ts) is what the planner and runner read;
// this module is the one place that knows how it is written for dbt's tools:
// keys dbt's schema forbids move where it allows extra keys (a node's
// `config.etl`, `metadata.env`), unit tests go under `unit_tests`, seeds lose
// the keys a dbt seed has not. Reading a manifest.json back (the compile
// cache, --state) undoes exactly that, so nothing is lost on the way.

import { createHash } from 'node:crypto';
import type { Manifest, ManifestNode, ManifestSource } from '../compiler/manifest.js';
import type { UnitTestPlan } from '../data-tests/unit-tests.js';

export const MANIFEST_SCHEMA = 'https://schemas.getdbt.com/dbt/manifest/v12.json';
/** The dbt release whose artifact shapes etl follows (the schemas in tests/fixtures/dbt-schemas). */
export const DBT_VERSION = '1.13.0';
/**
 * The manifest layout this etl writes. A manifest.json without it (written
 * by etl before 0.2) is refused where it is read back, with a message.
 */
export const MANIFEST_LAYOUT = '2';

/** etl's own node fields, kept under `config.etl` in manifest.json. */
interface NodeExtras {
  compiled_incremental_code?: string;
  other_names?: string[];
  row_condition?: string;
  unit_test?: UnitTestPlan;
  /** Unit tests: the internal node's fields that UnitTestDefinition has no key for. */
  node?: Partial<ManifestNode>;
}

type Json = Record<string, unknown>;

const SEED_OMITS = ['refs', 'sources', 'compiled_code', 'compiled_path', 'language'] as const;

const quoteName = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A node's or source's database and relation_name in manifest.json: with the target's database, as a user types them. */
function withDatabase(out: Json, database: string | null | undefined): void {
  if (!database || out.database !== null) return;
  out.database = database;
  if (typeof out.relation_name === 'string') out.relation_name = `${quoteName(database)}.${out.relation_name}`;
}

function withoutDatabase(node: { database: string | null; relation_name: string | null }, database: string | null | undefined): void {
  if (!database || node.database !== database) return;
  node.database = null;
  const prefix = `${quoteName(database)}.`;
  if (node.relation_name?.startsWith(prefix)) node.relation_name = node.relation_name.slice(prefix.length);
}

/** One node as dbt writes it (Model, Seed, Snapshot, GenericTest, SingularTest). */
export function dbtNode(node: ManifestNode, database?: string | null): Json {
  const { compiled_incremental_code, other_names, row_condition, unit_test, ...rest } = node;
  const out: Json = rest;
  const extras: NodeExtras = {};
  if (compiled_incremental_code !== undefined) extras.compiled_incremental_code = compiled_incremental_code;
  if (other_names !== undefined) extras.other_names = other_names;
  if (row_condition !== undefined) extras.row_condition = row_condition;
  if (unit_test !== undefined) extras.unit_test = unit_test;
  if (Object.keys(extras).length) out.config = { ...node.config, etl: extras };
  if (node.resource_type === 'seed') {
    for (const k of SEED_OMITS) delete out[k];
    out.depends_on = { macros: node.depends_on.macros };
  } else {
    out.compiled = true;
    out.extra_ctes_injected = true;
    out.extra_ctes = [];
  }
  withDatabase(out, database);
  return out;
}

function internalNode(json: Json, database?: string | null): ManifestNode {
  const { compiled, extra_ctes_injected, extra_ctes, ...rest } = json;
  void compiled, extra_ctes_injected, extra_ctes;
  const node = rest as unknown as ManifestNode;
  const config = node.config as ManifestNode['config'] & { etl?: NodeExtras };
  if (config?.etl) {
    const { etl, ...plain } = config;
    node.config = plain as ManifestNode['config'];
    if (etl.compiled_incremental_code !== undefined) node.compiled_incremental_code = etl.compiled_incremental_code;
    if (etl.other_names !== undefined) node.other_names = etl.other_names;
    if (etl.row_condition !== undefined) node.row_condition = etl.row_condition;
    if (etl.unit_test !== undefined) node.unit_test = etl.unit_test;
  }
  if (node.resource_type === 'seed') {
    node.refs = [];
    node.sources = [];
    node.compiled_code = '';
    node.compiled_path = null;
    node.language = 'sql';
    node.depends_on = { nodes: [], macros: node.depends_on?.macros ?? [] };
  }
  withoutDatabase(node, database);
  return node;
}

/** A unit test as dbt's UnitTestDefinition; the rest of the node rides in config.etl. */
function dbtUnitTest(node: ManifestNode): Json {
  const plan = node.unit_test!;
  const { unit_test, config, ...rest } = node;
  void unit_test;
  return {
    model: plan.definition.model,
    given: plan.definition.given,
    expect: plan.definition.expect,
    name: node.name,
    resource_type: 'unit_test',
    package_name: node.package_name,
    path: node.path,
    original_file_path: node.original_file_path,
    unique_id: node.unique_id,
    fqn: node.fqn,
    description: node.description,
    overrides: plan.definition.overrides ?? null,
    depends_on: node.depends_on,
    config: { tags: config.tags, meta: config.meta, enabled: config.enabled, etl: { unit_test: plan, node: { ...rest, config } } satisfies NodeExtras },
    checksum: node.checksum.checksum,
    schema: node.schema,
  };
}

function internalUnitTest(json: Json): ManifestNode {
  const etl = (json.config as { etl: NodeExtras }).etl;
  return { ...(etl.node as ManifestNode), unit_test: etl.unit_test };
}

/** "12h" -> { count: 12, period: 'hour' }; seconds round up to whole minutes (dbt has no smaller period). */
export function freshnessTime(text: string | undefined): { count: number; period: 'minute' | 'hour' | 'day' } | null {
  if (!text) return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$/.exec(text);
  if (!m) return null;
  const seconds = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds % 86400 === 0) return { count: seconds / 86400, period: 'day' };
  if (seconds % 3600 === 0) return { count: seconds / 3600, period: 'hour' };
  return { count: Math.ceil(seconds / 60), period: 'minute' };
}

function durationText(time: { count: number | null; period: string | null } | null | undefined): string | undefined {
  if (!time || time.count === null || !time.period) return undefined;
  return `${time.count}${time.period[0]}`;
}

/** A yml freshness with dbt's {count, period} durations, as the "12h" text the rest of etl reads. */
export function durationsAsText<T extends { warn_after?: unknown; error_after?: unknown }>(f: T): T & { warn_after?: string; error_after?: string } {
  const text = (d: unknown) => (d && typeof d === 'object' ? durationText(d as { count: number; period: string }) : (d as string | undefined));
  const out = { ...f } as T & { warn_after?: string; error_after?: string };
  if (f.warn_after !== undefined) out.warn_after = text(f.warn_after);
  if (f.error_after !== undefined) out.error_after = text(f.error_after);
  return out;
}

export function dbtFreshness(f: ManifestSource['freshness']): Json | null {
  if (!f) return null;
  return { warn_after: freshnessTime(f.warn_after), error_after: freshnessTime(f.error_after), filter: f.filter ?? null };
}

/** etl's own source fields, under the source's `config.etl` in manifest.json. */
interface SourceExtras {
  /** The database was filled in from the target (it is not the yml's). */
  database_from_target?: boolean;
  /** The loader node that loads the source (dbt's nodes have no loader type, so it rides here). */
  loader_node?: ManifestNode;
}

function dbtSource(source: ManifestSource, database: string | null | undefined, loader: ManifestNode | undefined): Json {
  const freshness = dbtFreshness(source.freshness);
  const { loaded_by, ...rest } = source;
  void loaded_by;
  const extras: SourceExtras = {};
  if (source.database === null && database) extras.database_from_target = true;
  if (loader) extras.loader_node = loader;
  const out: Json = {
    ...rest,
    loader: source.loader ?? '',
    freshness,
    source_meta: {},
    config: { enabled: true, freshness, loaded_at_field: source.loaded_at_field, meta: source.meta, tags: source.tags, ...(Object.keys(extras).length ? { etl: extras } : {}) },
  };
  withDatabase(out, database);
  return out;
}

function internalSource(json: Json, database: string | null | undefined, nodes: Record<string, ManifestNode>): ManifestSource {
  const { freshness, config, source_meta, ...rest } = json as Json & { freshness: { warn_after: never; error_after: never; filter: string | null } | null; config?: { etl?: SourceExtras } };
  void source_meta;
  const out = rest as unknown as ManifestSource;
  if (config?.etl?.database_from_target) withoutDatabase(out, database);
  const loader = config?.etl?.loader_node;
  if (loader) {
    nodes[loader.unique_id] = loader;
    out.loaded_by = loader.unique_id;
  }
  out.freshness = freshness
    ? Object.fromEntries(
        Object.entries({ warn_after: durationText(freshness.warn_after), error_after: durationText(freshness.error_after), filter: freshness.filter ?? undefined }).filter(([, v]) => v !== undefined),
      )
    : null;
  return out;
}

/** manifest.json's metadata: dbt's keys, etl's own under env (strings, as the schema has them). */
function dbtMetadata(m: Manifest['metadata']): Json {
  return {
    dbt_schema_version: MANIFEST_SCHEMA,
    dbt_version: DBT_VERSION,
    generated_at: m.generated_at,
    invocation_id: m.invocation_id,
    invocation_started_at: m.generated_at,
    env: {
      etl_version: m.etl_version,
      etl_manifest_layout: MANIFEST_LAYOUT,
      etl_project_root: m.project_root,
      etl_target_name: m.target_name,
      etl_target_schema: m.target_schema,
      ...(m.database !== undefined ? { etl_database: m.database ?? '' } : {}),
      etl_fingerprint: m.fingerprint,
    },
    project_name: m.project_name,
    // dbt's project_id: the md5 of the project name.
    project_id: createHash('md5').update(m.project_name).digest('hex'),
    user_id: null,
    send_anonymous_usage_stats: false,
    adapter_type: m.adapter_type,
  };
}

/** The error a manifest.json gets when it cannot be read back; undefined when it can. */
export function manifestLayoutProblem(json: { metadata?: { env?: Record<string, string>; etl_version?: string } }): string | undefined {
  const layout = json.metadata?.env?.etl_manifest_layout;
  if (layout === MANIFEST_LAYOUT) return undefined;
  const writer = json.metadata?.env?.etl_version ?? json.metadata?.etl_version;
  return writer
    ? `it was written by etl ${writer} in manifest layout ${layout ?? '1'}; this etl reads layout ${MANIFEST_LAYOUT} (etl 0.2 or later)`
    : 'it was not written by etl (no metadata.env.etl_version)';
}

function internalMetadata(json: Json): Manifest['metadata'] {
  const env = (json.env ?? {}) as Record<string, string>;
  return {
    dbt_schema_version: json.dbt_schema_version as string,
    etl_version: env.etl_version ?? '',
    generated_at: json.generated_at as string,
    invocation_id: json.invocation_id as string,
    project_name: json.project_name as string,
    project_root: env.etl_project_root ?? '',
    target_name: env.etl_target_name ?? '',
    adapter_type: json.adapter_type as string,
    target_schema: env.etl_target_schema ?? '',
    ...(env.etl_database !== undefined ? { database: env.etl_database || null } : {}),
    fingerprint: env.etl_fingerprint ?? '',
  };
}

/**
 * The top-level entries of manifest.json in order, each a map written entry
 * by entry (writeManifest streams them) or a plain value. Nodes are
 * converted one at a time as the writer asks for them.
 */
export function* manifestJsonEntries(manifest: Manifest): Generator<[string, unknown, ((value: unknown) => unknown)?]> {
  yield ['metadata', dbtMetadata(manifest.metadata)];
  // Unit tests are written under unit_tests; under nodes they are left out (undefined is skipped, as by JSON.stringify).
  const unitTests: ManifestNode[] = [];
  for (const node of Object.values(manifest.nodes)) if (node.unit_test) unitTests.push(node);
  const database = manifest.metadata.database;
  // Loader nodes are written inside the source they load (dbt's nodes have no such type).
  yield ['nodes', manifest.nodes, (n) => ((n as ManifestNode).unit_test || (n as ManifestNode).resource_type === 'loader' ? undefined : dbtNode(n as ManifestNode, database))];
  yield ['sources', manifest.sources, (s) => dbtSource(s as ManifestSource, database, (s as ManifestSource).loaded_by ? manifest.nodes[(s as ManifestSource).loaded_by!] : undefined)];
  yield ['macros', manifest.macros];
  yield ['docs', manifest.docs];
  yield ['exposures', manifest.exposures];
  yield ['metrics', manifest.metrics];
  yield ['groups', manifest.groups];
  yield ['selectors', manifest.selectors];
  yield ['disabled', manifest.disabled, (list) => (list as ManifestNode[]).map((n) => dbtNode(n, database))];
  yield ['parent_map', manifest.parent_map];
  yield ['child_map', manifest.child_map];
  yield ['group_map', {}];
  yield ['saved_queries', {}];
  yield ['semantic_models', {}];
  yield ['unit_tests', Object.fromEntries(unitTests.map((t) => [t.unique_id, t])), (t) => dbtUnitTest(t as ManifestNode)];
}

/** The dbt-shaped manifest as one object (tests, small projects); writeManifest streams the same entries. */
export function manifestJson(manifest: Manifest): Json {
  const out: Json = {};
  for (const [key, value, convert] of manifestJsonEntries(manifest)) {
    out[key] = convert ? Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, convert(v)]).filter(([, v]) => v !== undefined)) : value;
  }
  return out;
}

/** A parsed manifest.json (this etl's layout: check manifestLayoutProblem first) as the compiler's Manifest. */
export function manifestFromJson(json: Json): Manifest {
  const metadata = internalMetadata(json.metadata as Json);
  const database = metadata.database;
  const nodes: Record<string, ManifestNode> = {};
  for (const [id, n] of Object.entries(json.nodes as Record<string, Json>)) nodes[id] = internalNode(n, database);
  for (const [id, t] of Object.entries((json.unit_tests ?? {}) as Record<string, Json>)) nodes[id] = internalUnitTest(t);
  return {
    metadata,
    nodes,
    sources: Object.fromEntries(Object.entries(json.sources as Record<string, Json>).map(([id, s]) => [id, internalSource(s, database, nodes)])),
    macros: json.macros as Manifest['macros'],
    parent_map: json.parent_map as Manifest['parent_map'],
    child_map: json.child_map as Manifest['child_map'],
    exposures: {},
    metrics: {},
    groups: {},
    selectors: {},
    disabled: Object.fromEntries(Object.entries((json.disabled ?? {}) as Record<string, Json[]>).map(([id, list]) => [id, list.map((n) => internalNode(n, database))])),
    docs: {},
  };
}
