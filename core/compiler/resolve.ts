// Compile stage 3: every node's refs, sources, helpers and partials resolved
// from its template's analysis (a partial's refs count for its callers), into
// depends_on, refs, sources and depends_on.macros; then the dependency graph
// and its cycles. Unknown names get a did-you-mean with file:line:col.

import { didYouMean, type Diagnostic } from '../errors.js';
import { buildGraph, findCycle, type DependencyGraph } from '../graph/graph.js';
import type { Project } from '../project/load.js';
import type { TemplateAnalysis } from '../templates/analyze.js';
import { BUILTIN_HELPER_NAMES, ROOT_VARIABLES } from '../templates/helpers.js';
import type { ProjectMacros } from './macros.js';
import { sourceId } from './manifest.js';
import type { PendingNode, ProjectNodes } from './nodes.js';

/** Fills each pending node's dependencies; returns the graph of the pending nodes. */
export function resolveDependencies(project: Project, macros: ProjectMacros, nodes: ProjectNodes, errors: Diagnostic[]): DependencyGraph {
  const { byName, sources } = nodes;
  const partials = macros.partials;
  const helperNames = new Set<string>([...BUILTIN_HELPER_NAMES, ...macros.helpers.keys()]);
  for (const [name, h] of macros.helpers) {
    if ((BUILTIN_HELPER_NAMES as readonly string[]).includes(name)) {
      errors.push({ file: h.path, message: `macro helper "${name}" shadows a built-in helper`, hint: 'rename the export' });
    }
  }

  const disabledNames = new Map(Object.values(nodes.disabled).flat().map((n) => [n.name, n]));
  for (const p of nodes.pending.values()) {
    if (!p.analysis) continue;
    const deps = new Set<string>();
    const visit = (analysis: TemplateAnalysis, file: string, seen: Set<string>, isPartial = false) => {
      for (const ref of analysis.refs) {
        const target = byName.get(ref.name);
        if (!target) {
          const off = disabledNames.get(ref.name);
          errors.push({
            file,
            line: ref.line,
            col: ref.col,
            message: off ? `ref "${ref.name}": that ${off.resource_type} is disabled` : `unknown ref "${ref.name}"`,
            hint: off ? `enable ${off.original_file_path} or remove the ref` : didYouMean(ref.name, byName.keys()) ?? 'refs name a model, seed or snapshot by its file name',
          });
          continue;
        }
        if (target === p) {
          errors.push({ file, line: ref.line, col: ref.col, message: `${p.node.name} refs itself`, hint: 'use {{this}} to refer to the relation being built' });
          continue;
        }
        deps.add(target.node.unique_id);
        if (!p.node.refs.some((r) => r.name === ref.name)) p.node.refs.push({ name: ref.name });
      }
      for (const src of analysis.sources) {
        const id = sourceId(project.name, src.source, src.table);
        if (!sources[id]) {
          const sameSource = Object.values(sources).filter((s) => s.source_name === src.source);
          const hint = sameSource.length
            ? didYouMean(src.table, sameSource.map((s) => s.name)) ?? `tables of source "${src.source}": ${sameSource.map((s) => s.name).join(', ')}`
            : didYouMean(src.source, new Set(Object.values(sources).map((s) => s.source_name))) ?? 'declare it under sources: in a models/*.yml file';
          errors.push({ file, line: src.line, col: src.col, message: `unknown source "${src.source}.${src.table}"`, hint });
          continue;
        }
        deps.add(id);
        if (!p.node.sources.some(([a, b]) => a === src.source && b === src.table)) p.node.sources.push([src.source, src.table]);
      }
      for (const h of analysis.helpers) {
        if (!helperNames.has(h.name)) {
          errors.push({ file, line: h.line, col: h.col, message: `unknown helper "${h.name}"`, hint: didYouMean(h.name, helperNames) ?? 'project helpers are the named exports of macros/**/*.{js,mjs,ts}' });
        }
      }
      // A partial's bare names come from its caller's hash, checked when rendered.
      for (const b of isPartial ? [] : analysis.bareNames) {
        if (!helperNames.has(b.name) && !(ROOT_VARIABLES as readonly string[]).includes(b.name)) {
          errors.push({
            file,
            line: b.line,
            col: b.col,
            message: `unknown helper or variable "${b.name}"`,
            hint: didYouMean(b.name, [...helperNames, ...ROOT_VARIABLES]) ?? `for a project var write {{var "${b.name}"}}`,
          });
        }
      }
      for (const part of analysis.partials) {
        if (part.name === '@partial-block') continue;
        const def = partials.get(part.name);
        if (!def) {
          errors.push({ file, line: part.line, col: part.col, message: `unknown partial "${part.name}"`, hint: didYouMean(part.name, partials.keys()) ?? 'partials are macros/**/*.hbs files' });
          continue;
        }
        if (!seen.has(part.name)) {
          seen.add(part.name);
          if (!p.node.depends_on.macros.includes(`macro.${project.name}.${part.name}`)) p.node.depends_on.macros.push(`macro.${project.name}.${part.name}`);
          visit(def.analysis, def.path, seen, true);
        }
      }
    };
    visit(p.analysis, p.file.path, new Set());
    p.node.depends_on.nodes = [...deps];
  }

  // Cycles, listed in order with the file:line of each edge. Checked even when
  // other errors were found: the edges of resolved refs are real either way.
  const graph = graphOfPending(nodes.pending);
  const cycle = findCycle(graph);
  if (cycle) {
    const names = cycle.map((id) => nodes.pending.get(id)!.node.name);
    const first = nodes.pending.get(cycle[0]!)!;
    const refLine = first.analysis?.refs.find((r) => r.name === names[1 % names.length]);
    errors.push({
      file: first.file.path,
      line: refLine?.line,
      col: refLine?.col,
      message: `dependency cycle: ${[...names, names[0]].join(' -> ')}`,
      hint: `each model in the cycle refs the next: ${cycle.map((id) => nodes.pending.get(id)!.file.path).join(', ')}; remove one of the refs`,
    });
  }
  return graph;
}

/** The graph of the pending nodes, from their depends_on (sources left out). */
export function graphOfPending(pending: ReadonlyMap<string, PendingNode>): DependencyGraph {
  return buildGraph(pending.keys(), (id) => pending.get(id)!.node.depends_on.nodes);
}
