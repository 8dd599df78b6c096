// The shapes of etl.yml and models/**/*.yml, as zod schemas. Unknown keys are
// errors with "did you mean", because a misspelt config key silently ignored
// is the most expensive kind of bug in this field.

import * as z from 'zod';
import { strictObject } from './yaml.js';
import { DURATION_HINT, DURATION_PATTERN, WAIT_DURATION_PATTERN } from './duration.js';

const stringList = z.union([z.string(), z.array(z.string())]);
/** "30m", "12h", "2d" (core/project/duration.ts). */
const durationText = z.string().regex(DURATION_PATTERN, DURATION_HINT);

/** A wait: seconds as a number, or "250ms", "2s", "5m", "1h" (core/runner/retry.ts reads it). */
const waitDuration = z.union([z.number().min(0), z.string().regex(WAIT_DURATION_PATTERN, 'expected a duration like "500ms", "2s" or "1m"')]);
const backoffStrategy = z.enum(['exponential', 'constant', 'none']);

export const MATERIALIZATIONS = ['view', 'table', 'incremental', 'ephemeral', 'seed', 'snapshot'] as const;

/** Every config key a model, seed or snapshot may set, from any of the three places. */
export const nodeConfigShape = {
  materialized: z.enum(['view', 'table', 'incremental', 'ephemeral']),
  enabled: z.boolean(),
  tags: stringList,
  schema: z.string(),
  alias: z.string(),
  pre_hook: stringList,
  post_hook: stringList,
  retries: z.number().int().min(0),
  /** A model's SLA: its build takes longer, or its last successful build is older, than this (an sla_breach alert). */
  sla: durationText,
  retry_backoff: z.union([backoffStrategy, strictObject({ strategy: backoffStrategy, base: waitDuration, max: waitDuration, jitter: z.union([z.boolean(), z.number().min(0).max(1)]) }).partial()]),
  meta: z.record(z.string(), z.unknown()),
  // incremental
  incremental_strategy: z.enum(['append', 'merge', 'delete+insert', 'microbatch', 'insert_overwrite']),
  unique_key: stringList,
  on_schema_change: z.enum(['ignore', 'fail', 'append_new_columns', 'sync_all_columns']),
  event_time: z.string(),
  batch_size: z.enum(['hour', 'day', 'month']),
  lookback: z.number().int().min(0),
  begin: z.union([z.string(), z.date()]),
  full_refresh: z.boolean(),
  partition_by: stringList,
  cluster_by: stringList,
  /** Delta: changes mark deleted rows in deletion vectors instead of rewriting files (delta.enableDeletionVectors). */
  deletion_vectors: z.boolean(),
  // quality
  contract: strictObject({ enforced: z.boolean() }),
  quarantine: z.boolean(),
  quarantine_max: z.union([z.string(), z.number()]),
  // data tests (singular tests' {{config}}, and tests: entries' config)
  severity: z.enum(['error', 'warn']),
  warn_if: z.string(),
  error_if: z.string(),
  where: z.string(),
  limit: z.number().int().min(0),
  store_failures: z.boolean(),
  // seeds
  column_types: z.record(z.string(), z.string()),
  delimiter: z.string(),
  quote_columns: z.boolean(),
  // snapshots
  strategy: z.enum(['timestamp', 'check']),
  updated_at: z.string(),
  check_cols: z.union([z.literal('all'), z.array(z.string())]),
  hard_deletes: z.enum(['ignore', 'invalidate', 'new_record']),
};

export const nodeConfigSchema = strictObject(nodeConfigShape).partial();
export type NodeConfigInput = z.output<typeof nodeConfigSchema>;
export const NODE_CONFIG_KEYS = new Set(Object.keys(nodeConfigShape));

const threads = z.number().int().min(1).max(64);
/** Consecutive transient failures after which a run stops calling the target (0: never). */
const circuit_breaker = z.number().int().min(0);

export const duckdbTargetSchema = strictObject({
  type: z.literal('duckdb'),
  path: z.string(),
  schema: z.string(),
  threads,
  circuit_breaker,
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
}).partial({ schema: true, threads: true, circuit_breaker: true, settings: true, path: true });

export const postgresTargetSchema = strictObject({
  type: z.literal('postgres'),
  url: z.string(),
  host: z.string(),
  port: z.union([z.number().int(), z.string()]),
  user: z.string(),
  password: z.string(),
  database: z.string(),
  schema: z.string(),
  threads,
  sslmode: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']),
  sslrootcert: z.string(),
  connect_timeout: z.number().min(0),
  statement_timeout: z.number().min(0),
  circuit_breaker,
}).partial({
  circuit_breaker: true,
  url: true,
  host: true,
  port: true,
  user: true,
  password: true,
  database: true,
  schema: true,
  threads: true,
  sslmode: true,
  sslrootcert: true,
  connect_timeout: true,
  statement_timeout: true,
});

export const deltaTargetSchema = strictObject({
  type: z.literal('delta'),
  path: z.string(),
  schema: z.string(),
  threads,
  circuit_breaker,
}).partial({ schema: true, threads: true, circuit_breaker: true });

export const targetSchema = z.discriminatedUnion('type', [duckdbTargetSchema, postgresTargetSchema, deltaTargetSchema]);
export type TargetInput = z.output<typeof targetSchema>;

export const projectFileSchema = strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a project name is letters, digits and underscores'),
  version: z.union([z.number(), z.string()]),
  vars: z.record(z.string(), z.unknown()),
  target: z.string(),
  targets: z.record(z.string(), z.record(z.string(), z.unknown())),
  models: z.record(z.string(), z.unknown()),
  seeds: z.record(z.string(), z.unknown()),
  snapshots: z.record(z.string(), z.unknown()),
  tests: z.record(z.string(), z.unknown()),
  'model-paths': z.array(z.string()),
  'seed-paths': z.array(z.string()),
  'snapshot-paths': z.array(z.string()),
  'test-paths': z.array(z.string()),
  'macro-paths': z.array(z.string()),
  'target-path': z.string(),
  /** Scheduled jobs and alert sinks: checked entry by entry in core/project/orchestration.ts, only when present. */
  jobs: z.array(z.unknown()),
  alerts: z.array(z.unknown()),
  /** Rates `etl report` prices the run history with (core/history/report.ts). */
  cost: strictObject({ per_cpu_hour: z.number().min(0), per_gb_written: z.number().min(0), per_gb_scanned: z.number().min(0), currency: z.string().min(1) }).partial(),
  /** A monthly spend; crossing alert_at of it raises a cost_spike alert. */
  budget: strictObject({ monthly: z.number().positive(), alert_at: z.number().gt(0).max(1) }).partial({ alert_at: true }),
}).partial({
  jobs: true,
  alerts: true,
  cost: true,
  budget: true,
  version: true,
  vars: true,
  target: true,
  models: true,
  seeds: true,
  snapshots: true,
  tests: true,
  'model-paths': true,
  'seed-paths': true,
  'snapshot-paths': true,
  'test-paths': true,
  'macro-paths': true,
  'target-path': true,
});
export type ProjectFile = z.output<typeof projectFileSchema>;

// A test entry is `not_null` or `{ accepted_values: { values: [...] } }`; its
// arguments are checked by the data-tests stage, which knows each test.
// The properties files' schemas are built on first use: a run served from
// the compile cache never parses a models yml, and building zod schemas
// costs milliseconds of every process's start-up.
function buildPropertiesSchemas() {
  const testEntry = z.union([z.string(), z.record(z.string(), z.unknown())]);

  const columnSchema = strictObject({
    name: z.string(),
    description: z.string(),
    data_type: z.string(),
    tests: z.array(testEntry),
    data_tests: z.array(testEntry),
    constraints: z.array(z.record(z.string(), z.unknown())),
    meta: z.record(z.string(), z.unknown()),
    quote: z.boolean(),
    tags: stringList,
  }).partial({
    description: true,
    data_type: true,
    tests: true,
    data_tests: true,
    constraints: true,
    meta: true,
    quote: true,
    tags: true,
  });

  const resourcePropertiesSchema = strictObject({
    name: z.string(),
    description: z.string(),
    config: z.record(z.string(), z.unknown()),
    columns: z.array(columnSchema),
    tests: z.array(testEntry),
    data_tests: z.array(testEntry),
    constraints: z.array(z.record(z.string(), z.unknown())),
    meta: z.record(z.string(), z.unknown()),
    docs: z.record(z.string(), z.unknown()),
  }).partial({
    description: true,
    config: true,
    columns: true,
    tests: true,
    data_tests: true,
    constraints: true,
    meta: true,
    docs: true,
  });

  // "12h", or dbt's { count: 12, period: hour } (what manifest.json and sources.json write).
  const duration = z.union([
    durationText,
    strictObject({ count: z.number().int().positive(), period: z.enum(['minute', 'hour', 'day']) }),
  ]);

  const freshnessSchema = strictObject({
    warn_after: duration,
    error_after: duration,
    loaded_at_field: z.string(),
    filter: z.string(),
  }).partial();

  const loaderSchema = loaderSchemas();

  const sourceTableSchema = strictObject({
    name: z.string(),
    identifier: z.string(),
    description: z.string(),
    columns: z.array(columnSchema),
    tests: z.array(testEntry),
    data_tests: z.array(testEntry),
    freshness: z.union([freshnessSchema, z.null()]),
    loaded_at_field: z.string(),
    meta: z.record(z.string(), z.unknown()),
    /** A table stored elsewhere, read by path (a Delta table on a delta target). */
    location: z.string(),
    /** Extract and load: how etl loads this table (core/extract/). */
    loader: loaderSchema.table,
  }).partial({
    identifier: true,
    description: true,
    columns: true,
    tests: true,
    data_tests: true,
    freshness: true,
    loaded_at_field: true,
    meta: true,
    location: true,
    loader: true,
  });

  const sourceSchema = strictObject({
    name: z.string(),
    schema: z.string(),
    database: z.string(),
    description: z.string(),
    // dbt's loader: the name of the tool that loads the source; etl's: a mapping, the defaults of every table's loader.
    loader: z.union([z.string(), loaderSchema.source]),
    freshness: freshnessSchema,
    loaded_at_field: z.string(),
    tables: z.array(sourceTableSchema),
    meta: z.record(z.string(), z.unknown()),
  }).partial({
    schema: true,
    database: true,
    description: true,
    loader: true,
    freshness: true,
    loaded_at_field: true,
    meta: true,
  });

  const fixtureSchema = strictObject({
    input: z.string(),
    rows: z.union([z.array(z.record(z.string(), z.unknown())), z.string()]),
    format: z.enum(['dict', 'csv']),
    fixture: z.string(),
  }).partial({ rows: true, format: true, fixture: true });

  const unitTestSchema = strictObject({
    name: z.string(),
    model: z.string(),
    description: z.string(),
    given: z.array(fixtureSchema),
    expect: strictObject({
      rows: z.union([z.array(z.record(z.string(), z.unknown())), z.string()]),
      format: z.enum(['dict', 'csv']),
      fixture: z.string(),
    }).partial(),
    overrides: strictObject({ vars: z.record(z.string(), z.unknown()), is_incremental: z.boolean() }).partial(),
    config: strictObject({ tags: stringList, enabled: z.boolean(), meta: z.record(z.string(), z.unknown()) }).partial(),
  }).partial({ description: true, given: true, overrides: true, config: true });

  const propertiesFileSchema = strictObject({
    version: z.union([z.number(), z.string()]),
    models: z.array(resourcePropertiesSchema),
    seeds: z.array(resourcePropertiesSchema),
    snapshots: z.array(resourcePropertiesSchema),
    sources: z.array(sourceSchema),
    unit_tests: z.array(unitTestSchema),
  }).partial();
  return { columnSchema, resourcePropertiesSchema, sourceSchema, unitTestSchema, propertiesFileSchema };
}

/**
 * `loader:` of a source table (a mapping with `type:`), and of a source (the
 * same keys, every one optional: defaults for its tables). The table's is
 * validated after the source's defaults are merged in (core/compiler/loaders.ts).
 */
function loaderSchemas() {
  const duration = z.union([z.number().min(0), z.string().regex(/^\s*\d+(\.\d+)?\s*(s|m|h|d)\s*$/, 'expected a number or a duration like "30m", "12h" or "2d"')]);
  const incremental = strictObject({
    cursor: z.string(),
    primary_key: stringList,
    lookback: duration,
    // Rows gone at the source: left in the raw table (ignore), or found by their keys and deleted (detect: core/materializations/loader-deletes.ts).
    deletes: z.enum(['ignore', 'detect']),
  }).partial({ lookback: true, deletes: true });
  /** Consecutive transient failures, or those and the cool-down before the host is called again. */
  const circuitBreaker = z.union([z.number().int().min(0), strictObject({ failures: z.number().int().min(0), cool_down: duration }).partial({ failures: true, cool_down: true })]);
  const common = {
    on_schema_change: z.enum(['append_new_columns', 'sync_all_columns', 'fail', 'ignore']),
    full_refresh: z.boolean(),
    tags: stringList,
  };
  // CDC (core/extract/postgres-cdc.ts): the changes of a table read from a logical replication slot.
  const cdc = strictObject({
    mode: z.literal('cdc'),
    primary_key: stringList,
    slot: z.string().regex(/^[a-z0-9_]{1,63}$/, 'expected a replication slot name: lower-case letters, digits and _, at most 63'),
  }).partial({ primary_key: true, slot: true });
  const postgres = strictObject({
    type: z.literal('postgres'),
    url: z.string(),
    table: z.string(),
    query: z.string(),
    incremental: z.union([incremental, cdc]),
    sslmode: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']),
    sslrootcert: z.string(),
    connect_timeout: z.number().min(0),
    // The whole load tried again on a transient source failure (core/materializations/loader.ts); default 3.
    retries: z.number().int().min(0),
    retry_backoff: z.union([z.enum(['exponential', 'constant', 'none']), z.record(z.string(), z.unknown())]),
    circuit_breaker: circuitBreaker,
    ...common,
  }).partial({ table: true, query: true, incremental: true, sslmode: true, sslrootcert: true, connect_timeout: true, retries: true, retry_backoff: true, circuit_breaker: true, on_schema_change: true, full_refresh: true, tags: true });
  const files = strictObject({
    type: z.literal('files'),
    path: z.string(),
    format: z.enum(['csv', 'parquet', 'json', 'ndjson']),
    max_rejected: z.union([z.number().int().min(0), z.string().regex(/^\s*\d+(\.\d+)?\s*%\s*$/, 'expected a count or a percentage like "5%"')]),
    ...common,
  }).partial({ format: true, max_rejected: true, on_schema_change: true, full_refresh: true, tags: true });
  const http = strictObject({
    type: z.literal('http'),
    url: z.string(),
    headers: z.record(z.string(), z.string()),
    records_path: z.string(),
    pagination: strictObject({
      type: z.enum(['none', 'page', 'offset', 'cursor', 'link']),
      param: z.string(),
      size: z.number().int().positive(),
      size_param: z.string(),
      start: z.number().int().min(0),
      cursor_path: z.string(),
    }).partial({ param: true, size: true, size_param: true, start: true, cursor_path: true }),
    rate_limit: z.number().positive(),
    retries: z.number().int().min(0),
    retry_backoff: z.union([z.enum(['exponential', 'constant', 'none']), z.record(z.string(), z.unknown())]),
    circuit_breaker: circuitBreaker,
    // deletes: accepted only to be refused with a reason (core/compiler/loaders.ts): an API does not list its keys.
    incremental: strictObject({ cursor: z.string(), primary_key: stringList, lookback: duration, param: z.string(), deletes: z.enum(['ignore', 'detect']) }).partial({ lookback: true, param: true, deletes: true }),
    max_rejected: z.union([z.number().int().min(0), z.string().regex(/^\s*\d+(\.\d+)?\s*%\s*$/, 'expected a count or a percentage like "5%"')]),
    ...common,
  }).partial({ headers: true, records_path: true, pagination: true, rate_limit: true, retries: true, retry_backoff: true, circuit_breaker: true, incremental: true, max_rejected: true, on_schema_change: true, full_refresh: true, tags: true });
  const table = z.discriminatedUnion('type', [postgres, files, http]);
  // A source's defaults: any key of any loader type, none required (checked once merged into a table's).
  const source = z.record(z.string(), z.unknown());
  return { table: z.record(z.string(), z.unknown()), source, resolved: table };
}

let loaderSchemasBuilt: ReturnType<typeof loaderSchemas> | undefined;
/** The loader schemas (built on first use, as the properties schemas). */
export const loaderSchema = (): ReturnType<typeof loaderSchemas> => (loaderSchemasBuilt ??= loaderSchemas());
export type LoaderInput = z.output<ReturnType<typeof loaderSchemas>['resolved']>;

type PropertiesSchemas = ReturnType<typeof buildPropertiesSchemas>;
let propertiesSchemasBuilt: PropertiesSchemas | undefined;
export const propertiesSchemas = (): PropertiesSchemas => (propertiesSchemasBuilt ??= buildPropertiesSchemas());

export type ColumnInput = z.output<PropertiesSchemas['columnSchema']>;
export type ResourcePropertiesInput = z.output<PropertiesSchemas['resourcePropertiesSchema']>;
export type SourceInput = z.output<PropertiesSchemas['sourceSchema']>;
export type UnitTestInput = z.output<PropertiesSchemas['unitTestSchema']>;
export type PropertiesFile = z.output<PropertiesSchemas['propertiesFileSchema']>;
