// The data the docs site reads, as the generator writes it (core/docs/split.ts)
// and the front-end reads it (core/docs/site/). One compact index loaded with
// the page (names, types, folders, edges, the home page's summary), each
// node's details loaded when its page needs them, and a search index loaded
// once the first page is drawn. A node's details live in a small file shared
// with the nodes beside it in the index (SHARD_SIZE of them, in folder order):
// creating 10,000 files cost more than the rest of `docs generate` together
// on a busy disk, and a node page reading ~100 KB instead of ~3 KB costs no
// visible time. Each file is a classic script calling
// window.etlDocs(key, data): fetch() of a local file is refused under file://,
// a <script> tag is not.

/** Nodes per data file: node i is entry i % SHARD_SIZE of data/nodes/<floor(i / SHARD_SIZE)>.js. */
export const SHARD_SIZE = 32;

/** Resource types in the order of SiteIndex.types. */
export const RESOURCE_TYPES = ['model', 'seed', 'snapshot', 'source', 'loader'] as const;
export type SiteResourceType = (typeof RESOURCE_TYPES)[number];

export type RunStatus = 'success' | 'error' | 'skipped' | 'pass' | 'fail' | 'warn';

/** Columnar: entry i of every array describes node i. */
export interface SiteIndex {
  project: string;
  generated_at: string;
  adapter: string;
  /** The dialect sql-formatter formats the compiled SQL in (the adapter's Dialect.formatterLanguage). */
  sql_dialect: 'duckdb' | 'postgresql';
  ids: string[];
  names: string[];
  /** Index into RESOURCE_TYPES. */
  types: number[];
  /** Index into folders: the node's folder (models/staging), or sources/<source name>. */
  folder: number[];
  folders: string[];
  /** Tag indices per node (into tags); empty arrays are written as 0 to stay short. */
  node_tags: Array<number[] | 0>;
  tags: string[];
  /** Materialization per node ('' for sources). */
  materialized: string[];
  /** Status of the node's last run ('' when none). */
  status: string[];
  /** Parents as node indices (tests are not in the graph). */
  parents: number[][];
  summary: HomeSummary;
  /** Whether target/lineage.json was there (column lineage available). */
  has_lineage: boolean;
  has_catalog: boolean;
  /** etl.yml `cost:` currency, when it sets a rate: runs then carry their cost (as `etl report` computes it). */
  currency?: string;
}

export interface HomeSummary {
  counts: Record<string, number>;
  /** folder -> resource type -> count */
  folders: Array<{ folder: string; counts: Record<string, number> }>;
  tests: number;
  last_run?: {
    generated_at: string;
    invocation_id: string;
    command?: string;
    elapsed_time: number;
    /** status -> count */
    statuses: Record<string, number>;
    /** node: the node that failed, or the node a failed test tests (test: the test's name). */
    failures: Array<{ node: number | null; id: string; status: string; message: string; test?: string }>;
  };
  failing_tests: TestSummary[];
  warning_tests: TestSummary[];
  quarantined: Array<{ node: number; rows: number }>;
  stale_sources: Array<{ node: number | null; id: string; status: string; max_loaded_at: string | null; age_s: number | null; error?: string }>;
  /** cost: at etl.yml's `cost:` rates, when it sets any (SiteIndex.currency). */
  slowest: Array<{ node: number; seconds: number; status: string; cost?: number }>;
  /** Recent runs from the target's run history (etl_meta), newest first. */
  runs: Array<{ run_id: string; command: string; status: string; started_at: string | null; finished_at: string | null }>;
}

export interface TestSummary {
  name: string;
  /** The node tested (index), if any. */
  node: number | null;
  column: string | null;
  failures: number | null;
  message: string;
}

export interface SiteTest {
  name: string;
  /** Generic test name (unique, not_null...), or 'singular' / 'unit'. */
  kind: string;
  column: string | null;
  severity: string;
  status?: RunStatus;
  failures?: number | null;
  message?: string;
}

export interface ColumnRef {
  node: string;
  column: string;
}

export interface SiteColumn {
  name: string;
  description: string;
  /** Engine type from catalog.json, else the declared data_type. */
  type?: string;
  declared_type?: string;
  /** From lineage.json: the description was inherited along pass-through lineage. */
  inherited?: { text: string; from: ColumnRef };
  tests: number[];
  lineage?: {
    kind: 'passthrough' | 'transform' | 'unresolved';
    expression?: string;
    reason?: string;
    upstream: ColumnRef[];
  };
  downstream?: ColumnRef[];
  constraints?: string[];
}

export interface SiteNode {
  id: string;
  name: string;
  type: SiteResourceType;
  path: string;
  relation: string | null;
  description: string;
  materialized: string;
  tags: string[];
  /** Non-default config values worth showing. */
  config: Record<string, unknown>;
  columns: SiteColumn[];
  tests: SiteTest[];
  raw_code?: string;
  compiled_code?: string;
  contract?: { enforced: boolean; status?: string; message?: string };
  run?: { status: string; execution_time: number; rows: number | null; message: string; quarantined?: number; completed_at?: string; cost?: number };
  /** The node's last runs, newest first; seconds and cost where the history has them (cost when etl.yml sets rates). */
  history: Array<{ run_id: string; status: string; started_at: string | null; finished_at: string | null; rows: number | null; message: string; seconds?: number | null; cost?: number }>;
  source?: { source_name: string; identifier: string; loaded_at_field: string | null; freshness: unknown; freshness_result?: { status: string; max_loaded_at: string | null; age_s: number | null; error?: string } };
}

/** Loaded after the first page is drawn: what search looks through beyond names. */
export interface SearchIndex {
  /** Distinct column names; col_nodes[i] lists the nodes having column i. */
  columns: string[];
  col_nodes: number[][];
  /** Distinct description texts (first 200 characters, one line). */
  texts: string[];
  /** text index -> [node, column name or ''] pairs described by it, flattened. */
  text_refs: Array<Array<number | string>>;
}
