// Splits the project's artifacts (manifest, run results, catalog, column
// lineage, source freshness, run history) into what the docs site loads: one
// compact index, one payload per node, one search index (see model.ts).
// Pure: reads nothing from disk, so tests hand it objects.

import path from 'node:path';
import { dialectFor, type Dialect } from '../../adapters/dialect.js';
import type { Manifest, ManifestNode, ManifestSource } from '../compiler/manifest.js';
import type { NodeResult } from '../runner/events.js';
import type { FreshnessResult } from '../data-tests/engine/freshness.js';
import type { CostRates, RunHistory } from '../state/state.js';
import { costOf } from '../history/cost.js';
import { RESOURCE_TYPES, type HomeSummary, type SearchIndex, type SiteColumn, type SiteIndex, type SiteNode, type SiteTest, type TestSummary } from './model.js';

export interface RunResultsFile {
  metadata: { generated_at: string; invocation_id: string };
  results: NodeResult[];
  elapsed_time: number;
  args?: { resource_types?: string[]; command?: string };
}

/** dbt's catalog.json, as far as the site reads it. */
export interface CatalogFile {
  nodes?: Record<string, { columns?: Record<string, { type?: string; index?: number; name?: string; comment?: string | null }> }>;
  sources?: Record<string, { columns?: Record<string, { type?: string; index?: number; name?: string; comment?: string | null }> }>;
}

/** target/lineage.json (written by `etl lineage` / compile --check; shape agreed with core/analysis). */
export interface LineageFile {
  nodes: Record<
    string,
    {
      columns: Record<
        string,
        {
          data_type?: string;
          kind: 'passthrough' | 'transform' | 'unresolved';
          expression?: string;
          reason?: string;
          upstream: Array<{ node: string; column: string }>;
          inherited_description?: { text: string; from: { node: string; column: string } };
        }
      >;
    }
  >;
}

export interface SourcesFile {
  results: FreshnessResult[];
}

export interface DocsInputs {
  manifest: Manifest;
  runResults?: RunResultsFile;
  catalog?: CatalogFile;
  lineage?: LineageFile;
  sources?: SourcesFile;
  history?: RunHistory;
  /** etl.yml `cost:` (core/history/report.ts costConfig): with any rate set, runs carry their cost. */
  cost?: CostRates & { currency: string };
}

export interface SiteData {
  index: SiteIndex;
  nodes: SiteNode[];
  search: SearchIndex;
}

const HISTORY_PER_NODE = 10;
const TEXT_MAX = 200;

type GraphEntry = { kind: 'node'; node: ManifestNode } | { kind: 'source'; node: ManifestSource };

function folderOf(e: GraphEntry): string {
  if (e.kind === 'source') return `sources/${e.node.source_name}`;
  // A loader is declared on a source table (its fqn: project, source, table): it sits with its source.
  if (e.node.resource_type === 'loader') return `sources/${e.node.fqn[1]}`;
  const dir = path.posix.dirname(e.node.original_file_path.split(path.sep).join('/'));
  return dir === '.' ? e.node.resource_type : dir;
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > TEXT_MAX ? `${line.slice(0, TEXT_MAX - 1)}…` : line;
}

/** Case-insensitive lookup (engines fold unquoted names; yml may not). */
function byLowerName<T>(record: Record<string, T> | undefined): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of Object.entries(record ?? {})) out.set(k.toLowerCase(), v);
  return out;
}

/** Config keys shown on a node page when set. */
export const CONFIG_KEYS = [
  'materialized', 'schema', 'alias', 'incremental_strategy', 'unique_key', 'on_schema_change', 'event_time', 'batch_size', 'lookback', 'begin',
  'partition_by', 'cluster_by', 'deletion_vectors', 'quarantine', 'quarantine_max', 'strategy', 'updated_at', 'check_cols', 'hard_deletes', 'retries', 'retry_backoff', 'pre_hook', 'post_hook', 'meta',
];

function shownConfig(node: ManifestNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const v = node.config[key];
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) continue;
    if (key === 'retries' && v === 0) continue;
    out[key] = v;
  }
  return out;
}

export function testKind(t: ManifestNode): string {
  if (t.test_metadata) return t.test_metadata.name;
  if (t.config.materialized === 'unit_test' || t.unit_test) return 'unit';
  return 'singular';
}

export function splitDocs(inputs: DocsInputs): SiteData {
  const { manifest } = inputs;
  const entries: GraphEntry[] = [];
  for (const node of Object.values(manifest.nodes)) if (node.resource_type !== 'test') entries.push({ kind: 'node', node });
  for (const node of Object.values(manifest.sources)) entries.push({ kind: 'source', node });
  const indexOf = new Map<string, number>();
  entries.forEach((e, i) => indexOf.set(e.node.unique_id, i));

  const results = new Map<string, NodeResult>();
  for (const r of inputs.runResults?.results ?? []) results.set(r.unique_id, r);
  const freshness = new Map<string, FreshnessResult>();
  for (const r of inputs.sources?.results ?? []) freshness.set(r.unique_id, r);
  const rates = inputs.cost && (inputs.cost.per_cpu_hour || inputs.cost.per_gb_written || inputs.cost.per_gb_scanned) ? inputs.cost : undefined;
  const historyByNode = new Map<string, SiteNode['history']>();
  for (const r of inputs.history?.node_runs ?? []) {
    let list = historyByNode.get(r.unique_id);
    if (!list) historyByNode.set(r.unique_id, (list = []));
    if (list.length >= HISTORY_PER_NODE) continue;
    const entry: SiteNode['history'][number] = { run_id: r.run_id, status: r.status, started_at: r.started_at, finished_at: r.finished_at, rows: r.rows_affected, message: r.message };
    if (r.execution_time !== undefined) entry.seconds = r.execution_time;
    if (rates) entry.cost = costOf([r], rates);
    list.push(entry);
  }

  // Tests, attached to the node they test (generic) or to every node they read (singular).
  const testsOf = new Map<string, ManifestNode[]>();
  const testNodes: ManifestNode[] = [];
  for (const t of Object.values(manifest.nodes)) {
    if (t.resource_type !== 'test') continue;
    testNodes.push(t);
    const targets = t.attached_node ? [t.attached_node] : t.depends_on.nodes;
    for (const id of targets) {
      let list = testsOf.get(id);
      if (!list) testsOf.set(id, (list = []));
      list.push(t);
    }
  }

  // Downstream column lineage: the inverse of every upstream edge.
  const downstream = new Map<string, Map<string, Array<{ node: string; column: string }>>>();
  for (const [id, entry] of Object.entries(inputs.lineage?.nodes ?? {})) {
    for (const [column, c] of Object.entries(entry.columns ?? {})) {
      for (const up of c.upstream ?? []) {
        let cols = downstream.get(up.node);
        if (!cols) downstream.set(up.node, (cols = new Map()));
        const key = up.column.toLowerCase();
        let list = cols.get(key);
        if (!list) cols.set(key, (list = []));
        list.push({ node: id, column });
      }
    }
  }

  const folders: string[] = [];
  const folderIndex = new Map<string, number>();
  const tags: string[] = [];
  const tagIndex = new Map<string, number>();
  const intern = (value: string, list: string[], map: Map<string, number>) => {
    let i = map.get(value);
    if (i === undefined) {
      i = list.length;
      list.push(value);
      map.set(value, i);
    }
    return i;
  };

  const index: SiteIndex = {
    project: manifest.metadata.project_name,
    generated_at: new Date().toISOString(),
    adapter: manifest.metadata.adapter_type,
    sql_dialect: dialectFor(manifest.metadata.adapter_type as Dialect['name']).formatterLanguage,
    ids: [],
    names: [],
    types: [],
    folder: [],
    folders,
    node_tags: [],
    tags,
    materialized: [],
    status: [],
    parents: [],
    summary: undefined as unknown as HomeSummary,
    has_lineage: inputs.lineage !== undefined,
    has_catalog: inputs.catalog !== undefined,
  };
  if (rates) index.currency = rates.currency;

  const columnNodes = new Map<string, Set<number>>();
  const texts = new Map<string, Array<number | string>>();
  const addText = (text: string, node: number, column: string) => {
    const t = oneLine(text);
    if (!t) return;
    let refs = texts.get(t);
    if (!refs) texts.set(t, (refs = []));
    refs.push(node, column);
  };

  const nodes: SiteNode[] = entries.map((e, i) => {
    const n = e.node;
    const type = e.kind === 'source' ? 'source' : (n as ManifestNode).resource_type;
    index.ids.push(n.unique_id);
    index.names.push(e.kind === 'source' ? `${e.node.source_name}.${e.node.name}` : n.name);
    index.types.push(RESOURCE_TYPES.indexOf(type as (typeof RESOURCE_TYPES)[number]));
    index.folder.push(intern(folderOf(e), folders, folderIndex));
    const nodeTags = e.kind === 'source' ? e.node.tags : e.node.tags;
    index.node_tags.push(nodeTags.length ? nodeTags.map((t) => intern(t, tags, tagIndex)) : 0);
    index.materialized.push(e.kind === 'node' ? e.node.config.materialized : '');
    const run = results.get(n.unique_id);
    const fresh = freshness.get(n.unique_id);
    index.status.push(run?.status ?? (fresh ? fresh.status : ''));
    const parentIds = e.kind === 'node' ? e.node.depends_on.nodes : [];
    index.parents.push(parentIds.map((p) => indexOf.get(p)).filter((p): p is number => p !== undefined));

    // Columns: declared (yml) first, then those the engine or the lineage knows of.
    const catalogCols = byLowerName((e.kind === 'source' ? inputs.catalog?.sources : inputs.catalog?.nodes)?.[n.unique_id]?.columns);
    const lineageCols = byLowerName(inputs.lineage?.nodes[n.unique_id]?.columns);
    const downCols = downstream.get(n.unique_id);
    const names = new Map<string, string>();
    for (const c of Object.values(n.columns)) names.set(c.name.toLowerCase(), c.name);
    const catalogOrder = [...catalogCols.entries()].sort((a, b) => (a[1].index ?? 0) - (b[1].index ?? 0));
    for (const [k, c] of catalogOrder) if (!names.has(k)) names.set(k, c.name ?? k);
    for (const k of lineageCols.keys()) if (!names.has(k)) names.set(k, Object.keys(inputs.lineage!.nodes[n.unique_id]!.columns).find((c) => c.toLowerCase() === k)!);
    const declared = byLowerName(n.columns);

    const tests: SiteTest[] = (testsOf.get(n.unique_id) ?? []).map((t) => {
      const r = results.get(t.unique_id);
      return { name: t.name, kind: testKind(t), column: t.column_name ?? null, severity: t.config.severity ?? 'error', status: r?.status, failures: r?.failures, message: r?.message };
    });

    const columns: SiteColumn[] = [...names].map(([key, name]) => {
      const d = declared.get(key);
      const cat = catalogCols.get(key);
      const lin = lineageCols.get(key);
      const col: SiteColumn = { name, description: d?.description ?? '', tests: [] };
      if (cat?.type) col.type = cat.type;
      if (d?.data_type) col.declared_type = d.data_type;
      if (!col.type && (d?.data_type || lin?.data_type)) col.type = d?.data_type ?? lin?.data_type;
      if (lin) {
        col.lineage = { kind: lin.kind, upstream: lin.upstream ?? [] };
        if (lin.expression) col.lineage.expression = lin.expression;
        if (lin.reason) col.lineage.reason = lin.reason;
        if (!col.description && lin.inherited_description) col.inherited = lin.inherited_description;
      }
      const down = downCols?.get(key);
      if (down) col.downstream = down;
      if (d?.constraints?.length) col.constraints = d.constraints.map((c) => String(c.type ?? JSON.stringify(c)));
      tests.forEach((t, ti) => {
        if (t.column && t.column.toLowerCase() === key) col.tests.push(ti);
      });
      let nodesOfColumn = columnNodes.get(name);
      if (!nodesOfColumn) columnNodes.set(name, (nodesOfColumn = new Set()));
      nodesOfColumn.add(i);
      addText(col.description || col.inherited?.text || '', i, name);
      return col;
    });
    addText(n.description, i, '');

    const site: SiteNode = {
      id: n.unique_id,
      name: index.names[i]!,
      type: type as SiteNode['type'],
      path: n.original_file_path,
      relation: n.relation_name,
      description: n.description,
      materialized: index.materialized[i]!,
      tags: nodeTags,
      config: e.kind === 'node' ? shownConfig(e.node) : {},
      columns,
      tests,
      history: historyByNode.get(n.unique_id) ?? [],
    };
    if (e.kind === 'node') {
      site.raw_code = e.node.raw_code;
      if (e.node.resource_type !== 'seed') site.compiled_code = e.node.compiled_code;
      if (e.node.config.contract) site.contract = { enforced: e.node.config.contract.enforced, status: run?.status, message: run?.status === 'error' ? run.message : undefined };
    } else {
      site.source = { source_name: e.node.source_name, identifier: e.node.identifier, loaded_at_field: e.node.loaded_at_field, freshness: e.node.freshness };
      if (fresh) site.source.freshness_result = { status: fresh.status, max_loaded_at: fresh.max_loaded_at, age_s: fresh.max_loaded_at_time_ago_in_s, error: fresh.error };
    }
    if (run) {
      site.run = { status: run.status, execution_time: run.execution_time, rows: run.rows_affected, message: run.message };
      if (run.quarantined !== undefined) site.run.quarantined = run.quarantined;
      const done = run.timing?.[run.timing.length - 1]?.completed_at;
      if (done) site.run.completed_at = done;
      if (rates) site.run.cost = runCost(run, rates);
    }
    return site;
  });

  index.summary = summarise(inputs, entries, indexOf, index, testNodes, results, rates);
  const search: SearchIndex = { columns: [], col_nodes: [], texts: [], text_refs: [] };
  for (const [name, set] of columnNodes) {
    search.columns.push(name);
    search.col_nodes.push([...set]);
  }
  for (const [text, refs] of texts) {
    search.texts.push(text);
    search.text_refs.push(refs);
  }
  return { index, nodes, search };
}

/** A result of the last run at the rates of etl.yml `cost:`, as `etl report` prices a node run. */
function runCost(r: NodeResult, rates: CostRates): number {
  return costOf([{ execution_time: r.execution_time, bytes_written: r.adapter_response?.bytes_written, bytes_scanned: r.adapter_response?.bytes_scanned }], rates);
}

function summarise(inputs: DocsInputs, entries: GraphEntry[], indexOf: Map<string, number>, index: SiteIndex, testNodes: ManifestNode[], results: Map<string, NodeResult>, rates: CostRates | undefined): HomeSummary {
  const counts: Record<string, number> = {};
  const byFolder = new Map<string, Record<string, number>>();
  entries.forEach((e, i) => {
    const type = RESOURCE_TYPES[index.types[i]!]!;
    counts[type] = (counts[type] ?? 0) + 1;
    const folder = index.folders[index.folder[i]!]!;
    let c = byFolder.get(folder);
    if (!c) byFolder.set(folder, (c = {}));
    c[type] = (c[type] ?? 0) + 1;
  });
  const summary: HomeSummary = {
    counts,
    folders: [...byFolder].map(([folder, c]) => ({ folder, counts: c })).sort((a, b) => a.folder.localeCompare(b.folder)),
    tests: testNodes.length,
    failing_tests: [],
    warning_tests: [],
    quarantined: [],
    stale_sources: [],
    slowest: [],
    runs: inputs.history?.runs ?? [],
  };
  const rr = inputs.runResults;
  if (rr) {
    const statuses: Record<string, number> = {};
    const failures: NonNullable<HomeSummary['last_run']>['failures'] = [];
    const tests = new Map(testNodes.map((t) => [t.unique_id, t]));
    for (const r of rr.results) {
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      if (r.status !== 'error' && r.status !== 'fail') continue;
      // A test is not a node of the site: it is named, on the node it tests.
      const test = tests.get(r.unique_id);
      const tested = test ? (test.attached_node ?? test.depends_on.nodes[0]) : undefined;
      const node = indexOf.get(tested ?? r.unique_id) ?? null;
      failures.push(test ? { node, id: r.unique_id, status: r.status, message: r.message, test: test.name } : { node, id: r.unique_id, status: r.status, message: r.message });
    }
    summary.last_run = { generated_at: rr.metadata.generated_at, invocation_id: rr.metadata.invocation_id, command: rr.args?.command, elapsed_time: rr.elapsed_time, statuses, failures: failures.slice(0, 50) };
  }
  for (const t of testNodes) {
    const r = results.get(t.unique_id);
    if (!r || (r.status !== 'fail' && r.status !== 'error' && r.status !== 'warn')) continue;
    const attached = t.attached_node ?? t.depends_on.nodes[0];
    const entry: TestSummary = { name: t.name, node: attached ? (indexOf.get(attached) ?? null) : null, column: t.column_name ?? null, failures: r.failures, message: r.message };
    (r.status === 'warn' ? summary.warning_tests : summary.failing_tests).push(entry);
  }
  for (const r of results.values()) {
    const node = indexOf.get(r.unique_id);
    if (node === undefined) continue;
    if (r.quarantined) summary.quarantined.push({ node, rows: r.quarantined });
    summary.slowest.push(rates ? { node, seconds: r.execution_time, status: r.status, cost: runCost(r, rates) } : { node, seconds: r.execution_time, status: r.status });
  }
  summary.quarantined.sort((a, b) => b.rows - a.rows);
  summary.slowest.sort((a, b) => b.seconds - a.seconds);
  summary.slowest.length = Math.min(summary.slowest.length, 10);
  for (const f of inputs.sources?.results ?? []) {
    if (f.status === 'pass') continue;
    summary.stale_sources.push({ node: indexOf.get(f.unique_id) ?? null, id: f.unique_id, status: f.status, max_loaded_at: f.max_loaded_at, age_s: f.max_loaded_at_time_ago_in_s, error: f.error });
  }
  return summary;
}
