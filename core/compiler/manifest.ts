// The compiled project: one plain, serialisable object in the middle of the
// flow. The compiler produces it (and writes it as target/manifest.json); the
// planner and runner read only it. Shapes follow dbt's manifest where the two
// overlap, so tools written for dbt's artifacts can read ours.

/** `loader`: extract and load into a source's raw table (a `loader:` on a source table; core/extract/). */
export type ResourceType = 'model' | 'seed' | 'snapshot' | 'test' | 'loader';
export type Materialization = 'view' | 'table' | 'incremental' | 'ephemeral' | 'seed' | 'snapshot' | 'test' | 'unit_test' | 'loader';

/** Config after merging etl.yml folder defaults < properties yml < {{config}} in the template. */
export interface NodeConfig {
  materialized: Materialization;
  enabled: boolean;
  tags: string[];
  /** Custom schema as configured; the resolved one is ManifestNode.schema. */
  schema?: string;
  alias?: string;
  pre_hook: string[];
  post_hook: string[];
  retries: number;
  /** How long to wait between retries (core/runner/retry.ts). */
  retry_backoff?: import('../runner/retry.js').RetryBackoffConfig;
  incremental_strategy?: 'append' | 'merge' | 'delete+insert' | 'microbatch' | 'insert_overwrite';
  unique_key?: string | string[];
  on_schema_change?: 'ignore' | 'fail' | 'append_new_columns' | 'sync_all_columns';
  event_time?: string;
  batch_size?: 'hour' | 'day' | 'month';
  lookback?: number;
  begin?: string;
  full_refresh?: boolean;
  partition_by?: string | string[];
  cluster_by?: string | string[];
  deletion_vectors?: boolean;
  contract?: { enforced: boolean };
  quarantine?: boolean;
  quarantine_max?: string | number;
  column_types?: Record<string, string>;
  delimiter?: string;
  strategy?: 'timestamp' | 'check';
  updated_at?: string;
  check_cols?: 'all' | string[];
  hard_deletes?: 'ignore' | 'invalidate' | 'new_record';
  meta: Record<string, unknown>;
  // data tests
  severity?: 'error' | 'warn';
  warn_if?: string;
  error_if?: string;
  where?: string;
  limit?: number;
  store_failures?: boolean;
  /** Loaders: what to extract and how (the yml's `loader:`, merged with the source's defaults). */
  loader?: LoaderSpec;
  [key: string]: unknown;
}

/** A loader's config as compiled: the yml's keys, with `url` still a template (`{{env_var ...}}`, rendered when it runs). */
export interface LoaderSpec {
  type: 'postgres' | 'files' | 'http';
  /** postgres: the source database; http: the first page (templates, rendered when the loader runs). */
  url?: string;
  /** http: request headers (templates: `Authorization: "Bearer {{env_var 'API_TOKEN'}}"`). */
  headers?: Record<string, string>;
  /** http: where the records are in a response (`data.items`); the response itself when absent. */
  records_path?: string;
  /** http: how the next page is asked for. */
  pagination?: { type: 'none' | 'page' | 'offset' | 'cursor' | 'link'; param?: string; size?: number; size_param?: string; start?: number; cursor_path?: string };
  /** http: requests per second at most. */
  rate_limit?: number;
  /** http: retries of a request that failed transiently (429, 5xx, a connection error), default 5; postgres: of the whole load (a refused or dropped connection), default 3. */
  retries?: number;
  retry_backoff?: import('../runner/retry.js').RetryBackoffConfig;
  /** Consecutive transient failures after which the source host is not called for `cool_down` (seconds or "5m"); default 5, 5m. */
  circuit_breaker?: number | { failures?: number; cool_down?: number | string };
  /** files: a glob relative to the project root; the format from the extension unless `format`. */
  path?: string;
  format?: 'csv' | 'parquet' | 'json' | 'ndjson';
  /** Rejected records allowed before nothing of the run is published: a count, or "5%" of the records read. */
  max_rejected?: number | string;
  table?: string;
  query?: string;
  /** `param` (http): the query parameter the watermark is sent in; `deletes: detect` (postgres): rows whose key is gone at the source are deleted. */
  incremental?: { cursor: string; primary_key: string[]; lookback?: number | string; param?: string; deletes?: 'detect' };
  /** postgres `incremental: { mode: cdc }`: changes read from a logical replication slot (core/extract/postgres-cdc.ts); the key read at the source unless given. */
  cdc?: { primary_key?: string[]; slot?: string };
  sslmode?: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  sslrootcert?: string;
  connect_timeout?: number;
  /** The source table it loads: `crm.customers`. */
  source: string;
  /** Where it was declared, `models/crm.yml:12`, for errors at run time. */
  declared_at: string;
}

export interface ColumnInfo {
  name: string;
  description: string;
  data_type?: string;
  meta: Record<string, unknown>;
  tags: string[];
  constraints?: Array<Record<string, unknown>>;
}

export interface ManifestNode {
  unique_id: string;
  resource_type: ResourceType;
  package_name: string;
  name: string;
  /** Path relative to the project root. */
  path: string;
  original_file_path: string;
  fqn: string[];
  database: string | null;
  schema: string;
  alias: string;
  /** The quoted relation, as {{ref}} renders it; null for ephemeral models and tests. */
  relation_name: string | null;
  raw_code: string;
  /** SQL as it runs on a first build or --full-refresh (is_incremental = false). */
  compiled_code: string;
  /** For incremental models: the SQL with is_incremental = true. */
  compiled_incremental_code?: string;
  /** Path of the compiled SQL file, relative to the project root. */
  compiled_path: string | null;
  language: 'sql';
  depends_on: { nodes: string[]; macros: string[] };
  refs: Array<{ name: string }>;
  sources: Array<[string, string]>;
  config: NodeConfig;
  tags: string[];
  description: string;
  columns: Record<string, ColumnInfo>;
  meta: Record<string, unknown>;
  checksum: { name: 'sha256'; checksum: string };
  /** Where the node's properties were declared (a yml file), if anywhere. */
  patch_path: string | null;
  /** Generic tests: which test, with which arguments. */
  test_metadata?: { name: string; kwargs: Record<string, unknown>; namespace: string | null };
  /** Tests: the node the test is about; its failure blocks that node's children. */
  attached_node?: string | null;
  column_name?: string | null;
  /** Generic tests: other names --select accepts (the hashed alias, the name etl gave before it followed dbt's). */
  other_names?: string[];
  /** Row-level generic tests: the predicate a passing row satisfies (for quarantine). */
  row_condition?: string;
  /** Unit tests: fixtures and expected rows (see core/data-tests/unit-tests.ts). */
  unit_test?: import('../data-tests/unit-tests.js').UnitTestPlan;
}

export interface ManifestSource {
  unique_id: string;
  resource_type: 'source';
  package_name: string;
  name: string;
  source_name: string;
  identifier: string;
  schema: string;
  database: string | null;
  relation_name: string;
  path: string;
  original_file_path: string;
  fqn: string[];
  description: string;
  source_description: string;
  /** The tool that loads it (`loader:` in the yml), as dbt has it. */
  loader?: string;
  loaded_at_field: string | null;
  freshness: { warn_after?: string; error_after?: string; filter?: string } | null;
  columns: Record<string, ColumnInfo>;
  meta: Record<string, unknown>;
  tags: string[];
  /** `location:` in the yml: a table read by path (dbt's ExternalTable). */
  external?: { location: string };
  /** The loader node that loads it (`loader.<project>.<source>.<table>`), when it has a `loader:` mapping. */
  loaded_by?: string;
}

export interface Manifest {
  metadata: {
    dbt_schema_version: string;
    etl_version: string;
    generated_at: string;
    invocation_id: string;
    project_name: string;
    project_root: string;
    target_name: string;
    adapter_type: string;
    target_schema: string;
    /** The database a user names to query the target (dev for dev.duckdb); manifest.json's database and relation_name carry it. */
    database?: string | null;
    /** Hash of every input of the compile; equal hashes mean an equal manifest. */
    fingerprint: string;
  };
  nodes: Record<string, ManifestNode>;
  sources: Record<string, ManifestSource>;
  macros: Record<string, MacroEntry>;
  parent_map: Record<string, string[]>;
  child_map: Record<string, string[]>;
  exposures: Record<string, never>;
  metrics: Record<string, never>;
  groups: Record<string, never>;
  selectors: Record<string, never>;
  disabled: Record<string, ManifestNode[]>;
  docs: Record<string, never>;
}

/** A macro (a partial, a helper module's export, a custom generic test), as dbt's Macro entry. */
export interface MacroEntry {
  unique_id: string;
  resource_type: 'macro';
  package_name: string;
  name: string;
  path: string;
  original_file_path: string;
  macro_sql: string;
  depends_on: { macros: string[] };
  description: string;
  meta: Record<string, unknown>;
  docs: { show: boolean; node_color: null };
  patch_path: null;
  arguments: never[];
}

export function macroEntry(project: string, name: string, file: string, sql: string): MacroEntry {
  return {
    unique_id: `macro.${project}.${name}`,
    resource_type: 'macro',
    package_name: project,
    name,
    path: file,
    original_file_path: file,
    macro_sql: sql,
    depends_on: { macros: [] },
    description: '',
    meta: {},
    docs: { show: true, node_color: null },
    patch_path: null,
    arguments: [],
  };
}

export function modelId(project: string, kind: ResourceType, name: string): string {
  return `${kind}.${project}.${name}`;
}

export function loaderId(project: string, source: string, table: string): string {
  return `loader.${project}.${source}.${table}`;
}

export function sourceId(project: string, source: string, table: string): string {
  return `source.${project}.${source}.${table}`;
}
