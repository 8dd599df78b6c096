// `etl lineage -s orders.amount`: the column's upstream and downstream
// columns, hop by hop, read from the project's column lineage.

import type { Manifest } from '../compiler/manifest.js';
import { closestMatch } from '../errors.js';
import type { LineageArtifact } from './column-lineage.js';
import type { UpstreamColumn } from './lineage.js';

export interface LineageEdge {
  /** The column that derives from `from`. */
  to: UpstreamColumn;
  from: UpstreamColumn;
  kind: 'passthrough' | 'transform' | 'unresolved';
  expression?: string;
  /** Hops from the selected column (1 = direct). */
  depth: number;
}

export interface ColumnLineageResult {
  column: UpstreamColumn;
  upstream: LineageEdge[];
  downstream: LineageEdge[];
  /** Columns of the traversal whose lineage is unresolved, with the reason. */
  unresolved: Array<{ column: UpstreamColumn; reason: string }>;
}

/** Resolves `orders.amount` (or `raw.orders.amount` for a source) to a node id and column; undefined with a hint when unknown. */
export function findColumn(manifest: Manifest, artifact: LineageArtifact, selector: string): { column: UpstreamColumn } | { error: string; hint?: string } {
  const parts = selector.split('.');
  if (parts.length < 2) return { error: `lineage: "${selector}" is not a column`, hint: 'write <model>.<column>, e.g. etl lineage -s orders.amount' };
  const column = parts.at(-1)!;
  const owner = parts.slice(0, -1).join('.');
  const node =
    Object.values(manifest.nodes).find((n) => n.resource_type !== 'test' && n.name === owner) ??
    Object.values(manifest.sources).find((s) => `${s.source_name}.${s.name}` === owner || `source.${s.source_name}.${s.name}` === owner);
  if (!node) {
    const names = [...Object.values(manifest.nodes).filter((n) => n.resource_type !== 'test').map((n) => n.name), ...Object.values(manifest.sources).map((s) => `${s.source_name}.${s.name}`)];
    const near = closestMatch(owner, names);
    return { error: `lineage: no model, seed, snapshot or source is named "${owner}"`, hint: near ? `did you mean "${near}"?` : undefined };
  }
  const known = [...new Set([...Object.keys(artifact.nodes[node.unique_id]?.columns ?? {}), ...Object.keys(node.columns)])];
  const match = known.find((c) => c === column) ?? known.find((c) => c.toLowerCase() === column.toLowerCase());
  if (!match) {
    const near = closestMatch(column, known);
    return { error: `lineage: ${owner} has no column "${column}"`, hint: near ? `did you mean "${near}"?` : known.length ? `its columns: ${known.join(', ')}` : `no columns are known for ${owner}; run etl compile --check` };
  }
  return { column: { node: node.unique_id, column: match } };
}

/** Every column the selected one derives from (upstream) and every column derived from it (downstream). */
export function traceColumn(artifact: LineageArtifact, start: UpstreamColumn, directions: { upstream: boolean; downstream: boolean }): ColumnLineageResult {
  const key = (c: UpstreamColumn) => `${c.node}\0${c.column}`;
  const result: ColumnLineageResult = { column: start, upstream: [], downstream: [], unresolved: [] };
  const noteUnresolved = (c: UpstreamColumn) => {
    const l = artifact.nodes[c.node]?.columns[c.column];
    if (l?.kind === 'unresolved' && !result.unresolved.some((u) => key(u.column) === key(c))) result.unresolved.push({ column: c, reason: l.reason ?? 'unresolved' });
  };
  noteUnresolved(start);
  if (directions.upstream) {
    const seen = new Set([key(start)]);
    let frontier = [start];
    for (let depth = 1; frontier.length; depth++) {
      const next: UpstreamColumn[] = [];
      for (const c of frontier) {
        const l = artifact.nodes[c.node]?.columns[c.column];
        for (const u of l?.upstream ?? []) {
          result.upstream.push({ to: c, from: u, kind: l!.kind, ...(l!.expression ? { expression: l!.expression } : {}), depth });
          if (seen.has(key(u))) continue;
          seen.add(key(u));
          noteUnresolved(u);
          next.push(u);
        }
      }
      frontier = next;
    }
  }
  if (directions.downstream) {
    const children = new Map<string, Array<{ to: UpstreamColumn; kind: LineageEdge['kind']; expression?: string }>>();
    for (const [node, entry] of Object.entries(artifact.nodes)) {
      for (const [column, l] of Object.entries(entry.columns)) {
        for (const u of l.upstream) {
          const list = children.get(key(u)) ?? [];
          list.push({ to: { node, column }, kind: l.kind, ...(l.expression ? { expression: l.expression } : {}) });
          children.set(key(u), list);
        }
      }
    }
    const seen = new Set([key(start)]);
    let frontier = [start];
    for (let depth = 1; frontier.length; depth++) {
      const next: UpstreamColumn[] = [];
      for (const c of frontier) {
        for (const child of children.get(key(c)) ?? []) {
          result.downstream.push({ to: child.to, from: c, kind: child.kind, ...(child.expression ? { expression: child.expression } : {}), depth });
          if (seen.has(key(child.to))) continue;
          seen.add(key(child.to));
          next.push(child.to);
        }
      }
      frontier = next;
    }
  }
  return result;
}

/** The trace as a person reads it: the column, then each hop up (<-) and down (->), indented by depth. */
export function formatTrace(manifest: Manifest, trace: ColumnLineageResult): string {
  const label = (c: UpstreamColumn) => {
    const n = manifest.nodes[c.node];
    const s = manifest.sources[c.node];
    return `${n ? n.name : s ? `${s.source_name}.${s.name}` : c.node}.${c.column}`;
  };
  const how = (e: LineageEdge) => (e.kind === 'passthrough' ? 'pass-through' : e.kind === 'transform' ? `transform: ${e.expression}` : 'unresolved');
  const lines = [label(trace.column)];
  const tree = (edges: LineageEdge[], arrow: string, key: 'from' | 'to', other: 'from' | 'to') => {
    const byParent = new Map<string, LineageEdge[]>();
    for (const e of edges) {
      const k = `${e[other].node}\0${e[other].column}`;
      byParent.set(k, [...(byParent.get(k) ?? []), e]);
    }
    const seen = new Set<string>();
    const walk = (c: UpstreamColumn, depth: number) => {
      for (const e of byParent.get(`${c.node}\0${c.column}`) ?? []) {
        const k = `${e[key].node}\0${e[key].column}`;
        lines.push(`${'  '.repeat(depth)}${arrow} ${label(e[key])}  (${how(e)})`);
        if (seen.has(k)) continue;
        seen.add(k);
        walk(e[key], depth + 1);
      }
    };
    walk(trace.column, 1);
  };
  if (trace.upstream.length) tree(trace.upstream, '<-', 'from', 'to');
  if (trace.downstream.length) tree(trace.downstream, '->', 'to', 'from');
  for (const u of trace.unresolved) lines.push(`  unresolved ${label(u.column)}: ${u.reason}`);
  if (lines.length === 1) lines.push('  (no upstream or downstream columns)');
  return lines.join('\n');
}
