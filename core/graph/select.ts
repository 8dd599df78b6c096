// Node selection: --select / --exclude evaluated against a manifest, as dbt's.
// The grammar is select-grammar.ts's and what one method names is
// select-match.ts's; here terms are unioned and parts intersected, the graph
// operators (+x, x+, 2+x, @x) walk core/graph/graph.ts's graph, state: and
// result: read the previous run, and tests are added indirectly. Sources
// take part in matching and graph traversal (`source:raw+` selects the
// children of raw) but are never returned: only manifest.nodes (models,
// seeds, snapshots, tests) are.
//
// Every step is O(V+E) per selector part: projects have 10,000+ nodes.

import type { Manifest } from '../compiler/manifest.js';
import { type Diagnostic, ProjectError } from '../errors.js';
import { graphOfManifest, reach, type DependencyGraph } from './graph.js';
import { parseSelection, type Part, type Term } from './select-grammar.js';
import { matchPart, noMatchWarning, stableJson, type MatchScope } from './select-match.js';

export { SELECTOR_METHODS, type SelectorMethod } from './select-grammar.js';
export { testTypeOf } from './select-match.js';

export interface SelectionContext {
  manifest: Manifest;
  /** Manifest of a previous run (from --state DIR), for state:modified / state:new */
  stateManifest?: Manifest;
  /** run_results.json of the last run, for result:<status> */
  previousResults?: { results: Array<{ unique_id: string; status: string }> };
}

/**
 * How tests are added when their parents are selected (dbt's --indirect-selection):
 * - `empty` (default here): only what the selectors name;
 * - `eager`: also every test with at least one selected parent (dbt's default for build/test);
 * - `cautious`: also tests all of whose parents are selected;
 * - `buildable`: also tests whose parents are each selected or an ancestor of a selected node.
 * A test named by --exclude is never added back.
 */
export type IndirectSelection = 'eager' | 'cautious' | 'buildable' | 'empty';

export interface SelectOptions {
  indirectSelection?: IndirectSelection;
}

/** Returns the set of selected unique_ids (nodes only: models, seeds, snapshots, tests; never sources).
 * select undefined or empty => every node. exclude removes nodes. Bad syntax / unknown method => throw ProjectError (exit code 2). */
export function selectNodes(ctx: SelectionContext, select?: string[], exclude?: string[], options?: SelectOptions): Set<string> {
  return explainSelection(ctx, select, exclude, options).selected;
}

/** selectNodes, plus a warning for every selector that matched nothing (with a did-you-mean where one is close). */
export function explainSelection(
  ctx: SelectionContext,
  select?: string[],
  exclude?: string[],
  options: SelectOptions = {},
): { selected: Set<string>; warnings: string[] } {
  const diagnostics: Diagnostic[] = [];
  const inputs = { state: !!ctx.stateManifest, results: !!ctx.previousResults };
  const include = parseSelection(inputs, select ?? [], '--select', diagnostics);
  const excludeTerms = parseSelection(inputs, exclude ?? [], '--exclude', diagnostics);
  if (diagnostics.length) throw new ProjectError(diagnostics);

  const ev = new Evaluator(ctx);
  const warnings: string[] = [];
  // Internally sets may hold source ids too; they are dropped at the very end.
  let selected: Set<string>;
  if (include.length === 0) {
    selected = new Set(Object.keys(ctx.manifest.nodes));
  } else {
    selected = new Set();
    for (const term of include) for (const id of ev.term(term, warnings)) selected.add(id);
  }
  const excluded = new Set<string>();
  for (const term of excludeTerms) for (const id of ev.term(term, warnings)) excluded.add(id);
  for (const id of excluded) selected.delete(id);

  const mode = options.indirectSelection ?? 'empty';
  if (mode !== 'empty') addIndirectTests(ev.graph, ctx.manifest, selected, excluded, mode);

  const nodes = ctx.manifest.nodes;
  const result = new Set<string>();
  for (const id of selected) if (Object.hasOwn(nodes, id)) result.add(id);
  return { selected: result, warnings };
}

function addIndirectTests(graph: DependencyGraph, manifest: Manifest, selected: Set<string>, excluded: Set<string>, mode: IndirectSelection): void {
  const ancestors = mode === 'buildable' ? reach(graph, selected, 'up') : undefined;
  const add: string[] = [];
  for (const node of Object.values(manifest.nodes)) {
    if (node.resource_type !== 'test' || selected.has(node.unique_id) || excluded.has(node.unique_id)) continue;
    const parents = graph.parents.get(node.unique_id) ?? [];
    if (parents.length === 0) continue;
    const hit =
      mode === 'eager'
        ? parents.some((p) => selected.has(p))
        : mode === 'cautious'
          ? parents.every((p) => selected.has(p))
          : parents.some((p) => selected.has(p)) && parents.every((p) => selected.has(p) || ancestors!.has(p));
    if (hit) add.push(node.unique_id);
  }
  for (const id of add) selected.add(id);
}

class Evaluator {
  readonly graph: DependencyGraph;
  private readonly scope: MatchScope;
  constructor(private readonly ctx: SelectionContext) {
    this.graph = graphOfManifest(ctx.manifest);
    this.scope = { nodes: Object.values(ctx.manifest.nodes), sources: Object.values(ctx.manifest.sources ?? {}), projectRoot: ctx.manifest.metadata?.project_root };
  }

  term(parts: Term, warnings: string[]): Set<string> {
    let result: Set<string> | undefined;
    let matchedOnlySources = false;
    for (const part of parts) {
      const base = this.match(part);
      if (base.size === 0) warnings.push(this.noMatchWarning(part));
      const expanded = this.expand(part, base);
      if (result === undefined) result = expanded;
      else {
        const [small, big] = result.size <= expanded.size ? [result, expanded] : [expanded, result];
        result = new Set([...small].filter((id) => big.has(id)));
      }
      if (base.size > 0 && !part.children && !part.childrensParents && [...base].every((id) => !Object.hasOwn(this.ctx.manifest.nodes, id))) {
        matchedOnlySources = true;
      }
    }
    const out = result ?? new Set<string>();
    if (matchedOnlySources && parts.length === 1 && ![...out].some((id) => Object.hasOwn(this.ctx.manifest.nodes, id))) {
      const p = parts[0]!;
      warnings.push(`"${p.raw}" selects only sources, which are not built; "${p.raw}+" selects their children`);
    }
    return out;
  }

  private expand(part: Part, base: Set<string>): Set<string> {
    if (part.childrensParents) {
      return reach(this.graph, reach(this.graph, base, 'down'), 'up');
    }
    if (!part.parents && !part.children) return base;
    const out = new Set(base);
    if (part.parents) for (const id of reach(this.graph, base, 'up', part.parentsDepth)) out.add(id);
    if (part.children) for (const id of reach(this.graph, base, 'down', part.childrenDepth)) out.add(id);
    return out;
  }

  /** The ids a part's method:value names, before graph operators (may include sources). */
  private match(part: Part): Set<string> {
    if (part.method === 'state') return this.matchState(part.value);
    if (part.method === 'result') {
      const out = new Set<string>();
      for (const r of this.ctx.previousResults?.results ?? []) {
        if (r.status === part.value && (Object.hasOwn(this.ctx.manifest.nodes, r.unique_id) || Object.hasOwn(this.ctx.manifest.sources ?? {}, r.unique_id))) {
          out.add(r.unique_id);
        }
      }
      return out;
    }
    return matchPart(part, this.scope);
  }

  private matchState(v: string): Set<string> {
    const old = this.ctx.stateManifest!.nodes;
    const out = new Set<string>();
    if (v === 'old') {
      for (const n of this.scope.nodes) if (Object.hasOwn(old, n.unique_id)) out.add(n.unique_id);
      return out;
    }
    for (const n of this.scope.nodes) {
      const prev = Object.hasOwn(old, n.unique_id) ? old[n.unique_id] : undefined;
      const isNew = prev === undefined;
      const body = !isNew && prev.checksum?.checksum !== n.checksum.checksum;
      const configs = !isNew && stableJson(prev.config) !== stableJson(n.config);
      let hit: boolean;
      switch (v) {
        case 'new':
          hit = isNew;
          break;
        case 'modified.body':
          hit = body;
          break;
        case 'modified.configs':
          hit = configs;
          break;
        case 'unmodified':
          hit = !isNew && !body && !configs;
          break;
        default: // modified
          hit = isNew || body || configs;
      }
      if (hit) out.add(n.unique_id);
    }
    return out;
  }

  private noMatchWarning(part: Part): string {
    return noMatchWarning(part, this.scope, {
      disabled: Object.values(this.ctx.manifest.disabled ?? {}).flat(),
      statuses: (this.ctx.previousResults?.results ?? []).map((r) => r.status),
    });
  }
}
